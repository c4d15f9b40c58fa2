-- Users, refresh tokens, agents, projects and chats. Timestamps are RFC 3339 UTC text.
CREATE TABLE users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL,
    email           TEXT    NOT NULL UNIQUE,  -- stored normalised (trimmed, lower-case)
    hashed_password TEXT    NOT NULL,
    is_active       BOOLEAN NOT NULL DEFAULT 1,
    whatsapp_number TEXT    UNIQUE,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);

CREATE TABLE refresh_tokens (
    jti         TEXT    PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   TEXT    NOT NULL,
    expires_at  TEXT    NOT NULL,
    used_at     TEXT,
    revoked_at  TEXT,
    created_at  TEXT    NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE agents (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    description   TEXT,
    status        TEXT    NOT NULL DEFAULT 'active'
                  CHECK (status IN ('active', 'inactive', 'processing')),
    role          TEXT    NOT NULL DEFAULT 'custom',
    system_prompt TEXT,
    model         TEXT,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
);
CREATE INDEX agents_user ON agents (user_id, id);

CREATE TABLE projects (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    description TEXT,
    repo_url    TEXT,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);
CREATE INDEX projects_user ON projects (user_id, id);

-- A chat outlives the agent or project it used: those links are cleared, not cascaded.
CREATE TABLE chats (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id           INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id        TEXT    NOT NULL,
    agent_id          INTEGER REFERENCES agents (id) ON DELETE SET NULL,
    project_id        INTEGER REFERENCES projects (id) ON DELETE SET NULL,
    message           TEXT    NOT NULL,
    response          TEXT    NOT NULL DEFAULT '',
    result            TEXT,
    agent             TEXT,
    provider          TEXT,
    model             TEXT,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    latency_ms        INTEGER NOT NULL DEFAULT 0,
    complete          BOOLEAN NOT NULL DEFAULT 1,
    created_at        TEXT    NOT NULL
);
CREATE INDEX chats_user_session ON chats (user_id, session_id, id);
CREATE INDEX chats_user ON chats (user_id, id);
