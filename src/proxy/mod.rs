//! The proxy core: a chat call resolved to targets, tried in order, answered
//! whole or as a relayed stream, with usage recorded off the hot path.
//! Knows nothing of axum; surfaces adapt `ChatOutcome` and `ProxyError`.
//!
//! A request's way: `chat` reads the routing view, `attempt_all` plans and
//! walks the targets (`fusion` races them), `attempt::try_target` admits,
//! encodes, sends and commits one; `answers` says what an upstream answer
//! is; `relay` carries a stream to the client; `probe` is the health check.

mod answers;
mod attempt;
mod context_relay;
mod fusion;
pub mod native;
mod probe;
mod relay;
pub mod usage;
pub mod view;

use crate::catalog::WireFormat;
use crate::gateway::Gateway;
use crate::registry::{ResolveError, Target};
use crate::routing::classify::FailureClass;
use crate::routing::plan::{self, PlanError, Shape, DEFAULT_OUTPUT_TOKENS};
use crate::routing::strategy::StrategyKind;
use crate::store::{now_ms, UsageEvent};
pub(crate) use answers::upstream_message;
use attempt::{try_target, Attempt, Tried};
use bytes::Bytes;
use futures::stream::BoxStream;
pub use probe::{probe, ProbeResult};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
pub use usage::Usage;
pub use view::RequestView;

/// A chat request as a surface hands it to the core.
pub struct ChatCall {
    pub request_id: String,
    pub key_id: Option<String>,
    pub endpoint: &'static str,
    /// The client's body as it came: an OpenAI Chat upstream gets these
    /// bytes with only `model` (and the stream's usage option) rewritten.
    pub raw: Bytes,
    /// What routing reads from the body (model, stream, output budget…).
    pub view: RequestView,
    /// When the surface received the request.
    pub started: Instant,
    /// `x-session-id` from the client, for sticky routing.
    pub session: Option<String>,
    /// A request in another format (Anthropic, Responses, Gemini): answers
    /// come back in its format (its `raw` and `view` are the same as here).
    pub native: Option<Arc<native::Native>>,
    /// What the client's headers ask of the cache and idempotency.
    pub hints: crate::cache::RequestHints,
}

impl ChatCall {
    /// An OpenAI Chat request: its view is read from `raw` in one pass,
    /// without a document; a body that is not a JSON object with a model is
    /// refused here.
    pub fn openai(
        request_id: String,
        key_id: Option<String>,
        endpoint: &'static str,
        raw: Bytes,
        started: Instant,
        session: Option<String>,
    ) -> Result<ChatCall, ProxyError> {
        let view = RequestView::peek(WireFormat::Openai, &raw)
            .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
        Ok(ChatCall {
            request_id,
            key_id,
            endpoint,
            raw,
            view,
            started,
            session,
            native: None,
            hints: Default::default(),
        })
    }

    /// An OpenAI Chat request the gateway writes itself (summaries, judges, MCP/A2A).
    pub fn from_map(
        request_id: String,
        key_id: Option<String>,
        endpoint: &'static str,
        body: &Map<String, Value>,
        started: Instant,
    ) -> Result<ChatCall, ProxyError> {
        let raw = serde_json::to_vec(body).map_err(|e| ProxyError::BadRequest(e.to_string()))?;
        ChatCall::openai(
            request_id,
            key_id,
            endpoint,
            Bytes::from(raw),
            started,
            None,
        )
    }

    /// A request in another format, already decoded by its surface.
    pub fn native(
        request_id: String,
        key_id: Option<String>,
        endpoint: &'static str,
        native: native::Native,
        started: Instant,
        session: Option<String>,
    ) -> ChatCall {
        ChatCall {
            request_id,
            key_id,
            endpoint,
            raw: native.raw.clone(),
            view: native.view.clone(),
            started,
            session,
            native: Some(Arc::new(native)),
            hints: Default::default(),
        }
    }

    fn session_key(&self) -> Option<String> {
        match self.session.as_deref() {
            Some(s) if !s.is_empty() => Some(s.to_string()),
            _ => view::session_from_raw(&self.raw),
        }
    }
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
    /// The combo the request named, if any.
    pub combo: Option<String>,
    pub strategy: Option<String>,
    /// Tier of the target that answered.
    pub tier: String,
    /// Targets left out and why (breaker, cooldown, budget, context).
    pub skipped: Vec<String>,
    /// Set when the conversation was summarised to fit the target (context relay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_relay: Option<String>,
    /// `client->upstream` wire formats when either is not OpenAI Chat
    /// (`anthropic->anthropic`: forwarded as it came).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translation: Option<String>,
    /// What the translation could not carry over (thinking dropped…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub translation_notes: Vec<String>,
    /// Every attempt with its timing, for the request's trace.
    #[serde(skip)]
    #[schemars(skip)]
    pub spans: Vec<usage::AttemptSpan>,
    /// What the cache did (hit, miss, bypass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<crate::cache::CacheInfo>,
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
    /// When it was sent (ms after the request arrived) and how long it took.
    #[serde(skip)]
    #[schemars(skip)]
    pub timing: Option<(f64, f64)>,
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

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProxyError {
    #[error("{0}")]
    BadRequest(String),
    /// An idempotency key reused for a different request.
    #[error("{0}")]
    IdempotencyConflict(String),
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
    #[error("no target can serve `{requested}` now: {}", .skipped.join("; "))]
    NoTarget {
        requested: String,
        skipped: Vec<String>,
        /// Every target was left out by a budget.
        budget_only: bool,
        retry_after_s: Option<f64>,
    },
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
            ProxyError::IdempotencyConflict(_) => 422,
            ProxyError::Resolve(_) => 404,
            ProxyError::Unsupported(_) => 501,
            ProxyError::Rejected { status, .. } => *status,
            ProxyError::Timeout(..) => 504,
            ProxyError::NoTarget {
                budget_only: true, ..
            } => 429,
            ProxyError::NoTarget { .. } => 503,
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

    pub fn retry_after(&self) -> Option<String> {
        match self {
            ProxyError::AllFailed { attempts } => {
                attempts.iter().rev().find_map(|a| a.retry_after.clone())
            }
            ProxyError::NoTarget {
                retry_after_s: Some(s),
                ..
            } => Some(format!("{}", s.ceil().max(1.0) as u64)),
            _ => None,
        }
    }
}

/// Longest wait before retrying the same target when no other remains.
const MAX_SAME_TARGET_WAIT: Duration = Duration::from_secs(3);

/// Serve one OpenAI Chat Completions request.
pub async fn chat(gw: &Gateway, call: ChatCall) -> Result<ChatOutcome, ProxyError> {
    if call.view.model.is_empty() {
        return Err(ProxyError::BadRequest("`model` is required".into()));
    }
    let requested = call.view.model.clone();
    let stream = call.view.stream;
    crate::cache::serve(gw, call, requested, stream).await
}

/// Plan the request and try its targets (what the cache layer calls when
/// it does not answer itself); a failure is recorded.
pub(crate) async fn forward(
    gw: &Gateway,
    call: &ChatCall,
    requested: &str,
    stream: bool,
) -> Result<ChatOutcome, ProxyError> {
    let result = attempt_all(gw, call, requested, stream).await;
    if let Err(e) = &result {
        record_failure(gw, call, requested, stream, e);
    }
    result
}

/// About how many bytes `v` takes as JSON text, without writing it out
/// (a long conversation would otherwise be serialised on every request).
pub fn json_len(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 8,
        Value::String(s) => s.len() + 2,
        Value::Array(a) => 2 + a.iter().map(|v| json_len(v) + 1).sum::<usize>(),
        Value::Object(o) => {
            2 + o
                .iter()
                .map(|(k, v)| k.len() + 4 + json_len(v))
                .sum::<usize>()
        }
    }
}

fn plan_error(e: PlanError) -> ProxyError {
    match e {
        PlanError::Resolve(r) => ProxyError::Resolve(r),
        PlanError::Combo(c) => ProxyError::BadRequest(c.to_string()),
    }
}

async fn attempt_all(
    gw: &Gateway,
    call: &ChatCall,
    requested: &str,
    stream: bool,
) -> Result<ChatOutcome, ProxyError> {
    let registry = gw.registry();
    let output_tokens = call.view.max_tokens.unwrap_or(DEFAULT_OUTPUT_TOKENS);
    // Only sticky combos use the session; hashing the conversation otherwise
    // costs every request for nothing.
    let sticky = registry
        .combo(requested)
        .is_some_and(|c| c.sticky || c.strategy.implies_sticky())
        || crate::subscription::pooled(&registry, requested);
    let session = if sticky { call.session_key() } else { None };
    let shape = Shape {
        input_tokens: call.view.estimate_tokens(),
        output_tokens,
        session: session.clone(),
        key_id: call.key_id.clone(),
    };
    let plan = plan::plan(&registry, &gw.routing, requested, &shape).map_err(plan_error)?;
    let limits = plan
        .combo
        .as_ref()
        .map(|c| c.limits.clone())
        .unwrap_or_default();
    let dur = |v: &Option<String>| v.as_deref().and_then(|s| humantime::parse_duration(s).ok());
    let total = dur(&limits.total_timeout).unwrap_or(gw.settings.upstream_timeout);
    let attempt_timeout = dur(&limits.attempt_timeout).unwrap_or(total).min(total);
    // The gateway asks an OpenAI stream for usage; the extra chunk is
    // hidden when the client did not ask for it.
    let strip_usage_only = stream && call.native.is_none() && call.view.include_usage != Some(true);
    let ctx = Attempt {
        gw,
        registry: registry.clone(),
        call,
        requested,
        stream,
        strip_usage_only,
        attempt_timeout,
        deadline: Instant::now() + total,
        combo: plan.combo.as_ref().map(|c| c.name.clone()),
        strategy: plan.strategy,
        state: plan.state.clone(),
        est_tokens: shape.input_tokens + shape.output_tokens,
        session,
        summarizer: plan.combo.as_ref().and_then(|c| c.summarizer_model.clone()),
    };
    let mut skipped: Vec<String> = plan
        .skipped
        .iter()
        .map(|s| format!("{}: {}", s.target, s.reason))
        .collect();
    let mut attempts: Vec<AttemptError> = Vec::new();
    let mut last_failure: Option<(usize, FailureClass, Option<Duration>)> = None;

    let fusion = plan.combo.as_ref().and_then(|c| c.fusion.clone());
    if plan.strategy == StrategyKind::Fusion && !stream && plan.targets.len() >= 2 {
        let fan_out = fusion.as_ref().map(|f| f.fan_out).unwrap_or(2) as usize;
        if let Some(done) = fusion::run_fusion(
            &ctx,
            &plan.targets,
            fan_out,
            fusion.and_then(|f| f.judge),
            &mut attempts,
            &mut skipped,
        )
        .await?
        {
            return Ok(done);
        }
    } else {
        for (i, p) in plan.targets.iter().enumerate() {
            match try_target(&ctx, p, &attempts, &skipped).await {
                Tried::Done(outcome) => return Ok(outcome),
                Tried::Skipped(reason) => skipped.push(format!("{}: {reason}", p.key)),
                Tried::Failed(err, class, retry_after) => {
                    if class == FailureClass::ClientFault {
                        return Err(ProxyError::Rejected {
                            provider: err.provider,
                            status: err.status.unwrap_or(400),
                            message: err.message,
                        });
                    }
                    attempts.push(err);
                    last_failure = Some((i, class, retry_after));
                }
            }
        }
    }
    // No other target remains: wait and retry the last one, within the deadline.
    if let Some((i, class, retry_after)) = last_failure {
        if matches!(class, FailureClass::Transient | FailureClass::RateLimited) {
            for _ in 0..limits.retries_per_target {
                let wait = retry_after.unwrap_or(Duration::from_millis(500));
                if wait > MAX_SAME_TARGET_WAIT || Instant::now() + wait >= ctx.deadline {
                    break;
                }
                tokio::time::sleep(wait).await;
                match try_target(&ctx, &plan.targets[i], &attempts, &skipped).await {
                    Tried::Done(outcome) => return Ok(outcome),
                    Tried::Skipped(reason) => {
                        skipped.push(format!("{}: {reason}", plan.targets[i].key));
                        break;
                    }
                    Tried::Failed(err, _, _) => attempts.push(err),
                }
            }
        }
    }
    if attempts.is_empty() {
        let budget_only = !plan.skipped.is_empty() && plan.skipped.iter().all(|s| s.budget);
        let retry_after_s = plan
            .skipped
            .iter()
            .filter_map(|s| s.wait_s)
            .reduce(f64::min);
        return Err(ProxyError::NoTarget {
            requested: requested.to_string(),
            skipped,
            budget_only,
            retry_after_s,
        });
    }
    if attempts
        .iter()
        .all(|a| a.status.is_none() && a.message.contains("no response within"))
    {
        return Err(ProxyError::Timeout(total, attempts));
    }
    Err(ProxyError::AllFailed { attempts })
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
    let text = gw.registry().redactor().clean(&e.to_string());
    event.error = Some(text.chars().take(1000).collect());
    event.route = usage::failure_trace(e);
    gw.store.record_usage(event);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_for_failures() {
        let a = |s| AttemptError {
            provider: "p".into(),
            account_id: "a".into(),
            model: "m".into(),
            status: s,
            message: "x".into(),
            retry_after: Some("3".into()),
            timing: None,
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
            .retry_after()
            .as_deref(),
            Some("3")
        );
    }
}
