//! Read-only usage figures over a time range: per-provider recent traffic for
//! health, and spend grouped by provider, model, key or day for cost reports.

use super::{StoreError, UsageGroup, UsageLine};
use rusqlite::{params, Connection};

/// Usage lines grouped by `group` for rows with `since_ms <= ts_ms < until_ms`,
/// only those of client key `key` when one is given.
pub fn usage_between(
    conn: &Connection,
    since_ms: i64,
    until_ms: i64,
    group: UsageGroup,
    key: Option<&str>,
) -> Result<Vec<UsageLine>, StoreError> {
    let group_expr = match group {
        UsageGroup::Provider => "COALESCE(provider_id, '(none)')",
        UsageGroup::Model => "COALESCE(provider_id || '/' || model, requested_model)",
        UsageGroup::Key => "COALESCE(key_id, '(no key)')",
        UsageGroup::Day => "date(ts_ms / 1000, 'unixepoch')",
    };
    let sql = format!(
        "SELECT {group_expr} AS g, COUNT(*), SUM(outcome != 'ok'), SUM(input_tokens), SUM(output_tokens),
                SUM(cached_tokens), COALESCE(SUM(cost_usd), 0), AVG(latency_ms)
         FROM usage_events WHERE ts_ms >= ?1 AND ts_ms < ?2 AND (?3 IS NULL OR key_id = ?3) GROUP BY g
         ORDER BY COALESCE(SUM(cost_usd), 0) DESC, g"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params![since_ms, until_ms, key], |r| {
        Ok(UsageLine {
            group: r.get(0)?,
            requests: r.get::<_, i64>(1)? as u64,
            errors: r.get::<_, i64>(2)? as u64,
            input_tokens: r.get::<_, i64>(3)? as u64,
            output_tokens: r.get::<_, i64>(4)? as u64,
            cached_tokens: r.get::<_, i64>(5)? as u64,
            cost_usd: r.get(6)?,
            avg_latency_ms: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One provider's traffic since a point in time.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderTraffic {
    pub provider_id: String,
    pub requests: u64,
    pub errors: u64,
    pub avg_latency_ms: f64,
    pub last_error: Option<String>,
}

/// Requests, errors, mean latency and the latest error per provider since `since_ms`.
pub fn provider_traffic(
    conn: &Connection,
    since_ms: i64,
) -> Result<Vec<ProviderTraffic>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT provider_id, COUNT(*), SUM(outcome != 'ok'), AVG(latency_ms),
                (SELECT e.error FROM usage_events e
                  WHERE e.provider_id = u.provider_id AND e.ts_ms >= ?1 AND e.outcome != 'ok'
                  ORDER BY e.id DESC LIMIT 1)
         FROM usage_events u WHERE ts_ms >= ?1 AND provider_id IS NOT NULL
         GROUP BY provider_id ORDER BY provider_id",
    )?;
    let rows = stmt.query_map([since_ms], |r| {
        Ok(ProviderTraffic {
            provider_id: r.get(0)?,
            requests: r.get::<_, i64>(1)? as u64,
            errors: r.get::<_, i64>(2)? as u64,
            avg_latency_ms: r.get(3)?,
            last_error: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
