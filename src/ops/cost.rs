//! Spend analysis: cost by provider, model, key and day for a period, with
//! savings suggestions (cheaper usable targets for the models that were used,
//! priced at the catalog's rates on the same token counts).

use super::usage::{usage_summary, UsageQuery};
use super::OpsError;
use crate::gateway::Gateway;
use crate::registry::Registry;
use crate::store::{UsageGroup, UsageLine};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CostQuery {
    /// How far back, e.g. "24h", "7d", "30d".
    #[serde(default = "default_since")]
    pub since: String,
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
            max_suggestions: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CostReport {
    pub since: String,
    pub total_cost_usd: f64,
    pub total_requests: u64,
    pub by_provider: Vec<UsageLine>,
    pub by_model: Vec<UsageLine>,
    pub by_key: Vec<UsageLine>,
    pub by_day: Vec<UsageLine>,
    pub suggestions: Vec<Saving>,
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

/// Spend by provider, model, key and day, with savings suggestions.
pub async fn cost_report(gw: &Gateway, q: CostQuery) -> Result<CostReport, OpsError> {
    let report = |group| {
        usage_summary(
            gw,
            UsageQuery {
                since: q.since.clone(),
                group_by: group,
            },
        )
    };
    let by_provider = report(UsageGroup::Provider).await?;
    let by_model = report(UsageGroup::Model).await?.lines;
    let by_key = report(UsageGroup::Key).await?.lines;
    let by_day = report(UsageGroup::Day).await?.lines;
    let mut suggestions = suggest(&gw.registry(), &by_model);
    suggestions.truncate(q.max_suggestions.unwrap_or(5));
    Ok(CostReport {
        since: q.since,
        total_cost_usd: by_provider.total_cost_usd,
        total_requests: by_provider.total_requests,
        by_provider: by_provider.lines,
        by_model,
        by_key,
        by_day,
        suggestions,
    })
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
