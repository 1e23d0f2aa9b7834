//! The dashboard's overview: per-interval requests, latency and overhead
//! percentiles, error and cache hit rates and spend over the last hour or
//! day, with today's and this month's spend.

use super::OpsError;
use crate::gateway::Gateway;
use crate::metrics::series::Point;
use crate::routing::budget::Period;
use crate::store::{self, now_ms};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How long the store's spend totals are reused: each is a scan of the
/// period's usage rows, and every open dashboard asks every 5 s.
const SPEND_TTL_MS: i64 = 10_000;

/// Spend since UTC midnight and the first of the month, from the store (every
/// process on this data dir), at most `SPEND_TTL_MS` old.
async fn spend(gw: &Gateway, now: i64) -> Result<crate::metrics::SpendTotals, OpsError> {
    if let Some(s) = gw.metrics.spend_totals(now, SPEND_TTL_MS) {
        return Ok(s);
    }
    let (day, month) = (Period::Day.bounds(now).0, Period::Month.bounds(now).0);
    let totals = gw
        .store
        .read(move |c| {
            let (today_usd, today_requests) = c.query_row(
                "SELECT COALESCE(SUM(cost_usd), 0), COUNT(*) FROM usage_events WHERE ts_ms >= ?1",
                [day],
                |r| Ok((r.get::<_, f64>(0)?, r.get::<_, i64>(1)? as u64)),
            )?;
            let (month_usd, _) = store::spend_since(c, "global", "*", month)?;
            Ok(crate::metrics::SpendTotals {
                at_ms: now,
                today_usd,
                today_requests,
                month_usd,
            })
        })
        .await?;
    gw.metrics.remember_spend(totals);
    Ok(totals)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OverviewQuery {
    /// "1h" (60 one-minute points, the default) or "24h" (144 ten-minute points).
    #[serde(default)]
    pub window: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Overview {
    pub window: String,
    /// Length of each point's interval, in seconds.
    pub step_s: u64,
    /// Oldest first; the last one is the current, partial interval.
    pub points: Vec<Point>,
    /// The whole window as one interval.
    pub totals: Point,
    /// Spend since UTC midnight and since the first of the month (every
    /// process on this data dir).
    pub spend_today_usd: f64,
    pub spend_month_usd: f64,
    pub requests_today: u64,
    pub usable_providers: usize,
    pub uptime_s: u64,
}

pub async fn overview(gw: &Gateway, q: OverviewQuery) -> Result<Overview, OpsError> {
    let window = q.window.unwrap_or_else(|| "1h".into());
    let (points, step_min) = match window.as_str() {
        "1h" => (60, 1),
        "24h" | "1d" => (144, 10),
        other => {
            return Err(OpsError::InvalidInput(format!(
                "window = {other:?}: write 1h or 24h"
            )))
        }
    };
    let now = now_ms();
    let spend = spend(gw, now).await?;
    let series = gw.metrics.points(now, points, step_min);
    let totals = gw
        .metrics
        .points(now, 1, points * step_min)
        .pop()
        .ok_or_else(|| OpsError::InvalidInput("no figures".into()))?;
    let registry = gw.registry();
    Ok(Overview {
        window,
        step_s: step_min as u64 * 60,
        points: series,
        totals,
        spend_today_usd: spend.today_usd,
        spend_month_usd: spend.month_usd,
        requests_today: spend.today_requests,
        usable_providers: registry
            .providers()
            .iter()
            .filter(|p| registry.is_usable(&p.spec.id))
            .count(),
        uptime_s: gw.uptime().as_secs(),
    })
}
