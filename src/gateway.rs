//! The core context every surface shares: settings, store, the routing
//! registry (reloaded when the store's config generation moves), the
//! upstream client and live metrics. Knows nothing of HTTP, MCP or A2A.

use crate::catalog::{self, ProviderSpec};
use crate::metrics::Metrics;
use crate::registry::{Inputs, Registry};
use crate::routing::budget::{BudgetRule, BudgetScope, Period, Spend};
use crate::routing::combo::Combo;
use crate::routing::Routing;
use crate::store::{self, Store, StoreError};
use crate::upstream::{Upstream, UpstreamError};
use arc_swap::ArcSwap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Runtime settings after CLI, env and config file are merged.
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    /// Split-port mode: the dashboard, admin API and /metrics listen here.
    pub dashboard_port: Option<u16>,
    pub data_dir: PathBuf,
    pub require_api_key: bool,
    pub max_body_bytes: usize,
    pub shutdown_grace: Duration,
    pub upstream_timeout: Duration,
    pub connect_timeout: Duration,
    pub keep_alive: Duration,
    /// How often the registry checks the store for changes by other processes.
    pub reload_interval: Duration,
    /// Seed for routing randomness (tests); None draws from the OS.
    pub routing_seed: Option<u64>,
    /// Client model names mapped to a model or combo (`[model_map]`).
    pub model_map: std::collections::BTreeMap<String, String>,
    /// Names besides loopback ones that `Host` may carry (`server.allowed_hosts`).
    pub allowed_hosts: Vec<String>,
    /// Browser origins besides loopback pages allowed to call (`server.allowed_origins`).
    pub allowed_origins: Vec<String>,
    /// How the store is opened (`[store]`).
    pub store: crate::store::StoreOptions,
    /// Private or link-local upstreams allowed (`server.allowed_upstreams`).
    pub allowed_upstreams: Vec<String>,
    /// Serve the conformance suites' fixtures (`--conformance-fixtures`).
    pub conformance_fixtures: bool,
    /// `[telemetry]`: OTLP trace export, off unless it names an endpoint.
    pub telemetry: Option<crate::config::TelemetrySection>,
    /// Items per page of the MCP list methods (tools, prompts, resources).
    pub mcp_page_size: usize,
    /// The answer cache and idempotency (`[cache]`, `[idempotency]`).
    pub cache: crate::cache::CacheSettings,
}

impl Settings {
    pub fn with_data_dir(data_dir: PathBuf) -> Settings {
        Settings {
            host: "127.0.0.1".into(),
            port: crate::config::DEFAULT_PORT,
            dashboard_port: None,
            data_dir,
            require_api_key: true,
            max_body_bytes: crate::config::DEFAULT_MAX_BODY_BYTES,
            shutdown_grace: Duration::from_secs(30),
            upstream_timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(15),
            reload_interval: Duration::from_millis(250),
            routing_seed: None,
            model_map: Default::default(),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            store: Default::default(),
            allowed_upstreams: Vec::new(),
            conformance_fixtures: false,
            telemetry: None,
            mcp_page_size: 100,
            cache: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
}

/// The proxy's open streams: how many, and the signal that ends them when
/// shutdown outlasts its grace period.
#[derive(Clone, Default)]
pub struct LiveStreams {
    pub stop: CancellationToken,
    open: Arc<std::sync::atomic::AtomicUsize>,
    /// Streams ended by `stop`.
    pub cut: Arc<std::sync::atomic::AtomicUsize>,
}

/// One open stream; counted until dropped.
pub struct OpenStream(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl LiveStreams {
    pub fn open(&self) -> OpenStream {
        self.open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        OpenStream(self.open.clone())
    }

    pub fn count(&self) -> usize {
        self.open.load(std::sync::atomic::Ordering::Relaxed)
    }
}

pub struct Gateway {
    pub settings: Settings,
    pub streams: LiveStreams,
    /// Where upstream requests may go.
    pub egress: crate::egress::EgressPolicy,
    pub store: Store,
    pub upstream: Upstream,
    pub metrics: Arc<Metrics>,
    pub routing: Arc<Routing>,
    /// Subscription accounts' tokens and plan windows.
    pub subscriptions: Arc<crate::subscription::Subscriptions>,
    /// OTLP trace export, when configured.
    pub telemetry: Option<Arc<crate::telemetry::Telemetry>>,
    /// The answer cache, requests in flight and idempotency keys.
    pub cache: crate::cache::Cache,
    /// This gateway, for work that outlives one request (a flight's task).
    me: std::sync::Weak<Gateway>,
    catalog: Vec<ProviderSpec>,
    registry: ArcSwap<Registry>,
    started: Instant,
}

impl Gateway {
    /// Open the store in the data dir and load the registry.
    pub async fn open(settings: Settings) -> Result<Arc<Gateway>, GatewayError> {
        let dir = settings.data_dir.clone();
        let options = settings.store.clone();
        let store = tokio::task::spawn_blocking(move || Store::open_with(&dir, &options))
            .await
            .map_err(|e| StoreError::Join(e.to_string()))??;
        let health_rows = store.read(store::list_health).await?;
        let routing = Arc::new(Routing::new(settings.routing_seed));
        routing.health.restore(&health_rows, store::now_ms());
        let egress = crate::egress::EgressPolicy::new(&settings.allowed_upstreams)
            .map_err(GatewayError::Config)?;
        let subscriptions = Arc::new(crate::subscription::Subscriptions::default());
        let windows = store.read(store::subscriptions::list_windows).await?;
        crate::subscription::restore_windows(&routing.health, &windows);
        subscriptions.load_windows(windows);
        let metrics = Arc::new(Metrics::default());
        // The exporter's HTTP client must be built off the async threads.
        let telemetry = match settings.telemetry.clone() {
            Some(cfg) => {
                tokio::task::spawn_blocking(move || crate::telemetry::Telemetry::start(&cfg))
                    .await
                    .map_err(|e| StoreError::Join(e.to_string()))??
                    .map(Arc::new)
            }
            None => None,
        };
        let (seen, traced) = (metrics.clone(), telemetry.clone());
        store.tap_usage(Arc::new(move |e| {
            seen.observe_request(e);
            if let Some(t) = &traced {
                t.export(e);
            }
        }));
        let upstream = Upstream::new(settings.connect_timeout, egress.clone())?;
        let gw = Arc::new_cyclic(|me| Gateway {
            me: me.clone(),
            cache: crate::cache::Cache::new(settings.cache.clone(), metrics.clone()),
            streams: LiveStreams::default(),
            routing,
            subscriptions,
            upstream,
            egress,
            settings,
            store,
            metrics,
            telemetry,
            catalog: catalog::embedded(),
            registry: ArcSwap::from_pointee(Registry::default()),
            started: Instant::now(),
        });
        gw.reload().await?;
        Ok(gw)
    }

    /// This gateway as an owned handle (None only while it is dropped).
    pub fn handle(&self) -> Option<Arc<Gateway>> {
        self.me.upgrade()
    }

    pub fn catalog(&self) -> &[ProviderSpec] {
        &self.catalog
    }

    /// The current routing snapshot.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.load_full()
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Rebuild the registry from the store now.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let now = store::now_ms();
        let (generation, providers, accounts, keys, combo_rows, mut budgets, oauth_rows) = self
            .store
            .read(move |c| {
                let mut budgets = Vec::new();
                for b in store::list_budgets(c)? {
                    let (Some(scope), Some(period)) =
                        (BudgetScope::parse(&b.scope), Period::parse(&b.period))
                    else {
                        continue;
                    };
                    let (usd, tokens) =
                        store::spend_since(c, &b.scope, &b.scope_id, period.bounds(now).0)?;
                    let rule = BudgetRule {
                        scope,
                        scope_id: b.scope_id,
                        period,
                        limit_usd: b.limit_usd,
                        limit_tokens: b.limit_tokens.map(|t| t.max(0) as u64),
                    };
                    budgets.push((
                        rule,
                        Spend {
                            usd,
                            tokens,
                            ..Spend::default()
                        },
                    ));
                }
                Ok((
                    store::config_generation(c)?,
                    store::list_providers(c)?,
                    store::list_accounts(c)?,
                    store::list_keys(c)?,
                    store::list_combos(c)?,
                    budgets,
                    store::subscriptions::list_oauth(c)?,
                ))
            })
            .await?;
        let mut combos = Vec::new();
        for row in combo_rows {
            match serde_json::from_str::<Combo>(&row.definition) {
                Ok(c) => combos.push(c),
                Err(e) => {
                    tracing::warn!(combo = %row.name, error = %e, "stored combo is unreadable; skipped")
                }
            }
        }
        // Combo budgets are day budgets on the combo.
        for c in &combos {
            if let Some(limit) = c.limits.budget_usd {
                if !budgets
                    .iter()
                    .any(|(r, _)| r.scope == BudgetScope::Combo && r.scope_id == c.name)
                {
                    let name = c.name.clone();
                    let (usd, tokens) = self
                        .store
                        .read(move |conn| {
                            store::spend_since(conn, "combo", &name, Period::Day.bounds(now).0)
                        })
                        .await?;
                    let rule = BudgetRule {
                        scope: BudgetScope::Combo,
                        scope_id: c.name.clone(),
                        period: Period::Day,
                        limit_usd: Some(limit),
                        limit_tokens: None,
                    };
                    budgets.push((
                        rule,
                        Spend {
                            usd,
                            tokens,
                            ..Spend::default()
                        },
                    ));
                }
            }
        }
        self.routing.budgets.load(budgets, now);
        self.subscriptions
            .tokens
            .load(&oauth_rows, self.store.cipher());
        let oauth = oauth_rows
            .iter()
            .map(|r| crate::registry::OAuthState {
                account_id: r.account_id.clone(),
                kind: r.kind.clone(),
                status: r.status.clone(),
                reason: r.status_reason.clone(),
            })
            .collect();
        let env = |name: &str| std::env::var(name).ok();
        let registry = Registry::build(Inputs {
            generation,
            oauth,
            catalog: &self.catalog,
            providers,
            accounts,
            keys,
            combos,
            cipher: self.store.cipher(),
            env: &env,
        });
        let mut registry = registry;
        registry.refuse_upstreams(&self.egress);
        for w in &registry.warnings {
            tracing::warn!("{w}");
        }
        self.registry.store(Arc::new(registry));
        self.cache.refresh(&self.store).await?;
        Ok(())
    }

    /// Poll the store's config generation and reload when another process
    /// (CLI, stdio MCP) or this one changed the config.
    pub fn spawn_watcher(
        self: &Arc<Self>,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let gw = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(gw.settings.reload_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let seen = gw.registry.load().generation;
                match gw.store.read(store::config_generation).await {
                    Ok(g) if g != seen => {
                        if let Err(e) = gw.reload().await {
                            tracing::warn!(error = %e, "registry reload failed");
                        } else {
                            tracing::info!(generation = g, "configuration reloaded");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "config generation check failed"),
                }
            }
        })
    }
}

impl Gateway {
    /// Fill the dashboard's per-minute charts with the last day of usage rows
    /// older than `until_ms` (when serving started: later ones came through the tap).
    pub async fn backfill_series(&self, until_ms: i64) -> Result<usize, StoreError> {
        let since = until_ms - (crate::metrics::series::MINUTES as i64) * 60_000;
        let rows = self
            .store
            .read(move |c| store::usage_samples_between(c, since, until_ms))
            .await?;
        for r in &rows {
            self.metrics.record_series(r);
        }
        Ok(rows.len())
    }
}
