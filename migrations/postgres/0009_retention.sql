-- Retention (SPEC §6.1): the periodic `jobs.retention` job deletes old rows in small
-- batches, each batch the oldest rows past a cutoff. These indexes find them without
-- reading the table.

-- Finished jobs, by when they finished.
CREATE INDEX jobs_finished ON jobs (updated_at) WHERE status IN ('done', 'failed');
CREATE INDEX github_deliveries_received ON github_deliveries (received_at);
CREATE INDEX whatsapp_messages_created ON whatsapp_messages (created_at);
CREATE INDEX whatsapp_notices_sent ON whatsapp_notices (last_sent_at);
CREATE INDEX whatsapp_link_codes_expiry ON whatsapp_link_codes (expires_at);
CREATE INDEX github_oauth_states_expiry ON github_oauth_states (expires_at);
