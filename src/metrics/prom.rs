//! Prometheus counters and histograms fed by every finished request, and
//! the text exposition (format 0.0.4) with scrape-time gauges added.

use crate::store::UsageEvent;
use prometheus::core::Collector;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

/// Seconds; fine at the bottom for the gateway's own overhead (~0.1 ms).
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

const TARGET_LABELS: &[&str] = &["provider", "model", "target", "status"];
const MODEL_LABELS: &[&str] = &["provider", "model"];

/// The families, or None when one could not be made (then nothing is
/// counted and /metrics shows the scrape-time gauges only; a unit test makes
/// sure that never happens with the names below).
pub struct Families {
    inner: Option<Inner>,
}

impl Default for Families {
    fn default() -> Self {
        Families::new()
    }
}

struct Inner {
    registry: Registry,
    requests: IntCounterVec,
    errors: IntCounterVec,
    total: HistogramVec,
    upstream: HistogramVec,
    overhead: HistogramVec,
    tokens: IntCounterVec,
    cost: prometheus::CounterVec,
    cache_lookups: IntCounterVec,
    cache_hits: IntCounterVec,
    cache_hits_all: IntCounter,
    cache_saved_tokens: IntCounterVec,
    cache_saved_usd: prometheus::CounterVec,
    cache_bytes_served: IntCounterVec,
}

fn counter(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    IntCounterVec::new(Opts::new(name, help), labels)
}

fn histogram(name: &str, help: &str) -> prometheus::Result<HistogramVec> {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
        MODEL_LABELS,
    )
}

impl Families {
    pub fn new() -> Families {
        match Inner::new() {
            Ok(inner) => Families { inner: Some(inner) },
            Err(e) => {
                tracing::error!(error = %e, "metrics disabled: a metric definition is invalid");
                Families { inner: None }
            }
        }
    }

    pub fn observe(&self, e: &UsageEvent) {
        if let Some(i) = &self.inner {
            i.observe(e);
        }
    }

    pub fn observe_cache(&self, cache: &str, hit: bool) {
        if let Some(i) = &self.inner {
            i.observe_cache(cache, hit);
        }
    }

    /// What a cache answer saved, by the model or combo the client named.
    pub fn observe_cache_saving(&self, model: &str, tokens: u64, usd: f64, bytes: u64) {
        if let Some(i) = &self.inner {
            i.cache_saved_tokens
                .with_label_values(&[model])
                .inc_by(tokens);
            if usd > 0.0 {
                i.cache_saved_usd.with_label_values(&[model]).inc_by(usd);
            }
            i.cache_bytes_served
                .with_label_values(&[model])
                .inc_by(bytes);
        }
    }

    /// The text exposition of these families plus `extra` (scrape-time gauges).
    pub fn encode(&self, extra: &Registry) -> String {
        let mut families = self
            .inner
            .as_ref()
            .map(|i| i.registry.gather())
            .unwrap_or_default();
        families.extend(extra.gather());
        let mut out = String::new();
        if let Err(e) = TextEncoder::new().encode_utf8(&families, &mut out) {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
        out
    }
}

impl Inner {
    fn new() -> prometheus::Result<Inner> {
        let f = Inner {
            registry: Registry::new(),
            requests: counter(
                "omniroute_requests_total",
                "Finished requests by provider, upstream model, target (provider/account/model) and HTTP status.",
                &["provider", "model", "target", "status", "outcome"],
            )?,
            errors: counter(
                "omniroute_request_errors_total",
                "Requests that did not end well (upstream error, client gone, gateway error).",
                TARGET_LABELS,
            )?,
            total: histogram(
                "omniroute_request_duration_seconds",
                "Time from receiving a request to its last byte.",
            )?,
            upstream: histogram(
                "omniroute_upstream_duration_seconds",
                "Upstream time of served requests (full body, or response head for streams).",
            )?,
            overhead: histogram(
                "omniroute_overhead_duration_seconds",
                "Time spent in the gateway itself (request time minus upstream time).",
            )?,
            tokens: counter(
                "omniroute_tokens_total",
                "Tokens as the upstreams reported them, by kind (input, output, cached).",
                &["provider", "model", "kind"],
            )?,
            cost: prometheus::CounterVec::new(
                Opts::new(
                    "omniroute_cost_usd_total",
                    "Spend at catalog prices, in USD.",
                ),
                MODEL_LABELS,
            )?,
            cache_lookups: counter(
                "omniroute_cache_lookups_total",
                "Response cache lookups by cache.",
                &["cache"],
            )?,
            cache_hits: counter(
                "omniroute_cache_hits_by_cache_total",
                "Response cache hits by cache.",
                &["cache"],
            )?,
            cache_hits_all: IntCounter::new(
                "omniroute_cache_hits_total",
                "Requests answered from a response cache (any cache).",
            )?,
            cache_saved_tokens: counter(
                "omniroute_cache_saved_tokens_total",
                "Tokens not sent upstream because a cache or a joined flight answered, by requested model or combo.",
                &["requested"],
            )?,
            cache_saved_usd: prometheus::CounterVec::new(
                Opts::new(
                    "omniroute_cache_saved_usd_total",
                    "Spend avoided by cache answers at catalog prices, in USD, by requested model or combo.",
                ),
                &["requested"],
            )?,
            cache_bytes_served: counter(
                "omniroute_cache_bytes_served_total",
                "Answer bytes served from the cache, by requested model or combo.",
                &["requested"],
            )?,
        };
        let all: Vec<Box<dyn Collector>> = vec![
            Box::new(f.requests.clone()),
            Box::new(f.errors.clone()),
            Box::new(f.total.clone()),
            Box::new(f.upstream.clone()),
            Box::new(f.overhead.clone()),
            Box::new(f.tokens.clone()),
            Box::new(f.cost.clone()),
            Box::new(f.cache_lookups.clone()),
            Box::new(f.cache_hits.clone()),
            Box::new(f.cache_hits_all.clone()),
            Box::new(f.cache_saved_tokens.clone()),
            Box::new(f.cache_saved_usd.clone()),
            Box::new(f.cache_bytes_served.clone()),
        ];
        for c in all {
            f.registry.register(c)?;
        }
        Ok(f)
    }

    fn observe(&self, e: &UsageEvent) {
        let provider = e.provider_id.as_deref().unwrap_or("none");
        let model = e.model.as_deref().unwrap_or(&e.requested_model);
        let target = match (&e.provider_id, &e.account_id, &e.model) {
            (Some(p), Some(a), Some(m)) => format!("{p}/{a}/{m}"),
            _ => "none".to_string(),
        };
        let status = e.status.to_string();
        let status = status.as_str();
        self.requests
            .with_label_values(&[provider, model, &target, status, &e.outcome])
            .inc();
        if e.outcome != "ok" {
            self.errors
                .with_label_values(&[provider, model, &target, status])
                .inc();
        }
        let pm = [provider, model];
        self.total
            .with_label_values(&pm)
            .observe(e.latency_ms / 1000.0);
        if let Some(u) = e.upstream_ms {
            self.upstream.with_label_values(&pm).observe(u / 1000.0);
        }
        if let Some(o) = e.overhead_ms {
            self.overhead.with_label_values(&pm).observe(o / 1000.0);
        }
        for (kind, n) in [
            ("input", e.input_tokens),
            ("output", e.output_tokens),
            ("cached", e.cached_tokens),
        ] {
            if n > 0 {
                self.tokens
                    .with_label_values(&[provider, model, kind])
                    .inc_by(n);
            }
        }
        if let Some(c) = e.cost_usd.filter(|c| *c > 0.0) {
            self.cost.with_label_values(&pm).inc_by(c);
        }
    }

    fn observe_cache(&self, cache: &str, hit: bool) {
        self.cache_lookups.with_label_values(&[cache]).inc();
        if hit {
            self.cache_hits.with_label_values(&[cache]).inc();
            self.cache_hits_all.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_valid_and_count_requests() {
        let f = Families::default();
        assert!(f.inner.is_some(), "every metric definition is valid");
        let mut e = UsageEvent {
            provider_id: Some("mock".into()),
            account_id: Some("acc1".into()),
            model: Some("gpt".into()),
            requested_model: "mock/gpt".into(),
            status: 200,
            outcome: "ok".into(),
            latency_ms: 12.0,
            upstream_ms: Some(11.0),
            overhead_ms: Some(0.2),
            input_tokens: 5,
            cost_usd: Some(0.5),
            ..UsageEvent::default()
        };
        f.observe(&e);
        e.status = 502;
        e.outcome = "upstream_error".into();
        f.observe(&e);
        let text = f.encode(&Registry::new());
        assert!(text.contains(
            r#"omniroute_requests_total{model="gpt",outcome="ok",provider="mock",status="200",target="mock/acc1/gpt"} 1"#
        ), "{text}");
        assert!(text.contains(
            r#"omniroute_request_errors_total{model="gpt",provider="mock",status="502",target="mock/acc1/gpt"} 1"#
        ), "{text}");
        assert!(text.contains(
            r#"omniroute_overhead_duration_seconds_count{model="gpt",provider="mock"} 2"#
        ));
        assert!(text.contains("omniroute_cache_hits_total 0"), "{text}");
    }
}
