-- The index by file, re-indexed incrementally.
--
-- A file row is visible at generation G when `generation <= G < until_gen`: a re-sync
-- writes rows only for the files whose content changed (by `hash`), pending
-- (`until_gen = generation`, visible to no one), then one transaction flips the project's
-- live generation, ends the replaced and deleted rows (`until_gen` = the new generation)
-- and opens the new ones. Rows of unchanged files stay, shared by both generations. Rows
-- written before this have no hash, so the next re-sync writes every file again.
ALTER TABLE project_files ADD COLUMN until_gen INTEGER NOT NULL DEFAULT 9223372036854775807;
ALTER TABLE project_files ADD COLUMN hash TEXT NOT NULL DEFAULT '';
CREATE INDEX project_files_path ON project_files (project_id, path);

-- Search narrows to files, not lines (as zoekt does): an FTS5 trigram index over whole
-- files, without positions (`detail='none'`: a file holds a trigram or not), then the
-- files are read in path order and their lines matched exactly. One row per line, with
-- its text a second copy of the file, made the index six times the source.
--
-- A file's text moves to a table of its own: in the file's row it came before the
-- columns added here, and SQLite reads a row's columns in order, through the text's
-- overflow pages, so every check of a file's generations read the whole file.
ALTER TABLE project_symbols ADD COLUMN text TEXT NOT NULL DEFAULT '';
UPDATE project_symbols SET text = COALESCE((SELECT l.text FROM project_lines l
    WHERE l.file_id = project_symbols.file_id AND l.line = project_symbols.line), '');
DROP TRIGGER project_lines_indexed;
DROP TRIGGER project_lines_unindexed;
DROP TABLE project_lines_fts;
DROP TABLE project_lines;

CREATE TABLE project_contents (
    file_id INTEGER PRIMARY KEY REFERENCES project_files (id) ON DELETE CASCADE,
    content TEXT NOT NULL
);
INSERT INTO project_contents (file_id, content) SELECT id, content FROM project_files;
ALTER TABLE project_files DROP COLUMN content;

CREATE VIRTUAL TABLE project_contents_fts USING fts5(
    content, content = 'project_contents', content_rowid = 'file_id', tokenize = 'trigram',
    detail = 'none'
);
INSERT INTO project_contents_fts (project_contents_fts) VALUES ('rebuild');
CREATE TRIGGER project_contents_indexed AFTER INSERT ON project_contents BEGIN
    INSERT INTO project_contents_fts (rowid, content) VALUES (new.file_id, new.content);
END;
CREATE TRIGGER project_contents_unindexed AFTER DELETE ON project_contents BEGIN
    INSERT INTO project_contents_fts (project_contents_fts, rowid, content)
    VALUES ('delete', old.file_id, old.content);
END;

-- Symbols follow their file's rows: looked up by name within the project and filtered
-- by the file's generations. `text` is the definition's line, for search snippets.
DROP INDEX project_symbols_name;
CREATE INDEX project_symbols_name ON project_symbols (project_id, name_lower);
