-- A count per user and list, raised in the same transaction as every write to one of the
-- list's rows. The triggers raise it, so every writer counts: the API, background jobs,
-- WhatsApp, an operator's SQL. An instance keeps a list page with the count it read
-- before the page and serves it again only while the count is the same (src/db/pages.rs).
-- Users are never deleted by the API and their ids are never reused, so no foreign key.
--
-- The revision is the sum of a list's rows here: each transaction counts on one of 16
-- (by its id), so concurrent writes of one user lock different rows instead of taking
-- turns at one (with one row, `POST /projects` of one user at 64 connections ran at half
-- its rate or less: each commit held the row through its flush).
-- The sum still grows by every commit and by nothing else. SQLite, with one writer at a
-- time, counts on shard 0.
CREATE TABLE list_revisions (
    user_id  BIGINT   NOT NULL,
    list     TEXT     NOT NULL,
    shard    SMALLINT NOT NULL,
    revision BIGINT   NOT NULL,
    PRIMARY KEY (user_id, list, shard)
);

-- Raised once per transaction and list: a statement that touches many rows (a project's
-- chats unlinked when it is deleted) raises it once, not once per row (which would update
-- one row thousands of times in one transaction, each time slower). In PL/pgSQL, whose
-- statements are planned once per connection (an SQL function called from the trigger
-- was planned at every call, and cost a write twice as much). "Raised already" is the
-- row's `xmin` being this transaction's id (a 32-bit id: a row untouched for four
-- billion transactions could share it once and miss one raise).
CREATE FUNCTION revise_list_of_row() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    owner BIGINT;
BEGIN
    FOREACH owner IN ARRAY CASE TG_OP
        WHEN 'INSERT' THEN ARRAY[NEW.user_id]
        WHEN 'DELETE' THEN ARRAY[OLD.user_id]
        WHEN 'UPDATE' THEN ARRAY[NEW.user_id] || CASE
            WHEN OLD.user_id IS DISTINCT FROM NEW.user_id THEN ARRAY[OLD.user_id] ELSE '{}' END
    END LOOP
        INSERT INTO list_revisions AS r (user_id, list, shard, revision)
        VALUES (owner, TG_ARGV[0], pg_current_xact_id()::text::bigint % 16, 1)
        ON CONFLICT (user_id, list, shard) DO UPDATE SET revision = r.revision + 1
            WHERE r.xmin <> pg_current_xact_id()::xid;
    END LOOP;
    RETURN NULL;
END
$$;

-- Deferred to the commit: the count's row is locked only from there to the end of the
-- commit, so writes of one user wait for each other that long and no longer, and a
-- transaction never holds it while it waits for another lock.
CREATE CONSTRAINT TRIGGER agents_revise AFTER INSERT OR UPDATE OR DELETE ON agents
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION revise_list_of_row('agents');
CREATE CONSTRAINT TRIGGER projects_revise AFTER INSERT OR UPDATE OR DELETE ON projects
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION revise_list_of_row('projects');
CREATE CONSTRAINT TRIGGER chats_revise AFTER INSERT OR UPDATE OR DELETE ON chats
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION revise_list_of_row('chats');
