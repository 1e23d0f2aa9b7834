//! Rows of the routing core: combos, budgets, persisted target health.

use super::{now_ms, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

#[derive(Debug, Clone, PartialEq)]
pub struct ComboRow {
    pub name: String,
    /// The combo as JSON.
    pub definition: String,
    pub version: i64,
    pub updated_ms: i64,
}

pub fn list_combos(conn: &Connection) -> Result<Vec<ComboRow>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT name, definition, version, updated_ms FROM combos ORDER BY name")?;
    let rows = stmt.query_map([], |r| {
        Ok(ComboRow {
            name: r.get(0)?,
            definition: r.get(1)?,
            version: r.get(2)?,
            updated_ms: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn get_combo(conn: &Connection, name: &str) -> Result<Option<ComboRow>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT name, definition, version, updated_ms FROM combos WHERE name = ?1",
            [name],
            |r| {
                Ok(ComboRow {
                    name: r.get(0)?,
                    definition: r.get(1)?,
                    version: r.get(2)?,
                    updated_ms: r.get(3)?,
                })
            },
        )
        .optional()?)
}

/// Insert or replace; returns the new version.
pub fn put_combo(tx: &Transaction<'_>, name: &str, definition: &str) -> Result<i64, StoreError> {
    let version = get_combo(tx, name)?.map(|c| c.version + 1).unwrap_or(1);
    tx.execute(
        "INSERT INTO combos (name, definition, version, updated_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(name) DO UPDATE SET definition = excluded.definition, version = excluded.version, updated_ms = excluded.updated_ms",
        params![name, definition, version, now_ms()],
    )?;
    Ok(version)
}

pub fn delete_combo(tx: &Transaction<'_>, name: &str) -> Result<Option<ComboRow>, StoreError> {
    let before = get_combo(tx, name)?;
    tx.execute("DELETE FROM combos WHERE name = ?1", [name])?;
    Ok(before)
}

#[derive(Debug, Clone, PartialEq)]
pub struct BudgetRow {
    pub scope: String,
    pub scope_id: String,
    pub period: String,
    pub limit_usd: Option<f64>,
    pub limit_tokens: Option<i64>,
}

pub fn list_budgets(conn: &Connection) -> Result<Vec<BudgetRow>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT scope, scope_id, period, limit_usd, limit_tokens FROM budgets ORDER BY scope, scope_id, period")?;
    let rows = stmt.query_map([], |r| {
        Ok(BudgetRow {
            scope: r.get(0)?,
            scope_id: r.get(1)?,
            period: r.get(2)?,
            limit_usd: r.get(3)?,
            limit_tokens: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Set (or with no limits, delete) a budget; returns the previous row.
pub fn put_budget(tx: &Transaction<'_>, row: &BudgetRow) -> Result<Option<BudgetRow>, StoreError> {
    let before = list_budgets(tx)?
        .into_iter()
        .find(|b| b.scope == row.scope && b.scope_id == row.scope_id && b.period == row.period);
    if row.limit_usd.is_none() && row.limit_tokens.is_none() {
        tx.execute(
            "DELETE FROM budgets WHERE scope = ?1 AND scope_id = ?2 AND period = ?3",
            params![row.scope, row.scope_id, row.period],
        )?;
    } else {
        tx.execute(
            "INSERT INTO budgets (scope, scope_id, period, limit_usd, limit_tokens, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(scope, scope_id, period) DO UPDATE SET limit_usd = excluded.limit_usd,
                limit_tokens = excluded.limit_tokens, updated_ms = excluded.updated_ms",
            params![row.scope, row.scope_id, row.period, row.limit_usd, row.limit_tokens, now_ms()],
        )?;
    }
    Ok(before)
}

/// USD and tokens spent since `since_ms` by one budget subject.
pub fn spend_since(
    conn: &Connection,
    scope: &str,
    scope_id: &str,
    since_ms: i64,
) -> Result<(f64, u64), StoreError> {
    let filter = match scope {
        "key" => "key_id = ?2",
        "account" => "account_id = ?2",
        "tier" => "tier = ?2",
        "combo" => "combo = ?2",
        _ => "?2 IS NOT NULL",
    };
    let sql = format!(
        "SELECT COALESCE(SUM(cost_usd), 0), COALESCE(SUM(input_tokens + output_tokens), 0)
         FROM usage_events WHERE ts_ms >= ?1 AND {filter}"
    );
    Ok(conn.query_row(&sql, params![since_ms, scope_id], |r| {
        Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
    })?)
}

pub fn list_health(
    conn: &Connection,
) -> Result<Vec<crate::routing::health::HealthRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT key, kind, breaker, open_until_ms, cool_off_ms, cooldown_until_ms, reason FROM target_health",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(crate::routing::health::HealthRow {
            key: r.get(0)?,
            kind: r.get(1)?,
            breaker: r.get(2)?,
            open_until_ms: r.get(3)?,
            cool_off_ms: r.get(4)?,
            cooldown_until_ms: r.get(5)?,
            reason: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn put_health(
    tx: &Transaction<'_>,
    rows: &[crate::routing::health::HealthRow],
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO target_health (key, kind, breaker, open_until_ms, cool_off_ms, cooldown_until_ms, reason, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(key, kind) DO UPDATE SET breaker = excluded.breaker, open_until_ms = excluded.open_until_ms,
            cool_off_ms = excluded.cool_off_ms, cooldown_until_ms = excluded.cooldown_until_ms,
            reason = excluded.reason, updated_ms = excluded.updated_ms",
    )?;
    for r in rows {
        stmt.execute(params![
            r.key,
            r.kind,
            r.breaker,
            r.open_until_ms,
            r.cool_off_ms,
            r.cooldown_until_ms,
            r.reason,
            now_ms()
        ])?;
    }
    Ok(())
}
