-- WhatsApp in production (SPEC §6.3): files of code, pacing after Meta's pair-rate limit,
-- delivery statuses of what was sent, and review notifications for users who opt in.
-- Timestamps are RFC 3339 UTC text.

-- Opted in to a WhatsApp message when a pull-request review of one of their projects finishes.
ALTER TABLE users ADD COLUMN whatsapp_notify BOOLEAN NOT NULL DEFAULT 0;

-- A `document` message: Meta's media id, its MIME type and file name (the caption is `body`).
ALTER TABLE whatsapp_messages ADD COLUMN media_id TEXT;
ALTER TABLE whatsapp_messages ADD COLUMN mime_type TEXT;
ALTER TABLE whatsapp_messages ADD COLUMN filename TEXT;
-- When Meta last refused a part of the reply with 131056 (pair rate): from then on the
-- parts go out at least 6 seconds apart.
ALTER TABLE whatsapp_messages ADD COLUMN paced_at TEXT;
-- The 24-hour window: when a number last wrote.
CREATE INDEX whatsapp_messages_sender ON whatsapp_messages (sender_number, created_at);

-- The latest delivery status Meta reported for a sent part, and its error code if it failed.
ALTER TABLE whatsapp_reply_parts ADD COLUMN status TEXT
    CHECK (status IN ('sent', 'delivered', 'read', 'failed'));
ALTER TABLE whatsapp_reply_parts ADD COLUMN status_at TEXT;
ALTER TABLE whatsapp_reply_parts ADD COLUMN error_code INTEGER;
CREATE INDEX whatsapp_reply_parts_sent_id ON whatsapp_reply_parts (sent_id);

-- One notification per finished review: what was decided (a text inside the 24-hour
-- window, the approved template outside it, or skipped), and what Meta made of it.
CREATE TABLE whatsapp_notifications (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    review_id  INTEGER NOT NULL UNIQUE REFERENCES reviews (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('text', 'template', 'skipped')),
    recipient  TEXT,
    reason     TEXT,
    sent_id    TEXT,
    sent_at    TEXT,
    status     TEXT    CHECK (status IN ('sent', 'delivered', 'read', 'failed')),
    status_at  TEXT,
    error_code INTEGER,
    created_at TEXT    NOT NULL
);
CREATE INDEX whatsapp_notifications_sent_id ON whatsapp_notifications (sent_id);

-- Every delivery status received, once per (message, status): Meta's retries count once.
CREATE TABLE whatsapp_statuses (
    wamid       TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    error_code  INTEGER,
    received_at TEXT    NOT NULL,
    PRIMARY KEY (wamid, status)
);

-- Running totals for /metrics (delivery statuses, notifications), shared by every instance
-- and kept when old records are pruned.
CREATE TABLE whatsapp_counters (
    name  TEXT    PRIMARY KEY,
    count INTEGER NOT NULL
);

-- Retention finds old receipts and notifications through these (SPEC §6.1).
CREATE INDEX whatsapp_statuses_received ON whatsapp_statuses (received_at);
CREATE INDEX whatsapp_notifications_created ON whatsapp_notifications (created_at);
