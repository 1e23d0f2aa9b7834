-- 0006: subscription accounts (OAuth credentials) and the quota windows
-- their providers report. An account row (0001) is the identity and routing
-- entry; its OAuth tokens live here, encrypted, and change on every refresh
-- without touching the config generation (refreshes are not config changes).
CREATE TABLE oauth_credentials (
    account_id        TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    kind              TEXT NOT NULL,     -- claude | codex | gemini | qwen
    access_enc        BLOB NOT NULL,     -- ChaCha20-Poly1305(nonce || ciphertext)
    refresh_enc       BLOB,
    -- The refresh token sent in a refresh whose answer is not stored yet: set
    -- (and committed) before the call, cleared with the new tokens. Found set
    -- at startup, it says a refresh was cut short and which token it spent.
    inflight_enc      BLOB,
    expires_ms        INTEGER,
    plan              TEXT,
    email             TEXT,
    -- chatgpt account id (codex), Code Assist project (gemini), resource URL (qwen)
    account_ref       TEXT,
    allow_overage     INTEGER NOT NULL DEFAULT 0,
    status            TEXT NOT NULL DEFAULT 'ok',  -- ok | expired | revoked
    status_reason     TEXT,
    refreshed_ms      INTEGER,
    refresh_count     INTEGER NOT NULL DEFAULT 0,
    updated_ms        INTEGER NOT NULL
);
-- A credential's status decides whether its account is usable: a change of
-- status is a routing change every process must see.
CREATE TRIGGER oauth_status_gen_u AFTER UPDATE OF status ON oauth_credentials
    WHEN OLD.status IS NOT NEW.status
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_generation'; END;
CREATE TRIGGER oauth_gen_i AFTER INSERT ON oauth_credentials BEGIN UPDATE meta SET value = value + 1 WHERE key = 'config_generation'; END;

-- Plan windows as the provider last reported them (Anthropic 5h/7d, Codex
-- primary/secondary), with the first sample of the current window for the
-- burn-rate forecast.
CREATE TABLE quota_windows (
    account_id      TEXT NOT NULL,
    window          TEXT NOT NULL,
    used_pct        REAL NOT NULL,
    resets_ms       INTEGER,
    window_minutes  INTEGER,
    status          TEXT,
    observed_ms     INTEGER NOT NULL,
    first_pct       REAL NOT NULL,
    first_ms        INTEGER NOT NULL,
    PRIMARY KEY (account_id, window)
);

-- A provider's mode (`client-credential`: the client's own subscription
-- credential first, then the gateway's accounts). NULL = accounts only.
ALTER TABLE providers ADD COLUMN mode TEXT;
