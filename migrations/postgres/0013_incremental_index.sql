-- The index by file, re-indexed incrementally.
--
-- A file row is visible at generation G when `generation <= G < until_gen`: a re-sync
-- writes rows only for the files whose content changed (by `hash`), pending
-- (`until_gen = generation`, visible to no one), then one transaction flips the project's
-- live generation, ends the replaced and deleted rows (`until_gen` = the new generation)
-- and opens the new ones. Rows of unchanged files stay, shared by both generations. Rows
-- written before this have no hash, so the next re-sync writes every file again.
ALTER TABLE project_files ADD COLUMN until_gen BIGINT NOT NULL DEFAULT 9223372036854775807;
ALTER TABLE project_files ADD COLUMN hash TEXT NOT NULL DEFAULT '';
CREATE INDEX project_files_path ON project_files (project_id, path);

-- Search narrows to files, not lines (as zoekt does): a pg_trgm GIN index over whole
-- files, then the files are read in path order and their lines matched exactly. One row
-- per line, with its text a second copy of the file, made the index six times the source.
ALTER TABLE project_symbols ADD COLUMN text TEXT NOT NULL DEFAULT '';
UPDATE project_symbols s SET text = l.text FROM project_lines l
    WHERE l.file_id = s.file_id AND l.line = s.line;
DROP TABLE project_lines;
CREATE INDEX project_files_trgm ON project_files USING gin (content gin_trgm_ops);

-- Symbols follow their file's rows: looked up by name within the project and filtered
-- by the file's generations. `text` is the definition's line, for search snippets.
DROP INDEX project_symbols_name;
CREATE INDEX project_symbols_name ON project_symbols (project_id, name_lower);
