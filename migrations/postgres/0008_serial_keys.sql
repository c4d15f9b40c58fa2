-- Serial keys (SPEC §6.1): jobs that share a key run one at a time, on any instance, in
-- the order they were queued. Of a key's unfinished jobs exactly one is free to be
-- claimed; the others are `held` until the one before them ends, so a claim never looks
-- at them.
ALTER TABLE jobs ADD COLUMN serial_key TEXT;
ALTER TABLE jobs ADD COLUMN held BOOLEAN NOT NULL DEFAULT FALSE;

-- A key's waiting jobs in queue order (the next one is freed when its predecessor ends),
-- and whether one of its jobs runs: both looked up when a job of the key is queued.
CREATE INDEX jobs_serial_queued ON jobs (serial_key, id)
    WHERE status = 'queued' AND serial_key IS NOT NULL;
CREATE INDEX jobs_serial_running ON jobs (serial_key)
    WHERE status = 'running' AND serial_key IS NOT NULL;

-- A claim reads only jobs free to run, or running jobs whose lease ran out.
DROP INDEX jobs_claim;
CREATE INDEX jobs_ready ON jobs (kind, run_at, id) WHERE status = 'queued' AND NOT held;
CREATE INDEX jobs_lease ON jobs (kind, locked_until) WHERE status = 'running';
-- The gauges of /metrics (never the finished jobs, which retention finds by jobs_finished).
CREATE INDEX jobs_state ON jobs (status, kind) WHERE status IN ('queued', 'running', 'failed');
