//! `/metrics`: the Prometheus text exposition of the live counters and
//! histograms, with gauges read at scrape time from the router (breakers,
//! cooldowns, upstream quota), the budgets and the store writer.

use crate::gateway::Gateway;
use prometheus::{Gauge, GaugeVec, Opts, Registry};

/// Text format 0.0.4, as Prometheus scrapes it.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn prometheus_text(gw: &Gateway) -> String {
    let extra = Registry::new();
    let gauges = Scrape::new(&extra);
    if let Some(g) = &gauges {
        g.fill(gw);
    }
    gw.metrics.prom.encode(&extra)
}

struct Scrape {
    breaker: GaugeVec,
    target_cooldown: GaugeVec,
    account_cooldown: GaugeVec,
    quota_remaining: GaugeVec,
    quota_limit: GaugeVec,
    budget_spend: GaugeVec,
    budget_limit: GaugeVec,
    budget_tokens: GaugeVec,
    queue: Gauge,
    uptime: Gauge,
    build: GaugeVec,
}

impl Scrape {
    fn new(reg: &Registry) -> Option<Scrape> {
        let vec = |name: &str, help: &str, labels: &[&str]| -> Option<GaugeVec> {
            let g = GaugeVec::new(Opts::new(name, help), labels).ok()?;
            reg.register(Box::new(g.clone())).ok()?;
            Some(g)
        };
        let one = |name: &str, help: &str| -> Option<Gauge> {
            let g = Gauge::new(name, help).ok()?;
            reg.register(Box::new(g.clone())).ok()?;
            Some(g)
        };
        let budget = ["scope", "scope_id", "period"];
        Some(Scrape {
            breaker: vec(
                "omniroute_breaker_state",
                "Circuit breaker per target (provider/account/model): 1 for its current state.",
                &["target", "provider", "state"],
            )?,
            target_cooldown: vec(
                "omniroute_target_cooldown_seconds",
                "Seconds until a cooling target may be tried again.",
                &["target", "provider"],
            )?,
            account_cooldown: vec(
                "omniroute_account_cooldown_seconds",
                "Seconds until a cooling account (quota, auth) may be tried again.",
                &["account", "provider"],
            )?,
            quota_remaining: vec(
                "omniroute_quota_remaining",
                "Requests or tokens left as the upstream last reported (x-ratelimit-remaining-*).",
                &["account", "provider"],
            )?,
            quota_limit: vec(
                "omniroute_quota_limit",
                "The upstream's limit as it last reported (x-ratelimit-limit-*).",
                &["account", "provider"],
            )?,
            budget_spend: vec(
                "omniroute_budget_spend_usd",
                "Spend in the current period against each budget.",
                &budget,
            )?,
            budget_limit: vec(
                "omniroute_budget_limit_usd",
                "Each budget's USD limit.",
                &budget,
            )?,
            budget_tokens: vec(
                "omniroute_budget_spend_tokens",
                "Tokens in the current period against each budget.",
                &budget,
            )?,
            queue: one(
                "omniroute_store_writer_queue_depth",
                "Writes (usage rows, config changes) waiting for the store writer thread.",
            )?,
            uptime: one(
                "omniroute_uptime_seconds",
                "Seconds since this process started.",
            )?,
            build: vec(
                "omniroute_build_info",
                "Always 1; the version is a label.",
                &["version"],
            )?,
        })
    }

    fn fill(&self, gw: &Gateway) {
        use crate::routing::breaker::BreakerState;
        for t in gw.routing.health.target_reports() {
            let provider = t.target.split('/').next().unwrap_or_default();
            for s in [
                BreakerState::Closed,
                BreakerState::Open,
                BreakerState::HalfOpen,
            ] {
                self.breaker
                    .with_label_values(&[t.target.as_str(), provider, s.as_str()])
                    .set(f64::from(u8::from(t.breaker == s)));
            }
            self.target_cooldown
                .with_label_values(&[t.target.as_str(), provider])
                .set(t.cooldown_s.unwrap_or(0.0));
        }
        let registry = gw.registry();
        let provider_of = |account: &str| -> String {
            registry
                .providers()
                .iter()
                .find(|p| {
                    registry
                        .accounts(&p.spec.id)
                        .iter()
                        .any(|a| a.id == account)
                })
                .map(|p| p.spec.id.clone())
                .unwrap_or_default()
        };
        for a in gw.routing.health.account_reports() {
            let provider = provider_of(&a.account);
            let labels = [a.account.as_str(), provider.as_str()];
            self.account_cooldown
                .with_label_values(&labels)
                .set(a.cooldown_s.unwrap_or(0.0));
            if let Some(r) = a.quota_remaining {
                self.quota_remaining.with_label_values(&labels).set(r);
            }
            if let Some(l) = a.quota_limit {
                self.quota_limit.with_label_values(&labels).set(l);
            }
        }
        for (rule, spend) in gw.routing.budgets.rules() {
            let labels = [
                rule.scope.as_str(),
                rule.scope_id.as_str(),
                rule.period.as_str(),
            ];
            self.budget_spend.with_label_values(&labels).set(spend.usd);
            self.budget_tokens
                .with_label_values(&labels)
                .set(spend.tokens as f64);
            if let Some(l) = rule.limit_usd {
                self.budget_limit.with_label_values(&labels).set(l);
            }
        }
        self.queue.set(gw.store.writer_queue_depth() as f64);
        self.uptime.set(gw.uptime().as_secs_f64());
        self.build
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
    }
}
