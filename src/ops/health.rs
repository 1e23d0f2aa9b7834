//! Gateway health: version, store status, live overhead figures and, per
//! provider, usable accounts and recent traffic from the usage table, and
//! the router's live breaker, cooldown and latency state.

use super::OpsError;
use crate::gateway::Gateway;
use crate::store::{self, now_ms};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How far back the per-provider traffic figures look.
pub const RECENT_WINDOW_S: u64 = 3600;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// "ok" or "degraded".
    pub status: String,
    pub version: String,
    /// The process that answered (a stdio MCP bridge reports the running gateway's).
    pub pid: u32,
    pub uptime_s: u64,
    pub store: StoreHealth,
    pub usable_providers: usize,
    pub overhead: OverheadFigures,
    /// Window of the per-provider traffic figures, in seconds.
    pub recent_window_s: u64,
    /// Providers that are usable or carried traffic in the recent window.
    pub providers: Vec<ProviderHealth>,
    /// Live router state of this process: breaker per provider and target,
    /// cooldowns, latency percentiles and error rates.
    pub routing: super::explain::RoutingStatus,
    /// The answer cache: what it holds and what this process counted since it started.
    pub cache: CacheHealth,
}

/// The cache as `/health` reports it (this process, since it started).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CacheHealth {
    pub enabled: bool,
    pub entries: u64,
    pub bytes: u64,
    pub max_bytes: u64,
    pub hits: u64,
    pub semantic_hits: u64,
    pub coalesced: u64,
    pub misses: u64,
    pub idempotent_replays: u64,
    /// hits / (hits + misses), or null without either.
    pub hit_rate: Option<f64>,
    pub bytes_served: u64,
    pub tokens_saved: u64,
    pub cost_saved_usd: f64,
}

fn cache_health(gw: &Gateway) -> CacheHealth {
    let (entries, bytes) = gw.cache.size();
    let t = gw.cache.totals();
    let n = t.hits + t.misses;
    CacheHealth {
        enabled: gw.cache.settings.enabled,
        entries,
        bytes,
        max_bytes: gw.cache.settings.max_bytes,
        hits: t.hits,
        semantic_hits: t.semantic_hits,
        coalesced: t.coalesced,
        misses: t.misses,
        idempotent_replays: t.replays,
        hit_rate: (n > 0).then(|| t.hits as f64 / n as f64),
        bytes_served: t.bytes_served,
        tokens_saved: t.tokens_saved,
        cost_saved_usd: t.cost_saved_usd,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StoreHealth {
    /// Reads work and the writer is not failing.
    pub ok: bool,
    pub schema_version: Option<i64>,
    pub error: Option<String>,
    /// The last write failed (disk full, size cap, read-only file) and has not succeeded since.
    #[serde(default)]
    pub writes_failing: bool,
    /// Usage rows kept in memory until the database takes them again.
    #[serde(default)]
    pub pending_rows: usize,
    /// Rows dropped because too many were pending.
    #[serde(default)]
    pub dropped_rows: u64,
    /// Commands waiting for the writer thread.
    #[serde(default)]
    pub queue_depth: usize,
}

/// The gateway's own time per request (total minus upstream), in ms.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct OverheadFigures {
    /// Requests this process has served since it started.
    pub requests: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// One provider's accounts and its traffic in the recent window.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ProviderHealth {
    pub id: String,
    pub usable: bool,
    pub usable_accounts: usize,
    pub accounts: usize,
    /// Requests in the recent window (every process on this data dir).
    pub requests: u64,
    pub errors: u64,
    /// errors / requests, or null without traffic.
    pub error_rate: Option<f64>,
    pub avg_latency_ms: Option<f64>,
    pub last_error: Option<String>,
}

/// What `GET /health` tells a caller without a `read` key: no provider
/// names, figures or upstream messages.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct HealthSummary {
    /// "ok" or "degraded".
    pub status: String,
    pub version: String,
    pub store_ok: bool,
}

impl From<&Health> for HealthSummary {
    fn from(h: &Health) -> HealthSummary {
        HealthSummary {
            status: h.status.clone(),
            version: h.version.clone(),
            store_ok: h.store.ok,
        }
    }
}

pub async fn health(gw: &Gateway) -> Result<Health, OpsError> {
    let since = now_ms() - (RECENT_WINDOW_S as i64) * 1000;
    let read = gw
        .store
        .read(move |c| {
            Ok((
                store::schema_version(c)?,
                store::provider_traffic(c, since)?,
            ))
        })
        .await;
    let w = gw.store.writer_status();
    let (schema_version, read_error, traffic) = match read {
        Ok((v, traffic)) => (Some(v), None, traffic),
        Err(e) => (None, Some(e.to_string()), Vec::new()),
    };
    let store = StoreHealth {
        ok: read_error.is_none() && !w.failing,
        schema_version,
        error: read_error.or(w.last_error),
        writes_failing: w.failing,
        pending_rows: w.pending_rows,
        dropped_rows: w.dropped_rows,
        queue_depth: w.queue_depth,
    };
    let registry = gw.registry();
    let providers = registry
        .providers()
        .iter()
        .filter_map(|p| {
            let id = &p.spec.id;
            let t = traffic.iter().find(|t| &t.provider_id == id);
            let usable = registry.is_usable(id);
            if !usable && t.is_none() {
                return None;
            }
            Some(ProviderHealth {
                id: id.clone(),
                usable,
                usable_accounts: registry.usable_accounts(id).count(),
                accounts: registry.accounts(id).len(),
                requests: t.map_or(0, |t| t.requests),
                errors: t.map_or(0, |t| t.errors),
                error_rate: t
                    .filter(|t| t.requests > 0)
                    .map(|t| t.errors as f64 / t.requests as f64),
                avg_latency_ms: t.map(|t| t.avg_latency_ms),
                // Rows written before redaction existed are scrubbed on the way out too.
                last_error: t
                    .and_then(|t| t.last_error.as_deref())
                    .map(|e| registry.redactor().clean(e)),
            })
        })
        .collect::<Vec<_>>();
    let h = &gw.metrics.overhead;
    Ok(Health {
        status: if store.ok { "ok" } else { "degraded" }.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
        uptime_s: gw.uptime().as_secs(),
        usable_providers: providers.iter().filter(|p| p.usable).count(),
        store,
        overhead: OverheadFigures {
            requests: h.count(),
            p50_ms: h.quantile_ms(0.50),
            p95_ms: h.quantile_ms(0.95),
            p99_ms: h.quantile_ms(0.99),
        },
        recent_window_s: RECENT_WINDOW_S,
        providers,
        routing: super::explain::routing_status(gw),
        cache: cache_health(gw),
    })
}
