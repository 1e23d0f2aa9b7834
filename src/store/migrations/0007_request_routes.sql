-- 0007: each request's route explanation (attempts and why they failed, skipped
-- targets, strategy, translation notes), as JSON, for the dashboard's Requests page.
ALTER TABLE usage_events ADD COLUMN route TEXT;
CREATE INDEX usage_events_request ON usage_events (request_id);
