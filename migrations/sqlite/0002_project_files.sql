-- Files of a project (synced from its repository), searched to answer codebase questions.
CREATE TABLE project_files (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    path       TEXT    NOT NULL,
    content    TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    UNIQUE (project_id, path)
);
