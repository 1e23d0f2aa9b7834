//! Optional OpenTelemetry trace export (`[telemetry]`, off by default): each
//! finished request becomes a trace — a server span for the request and a
//! client span per upstream attempt, placed at the times the proxy measured —
//! sent in batches over OTLP/HTTP (protobuf) by the OpenTelemetry SDK on its
//! own thread. Fed by the store's usage tap, like the metrics.

use crate::config::TelemetrySection;
use crate::proxy::usage::RouteTrace;
use crate::store::UsageEvent;
use opentelemetry::trace::{
    Span, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider,
};
use opentelemetry_sdk::Resource;
use std::time::{Duration, SystemTime};

#[derive(Debug, thiserror::Error)]
#[error("telemetry: {0}")]
pub struct TelemetryError(String);

pub struct Telemetry {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Telemetry")
    }
}

impl Telemetry {
    /// The exporter for `[telemetry]`, or None when no endpoint is set.
    pub fn start(cfg: &TelemetrySection) -> Result<Option<Telemetry>, TelemetryError> {
        let Some(endpoint) = cfg.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) else {
            return Ok(None);
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .with_timeout(Duration::from_secs(10))
            .with_headers(cfg.headers.clone().into_iter().collect())
            .build()
            .map_err(|e| TelemetryError(e.to_string()))?;
        let delay = match &cfg.batch_delay {
            Some(d) => humantime::parse_duration(d)
                .map_err(|e| TelemetryError(format!("batch_delay: {e}")))?,
            None => Duration::from_secs(5),
        };
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_scheduled_delay(delay)
                    .build(),
            )
            .build();
        let name = cfg
            .service_name
            .clone()
            .unwrap_or_else(|| "omniroute".into());
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(
                Resource::builder()
                    .with_service_name(name)
                    .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                    .build(),
            )
            .build();
        let tracer = provider.tracer("omniroute");
        Ok(Some(Telemetry { provider, tracer }))
    }

    /// One finished request as a trace; it ends now.
    pub fn export(&self, e: &UsageEvent) {
        let end = SystemTime::now();
        let at = |ms_after_start: f64| {
            let back = (e.latency_ms - ms_after_start).max(0.0);
            end.checked_sub(Duration::from_secs_f64(back / 1000.0))
                .unwrap_or(end)
        };
        let route: Option<RouteTrace> = e
            .route
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok());
        let mut attrs = vec![
            KeyValue::new("omniroute.request_id", e.request_id.clone()),
            KeyValue::new("omniroute.endpoint", e.endpoint.clone()),
            KeyValue::new("omniroute.requested_model", e.requested_model.clone()),
            KeyValue::new("omniroute.outcome", e.outcome.clone()),
            KeyValue::new("http.response.status_code", i64::from(e.status)),
            KeyValue::new("omniroute.stream", e.stream),
            KeyValue::new("gen_ai.usage.input_tokens", e.input_tokens as i64),
            KeyValue::new("gen_ai.usage.output_tokens", e.output_tokens as i64),
        ];
        let opt = |k: &'static str, v: &Option<String>| v.clone().map(|v| KeyValue::new(k, v));
        attrs.extend(opt("gen_ai.provider.name", &e.provider_id));
        attrs.extend(opt("gen_ai.response.model", &e.model));
        attrs.extend(opt("omniroute.account", &e.account_id));
        attrs.extend(opt("omniroute.key_id", &e.key_id));
        attrs.extend(opt("omniroute.combo", &e.combo));
        attrs.extend(opt("omniroute.tier", &e.tier));
        attrs.extend(e.cost_usd.map(|c| KeyValue::new("omniroute.cost_usd", c)));
        attrs.extend(
            e.overhead_ms
                .map(|o| KeyValue::new("omniroute.overhead_ms", o)),
        );
        if let Some(r) = &route {
            attrs.push(KeyValue::new("omniroute.attempts", i64::from(r.attempts)));
            attrs.extend(opt("omniroute.strategy", &r.strategy));
            attrs.extend(opt("omniroute.translation", &r.translation));
        }
        let mut root = self
            .tracer
            .span_builder(format!("{} {}", e.endpoint, e.requested_model))
            .with_kind(SpanKind::Server)
            .with_start_time(at(0.0))
            .with_attributes(attrs)
            .start(&self.tracer);
        if let Some(r) = &route {
            for s in &r.skipped {
                root.add_event_with_timestamp(
                    "target skipped",
                    at(0.0),
                    vec![KeyValue::new("omniroute.skip", s.clone())],
                );
            }
        }
        if e.outcome != "ok" {
            root.set_status(Status::error(
                e.error.clone().unwrap_or_else(|| e.outcome.clone()),
            ));
        }
        let cx = Context::current().with_span(root);
        for a in route.iter().flat_map(|r| r.spans.iter()) {
            let (provider, rest) = a.target.split_once('/').unwrap_or((&a.target, ""));
            let (account, model) = rest.split_once('/').unwrap_or((rest, ""));
            let mut attrs = vec![
                KeyValue::new("gen_ai.provider.name", provider.to_string()),
                KeyValue::new("omniroute.account", account.to_string()),
                KeyValue::new("gen_ai.request.model", model.to_string()),
            ];
            attrs.extend(
                a.status
                    .map(|s| KeyValue::new("http.response.status_code", i64::from(s))),
            );
            let mut span = self
                .tracer
                .span_builder(format!("upstream {}", a.target))
                .with_kind(SpanKind::Client)
                .with_start_time(at(a.start_ms))
                .with_attributes(attrs)
                .start_with_context(&self.tracer, &cx);
            if let Some(err) = &a.error {
                span.set_status(Status::error(err.clone()));
            }
            span.end_with_timestamp(at(a.start_ms + a.duration_ms));
        }
        cx.span().end_with_timestamp(end);
    }

    /// Send what is queued and stop (at shutdown).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "telemetry did not flush");
        }
    }
}
