//! The health probe: one tiny prompt straight to one target.

use super::answers::{upstream_message, ERROR_BODY_LIMIT};
use super::attempt::persist_health;
use super::ms;
use crate::gateway::Gateway;
use crate::registry::Target;
use crate::routing::classify::classify;
use crate::routing::plan;
use bytes::Bytes;
use std::time::{Duration, Instant};

/// The outcome of one tiny test prompt to one target.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub target: String,
    pub ok: bool,
    pub latency_ms: f64,
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// Send a tiny prompt straight to one target (no fallback); the outcome
/// feeds its breaker and latency figures like any request.
pub async fn probe(gw: &Gateway, target: &Target) -> ProbeResult {
    let key = plan::target_key(target);
    if target.provider.spec.subscription.is_some() {
        // A probe would spend plan quota; subscription accounts are checked by real requests.
        return ProbeResult {
            target: key,
            ok: false,
            latency_ms: 0.0,
            status: None,
            error: Some("not probed: subscription accounts are not sent test prompts".into()),
        };
    }
    let body = serde_json::json!({
        "model": target.model,
        "messages": [{"role": "user", "content": "Reply with the word ok."}],
        "max_tokens": 8,
        "stream": false,
    });
    let started = Instant::now();
    let timeout = gw.settings.upstream_timeout.min(Duration::from_secs(30));
    let outcome = match gw
        .upstream
        .chat(target, Bytes::from(body.to_string()), false)
    {
        Err(e) => Err((None, format!("request cannot be translated: {e}"))),
        Ok(request) => match tokio::time::timeout(timeout, request.send()).await {
            Err(_) => Err((None, format!("no response within {timeout:?}"))),
            Ok(Err(e)) => Err((None, e.describe().to_string())),
            Ok(Ok(r)) if r.status().is_success() => match r.bytes().await {
                Ok(_) => Ok(()),
                Err(e) => Err((None, e.describe().to_string())),
            },
            Ok(Ok(r)) => {
                let status = r.status().as_u16();
                let text = r.read_limited(ERROR_BODY_LIMIT).await;
                let message = gw.registry().redactor().clean(&upstream_message(&text));
                Err((Some(status), message))
            }
        },
    };
    let latency_ms = ms(started.elapsed());
    match outcome {
        Ok(()) => {
            let row = gw
                .routing
                .health
                .record_success(&key, &target.account.id, latency_ms, None);
            persist_health(gw, row.into_iter().collect());
            ProbeResult {
                target: key,
                ok: true,
                latency_ms,
                status: Some(200),
                error: None,
            }
        }
        Err((status, message)) => {
            let class = classify(status, &message);
            let rows =
                gw.routing
                    .health
                    .record_failure(&key, &target.account.id, class, None, &message);
            persist_health(gw, rows);
            ProbeResult {
                target: key,
                ok: false,
                latency_ms,
                status,
                error: Some(message),
            }
        }
    }
}
