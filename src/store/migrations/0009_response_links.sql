-- 0009: a stored response keeps only its own items (the input its request
-- added and its output) and a link to the response it continues; the
-- conversation is rebuilt by following the links, so n turns take O(n)
-- space instead of O(n^2). Rows written before hold the whole conversation:
-- a data step (store::responses::link_stored_conversations) links each to
-- the earlier row whose items it starts with and keeps only the rest.
ALTER TABLE responses ADD COLUMN previous_id TEXT;                -- the response this one continues (NULL: a first turn)
ALTER TABLE responses ADD COLUMN root_id TEXT NOT NULL DEFAULT '';  -- the first response of its conversation
UPDATE responses SET root_id = id;
CREATE INDEX responses_root ON responses (root_id, created_ms);
CREATE INDEX responses_created ON responses (created_ms);

-- Retention ([store.retention]) deletes by age.
CREATE INDEX audit_log_ts ON audit_log (ts_ms);
CREATE INDEX a2a_tasks_updated ON a2a_tasks (updated_ms);
