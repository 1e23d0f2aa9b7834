//! `health`: the gateway's health from `ops::health`: store, usable
//! providers, overhead percentiles, and the router's breakers, cooldowns,
//! error rates and latencies per provider and target.

use super::{report, Outcome};
use crate::gateway::Gateway;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The health skill takes no options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthInput {}

pub async fn run(gw: &Gateway) -> Outcome {
    match crate::ops::health::health(gw).await {
        Ok(h) => {
            let pct = |v: Option<f64>| v.map(|v| format!("{v:.2} ms")).unwrap_or("n/a".into());
            let text = format!(
                "Gateway {} (v{}, up {}s). Store: {}{}. Usable providers: {}. Overhead over {} requests: p50 {}, p95 {}, p99 {}.",
                h.status,
                h.version,
                h.uptime_s,
                if h.store.ok { "ok" } else { "failing" },
                h.store
                    .schema_version
                    .map(|v| format!(" (schema {v})"))
                    .unwrap_or_default(),
                h.usable_providers,
                h.overhead.requests,
                pct(h.overhead.p50_ms),
                pct(h.overhead.p95_ms),
                pct(h.overhead.p99_ms),
            );
            let mut text = text;
            for p in &h.routing.providers {
                text.push_str(&format!(
                    " {}: breaker {} ({} targets, {} open, {} cooling; {} requests, {} errors).",
                    p.provider, p.state, p.targets, p.open, p.cooling, p.requests, p.errors
                ));
            }
            for t in h.routing.targets.iter().filter(|t| t.cooldown_s.is_some()) {
                text.push_str(&format!(
                    " {} cooling down for {:.0}s ({}).",
                    t.target,
                    t.cooldown_s.unwrap_or_default(),
                    t.cooldown_reason.as_deref().unwrap_or("no reason given")
                ));
            }
            let data = serde_json::to_value(&h).unwrap_or_default();
            Outcome::completed(text.clone(), vec![report("health", text, data)])
        }
        Err(e) => Outcome::failed(format!("health check failed: {e}"), vec![]),
    }
}
