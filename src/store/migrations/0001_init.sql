-- 0001: the foundation schema.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('config_generation', '0');

-- Providers added or adjusted by config/CLI; catalog entries live in the binary.
CREATE TABLE providers (
    id          TEXT PRIMARY KEY,
    name        TEXT,
    format      TEXT,
    base_url    TEXT,
    auth        TEXT,
    tier        TEXT,
    models      TEXT,             -- JSON array of model names, NULL = catalog's
    source      TEXT NOT NULL,    -- config | cli | ops
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);

-- One credential for a provider; several per provider are allowed.
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL,
    label       TEXT NOT NULL,
    secret_enc  BLOB,             -- ChaCha20-Poly1305(nonce || ciphertext), NULL when env or none
    secret_env  TEXT,             -- env variable name read at startup, never its value
    tier        TEXT,             -- NULL = provider's tier
    enabled     INTEGER NOT NULL DEFAULT 1,
    priority    INTEGER NOT NULL DEFAULT 0,
    source      TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    UNIQUE (provider_id, label)
);

-- Client keys, stored as SHA-256 of the key.
CREATE TABLE client_keys (
    id          TEXT PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    hint        TEXT NOT NULL,    -- first characters, for lists
    label       TEXT NOT NULL,
    source      TEXT NOT NULL,    -- generated | config | cli
    created_ms  INTEGER NOT NULL,
    revoked_ms  INTEGER
);

-- Combos (named routing plans), used by the routing core.
CREATE TABLE combos (
    name        TEXT PRIMARY KEY,
    definition  TEXT NOT NULL,    -- JSON
    version     INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);

CREATE TABLE usage_events (
    id               INTEGER PRIMARY KEY,
    ts_ms            INTEGER NOT NULL,
    request_id       TEXT NOT NULL,
    key_id           TEXT,
    endpoint         TEXT NOT NULL,
    provider_id      TEXT,
    account_id       TEXT,
    model            TEXT,
    requested_model  TEXT NOT NULL,
    stream           INTEGER NOT NULL,
    status           INTEGER NOT NULL,
    outcome          TEXT NOT NULL,  -- ok | upstream_error | client_gone | error
    input_tokens     INTEGER NOT NULL DEFAULT 0,
    output_tokens    INTEGER NOT NULL DEFAULT 0,
    cached_tokens    INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd         REAL,
    latency_ms       REAL NOT NULL,
    upstream_ms      REAL,
    overhead_ms      REAL,
    error            TEXT
);
CREATE INDEX usage_events_ts ON usage_events (ts_ms);

-- Every config change: who (surface), when, before/after as JSON.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    ts_ms      INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    entity     TEXT NOT NULL,
    entity_id  TEXT NOT NULL,
    before     TEXT,
    after      TEXT
);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id, id);

-- Any config change bumps the generation, so every process sharing this
-- database (gateway, CLI, stdio MCP) notices within one poll.
CREATE TRIGGER providers_gen_i AFTER INSERT ON providers BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_generation'; END;
CREATE TRIGGER providers_gen_u AFTER UPDATE ON providers BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_generation'; END;
CREATE TRIGGER providers_gen_d AFTER DELETE ON providers BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_generation'; END;
CREATE TRIGGER accounts_gen_i AFTER INSERT ON accounts BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_generation'; END;
CREATE TRIGGER accounts_gen_u AFTER UPDATE ON accounts BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_generation'; END;
CREATE TRIGGER accounts_gen_d AFTER DELETE ON accounts BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_generation'; END;
CREATE TRIGGER client_keys_gen_i AFTER INSERT ON client_keys BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_generation'; END;
CREATE TRIGGER client_keys_gen_u AFTER UPDATE ON client_keys BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_generation'; END;
CREATE TRIGGER client_keys_gen_d AFTER DELETE ON client_keys BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_generation'; END;
CREATE TRIGGER combos_gen_i AFTER INSERT ON combos BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_generation'; END;
CREATE TRIGGER combos_gen_u AFTER UPDATE ON combos BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_generation'; END;
CREATE TRIGGER combos_gen_d AFTER DELETE ON combos BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_generation'; END;
