-- 0003: A2A tasks. The whole task (status, history, artifacts) is one JSON
-- document; the columns beside it are what lists filter and sort on.
CREATE TABLE a2a_tasks (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,    -- client key id that created it ('' when keys are not required)
    context_id  TEXT NOT NULL,
    skill       TEXT NOT NULL,
    state       TEXT NOT NULL,    -- submitted | working | input-required | completed | canceled | failed | rejected | auth-required
    body        TEXT NOT NULL,    -- JSON
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);
CREATE INDEX a2a_tasks_owner_updated ON a2a_tasks (owner, updated_ms DESC, id DESC);
CREATE INDEX a2a_tasks_owner_context ON a2a_tasks (owner, context_id);
