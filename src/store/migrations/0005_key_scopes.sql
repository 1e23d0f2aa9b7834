-- 0005: scopes on client keys (what a key may do). New keys default to
-- `inference`; the first-start key is the operator's and becomes `admin`.
-- Keys created before scopes existed get `inference`: grant more with
-- `omniroute keys scope ID --scope ...`.
ALTER TABLE client_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT 'inference';
UPDATE client_keys SET scopes = 'admin' WHERE label = 'first-start' AND source = 'generated';
