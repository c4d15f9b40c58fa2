-- Incremental re-index. A file row is visible at generation G when
-- `generation <= G < until_gen`: a re-sync writes rows only for the files whose content
-- changed (by `hash`), pending (`until_gen = generation`, visible to no one), then one
-- transaction flips the project's live generation, ends the replaced and deleted rows
-- (`until_gen` = the new generation) and opens the new ones. Rows of unchanged files
-- stay, shared by both generations. Rows written before this have no hash, so the next
-- re-sync of such a project writes every file again.
ALTER TABLE project_files ADD COLUMN until_gen INTEGER NOT NULL DEFAULT 9223372036854775807;
ALTER TABLE project_files ADD COLUMN hash TEXT NOT NULL DEFAULT '';
CREATE INDEX project_files_path ON project_files (project_id, path);

-- Symbols follow their file's rows, so they are looked up by name within the project and
-- filtered by the file's generations.
DROP INDEX project_symbols_name;
CREATE INDEX project_symbols_name ON project_symbols (project_id, name_lower);
