-- Pull-request reviews teams rely on (SPEC §6.2): what was posted inline, which pull
-- requests are paused, and how each review was asked for.

-- A finding posted inline on a pull request (same path, same line text, same issue →
-- the same fingerprint) is never posted there again, also after a retry or a crash.
CREATE TABLE review_findings (
    repository  TEXT    NOT NULL,  -- owner/repo, lower case
    pull_number INTEGER NOT NULL,
    fingerprint TEXT    NOT NULL,  -- hex SHA-256 of path, line text and issue
    review_id   INTEGER REFERENCES reviews (id) ON DELETE SET NULL,
    created_at  TEXT    NOT NULL,
    PRIMARY KEY (repository, pull_number, fingerprint)
);

-- Pull requests whose automatic reviews were paused by `/codesherpa pause`.
CREATE TABLE paused_pulls (
    repository  TEXT    NOT NULL,  -- owner/repo, lower case
    pull_number INTEGER NOT NULL,
    paused_at   TEXT    NOT NULL,
    PRIMARY KEY (repository, pull_number)
);

-- `incremental` (a push or `/codesherpa review`) or `full` (`/codesherpa full review`,
-- a first review): what range of the pull request the job reads.
ALTER TABLE reviews ADD COLUMN scope TEXT NOT NULL DEFAULT 'incremental'
    CHECK (scope IN ('incremental', 'full'));
