-- 0002: routing core: budgets, persisted breaker/cooldown state, usage tier and combo.
ALTER TABLE usage_events ADD COLUMN tier TEXT;
ALTER TABLE usage_events ADD COLUMN combo TEXT;
CREATE INDEX usage_events_key ON usage_events (key_id, ts_ms);

CREATE TABLE budgets (
    scope        TEXT NOT NULL,   -- key | account | tier | combo | global
    scope_id     TEXT NOT NULL,
    period       TEXT NOT NULL,   -- day | month
    limit_usd    REAL,
    limit_tokens INTEGER,
    updated_ms   INTEGER NOT NULL,
    PRIMARY KEY (scope, scope_id, period)
);
CREATE TRIGGER budgets_gen_i AFTER INSERT ON budgets BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_generation'; END;
CREATE TRIGGER budgets_gen_u AFTER UPDATE ON budgets BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_generation'; END;
CREATE TRIGGER budgets_gen_d AFTER DELETE ON budgets BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_generation'; END;

-- Breakers and cooldowns, so they survive a restart.
CREATE TABLE target_health (
    key               TEXT NOT NULL,
    kind              TEXT NOT NULL,   -- target | account
    breaker           TEXT NOT NULL,
    open_until_ms     INTEGER,
    cool_off_ms       INTEGER NOT NULL,
    cooldown_until_ms INTEGER,
    reason            TEXT,
    updated_ms        INTEGER NOT NULL,
    PRIMARY KEY (key, kind)
);
