-- A count per user and list, raised in the same transaction as every write to one of the
-- list's rows. The triggers raise it, so every writer counts: the API, background jobs,
-- WhatsApp, an operator's SQL. An instance keeps a list page with the count it read
-- before the page and serves it again only while the count is the same (src/db/pages.rs).
-- Users are never deleted by the API and their ids are never reused, so no foreign key.
-- The revision is the sum of a list's rows: PostgreSQL spreads concurrent writers over 16
-- shards; SQLite, with one writer at a time, counts on shard 0.
CREATE TABLE list_revisions (
    user_id  INTEGER NOT NULL,
    list     TEXT    NOT NULL,
    shard    INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    PRIMARY KEY (user_id, list, shard)
) WITHOUT ROWID;

CREATE TRIGGER agents_revise_insert AFTER INSERT ON agents BEGIN
    INSERT INTO list_revisions (user_id, list, shard, revision) VALUES (NEW.user_id, 'agents', 0, 1)
        ON CONFLICT (user_id, list, shard) DO UPDATE SET revision = revision + 1;
END;
CREATE TRIGGER agents_revise_update AFTER UPDATE ON agents BEGIN
    INSERT INTO list_revisions (user_id, list, shard, revision) VALUES (NEW.user_id, 'agents', 0, 1)
        ON CONFLICT (user_id, list, shard) DO UPDATE SET revision = revision + 1;
    INSERT INTO list_revisions (user_id, list, shard, revision)
        SELECT OLD.user_id, 'agents', 0, 1 WHERE OLD.user_id IS NOT NEW.user_id
        ON CONFLICT (user_id, list, shard) DO UPDATE SET revision = revision + 1;
END;
CREATE TRIGGER agents_revise_delete AFTER DELETE ON agents BEGIN
    INSERT INTO list_revisions (user_id, list, shard, revision) VALUES (OLD.user_id, 'agents', 0, 1)
        ON CONFLICT (user_id, list, shard) DO UPDATE SET revision = revision + 1;
END;

CREATE TRIGGER projects_revise_insert AFTER INSERT ON projects BEGIN
    INSERT INTO list_revisions (user_id, list, shard, revision) VALUES (NEW.user_id, 'projects', 0, 1)
        ON CONFLICT (user_id, list, shard) DO UPDATE SET revision = revision + 1;
END;
CREATE TRIGGER projects_revise_update AFTER UPDATE ON projects BEGIN
    INSERT INTO list_revisions (user_id, list, shard, revision) VALUES (NEW.user_id, 'projects', 0, 1)
        ON CONFLICT (user_id, list, shard) DO UPDATE SET revision = revision + 1;
    INSERT INTO list_revisions (user_id, list, shard, revision)
        SELECT OLD.user_id, 'projects', 0, 1 WHERE OLD.user_id IS NOT NEW.user_id
        ON CONFLICT (user_id, list, shard) DO UPDATE SET revision = revision + 1;
END;
CREATE TRIGGER projects_revise_delete AFTER DELETE ON projects BEGIN
    INSERT INTO list_revisions (user_id, list, shard, revision) VALUES (OLD.user_id, 'projects', 0, 1)
        ON CONFLICT (user_id, list, shard) DO UPDATE SET revision = revision + 1;
END;

CREATE TRIGGER chats_revise_insert AFTER INSERT ON chats BEGIN
    INSERT INTO list_revisions (user_id, list, shard, revision) VALUES (NEW.user_id, 'chats', 0, 1)
        ON CONFLICT (user_id, list, shard) DO UPDATE SET revision = revision + 1;
END;
CREATE TRIGGER chats_revise_update AFTER UPDATE ON chats BEGIN
    INSERT INTO list_revisions (user_id, list, shard, revision) VALUES (NEW.user_id, 'chats', 0, 1)
        ON CONFLICT (user_id, list, shard) DO UPDATE SET revision = revision + 1;
    INSERT INTO list_revisions (user_id, list, shard, revision)
        SELECT OLD.user_id, 'chats', 0, 1 WHERE OLD.user_id IS NOT NEW.user_id
        ON CONFLICT (user_id, list, shard) DO UPDATE SET revision = revision + 1;
END;
CREATE TRIGGER chats_revise_delete AFTER DELETE ON chats BEGIN
    INSERT INTO list_revisions (user_id, list, shard, revision) VALUES (OLD.user_id, 'chats', 0, 1)
        ON CONFLICT (user_id, list, shard) DO UPDATE SET revision = revision + 1;
END;
