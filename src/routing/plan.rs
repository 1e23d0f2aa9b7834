//! Planning: a model name or combo becomes an ordered list of targets, each
//! with the reason it is there, and the targets left out with the reason why
//! (breaker open, cooldown, budget exhausted, context too small). Tiers are
//! walked in order (subscription → api-key → cheap → free); the strategy
//! orders targets within a tier.

use super::breaker::Admission;
use super::budget::Subjects;
use super::combo::{Combo, ComboError, FlatStep, AUTO};
use super::strategy::{self, Candidate, ComboState, Ctx, StrategyKind};
use super::Routing;
use crate::catalog::Tier;
use crate::registry::{Registry, ResolveError, Target};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What planning knows about the request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Shape {
    /// Estimated prompt tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Expected output tokens (max_tokens, else a default).
    #[serde(default)]
    pub output_tokens: u64,
    /// Session id for sticky routing.
    #[serde(default)]
    pub session: Option<String>,
    /// Client key id, for key budgets.
    #[serde(default)]
    pub key_id: Option<String>,
}

pub const DEFAULT_OUTPUT_TOKENS: u64 = 1024;

#[derive(Debug, Clone)]
pub struct Planned {
    pub target: Target,
    /// provider/account/model
    pub key: String,
    pub tier: Tier,
    pub est_cost: Option<f64>,
    pub subjects: Subjects,
    pub reason: String,
    /// Context relay: the conversation does not fit this target's window
    /// (tokens), so it is to be summarised before it is sent.
    pub relay_window: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Skipped {
    pub target: String,
    pub reason: String,
    /// The skip is a budget limit (as opposed to health).
    pub budget: bool,
    /// Seconds until a cooldown or open breaker ends, when that is the reason.
    pub wait_s: Option<f64>,
}

pub struct Plan {
    pub requested: String,
    pub combo: Option<Combo>,
    pub strategy: StrategyKind,
    pub targets: Vec<Planned>,
    pub skipped: Vec<Skipped>,
    pub state: Option<Arc<ComboState>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Combo(#[from] ComboError),
}

pub fn target_key(t: &Target) -> String {
    format!("{}/{}/{}", t.provider.spec.id, t.account.id, t.model)
}

/// The built-in combo over every usable model.
fn auto_combo(registry: &Registry) -> Combo {
    Combo {
        name: AUTO.into(),
        strategy: StrategyKind::Auto,
        models: registry
            .usable_models()
            .map(|(m, _)| super::combo::Step::Name(m))
            .collect(),
        sticky: true,
        description: Some("every usable model, tier by tier".into()),
        limits: Default::default(),
        fusion: None,
        summarizer_model: None,
        cache: None,
    }
}

pub fn plan(
    registry: &Registry,
    routing: &Routing,
    requested: &str,
    shape: &Shape,
) -> Result<Plan, PlanError> {
    plan_with(registry, routing, requested, shape, false)
}

/// Plan without moving any strategy state (for explanations).
pub fn explain(
    registry: &Registry,
    routing: &Routing,
    requested: &str,
    shape: &Shape,
) -> Result<Plan, PlanError> {
    plan_with(registry, routing, requested, shape, true)
}

fn plan_with(
    registry: &Registry,
    routing: &Routing,
    requested: &str,
    shape: &Shape,
    dry: bool,
) -> Result<Plan, PlanError> {
    let combo = registry
        .combo(requested)
        .cloned()
        .or_else(|| (requested == AUTO).then(|| auto_combo(registry)));
    let mut skipped = Vec::new();
    let (steps, strategy): (Vec<(FlatStep, Vec<Target>)>, StrategyKind) = match &combo {
        Some(c) => {
            let flat = c.flatten(&|n| registry.combo(n).cloned())?;
            let mut out = Vec::new();
            for step in flat {
                match registry.resolve(&step.model) {
                    Ok(ts) => {
                        let ts: Vec<Target> = ts
                            .into_iter()
                            .filter(|t| {
                                step.account
                                    .as_deref()
                                    .is_none_or(|a| a == t.account.id || a == t.account.label)
                            })
                            .collect();
                        if ts.is_empty() {
                            skipped.push(Skipped {
                                target: step.model.clone(),
                                reason: format!(
                                    "pinned account {:?} is not usable",
                                    step.account.unwrap_or_default()
                                ),
                                budget: false,
                                wait_s: None,
                            });
                            continue;
                        }
                        out.push((step, ts));
                    }
                    Err(e) => skipped.push(Skipped {
                        target: step.model.clone(),
                        reason: e.to_string(),
                        budget: false,
                        wait_s: None,
                    }),
                }
            }
            (out, c.strategy)
        }
        None => {
            let ts = registry.resolve(requested)?;
            let step = FlatStep {
                model: requested.to_string(),
                account: None,
                weight: 1,
                position: 0,
            };
            (vec![(step, ts)], StrategyKind::Priority)
        }
    };
    let now_ms = crate::store::now_ms();
    let mut cands: Vec<(Candidate, Planned)> = Vec::new();
    let mut position = 0;
    for (step, targets) in steps {
        for t in targets {
            let key = target_key(&t);
            if !crate::upstream::can_serve(t.provider.spec.format) {
                skipped.push(Skipped {
                    target: key,
                    reason: format!(
                        "the {} format is not served yet",
                        t.provider.spec.format.as_str()
                    ),
                    budget: false,
                    wait_s: None,
                });
                continue;
            }
            let view = routing.health.view(&key, &t.account.id);
            let info = t.model_info();
            let skip = |reason: String, budget: bool, wait: Option<std::time::Duration>| Skipped {
                target: key.clone(),
                reason,
                budget,
                wait_s: wait.map(|d| d.as_secs_f64()),
            };
            if view.admission == Some(Admission::Rejected) {
                skipped.push(skip("circuit breaker open".into(), false, None));
                continue;
            }
            if let Some((d, why)) = &view.cooldown {
                skipped.push(skip(
                    format!("cooldown for {:.1}s ({why})", d.as_secs_f64()),
                    false,
                    Some(*d),
                ));
                continue;
            }
            if let Some((d, why)) = &view.account_cooldown {
                skipped.push(skip(
                    format!("account cooldown for {:.1}s ({why})", d.as_secs_f64()),
                    false,
                    Some(*d),
                ));
                continue;
            }
            let need = shape.input_tokens + shape.output_tokens.min(4096);
            let relay = combo.as_ref().is_some_and(|c| c.summarizer_model.is_some());
            let mut relay_window = None;
            if let Some(window) = info.and_then(|m| m.context) {
                if u64::from(window) < need && relay {
                    relay_window = Some(window);
                } else if u64::from(window) < need {
                    skipped.push(skip(
                        format!("context too small ({window} < {need} tokens)"),
                        false,
                        None,
                    ));
                    continue;
                }
            }
            let tier = t.account.tier;
            let est_cost = info.and_then(|m| m.cost(shape.input_tokens, 0, shape.output_tokens));
            let subjects = Subjects {
                key: shape.key_id.clone(),
                account: t.account.id.clone(),
                tier: tier.as_str().into(),
                combo: combo.as_ref().map(|c| c.name.clone()),
                free: tier == Tier::Free || est_cost == Some(0.0),
            };
            if let Err(e) = routing.budgets.check(
                &subjects,
                est_cost.unwrap_or(0.0),
                shape.input_tokens + shape.output_tokens,
                now_ms,
            ) {
                skipped.push(skip(e.to_string(), true, None));
                continue;
            }
            let mut c = Candidate::new(&key, position);
            c.weight = step.weight;
            c.tier = tier;
            c.latency_ewma_ms = view.latency_ewma_ms;
            c.error_rate = view.error_rate;
            c.requests_in_window = view.requests_in_window;
            c.half_open = view.admission == Some(Admission::Probe);
            c.est_cost = est_cost;
            c.context = info.and_then(|m| m.context);
            c.quota_remaining = view.quota_remaining;
            c.reset_in_s = view.reset_in_s;
            let reason = format!(
                "{} step {} ({}){}",
                if combo.is_some() { "combo" } else { "model" },
                step.position + 1,
                tier.as_str(),
                if c.half_open {
                    ", probing a half-open breaker"
                } else {
                    ""
                }
            );
            cands.push((
                c,
                Planned {
                    target: t,
                    key,
                    tier,
                    est_cost,
                    subjects,
                    reason: match relay_window {
                        Some(w) => format!(
                            "{reason}; context too small ({w} < {need} tokens): relayed with a summary"
                        ),
                        None => reason,
                    },
                    relay_window,
                },
            ));
            position += 1;
        }
    }
    let state = combo.as_ref().map(|c| {
        let live = routing.combo_state(&c.name);
        if dry {
            Arc::new(live.snapshot())
        } else {
            live
        }
    });
    let fallback_state = ComboState::default();
    let mut rng = routing.rng();
    let mut ordered: Vec<Planned> = Vec::new();
    let mut tiers: Vec<Tier> = cands.iter().map(|(c, _)| c.tier).collect();
    tiers.sort();
    tiers.dedup();
    let fall_through = combo.as_ref().is_none_or(|c| c.limits.fall_through);
    for (n, tier) in tiers.into_iter().enumerate() {
        if n > 0 && !fall_through {
            for (c, _) in cands.iter().filter(|(c, _)| c.tier == tier) {
                skipped.push(Skipped {
                    target: c.key.clone(),
                    reason: "lower tier and the combo does not fall through".into(),
                    budget: false,
                    wait_s: None,
                });
            }
            continue;
        }
        let group: Vec<&(Candidate, Planned)> =
            cands.iter().filter(|(c, _)| c.tier == tier).collect();
        let just: Vec<Candidate> = group.iter().map(|(c, _)| c.clone()).collect();
        let mut ctx = Ctx {
            rng: &mut rng,
            state: state.as_deref().unwrap_or(&fallback_state),
        };
        for i in strategy::order(strategy, &just, &mut ctx) {
            ordered.push(group[i].1.clone());
        }
    }
    // A pool of subscription accounts keeps a conversation on its account
    // (the provider's prompt cache stays warm) while it has quota.
    let sticky = combo
        .as_ref()
        .is_some_and(|c| c.sticky || c.strategy.implies_sticky())
        || (combo.is_none()
            && ordered
                .iter()
                .any(|p| p.target.provider.spec.subscription.is_some()));
    if let (true, Some(session)) = (sticky, shape.session.as_deref()) {
        if let Some(prev) = routing.session_target(session) {
            if let Some(i) = ordered.iter().position(|p| p.key == prev) {
                let mut p = ordered.remove(i);
                p.reason = format!("sticky session; {}", p.reason);
                ordered.insert(0, p);
            }
        }
    }
    Ok(Plan {
        requested: requested.to_string(),
        combo,
        strategy,
        targets: ordered,
        skipped,
        state,
    })
}
