//! Spend for a period, broken down by provider, model, client key and day,
//! with savings suggestions (cheaper usable targets for the models that were
//! used, priced at the catalog's rates on the same token counts).

use super::OpsError;
use crate::access::Principal;
use crate::gateway::Gateway;
use crate::registry::Registry;
use crate::store::{self, now_ms, UsageGroup, UsageLine};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CostQuery {
    /// Start of the period: a duration back from now ("24h", "7d", "30d") or a
    /// UTC date/time ("2025-06-01", "2025-06-01T12:00:00Z"). Default "30d".
    #[serde(default = "default_since")]
    pub since: String,
    /// End of the period (exclusive), same forms as `since`; default now.
    #[serde(default)]
    pub until: Option<String>,
    /// At most this many savings suggestions (default 5).
    #[serde(default)]
    pub max_suggestions: Option<usize>,
}

fn default_since() -> String {
    "30d".into()
}

impl Default for CostQuery {
    fn default() -> Self {
        CostQuery {
            since: default_since(),
            until: None,
            max_suggestions: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CostReport {
    /// The period as asked ("30d", a date...).
    pub since: String,
    pub since_ms: i64,
    pub until_ms: i64,
    pub total_requests: u64,
    pub total_errors: u64,
    pub total_input_tokens: u64,
    pub total_output_tokens: u64,
    /// USD; requests to models without a known price count as 0.
    pub total_cost_usd: f64,
    /// Most expensive first.
    pub by_provider: Vec<UsageLine>,
    pub by_model: Vec<UsageLine>,
    pub by_key: Vec<UsageLine>,
    pub by_day: Vec<UsageLine>,
    /// Largest saving first.
    pub suggestions: Vec<Saving>,
    /// What the answer cache saved over the period, by combo and key.
    pub cache: super::cache::CacheFigures,
}

/// A point in time as ms since the epoch: a duration back from `now` or a UTC date/time.
pub fn parse_instant(field: &str, s: &str, now: i64) -> Result<i64, OpsError> {
    let s = s.trim();
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now - d.as_millis() as i64);
    }
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    match humantime::parse_rfc3339_weak(&full) {
        Ok(t) => Ok(t
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)),
        Err(_) => Err(OpsError::InvalidInput(format!(
            "{field} = {s:?}: write a duration back from now (\"24h\", \"7d\") or a UTC date (\"2025-06-01\" or \"2025-06-01T12:00:00Z\")"
        ))),
    }
}

/// Spend of every key for an admin, of its own key otherwise.
pub async fn cost_report(
    gw: &Gateway,
    q: CostQuery,
    viewer: &Principal,
) -> Result<CostReport, OpsError> {
    let now = now_ms();
    let since_ms = parse_instant("since", &q.since, now)?;
    let until_ms = match &q.until {
        Some(u) => parse_instant("until", u, now)?,
        None => now + 1,
    };
    if until_ms <= since_ms {
        return Err(OpsError::InvalidInput(format!(
            "the period is empty: until ({until_ms}) is not after since ({since_ms})"
        )));
    }
    let only = viewer.usage_filter();
    // Rows still queued for the writer belong in the answer (a caller's own last request).
    gw.store.flush().await?;
    let (by_provider, by_model, by_key, by_day) = gw
        .store
        .read(move |c| {
            let g = |group| store::usage_between(c, since_ms, until_ms, group, only.as_deref());
            Ok((
                g(UsageGroup::Provider)?,
                g(UsageGroup::Model)?,
                g(UsageGroup::Key)?,
                g(UsageGroup::Day)?,
            ))
        })
        .await?;
    let cache = super::cache::figures(gw, since_ms, until_ms, viewer, None).await?;
    let sum = |f: fn(&UsageLine) -> u64| by_provider.iter().map(f).sum::<u64>();
    let mut suggestions = suggest(&gw.registry(), &by_model);
    suggestions.truncate(q.max_suggestions.unwrap_or(5));
    Ok(CostReport {
        since: q.since,
        cache,
        suggestions,
        since_ms,
        until_ms,
        total_requests: sum(|l| l.requests),
        total_errors: sum(|l| l.errors),
        total_input_tokens: sum(|l| l.input_tokens),
        total_output_tokens: sum(|l| l.output_tokens),
        total_cost_usd: by_provider.iter().map(|l| l.cost_usd).sum(),
        by_day: {
            let mut d = by_day;
            d.sort_by(|a, b| a.group.cmp(&b.group));
            d
        },
        by_provider,
        by_model,
        by_key,
    })
}

/// One way to pay less for the same traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Saving {
    /// The model used (`provider/model`).
    pub model: String,
    pub spent_usd: f64,
    pub requests: u64,
    /// What to ask for instead (`prefix/model`).
    pub alternative: String,
    pub alternative_provider: String,
    pub alternative_tier: crate::catalog::Tier,
    /// "same-model" (the same model from another provider) or "cheaper-model".
    pub kind: String,
    pub estimated_cost_usd: f64,
    pub estimated_saving_usd: f64,
}

/// For each model with spend, the cheapest usable alternative that would have
/// cost at most 80% as much on the same tokens; the same model from another
/// provider is preferred to a different model. Largest saving first.
pub fn suggest(registry: &Registry, by_model: &[UsageLine]) -> Vec<Saving> {
    let mut out = Vec::new();
    for line in by_model.iter().filter(|l| l.cost_usd > 0.0) {
        let (used_provider, used_bare) = line.group.split_once('/').unwrap_or(("", &line.group));
        let mut best: Option<Saving> = None;
        for p in registry
            .providers()
            .iter()
            .filter(|p| registry.is_usable(&p.spec.id))
        {
            for m in &p.spec.models {
                if p.spec.id == used_provider && m.id == used_bare {
                    continue;
                }
                let Some(cost) = m.cost(line.input_tokens, line.cached_tokens, line.output_tokens)
                else {
                    continue;
                };
                if cost > line.cost_usd * 0.8 {
                    continue;
                }
                let same = m.id == used_bare;
                let cand = Saving {
                    model: line.group.clone(),
                    spent_usd: line.cost_usd,
                    requests: line.requests,
                    alternative: format!("{}/{}", p.spec.prefix(), m.id),
                    alternative_provider: p.spec.id.clone(),
                    alternative_tier: p.spec.tier,
                    kind: if same { "same-model" } else { "cheaper-model" }.into(),
                    estimated_cost_usd: cost,
                    estimated_saving_usd: line.cost_usd - cost,
                };
                let better = match &best {
                    None => true,
                    Some(b) => {
                        let b_same = b.kind == "same-model";
                        (same && !b_same) || (same == b_same && cost < b.estimated_cost_usd)
                    }
                };
                if better {
                    best = Some(cand);
                }
            }
        }
        out.extend(best);
    }
    out.sort_by(|a, b| b.estimated_saving_usd.total_cmp(&a.estimated_saving_usd));
    out
}

#[cfg(test)]
mod tests {
    use super::parse_instant;

    #[test]
    fn instants_from_durations_and_dates() {
        let now = 1_750_000_000_000;
        assert_eq!(parse_instant("since", "1h", now).unwrap(), now - 3_600_000);
        assert_eq!(
            parse_instant("since", "2025-06-01", now).unwrap(),
            1_748_736_000_000
        );
        assert_eq!(
            parse_instant("since", "2025-06-01T00:00:10Z", now).unwrap(),
            1_748_736_010_000
        );
        let err = parse_instant("until", "yesterday", now)
            .unwrap_err()
            .to_string();
        assert!(err.contains("until") && err.contains("7d"), "{err}");
    }
}
