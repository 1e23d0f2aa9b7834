//! Usage summaries by provider, model, key or day for a period.

use super::OpsError;
use crate::access::Principal;
use crate::gateway::Gateway;
use crate::store::{self, now_ms, UsageGroup, UsageLine};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UsageQuery {
    /// How far back, e.g. "24h", "7d", "30d".
    #[serde(default = "default_since")]
    pub since: String,
    #[serde(default)]
    pub group_by: UsageGroup,
}

fn default_since() -> String {
    "24h".into()
}

impl Default for UsageQuery {
    fn default() -> Self {
        UsageQuery {
            since: default_since(),
            group_by: UsageGroup::Provider,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UsageReport {
    pub since: String,
    pub since_ms: i64,
    pub group_by: UsageGroup,
    pub lines: Vec<UsageLine>,
    pub total_requests: u64,
    pub total_cost_usd: f64,
    /// Answers the cache gave instead of the upstream (no usage row each):
    /// hits, misses, bytes, hit rate, tokens and cost saved, by combo and key.
    pub cache: super::cache::CacheFigures,
}

/// Usage of every key for an admin, of its own key otherwise.
pub async fn usage_summary(
    gw: &Gateway,
    q: UsageQuery,
    viewer: &Principal,
) -> Result<UsageReport, OpsError> {
    let period = humantime::parse_duration(&q.since).map_err(|e| {
        OpsError::InvalidInput(format!(
            "since = {:?}: {e}; write e.g. \"24h\" or \"7d\"",
            q.since
        ))
    })?;
    let since_ms = now_ms() - period.as_millis() as i64;
    let group = q.group_by;
    let only = viewer.usage_filter();
    // Rows still queued for the writer belong in the answer (a caller's own last request).
    gw.store.flush().await?;
    let lines = gw
        .store
        .read(move |c| store::usage_summary(c, since_ms, group, only.as_deref()))
        .await?;
    let cache = super::cache::figures(gw, since_ms, now_ms(), viewer, None).await?;
    Ok(UsageReport {
        since: q.since,
        since_ms,
        group_by: q.group_by,
        total_requests: lines.iter().map(|l| l.requests).sum(),
        total_cost_usd: lines.iter().map(|l| l.cost_usd).sum(),
        lines,
        cache,
    })
}
