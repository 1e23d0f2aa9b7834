//! Embeddings through the router: a model or combo is planned like a chat
//! request (breakers, cooldowns, budgets, tiers), its targets tried in
//! order, and the upstream's answer passed back as it came. Serves
//! `POST /v1/embeddings` and the semantic cache, so the cache's embeddings
//! fall back and count against budgets like any other call.
//!
//! Only OpenAI-format upstreams take `/embeddings` here (the OpenAI
//! documented shape: `{"model", "input", "encoding_format"?,
//! "dimensions"?}` → `{"object":"list","data":[{"embedding":[…]}],
//! "usage":{"prompt_tokens"}}`); other formats are skipped with a reason.

use crate::catalog::WireFormat;
use crate::gateway::Gateway;
use crate::proxy::{AttemptError, ProxyError, RouteInfo, Usage};
use crate::routing::breaker::Admission;
use crate::routing::classify::{classify, FailureClass};
use crate::routing::plan::{self, Shape};
use crate::store::{now_ms, UsageEvent};
use bytes::Bytes;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Longest one embeddings attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// An embeddings request as a surface (or the cache) hands it over.
pub struct EmbedCall {
    pub request_id: String,
    pub key_id: Option<String>,
    /// What the usage row calls it (`embeddings`, `cache.embeddings`).
    pub endpoint: &'static str,
    /// The client's JSON body, passed on with only `model` rewritten.
    pub body: Bytes,
    pub started: Instant,
}

pub struct EmbedOutcome {
    pub status: u16,
    pub body: Bytes,
    pub route: RouteInfo,
    pub usage: Option<Usage>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Route one embeddings request.
pub async fn embed(gw: &Gateway, call: EmbedCall) -> Result<EmbedOutcome, ProxyError> {
    let body: Value = serde_json::from_slice(&call.body)
        .map_err(|e| ProxyError::BadRequest(format!("request body is not valid JSON: {e}")))?;
    let model = match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(_) => {
            return Err(ProxyError::BadRequest(
                "`model` must be a non-empty string".into(),
            ))
        }
        None => return Err(ProxyError::BadRequest("`model` is required".into())),
    };
    match body.get("input") {
        Some(Value::String(_)) | Some(Value::Array(_)) => {}
        _ => {
            return Err(ProxyError::BadRequest(
                "`input` is required: a string or an array".into(),
            ))
        }
    }
    let result = attempt(gw, &call, &model).await;
    if let Err(e) = &result {
        let mut event = usage_event(&call, &model);
        event.status = e.status();
        event.outcome = match e {
            ProxyError::AllFailed { .. }
            | ProxyError::Timeout(..)
            | ProxyError::Rejected { .. } => "upstream_error",
            _ => "error",
        }
        .into();
        let text = gw.registry().redactor().clean(&e.to_string());
        event.error = Some(text.chars().take(1000).collect());
        gw.store.record_usage(event);
    }
    result
}

/// The embedding of one text through `model` (`encoding_format: float`).
pub async fn embed_text(
    gw: &Gateway,
    key_id: Option<String>,
    request_id: &str,
    model: &str,
    text: &str,
) -> Result<Vec<f32>, ProxyError> {
    let body = serde_json::json!({"model": model, "input": [text], "encoding_format": "float"});
    let out = embed(
        gw,
        EmbedCall {
            request_id: format!("{request_id}-embed"),
            key_id,
            endpoint: "cache.embeddings",
            body: Bytes::from(body.to_string()),
            started: Instant::now(),
        },
    )
    .await?;
    let v: Value = serde_json::from_slice(&out.body)
        .map_err(|e| ProxyError::BadRequest(format!("the embeddings answer is not JSON: {e}")))?;
    let vector: Option<Vec<f32>> = v
        .pointer("/data/0/embedding")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_f64)
                .map(|x| x as f32)
                .collect()
        });
    match vector {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(ProxyError::BadRequest(
            "the embeddings answer has no data[0].embedding array".into(),
        )),
    }
}

fn usage_event(call: &EmbedCall, model: &str) -> UsageEvent {
    UsageEvent {
        ts_ms: now_ms(),
        request_id: call.request_id.clone(),
        key_id: call.key_id.clone(),
        endpoint: call.endpoint.to_string(),
        requested_model: model.to_string(),
        outcome: "error".into(),
        latency_ms: ms(call.started.elapsed()),
        ..UsageEvent::default()
    }
}

async fn attempt(gw: &Gateway, call: &EmbedCall, model: &str) -> Result<EmbedOutcome, ProxyError> {
    let registry = gw.registry();
    let shape = Shape {
        input_tokens: (call.body.len() / 4) as u64,
        output_tokens: 0,
        session: None,
        key_id: call.key_id.clone(),
    };
    let plan = plan::plan(&registry, &gw.routing, model, &shape).map_err(|e| match e {
        plan::PlanError::Resolve(r) => ProxyError::Resolve(r),
        plan::PlanError::Combo(c) => ProxyError::BadRequest(c.to_string()),
    })?;
    let mut skipped: Vec<String> = plan
        .skipped
        .iter()
        .map(|s| format!("{}: {}", s.target, s.reason))
        .collect();
    let mut attempts: Vec<AttemptError> = Vec::new();
    let timeout = gw.settings.upstream_timeout.min(ATTEMPT_TIMEOUT);
    let routing = &gw.routing;
    for p in &plan.targets {
        let target = &p.target;
        let fmt = target.provider.spec.format;
        if fmt != WireFormat::Openai {
            skipped.push(format!(
                "{}: the {} format has no embeddings endpoint here",
                p.key,
                fmt.as_str()
            ));
            continue;
        }
        let admission = routing.health.admit(&p.key);
        if admission == Admission::Rejected {
            skipped.push(format!("{}: circuit breaker open", p.key));
            continue;
        }
        let reservation = match routing.budgets.reserve(
            &p.subjects,
            p.est_cost.unwrap_or(0.0),
            shape.input_tokens,
            now_ms(),
        ) {
            Ok(r) => r,
            Err(e) => {
                if admission == Admission::Probe {
                    routing.health.release(&p.key);
                }
                skipped.push(format!("{}: {e}", p.key));
                continue;
            }
        };
        let bytes = crate::formats::json::set_top_level_string(&call.body, "model", &target.model)
            .map(Bytes::from)
            .unwrap_or_else(|| call.body.clone());
        let sent = Instant::now();
        let response =
            tokio::time::timeout(timeout, gw.upstream.embeddings(target, bytes).send()).await;
        let fail = |status: Option<u16>, message: String| {
            let message = registry.redactor().clean(&message);
            let class = classify(status, &message);
            let rows =
                routing
                    .health
                    .record_failure(&p.key, &target.account.id, class, None, &message);
            persist_health(gw, rows);
            tracing::warn!(target = %p.key, ?status, class = class.as_str(), "embeddings attempt failed");
            (
                AttemptError {
                    provider: target.provider.spec.id.clone(),
                    account_id: target.account.id.clone(),
                    model: target.model.clone(),
                    status,
                    message,
                    retry_after: None,
                    timing: Some((0.0, ms(sent.elapsed()))),
                },
                class,
            )
        };
        let outcome = match response {
            Err(_) => Err(fail(None, format!("no response within {timeout:?}"))),
            Ok(Err(e)) => Err(fail(None, e.describe().to_string())),
            Ok(Ok(r)) if !r.status().is_success() => {
                let status = r.status().as_u16();
                let text = r.read_limited(ERROR_BODY_LIMIT).await;
                Err(fail(Some(status), crate::proxy::upstream_message(&text)))
            }
            Ok(Ok(r)) => {
                let status = r.status().as_u16();
                match tokio::time::timeout(timeout.saturating_sub(sent.elapsed()), r.bytes()).await
                {
                    Ok(Ok(b)) if b.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'{') => {
                        Ok((status, b))
                    }
                    Ok(Ok(_)) => Err(fail(
                        Some(502),
                        "the upstream answered 200 without a JSON object".into(),
                    )),
                    Ok(Err(e)) => Err(fail(None, e.describe().to_string())),
                    Err(_) => Err(fail(None, format!("no response within {timeout:?}"))),
                }
            }
        };
        match outcome {
            Ok((status, body)) => {
                let upstream_ms = ms(sent.elapsed());
                if let Some(row) =
                    routing
                        .health
                        .record_success(&p.key, &target.account.id, upstream_ms, None)
                {
                    persist_health(gw, vec![row]);
                }
                let tokens = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v.pointer("/usage/prompt_tokens").and_then(Value::as_u64))
                    .unwrap_or(0);
                let cost = target
                    .model_info()
                    .and_then(|m| m.input.map(|price| tokens as f64 * price / 1_000_000.0));
                routing
                    .budgets
                    .settle(reservation, cost.unwrap_or(0.0), tokens);
                let usage = Usage {
                    input_tokens: tokens,
                    ..Usage::default()
                };
                let overhead_ms = (ms(call.started.elapsed()) - upstream_ms).max(0.0);
                let mut event = usage_event(call, model);
                event.provider_id = Some(target.provider.spec.id.clone());
                event.account_id = Some(target.account.id.clone());
                event.model = Some(target.model.clone());
                event.status = status;
                event.outcome = "ok".into();
                event.input_tokens = tokens;
                event.cost_usd = cost;
                event.upstream_ms = Some(upstream_ms);
                event.overhead_ms = Some(overhead_ms);
                event.tier = Some(p.tier.as_str().into());
                event.combo = plan.combo.as_ref().map(|c| c.name.clone());
                gw.store.record_usage(event);
                let route = RouteInfo {
                    provider: target.provider.spec.id.clone(),
                    account_id: target.account.id.clone(),
                    model: target.model.clone(),
                    attempts: attempts.len() as u32 + 1,
                    upstream_ms,
                    overhead_ms,
                    failed: attempts.iter().map(|a| a.to_string()).collect(),
                    cost_usd: cost,
                    combo: plan.combo.as_ref().map(|c| c.name.clone()),
                    strategy: plan
                        .combo
                        .as_ref()
                        .map(|_| plan.strategy.as_str().to_string()),
                    tier: p.tier.as_str().to_string(),
                    skipped: skipped.clone(),
                    ..RouteInfo::default()
                };
                return Ok(EmbedOutcome {
                    status,
                    body,
                    route,
                    usage: Some(usage),
                });
            }
            Err((err, class)) => {
                routing.budgets.settle(reservation, 0.0, 0);
                if class == FailureClass::ClientFault {
                    return Err(ProxyError::Rejected {
                        provider: err.provider,
                        status: err.status.unwrap_or(400),
                        message: err.message,
                    });
                }
                attempts.push(err);
            }
        }
    }
    if attempts.is_empty() {
        return Err(ProxyError::NoTarget {
            requested: model.to_string(),
            budget_only: !plan.skipped.is_empty() && plan.skipped.iter().all(|s| s.budget),
            retry_after_s: None,
            skipped,
        });
    }
    Err(ProxyError::AllFailed { attempts })
}

fn persist_health(gw: &Gateway, rows: Vec<crate::routing::health::HealthRow>) {
    if !rows.is_empty() {
        gw.store.write_detached("target health", move |tx| {
            crate::store::put_health(tx, &rows)
        });
    }
}
