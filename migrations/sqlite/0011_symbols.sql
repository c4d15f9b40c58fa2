-- A project's definitions (functions, types, constants, modules), read with tree-sitter
-- at index time and written with the files of the same generation, so that they are made
-- live and deleted with them. `name_lower` serves case-insensitive prefix lookups.
CREATE TABLE project_symbols (
    id         INTEGER PRIMARY KEY,
    file_id    INTEGER NOT NULL REFERENCES project_files (id) ON DELETE CASCADE,
    project_id INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    name_lower TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    line       INTEGER NOT NULL,
    end_line   INTEGER NOT NULL,
    container  TEXT
);
CREATE INDEX project_symbols_file ON project_symbols (file_id);
CREATE INDEX project_symbols_name ON project_symbols (project_id, generation, name_lower);
