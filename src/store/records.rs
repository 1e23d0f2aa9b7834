//! Row types and the SQL that reads and writes them. Plain functions over a
//! connection or transaction; callers choose the thread.

use super::{now_ms, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

// ---------- usage ----------

/// One request's outcome, written off the hot path.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UsageEvent {
    pub ts_ms: i64,
    pub request_id: String,
    pub key_id: Option<String>,
    pub endpoint: String,
    pub provider_id: Option<String>,
    pub account_id: Option<String>,
    pub model: Option<String>,
    pub requested_model: String,
    pub stream: bool,
    pub status: u16,
    pub outcome: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_usd: Option<f64>,
    pub latency_ms: f64,
    pub upstream_ms: Option<f64>,
    pub overhead_ms: Option<f64>,
    pub error: Option<String>,
    pub tier: Option<String>,
    pub combo: Option<String>,
    /// The route explanation as JSON (`proxy::usage::RouteTrace`).
    pub route: Option<String>,
}

pub fn insert_usage(tx: &Transaction<'_>, rows: &[UsageEvent]) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO usage_events (ts_ms, request_id, key_id, endpoint, provider_id, account_id, model,
            requested_model, stream, status, outcome, input_tokens, output_tokens, cached_tokens,
            reasoning_tokens, cost_usd, latency_ms, upstream_ms, overhead_ms, error, tier, combo, route)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)",
    )?;
    for e in rows {
        stmt.execute(params![
            e.ts_ms,
            e.request_id,
            e.key_id,
            e.endpoint,
            e.provider_id,
            e.account_id,
            e.model,
            e.requested_model,
            e.stream,
            e.status,
            e.outcome,
            e.input_tokens as i64,
            e.output_tokens as i64,
            e.cached_tokens as i64,
            e.reasoning_tokens as i64,
            e.cost_usd,
            e.latency_ms,
            e.upstream_ms,
            e.overhead_ms,
            e.error,
            e.tier,
            e.combo,
            e.route,
        ])?;
    }
    Ok(())
}

/// How usage rows are grouped in a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum UsageGroup {
    #[default]
    Provider,
    Model,
    Key,
    Day,
}

/// One line of a usage summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UsageLine {
    pub group: String,
    pub requests: u64,
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
    pub cost_usd: f64,
    pub avg_latency_ms: f64,
}

/// Usage since `since_ms` grouped by `group`, ordered by group.
pub fn usage_summary(
    conn: &Connection,
    since_ms: i64,
    group: UsageGroup,
    key: Option<&str>,
) -> Result<Vec<UsageLine>, StoreError> {
    let mut lines = super::usage_between(conn, since_ms, i64::MAX, group, key)?;
    lines.sort_by(|a, b| a.group.cmp(&b.group));
    Ok(lines)
}

pub fn count_usage(conn: &Connection) -> Result<u64, StoreError> {
    Ok(
        conn.query_row("SELECT COUNT(*) FROM usage_events", [], |r| {
            r.get::<_, i64>(0)
        })? as u64,
    )
}

// ---------- meta ----------

pub fn config_generation(conn: &Connection) -> Result<i64, StoreError> {
    let v: String = conn.query_row(
        "SELECT value FROM meta WHERE key = 'config_generation'",
        [],
        |r| r.get(0),
    )?;
    Ok(v.parse().unwrap_or(0))
}

pub fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

pub fn meta_set(tx: &Transaction<'_>, key: &str, value: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

pub fn schema_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

// ---------- audit ----------

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub ts_ms: i64,
    /// Which surface made the change: config, cli, mcp, a2a, api.
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

pub fn audit(
    tx: &Transaction<'_>,
    actor: &str,
    action: &str,
    entity: &str,
    entity_id: &str,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO audit_log (ts_ms, actor, action, entity, entity_id, before, after) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            now_ms(),
            actor,
            action,
            entity,
            entity_id,
            before.map(|v| v.to_string()),
            after.map(|v| v.to_string())
        ],
    )?;
    Ok(())
}

pub fn audit_list(
    conn: &Connection,
    entity: Option<&str>,
    limit: u32,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, ts_ms, actor, action, entity, entity_id, before, after FROM audit_log
         WHERE (?1 IS NULL OR entity = ?1) ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![entity, limit], |r| {
        let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        Ok(AuditEntry {
            id: r.get(0)?,
            ts_ms: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            entity: r.get(4)?,
            entity_id: r.get(5)?,
            before: json(r.get(6)?),
            after: json(r.get(7)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// ---------- client keys ----------

/// A client key as listed (never the key itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClientKeyRow {
    pub id: String,
    /// The first characters of the key, to recognise it.
    pub hint: String,
    pub label: String,
    pub source: String,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
    /// What the key may do.
    pub scopes: crate::access::Scopes,
    #[serde(skip)]
    #[schemars(skip)]
    pub hash: String,
}

const KEY_COLUMNS: &str = "id, hint, label, source, created_ms, revoked_ms, hash, scopes";

fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ClientKeyRow> {
    let scopes: String = r.get(7)?;
    Ok(ClientKeyRow {
        id: r.get(0)?,
        hint: r.get(1)?,
        label: r.get(2)?,
        source: r.get(3)?,
        created_ms: r.get(4)?,
        revoked_ms: r.get(5)?,
        hash: r.get(6)?,
        // A stored list that does not parse grants nothing.
        scopes: crate::access::Scopes::parse(&scopes).unwrap_or_default(),
    })
}

pub fn list_keys(conn: &Connection) -> Result<Vec<ClientKeyRow>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {KEY_COLUMNS} FROM client_keys ORDER BY created_ms, id"
    ))?;
    let rows = stmt.query_map([], key_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Insert a key by hash; returns false when that hash is already stored.
pub fn insert_key(tx: &Transaction<'_>, row: &ClientKeyRow) -> Result<bool, StoreError> {
    let n = tx.execute(
        "INSERT INTO client_keys (id, hash, hint, label, source, created_ms, scopes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(hash) DO NOTHING",
        params![row.id, row.hash, row.hint, row.label, row.source, row.created_ms, row.scopes.to_text()],
    )?;
    Ok(n == 1)
}

/// The stored key with this hash, if any.
pub fn key_by_hash(conn: &Connection, hash: &str) -> Result<Option<ClientKeyRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {KEY_COLUMNS} FROM client_keys WHERE hash = ?1"),
            [hash],
            key_row,
        )
        .optional()?)
}

/// A key by id, or by hint when no id matches.
pub fn find_key(conn: &Connection, id_or_hint: &str) -> Result<ClientKeyRow, StoreError> {
    conn.query_row(
        &format!(
            "SELECT {KEY_COLUMNS} FROM client_keys
             WHERE id = ?1 OR hint = ?1 ORDER BY id = ?1 DESC LIMIT 1"
        ),
        [id_or_hint],
        key_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("client key {id_or_hint}")))
}

/// Replace a key's scopes.
pub fn set_key_scopes(
    tx: &Transaction<'_>,
    id: &str,
    scopes: crate::access::Scopes,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE client_keys SET scopes = ?2 WHERE id = ?1",
        params![id, scopes.to_text()],
    )?;
    Ok(())
}

pub fn revoke_key(tx: &Transaction<'_>, id_or_hint: &str) -> Result<ClientKeyRow, StoreError> {
    let row = find_key(tx, id_or_hint)?;
    tx.execute(
        "UPDATE client_keys SET revoked_ms = COALESCE(revoked_ms, ?2) WHERE id = ?1",
        params![row.id, now_ms()],
    )?;
    Ok(row)
}

// ---------- providers ----------

/// A provider added or adjusted by config or CLI (catalog entries live in the binary).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderRow {
    pub id: String,
    pub name: Option<String>,
    pub format: Option<String>,
    pub base_url: Option<String>,
    pub auth: Option<String>,
    pub tier: Option<String>,
    pub models: Option<Vec<String>>,
    pub source: String,
    /// `client-credential`, or None for the default (accounts only).
    #[serde(default)]
    pub mode: Option<String>,
}

pub fn list_providers(conn: &Connection) -> Result<Vec<ProviderRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, name, format, base_url, auth, tier, models, source, mode FROM providers ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        let models: Option<String> = r.get(6)?;
        Ok(ProviderRow {
            id: r.get(0)?,
            name: r.get(1)?,
            format: r.get(2)?,
            base_url: r.get(3)?,
            auth: r.get(4)?,
            tier: r.get(5)?,
            models: models.and_then(|m| serde_json::from_str(&m).ok()),
            source: r.get(7)?,
            mode: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Upsert; returns the previous row when it changed something (None + false when identical).
pub fn upsert_provider(
    tx: &Transaction<'_>,
    row: &ProviderRow,
) -> Result<(Option<ProviderRow>, bool), StoreError> {
    let before = list_provider(tx, &row.id)?;
    if before.as_ref() == Some(row) {
        return Ok((before, false));
    }
    let now = now_ms();
    let models = row
        .models
        .as_ref()
        .map(|m| serde_json::Value::from(m.clone()).to_string());
    tx.execute(
        "INSERT INTO providers (id, name, format, base_url, auth, tier, models, source, created_ms, updated_ms, mode)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, format = excluded.format, base_url = excluded.base_url,
            auth = excluded.auth, tier = excluded.tier, models = excluded.models, source = excluded.source,
            updated_ms = excluded.updated_ms, mode = excluded.mode",
        params![row.id, row.name, row.format, row.base_url, row.auth, row.tier, models, row.source, now, row.mode],
    )?;
    Ok((before, true))
}

fn list_provider(conn: &Connection, id: &str) -> Result<Option<ProviderRow>, StoreError> {
    Ok(list_providers(conn)?.into_iter().find(|p| p.id == id))
}

// ---------- accounts ----------

/// A stored account. The secret stays encrypted here; the registry decrypts it.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRow {
    pub id: String,
    pub provider_id: String,
    pub label: String,
    pub secret_enc: Option<Vec<u8>>,
    pub secret_env: Option<String>,
    pub tier: Option<String>,
    pub enabled: bool,
    pub priority: i64,
    pub source: String,
    pub created_ms: i64,
}

pub fn list_accounts(conn: &Connection) -> Result<Vec<AccountRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, provider_id, label, secret_enc, secret_env, tier, enabled, priority, source, created_ms
         FROM accounts ORDER BY provider_id, priority, created_ms, id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(AccountRow {
            id: r.get(0)?,
            provider_id: r.get(1)?,
            label: r.get(2)?,
            secret_enc: r.get(3)?,
            secret_env: r.get(4)?,
            tier: r.get(5)?,
            enabled: r.get(6)?,
            priority: r.get(7)?,
            source: r.get(8)?,
            created_ms: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn find_account(
    conn: &Connection,
    provider_id: &str,
    label: &str,
) -> Result<Option<AccountRow>, StoreError> {
    Ok(list_accounts(conn)?
        .into_iter()
        .find(|a| a.provider_id == provider_id && a.label == label))
}

pub fn insert_account(tx: &Transaction<'_>, row: &AccountRow) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO accounts (id, provider_id, label, secret_enc, secret_env, tier, enabled, priority, source, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
        params![
            row.id,
            row.provider_id,
            row.label,
            row.secret_enc,
            row.secret_env,
            row.tier,
            row.enabled,
            row.priority,
            row.source,
            row.created_ms
        ],
    )?;
    Ok(())
}

pub fn update_account(tx: &Transaction<'_>, row: &AccountRow) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE accounts SET secret_enc = ?2, secret_env = ?3, tier = ?4, enabled = ?5, priority = ?6, source = ?7, updated_ms = ?8
         WHERE id = ?1",
        params![
            row.id,
            row.secret_enc,
            row.secret_env,
            row.tier,
            row.enabled,
            row.priority,
            row.source,
            now_ms()
        ],
    )?;
    Ok(())
}

pub fn delete_account(tx: &Transaction<'_>, id: &str) -> Result<AccountRow, StoreError> {
    let row = list_accounts(tx)?
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| StoreError::NotFound(format!("account {id}")))?;
    tx.execute("DELETE FROM accounts WHERE id = ?1", [id])?;
    Ok(row)
}

pub fn new_id(prefix: &str) -> Result<String, StoreError> {
    let bytes = crate::secret::random_bytes::<6>()?;
    Ok(format!("{prefix}_{}", hex::encode(bytes)))
}
