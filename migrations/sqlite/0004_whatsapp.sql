-- WhatsApp (Meta Cloud API): link codes, incoming messages (one row per wamid, each
-- with a `whatsapp.reply` job), the reply's parts as sent, and the hourly
-- "link your number" notices. Timestamps are RFC 3339 UTC text.

-- One live code per user (the primary key); a code names one user (unique).
CREATE TABLE whatsapp_link_codes (
    user_id    INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    code       TEXT    NOT NULL UNIQUE,
    expires_at TEXT    NOT NULL,
    created_at TEXT    NOT NULL
);

-- Meta retries deliveries: the unique wamid makes a repeat (even a concurrent one) a no-op.
CREATE TABLE whatsapp_messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    wamid           TEXT    NOT NULL UNIQUE,
    phone_number_id TEXT    NOT NULL,
    -- The sender's phone number as Meta sends it in `from`; null for senders Meta
    -- identifies only by a business-scoped user id.
    sender_number   TEXT,
    sender_user_id  TEXT,
    kind            TEXT    NOT NULL,
    body            TEXT,
    status          TEXT    NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'done', 'failed')),
    reason          TEXT,
    read_marked     BOOLEAN NOT NULL DEFAULT 0,
    answered        BOOLEAN NOT NULL DEFAULT 0,
    chat_id         INTEGER REFERENCES chats (id) ON DELETE SET NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);

-- The reply to one message, in order; `sent_id` is set once Meta accepted the part, so a
-- re-run sends only what is still missing.
CREATE TABLE whatsapp_reply_parts (
    message_id INTEGER NOT NULL REFERENCES whatsapp_messages (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    sent_id    TEXT,
    sent_at    TEXT,
    PRIMARY KEY (message_id, seq)
);

-- When a sender last got a notice of each kind (`link`, `text_only`), to send at most one an hour.
CREATE TABLE whatsapp_notices (
    sender       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    last_sent_at TEXT NOT NULL,
    PRIMARY KEY (sender, kind)
);
