//! Explain a route: the ordered plan for a model or combo, with the reason
//! each target is in, and why others were left out.

use super::OpsError;
use crate::gateway::Gateway;
use crate::routing::plan::{self, Shape, Skipped, DEFAULT_OUTPUT_TOKENS};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainInput {
    /// A model (`prefix/model`), a combo name or `auto`.
    pub model: String,
    /// Estimated prompt tokens (affects context fit, cost and budgets).
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// Client key id whose budgets apply.
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub session: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PlannedView {
    pub position: usize,
    /// provider/account/model
    pub target: String,
    pub provider: String,
    pub account: String,
    pub model: String,
    pub tier: crate::catalog::Tier,
    pub est_cost_usd: Option<f64>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RouteExplanation {
    pub model: String,
    pub combo: Option<String>,
    pub strategy: String,
    /// Tried in this order; the first that answers serves the request.
    pub targets: Vec<PlannedView>,
    pub skipped: Vec<Skipped>,
}

pub async fn explain_route(
    gw: &Gateway,
    input: ExplainInput,
) -> Result<RouteExplanation, OpsError> {
    let shape = Shape {
        input_tokens: input.input_tokens.unwrap_or(0),
        output_tokens: input.max_tokens.unwrap_or(DEFAULT_OUTPUT_TOKENS),
        session: input.session,
        key_id: input.key_id,
    };
    let p = plan::explain(&gw.registry(), &gw.routing, &input.model, &shape)
        .map_err(|e| OpsError::InvalidInput(e.to_string()))?;
    Ok(RouteExplanation {
        model: input.model,
        combo: p.combo.as_ref().map(|c| c.name.clone()),
        strategy: p.strategy.as_str().into(),
        targets: p
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| PlannedView {
                position: i + 1,
                target: t.key.clone(),
                provider: t.target.provider.spec.id.clone(),
                account: t.target.account.id.clone(),
                model: t.target.model.clone(),
                tier: t.tier,
                est_cost_usd: t.est_cost,
                reason: t.reason.clone(),
            })
            .collect(),
        skipped: p.skipped,
    })
}

/// Live breaker, cooldown and latency figures per target and account,
/// with a per-provider roll-up.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RoutingStatus {
    pub providers: Vec<ProviderRollup>,
    pub targets: Vec<crate::routing::health::TargetReport>,
    pub accounts: Vec<crate::routing::health::AccountReport>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ProviderRollup {
    pub provider: String,
    /// closed (all targets closed), degraded (some open), open (all open)
    pub state: String,
    pub targets: usize,
    pub open: usize,
    pub cooling: usize,
    pub requests: u64,
    pub errors: u64,
}

pub fn routing_status(gw: &Gateway) -> RoutingStatus {
    use crate::routing::breaker::BreakerState;
    let targets = gw.routing.health.target_reports();
    let mut providers: Vec<ProviderRollup> = Vec::new();
    for t in &targets {
        let provider = t.target.split('/').next().unwrap_or_default().to_string();
        let entry = match providers.iter_mut().position(|p| p.provider == provider) {
            Some(i) => &mut providers[i],
            None => {
                providers.push(ProviderRollup {
                    provider,
                    state: String::new(),
                    targets: 0,
                    open: 0,
                    cooling: 0,
                    requests: 0,
                    errors: 0,
                });
                let last = providers.len() - 1;
                &mut providers[last]
            }
        };
        entry.targets += 1;
        entry.open += usize::from(t.breaker != BreakerState::Closed);
        entry.cooling += usize::from(t.cooldown_s.is_some());
        entry.requests += t.requests;
        entry.errors += t.errors;
    }
    for p in &mut providers {
        p.state = match p.open {
            0 => "closed",
            n if n == p.targets => "open",
            _ => "degraded",
        }
        .into();
    }
    RoutingStatus {
        providers,
        targets,
        accounts: gw.routing.health.account_reports(),
    }
}
