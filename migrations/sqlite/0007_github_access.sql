-- Access to a repository is proven (SPEC §6.2): users connect their GitHub identity through
-- the OAuth web flow, and a project's repository access is verified with it.

-- The connected identity; `token` is the user's OAuth token sealed with an AEAD (never plain).
CREATE TABLE github_identities (
    user_id      INTEGER     PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    github_id    INTEGER     NOT NULL,
    login        TEXT        NOT NULL,
    token        TEXT        NOT NULL,
    connected_at TEXT        NOT NULL
);

-- OAuth `state` values in flight, by their SHA-256 (the value itself is only in the URL).
CREATE TABLE github_oauth_states (
    state_hash TEXT        PRIMARY KEY,
    user_id    INTEGER     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at TEXT        NOT NULL
);
CREATE INDEX github_oauth_states_user ON github_oauth_states (user_id);

-- NULL status: the project's repo_url names no GitHub repository.
ALTER TABLE projects ADD COLUMN repo_access_status TEXT
    CHECK (repo_access_status IN ('unverified', 'verified', 'denied'));
ALTER TABLE projects ADD COLUMN repo_access_login TEXT;
ALTER TABLE projects ADD COLUMN repo_access_checked_at TEXT;
ALTER TABLE projects ADD COLUMN repo_access_reason TEXT;
-- When the access was first proven; the earliest-verified project gets the reviews.
ALTER TABLE projects ADD COLUMN repo_verified_at TEXT;
CREATE INDEX projects_verified ON projects (repo_verified_at, id)
    WHERE repo_access_status = 'verified';

-- Projects made before access was proven link nothing until it is.
UPDATE projects SET repo_access_status = 'unverified',
    repo_access_reason = 'not verified yet: connect GitHub, then check again'
WHERE LOWER(repo_url) LIKE 'http%://github.com/%' OR LOWER(repo_url) LIKE 'http%://www.github.com/%';
