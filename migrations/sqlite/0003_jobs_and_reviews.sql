-- The durable job queue, GitHub deliveries and pull-request reviews, and projects'
-- auto_review switch. Timestamps are RFC 3339 UTC text, compared as text.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT    NOT NULL,
    payload      TEXT    NOT NULL,  -- JSON
    -- The same (kind, dedupe_key) is never queued twice; NULL keys never collide.
    dedupe_key   TEXT,
    status       TEXT    NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_at       TEXT    NOT NULL,
    locked_by    TEXT,
    locked_until TEXT,
    last_error   TEXT,
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL
);
CREATE UNIQUE INDEX jobs_dedupe ON jobs (kind, dedupe_key);
CREATE INDEX jobs_claim ON jobs (kind, status, run_at);

-- Every verified delivery, so that a redelivery (even a concurrent one) does nothing twice.
CREATE TABLE github_deliveries (
    delivery_id TEXT PRIMARY KEY,
    event       TEXT NOT NULL,
    received_at TEXT NOT NULL
);

CREATE TABLE reviews (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    delivery_id     TEXT    NOT NULL UNIQUE,
    repository      TEXT    NOT NULL,  -- owner/repo as GitHub spells it
    pull_number     INTEGER NOT NULL,
    head_sha        TEXT    NOT NULL,
    installation_id INTEGER,
    status          TEXT    NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'done', 'skipped', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    reason          TEXT,
    comment_url     TEXT,
    chat_id         INTEGER REFERENCES chats (id) ON DELETE SET NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX reviews_project ON reviews (project_id, id);

ALTER TABLE projects ADD COLUMN auto_review BOOLEAN NOT NULL DEFAULT 1;
