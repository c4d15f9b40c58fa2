-- A count per user and list, raised in the same transaction as every write to one of the
-- list's rows. The triggers raise it, so every writer counts: the API, background jobs,
-- WhatsApp, an operator's SQL. An instance keeps a list page with the count it read
-- before the page and serves it again only while the count is the same (src/db/pages.rs).
-- Users are never deleted by the API and their ids are never reused, so no foreign key.
--
-- The revision is the sum of a list's rows here: each transaction counts on one of 16
-- (by its id), so concurrent writes of one user lock different rows instead of taking
-- turns at one (one row measured PostgreSQL's `POST /projects` at a third of its rate).
-- The sum still grows by every commit and by nothing else. SQLite, with one writer at a
-- time, counts on shard 0.
CREATE TABLE list_revisions (
    user_id  BIGINT   NOT NULL,
    list     TEXT     NOT NULL,
    shard    SMALLINT NOT NULL,
    revision BIGINT   NOT NULL,
    PRIMARY KEY (user_id, list, shard)
);

CREATE FUNCTION revise_list(owner BIGINT, list TEXT) RETURNS VOID LANGUAGE sql AS $$
    INSERT INTO list_revisions AS r (user_id, list, shard, revision)
    VALUES (owner, list, pg_current_xact_id()::text::bigint % 16, 1)
    ON CONFLICT (user_id, list, shard) DO UPDATE SET revision = r.revision + 1
$$;

CREATE FUNCTION revise_list_of_row() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'DELETE' THEN
        PERFORM revise_list(NEW.user_id, TG_ARGV[0]);
    END IF;
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.user_id IS DISTINCT FROM NEW.user_id) THEN
        PERFORM revise_list(OLD.user_id, TG_ARGV[0]);
    END IF;
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
