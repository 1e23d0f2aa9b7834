//! The proxy core: a chat call resolved to targets, tried in order, answered
//! whole or as a relayed stream, with usage recorded off the hot path.
//! Knows nothing of axum; surfaces adapt `ChatOutcome` and `ProxyError`.

mod relay;
pub mod usage;

use crate::gateway::Gateway;
use crate::registry::{ResolveError, Target};
use crate::store::{now_ms, UsageEvent};
use bytes::Bytes;
use futures::stream::BoxStream;
use serde_json::{Map, Value};
use std::time::{Duration, Instant};
pub use usage::Usage;

/// A chat request as a surface hands it to the core.
pub struct ChatCall {
    pub request_id: String,
    pub key_id: Option<String>,
    pub endpoint: &'static str,
    pub body: Map<String, Value>,
    /// When the surface received the request.
    pub started: Instant,
}

/// How the request was served, for route headers and reports.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct RouteInfo {
    pub provider: String,
    pub account_id: String,
    pub model: String,
    pub attempts: u32,
    /// Upstream time: to the full body, or to the response head for streams.
    pub upstream_ms: f64,
    /// Time spent in the gateway itself.
    pub overhead_ms: f64,
    /// Earlier attempts and why they failed.
    pub failed: Vec<String>,
    /// Cost of the answer at catalog prices, when known (after the body for streams).
    pub cost_usd: Option<f64>,
}

pub enum ChatOutcome {
    Complete {
        status: u16,
        body: Bytes,
        route: RouteInfo,
        usage: Option<Usage>,
    },
    Stream {
        status: u16,
        events: BoxStream<'static, Result<Bytes, std::convert::Infallible>>,
        route: RouteInfo,
    },
}

/// What went wrong with one upstream attempt.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct AttemptError {
    pub provider: String,
    pub account_id: String,
    pub model: String,
    pub status: Option<u16>,
    pub message: String,
    #[serde(skip)]
    #[schemars(skip)]
    pub retry_after: Option<String>,
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} via {}: ",
            self.provider, self.model, self.account_id
        )?;
        if let Some(s) = self.status {
            write!(f, "HTTP {s}: ")?;
        }
        f.write_str(&self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("{0}")]
    Unsupported(String),
    /// The upstream rejected the request itself; another target would too.
    #[error("upstream {provider} rejected the request (HTTP {status}): {message}")]
    Rejected {
        provider: String,
        status: u16,
        message: String,
    },
    #[error("{}", all_failed(.attempts))]
    AllFailed { attempts: Vec<AttemptError> },
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration, Vec<AttemptError>),
}

fn all_failed(attempts: &[AttemptError]) -> String {
    let list: Vec<String> = attempts.iter().map(|a| a.to_string()).collect();
    format!("every upstream attempt failed: {}", list.join("; "))
}

impl ProxyError {
    /// The HTTP status a surface should answer with.
    pub fn status(&self) -> u16 {
        match self {
            ProxyError::BadRequest(_) => 400,
            ProxyError::Resolve(_) => 404,
            ProxyError::Unsupported(_) => 501,
            ProxyError::Rejected { status, .. } => *status,
            ProxyError::Timeout(..) => 504,
            ProxyError::AllFailed { attempts } => {
                // A rate limit everywhere is best told as one, so clients back off.
                if !attempts.is_empty() && attempts.iter().all(|a| a.status == Some(429)) {
                    429
                } else {
                    502
                }
            }
        }
    }

    pub fn retry_after(&self) -> Option<&str> {
        match self {
            ProxyError::AllFailed { attempts } => {
                attempts.iter().rev().find_map(|a| a.retry_after.as_deref())
            }
            _ => None,
        }
    }
}

const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Serve one OpenAI Chat Completions request.
pub async fn chat(gw: &Gateway, call: ChatCall) -> Result<ChatOutcome, ProxyError> {
    let requested = match call.body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(_) => {
            return Err(ProxyError::BadRequest(
                "`model` must be a non-empty string".into(),
            ))
        }
        None => return Err(ProxyError::BadRequest("`model` is required".into())),
    };
    let stream = match call.body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ProxyError::BadRequest("`stream` must be a boolean".into())),
    };
    let result = attempt_all(gw, &call, &requested, stream).await;
    if let Err(e) = &result {
        record_failure(gw, &call, &requested, stream, e);
    }
    result
}

async fn attempt_all(
    gw: &Gateway,
    call: &ChatCall,
    requested: &str,
    stream: bool,
) -> Result<ChatOutcome, ProxyError> {
    let registry = gw.registry();
    let targets: Vec<Target> = registry.resolve(requested)?;
    let (targets, unsupported): (Vec<Target>, Vec<Target>) = targets
        .into_iter()
        .partition(|t| crate::upstream::can_serve(t.provider.spec.format));
    if targets.is_empty() {
        let format = unsupported
            .first()
            .map(|t| t.provider.spec.format.as_str())
            .unwrap_or("unknown");
        return Err(ProxyError::Unsupported(format!(
            "provider `{}` speaks the `{format}` format, which this build cannot send chat completions to yet",
            unsupported.first().map(|t| t.provider.spec.id.as_str()).unwrap_or("?")
        )));
    }
    let mut body = call.body.clone();
    // Ask for usage in the stream; hide the extra chunk if the client did not ask.
    let mut strip_usage_only = false;
    if stream {
        let opts = body
            .entry("stream_options")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(o) = opts {
            if o.get("include_usage") != Some(&Value::Bool(true)) {
                o.insert("include_usage".into(), Value::Bool(true));
                strip_usage_only = true;
            }
        }
    }
    let deadline = gw.settings.upstream_timeout;
    let mut attempts: Vec<AttemptError> = Vec::new();
    let mut timed_out = false;
    for target in &targets {
        body.insert("model".into(), Value::String(target.model.clone()));
        let bytes = match serde_json::to_vec(&body) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                return Err(ProxyError::BadRequest(format!(
                    "request cannot be encoded: {e}"
                )))
            }
        };
        let attempt_err =
            |status: Option<u16>, message: String, retry_after: Option<String>| AttemptError {
                provider: target.provider.spec.id.clone(),
                account_id: target.account.id.clone(),
                model: target.model.clone(),
                status,
                message,
                retry_after,
            };
        let sent = Instant::now();
        let request = gw.upstream.chat_completions(target, bytes, stream);
        let response = match tokio::time::timeout(deadline, request.send()).await {
            Err(_) => {
                timed_out = true;
                attempts.push(attempt_err(
                    None,
                    format!("no response within {deadline:?}"),
                    None,
                ));
                continue;
            }
            Ok(Err(e)) => {
                timed_out |= e.is_timeout();
                attempts.push(attempt_err(None, describe_reqwest(&e), None));
                continue;
            }
            Ok(Ok(r)) => r,
        };
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let text = read_limited(response, ERROR_BODY_LIMIT).await;
            let message = upstream_message(&text);
            if is_client_fault(status) {
                return Err(ProxyError::Rejected {
                    provider: target.provider.spec.id.clone(),
                    status,
                    message,
                });
            }
            tracing::warn!(provider = %target.provider.spec.id, account = %target.account.id, status, "upstream attempt failed");
            attempts.push(attempt_err(Some(status), message, retry_after));
            continue;
        }
        let route = |upstream_ms: f64| RouteInfo {
            provider: target.provider.spec.id.clone(),
            account_id: target.account.id.clone(),
            model: target.model.clone(),
            attempts: attempts.len() as u32 + 1,
            upstream_ms,
            overhead_ms: (call.started.elapsed().as_secs_f64() * 1000.0 - upstream_ms).max(0.0),
            failed: attempts.iter().map(|a| a.to_string()).collect(),
            cost_usd: None,
        };
        if stream {
            let upstream_ms = ms(sent.elapsed());
            let route = route(upstream_ms);
            let event = usage_event(call, requested, Some(target), true, status);
            let events = relay::relay(
                response,
                relay::RelayOptions {
                    strip_usage_only,
                    keep_alive: gw.settings.keep_alive,
                    idle_timeout: deadline,
                },
                relay::UsageGuard::new(
                    gw.store.clone(),
                    event,
                    target.model_info().cloned(),
                    upstream_ms,
                    route.overhead_ms,
                ),
            );
            return Ok(ChatOutcome::Stream {
                status,
                events,
                route,
            });
        }
        let remaining = deadline.saturating_sub(sent.elapsed());
        let body = match tokio::time::timeout(remaining, response.bytes()).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                attempts.push(attempt_err(Some(status), describe_reqwest(&e), None));
                continue;
            }
            Err(_) => {
                timed_out = true;
                attempts.push(attempt_err(
                    Some(status),
                    "body not received in time".into(),
                    None,
                ));
                continue;
            }
        };
        let upstream_ms = ms(sent.elapsed());
        let usage = usage::from_openai_body(&body);
        let mut route = route(upstream_ms);
        let mut event = usage_event(call, requested, Some(target), false, status);
        fill_usage(&mut event, usage.unwrap_or_default(), target);
        route.cost_usd = event.cost_usd;
        event.outcome = "ok".into();
        event.upstream_ms = Some(upstream_ms);
        event.overhead_ms = Some(route.overhead_ms);
        event.latency_ms = ms(call.started.elapsed());
        gw.store.record_usage(event);
        gw.metrics.observe_overhead(route.overhead_ms);
        return Ok(ChatOutcome::Complete {
            status,
            body,
            route,
            usage,
        });
    }
    if timed_out && attempts.iter().all(|a| a.status.is_none()) {
        return Err(ProxyError::Timeout(deadline, attempts));
    }
    Err(ProxyError::AllFailed { attempts })
}

/// A 4xx that any target would also return: the client must fix the request.
fn is_client_fault(status: u16) -> bool {
    matches!(status, 400 | 413 | 415 | 422)
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "connection failed".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_body() || e.is_decode() {
        "response body interrupted".to_string()
    } else {
        "request failed".to_string()
    }
}

async fn read_limited(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        out.extend_from_slice(&chunk);
        if out.len() >= limit {
            out.truncate(limit);
            break;
        }
    }
    out
}

/// The upstream's own error message when its body says one.
pub(crate) fn upstream_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let found = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("message"))
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    found.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let t = text.trim();
        if t.is_empty() {
            "no error message".to_string()
        } else {
            t.chars().take(500).collect()
        }
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn usage_event(
    call: &ChatCall,
    requested: &str,
    target: Option<&Target>,
    stream: bool,
    status: u16,
) -> UsageEvent {
    UsageEvent {
        ts_ms: now_ms(),
        request_id: call.request_id.clone(),
        key_id: call.key_id.clone(),
        endpoint: call.endpoint.to_string(),
        provider_id: target.map(|t| t.provider.spec.id.clone()),
        account_id: target.map(|t| t.account.id.clone()),
        model: target.map(|t| t.model.clone()),
        requested_model: requested.to_string(),
        stream,
        status,
        outcome: "error".into(),
        latency_ms: ms(call.started.elapsed()),
        ..UsageEvent::default()
    }
}

fn fill_usage(event: &mut UsageEvent, usage: Usage, target: &Target) {
    event.input_tokens = usage.input_tokens;
    event.output_tokens = usage.output_tokens;
    event.cached_tokens = usage.cached_tokens;
    event.reasoning_tokens = usage.reasoning_tokens;
    event.cost_usd = target
        .model_info()
        .and_then(|m| m.cost(usage.input_tokens, usage.cached_tokens, usage.output_tokens));
}

fn record_failure(gw: &Gateway, call: &ChatCall, requested: &str, stream: bool, e: &ProxyError) {
    let mut event = usage_event(call, requested, None, stream, e.status());
    if let ProxyError::AllFailed { attempts } | ProxyError::Timeout(_, attempts) = e {
        if let Some(last) = attempts.last() {
            event.provider_id = Some(last.provider.clone());
            event.account_id = Some(last.account_id.clone());
            event.model = Some(last.model.clone());
        }
    }
    event.outcome = match e {
        ProxyError::AllFailed { .. } | ProxyError::Timeout(..) | ProxyError::Rejected { .. } => {
            "upstream_error"
        }
        _ => "error",
    }
    .into();
    event.error = Some(e.to_string().chars().take(1000).collect());
    gw.store.record_usage(event);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_messages_are_extracted() {
        assert_eq!(
            upstream_message(br#"{"error":{"message":"slow down"}}"#),
            "slow down"
        );
        assert_eq!(upstream_message(br#"{"message":"bad"}"#), "bad");
        assert_eq!(upstream_message(b"  plain text "), "plain text");
        assert_eq!(upstream_message(b""), "no error message");
    }

    #[test]
    fn statuses_for_failures() {
        let a = |s| AttemptError {
            provider: "p".into(),
            account_id: "a".into(),
            model: "m".into(),
            status: s,
            message: "x".into(),
            retry_after: Some("3".into()),
        };
        assert_eq!(
            ProxyError::AllFailed {
                attempts: vec![a(Some(429)), a(Some(429))]
            }
            .status(),
            429
        );
        assert_eq!(
            ProxyError::AllFailed {
                attempts: vec![a(Some(429)), a(Some(500))]
            }
            .status(),
            502
        );
        assert_eq!(
            ProxyError::AllFailed {
                attempts: vec![a(Some(429))]
            }
            .retry_after(),
            Some("3")
        );
        assert!(is_client_fault(400) && !is_client_fault(429) && !is_client_fault(401));
    }
}
