//! Gateway health: version, store status, live overhead figures.

use super::OpsError;
use crate::gateway::Gateway;
use crate::store;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// "ok" or "degraded".
    pub status: String,
    pub version: String,
    pub uptime_s: u64,
    pub store: StoreHealth,
    pub usable_providers: usize,
    pub overhead: OverheadFigures,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StoreHealth {
    pub ok: bool,
    pub schema_version: Option<i64>,
    pub error: Option<String>,
}

/// The gateway's own time per request (total minus upstream), in ms.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct OverheadFigures {
    pub requests: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

pub async fn health(gw: &Gateway) -> Result<Health, OpsError> {
    let store = match gw.store.read(store::schema_version).await {
        Ok(v) => StoreHealth {
            ok: true,
            schema_version: Some(v),
            error: None,
        },
        Err(e) => StoreHealth {
            ok: false,
            schema_version: None,
            error: Some(e.to_string()),
        },
    };
    let registry = gw.registry();
    let h = &gw.metrics.overhead;
    Ok(Health {
        status: if store.ok { "ok" } else { "degraded" }.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_s: gw.uptime().as_secs(),
        usable_providers: registry
            .providers()
            .iter()
            .filter(|p| registry.is_usable(&p.spec.id))
            .count(),
        store,
        overhead: OverheadFigures {
            requests: h.count(),
            p50_ms: h.quantile_ms(0.50),
            p95_ms: h.quantile_ms(0.95),
            p99_ms: h.quantile_ms(0.99),
        },
    })
}
