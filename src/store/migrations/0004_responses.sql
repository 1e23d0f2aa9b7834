-- 0004: OpenAI Responses kept by the gateway, so `previous_response_id` and
-- `GET /v1/responses/{id}` work whichever provider served the turn.
CREATE TABLE responses (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,    -- client key id that created it ('' when keys are not required)
    items       TEXT NOT NULL,    -- JSON array: the conversation as Responses input items, this turn's output included
    response    TEXT NOT NULL,    -- JSON: the response object as the client received it
    created_ms  INTEGER NOT NULL
);
CREATE INDEX responses_owner_created ON responses (owner, created_ms);
