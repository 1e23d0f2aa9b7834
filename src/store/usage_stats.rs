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

/// The fields the dashboard's charts need, for rows with `since_ms <= ts_ms < until_ms`.
pub fn usage_samples_between(
    conn: &Connection,
    since_ms: i64,
    until_ms: i64,
) -> Result<Vec<super::UsageEvent>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT ts_ms, outcome, cost_usd, latency_ms, overhead_ms FROM usage_events
         WHERE ts_ms >= ?1 AND ts_ms < ?2",
    )?;
    let rows = stmt.query_map(params![since_ms, until_ms], |r| {
        Ok(super::UsageEvent {
            ts_ms: r.get(0)?,
            outcome: r.get(1)?,
            cost_usd: r.get(2)?,
            latency_ms: r.get(3)?,
            overhead_ms: r.get(4)?,
            ..super::UsageEvent::default()
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Which usage rows `recent_usage` returns.
#[derive(Debug, Clone, Default)]
pub struct UsageFilter {
    pub key_id: Option<String>,
    /// A part of the requested model or of `provider/model`.
    pub model: Option<String>,
    /// Inclusive range of HTTP statuses.
    pub status: Option<(u16, u16)>,
    /// Only rows whose outcome is (true) or is not (false) "ok".
    pub ok: Option<bool>,
    /// Only rows older than this row id (paging).
    pub before_id: Option<i64>,
    /// Only rows at or after this time; bounds the scan when filters match little.
    pub since_ms: i64,
    pub limit: u32,
}

/// Newest first: (row id, usage row).
pub fn recent_usage(
    conn: &Connection,
    f: &UsageFilter,
) -> Result<Vec<(i64, super::UsageEvent)>, StoreError> {
    let like = f.model.as_ref().map(|m| {
        let escaped = m
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let (lo, hi) = f.status.map_or((None, None), |(a, b)| (Some(a), Some(b)));
    let mut stmt = conn.prepare_cached(
        "SELECT id, ts_ms, request_id, key_id, endpoint, provider_id, account_id, model,
                requested_model, stream, status, outcome, input_tokens, output_tokens,
                cached_tokens, reasoning_tokens, cost_usd, latency_ms, upstream_ms,
                overhead_ms, error, tier, combo, route
         FROM usage_events
         WHERE (?1 IS NULL OR key_id = ?1)
           AND (?2 IS NULL OR requested_model LIKE ?2 ESCAPE '\\'
                OR (provider_id || '/' || model) LIKE ?2 ESCAPE '\\')
           AND (?3 IS NULL OR status >= ?3) AND (?4 IS NULL OR status <= ?4)
           AND (?5 IS NULL OR (outcome = 'ok') = ?5)
           AND (?6 IS NULL OR id < ?6)
           AND id >= COALESCE((SELECT MIN(id) FROM usage_events WHERE ts_ms >= ?8), 0)
         ORDER BY id DESC LIMIT ?7",
    )?;
    let rows = stmt.query_map(
        params![
            f.key_id,
            like,
            lo,
            hi,
            f.ok,
            f.before_id,
            f.limit,
            f.since_ms
        ],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                super::UsageEvent {
                    ts_ms: r.get(1)?,
                    request_id: r.get(2)?,
                    key_id: r.get(3)?,
                    endpoint: r.get(4)?,
                    provider_id: r.get(5)?,
                    account_id: r.get(6)?,
                    model: r.get(7)?,
                    requested_model: r.get(8)?,
                    stream: r.get(9)?,
                    status: r.get(10)?,
                    outcome: r.get(11)?,
                    input_tokens: r.get::<_, i64>(12)? as u64,
                    output_tokens: r.get::<_, i64>(13)? as u64,
                    cached_tokens: r.get::<_, i64>(14)? as u64,
                    reasoning_tokens: r.get::<_, i64>(15)? as u64,
                    cost_usd: r.get(16)?,
                    latency_ms: r.get(17)?,
                    upstream_ms: r.get(18)?,
                    overhead_ms: r.get(19)?,
                    error: r.get(20)?,
                    tier: r.get(21)?,
                    combo: r.get(22)?,
                    route: r.get(23)?,
                },
            ))
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}
