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

-- Search narrows to files, not lines (as zoekt does), then the files are read in path
-- order and their lines matched exactly. One row per line, with its text a second copy of
-- the file, made the index six times the source.
--
-- The narrowing is exact, so no file's text is read to decide: `trigrams` holds every
-- distinct trigram of the file's bytes with ASCII letters in lower case (b0 << 16 |
-- b1 << 8 | b2; none across a line break), and a file can match only if it holds all of
-- the query's (`@>`, which a GIN index answers without a recheck). pg_trgm's index is
-- lossy: PostgreSQL rechecked each file it proposed with ILIKE on its decompressed text,
-- about 450 ms over this corpus for a common string.
ALTER TABLE project_symbols ADD COLUMN text TEXT NOT NULL DEFAULT '';
UPDATE project_symbols s SET text = l.text FROM project_lines l
    WHERE l.file_id = s.file_id AND l.line = s.line;
DROP TABLE project_lines;

CREATE TABLE project_contents (
    file_id  BIGINT PRIMARY KEY REFERENCES project_files (id) ON DELETE CASCADE,
    content  TEXT   NOT NULL,
    trigrams INT[]  NOT NULL
);
INSERT INTO project_contents (file_id, content, trigrams)
SELECT f.id, f.content, COALESCE((
    SELECT array_agg(DISTINCT (get_byte(b, i) << 16) | (get_byte(b, i + 1) << 8) | get_byte(b, i + 2))
    FROM (SELECT convert_to(translate(f.content, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
                                      'abcdefghijklmnopqrstuvwxyz'), 'UTF8') AS b
          OFFSET 0) bytes, -- computed once per file, not once per byte
         generate_series(0, length(b) - 3) i
    WHERE get_byte(b, i) <> 10 AND get_byte(b, i + 1) <> 10 AND get_byte(b, i + 2) <> 10
), '{}')
FROM project_files f;
ALTER TABLE project_files DROP COLUMN content;
CREATE INDEX project_contents_trigrams ON project_contents USING gin (trigrams);

-- Symbols follow their file's rows: looked up by name within the project and filtered
-- by the file's generations. `text` is the definition's line, for search snippets.
DROP INDEX project_symbols_name;
CREATE INDEX project_symbols_name ON project_symbols (project_id, name_lower);
