-- Codebase index: a project's files in generations (a re-sync writes a new generation,
-- then flips `sync_generation` in one statement, so searches see the old set or the new
-- one), their non-blank lines, and an FTS5 trigram index over those lines for substring
-- search. The 0002 table had no writer and no generation, so it is replaced.
DROP TABLE project_files;

CREATE TABLE project_files (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    generation INTEGER NOT NULL,
    path       TEXT    NOT NULL,
    content    TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    lines      INTEGER NOT NULL,
    UNIQUE (project_id, generation, path)
);

-- Lines are inserted in (path, line) order, so id order is path order.
CREATE TABLE project_lines (
    id         INTEGER PRIMARY KEY,
    file_id    INTEGER NOT NULL REFERENCES project_files (id) ON DELETE CASCADE,
    line       INTEGER NOT NULL,
    definition INTEGER NOT NULL,
    text       TEXT    NOT NULL
);
CREATE INDEX project_lines_file ON project_lines (file_id);

CREATE VIRTUAL TABLE project_lines_fts USING fts5(
    text, content = 'project_lines', content_rowid = 'id', tokenize = 'trigram'
);
CREATE TRIGGER project_lines_indexed AFTER INSERT ON project_lines BEGIN
    INSERT INTO project_lines_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER project_lines_unindexed AFTER DELETE ON project_lines BEGIN
    INSERT INTO project_lines_fts (project_lines_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;

ALTER TABLE projects ADD COLUMN sync_status TEXT NOT NULL DEFAULT 'never';
ALTER TABLE projects ADD COLUMN sync_commit TEXT;
ALTER TABLE projects ADD COLUMN sync_files INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN sync_skipped TEXT NOT NULL DEFAULT '[]';
ALTER TABLE projects ADD COLUMN synced_at TEXT;
ALTER TABLE projects ADD COLUMN sync_reason TEXT;
-- The live generation of project_files (NULL: nothing indexed) and the last one handed out.
ALTER TABLE projects ADD COLUMN sync_generation INTEGER;
ALTER TABLE projects ADD COLUMN sync_last_generation INTEGER NOT NULL DEFAULT 0;
