-- 0010: the answer cache, its figures, and per-key cache policies.
-- (0006 and 0007 are taken by other branches.)

-- One stored answer, exactly as its client got it (a whole body, or the SSE
-- bytes of a stream). `hash` is SHA-256 of the namespace and the request's
-- canonical form; no client key, request text or upstream secret is kept.
CREATE TABLE cache_entries (
    hash           TEXT PRIMARY KEY,
    namespace      TEXT NOT NULL,     -- a client key id, or a namespace an admin shares
    label          TEXT NOT NULL,     -- the model or combo the request named
    format         TEXT NOT NULL,     -- the client's wire format
    stream         INTEGER NOT NULL,
    status         INTEGER NOT NULL,
    body           BLOB NOT NULL,
    route          TEXT NOT NULL,     -- RouteInfo of the answer, JSON
    input_tokens   INTEGER NOT NULL DEFAULT 0,
    output_tokens  INTEGER NOT NULL DEFAULT 0,
    cached_tokens  INTEGER NOT NULL DEFAULT 0,
    cost_usd       REAL,
    created_ms     INTEGER NOT NULL,
    expires_ms     INTEGER NOT NULL,
    -- semantic cache: the context digest (everything but the last user
    -- turn), the embedding model and the last turn's vector (f32 LE)
    context        TEXT,
    embed_model    TEXT,
    embedding      BLOB
);
CREATE INDEX cache_entries_expires ON cache_entries (expires_ms);
CREATE INDEX cache_entries_label ON cache_entries (label);

-- Figures per day, client key and model/combo; written in batches.
CREATE TABLE cache_stats (
    day             TEXT NOT NULL,
    key_id          TEXT NOT NULL,    -- '' when no key
    label           TEXT NOT NULL,
    hits            INTEGER NOT NULL DEFAULT 0,
    semantic_hits   INTEGER NOT NULL DEFAULT 0,
    coalesced       INTEGER NOT NULL DEFAULT 0,
    misses          INTEGER NOT NULL DEFAULT 0,
    bypasses        INTEGER NOT NULL DEFAULT 0,
    replays         INTEGER NOT NULL DEFAULT 0,
    bytes_served    INTEGER NOT NULL DEFAULT 0,
    bytes_stored    INTEGER NOT NULL DEFAULT 0,
    tokens_saved    INTEGER NOT NULL DEFAULT 0,
    cost_saved_usd  REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (day, key_id, label)
);

-- What the cache does for one client key: its mode and, when an admin
-- shares one, the namespace its entries live in.
CREATE TABLE cache_key_policies (
    key_id      TEXT PRIMARY KEY,
    mode        TEXT,                 -- auto | always | off; NULL: as configured
    namespace   TEXT,                 -- NULL: the key's own
    updated_ms  INTEGER NOT NULL
);
CREATE TRIGGER cache_key_policies_gen_i AFTER INSERT ON cache_key_policies BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_generation'; END;
CREATE TRIGGER cache_key_policies_gen_u AFTER UPDATE ON cache_key_policies BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_generation'; END;
CREATE TRIGGER cache_key_policies_gen_d AFTER DELETE ON cache_key_policies BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_generation'; END;
