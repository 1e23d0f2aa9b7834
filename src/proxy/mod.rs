//! The proxy core: a chat call resolved to targets, tried in order, answered
//! whole or as a relayed stream, with usage recorded off the hot path.
//! Knows nothing of axum; surfaces adapt `ChatOutcome` and `ProxyError`.

use crate::catalog::WireFormat;
mod context_relay;
pub mod native;
mod relay;
pub mod usage;

use crate::gateway::Gateway;
use crate::registry::{ResolveError, Target};
use crate::routing::breaker::Admission;
use crate::routing::budget::Reservation;
use crate::routing::classify::{self, classify, FailureClass};
use crate::routing::health;
use crate::routing::plan::{self, PlanError, Planned, Shape, DEFAULT_OUTPUT_TOKENS};
use crate::routing::strategy::{self, ComboState, StrategyKind};
use crate::routing::Routing;
use crate::store::{now_ms, UsageEvent};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::{Map, Value};
use std::sync::Arc;
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
    /// `x-session-id` from the client, for sticky routing.
    pub session: Option<String>,
    /// A request in another format (Anthropic, Responses, Gemini): `body`
    /// is then only its routing view, and answers come back in its format.
    pub native: Option<Arc<native::Native>>,
    /// What the client's headers ask of the cache and idempotency.
    pub hints: crate::cache::RequestHints,
}

impl ChatCall {
    fn estimate_tokens(&self) -> u64 {
        match &self.native {
            Some(n) => n.estimate_tokens(),
            None => estimate_tokens(&self.body),
        }
    }

    fn session_key(&self) -> Option<String> {
        match (&self.native, self.session.as_deref()) {
            (Some(n), None | Some("")) => n.session(),
            _ => session_of(self.session.as_deref(), &self.body),
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

const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// Longest wait before retrying the same target when no other remains.
const MAX_SAME_TARGET_WAIT: Duration = Duration::from_secs(3);

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

/// Rough prompt size: a token is about four bytes of JSON text.
pub fn estimate_tokens(body: &Map<String, Value>) -> u64 {
    let chars = body.get("messages").map_or(0, json_len);
    (chars / 4) as u64
}

/// About how many bytes `v` takes as JSON text, without writing it out
/// (a long conversation would otherwise be serialised on every request).
pub(crate) fn json_len(v: &Value) -> usize {
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

/// `x-session-id`, else a hash of the conversation's first messages.
pub fn session_of(explicit: Option<&str>, body: &Map<String, Value>) -> Option<String> {
    if let Some(s) = explicit.filter(|s| !s.is_empty()) {
        return Some(s.to_string());
    }
    let first: Vec<&Value> = body.get("messages")?.as_array()?.iter().take(2).collect();
    if first.is_empty() {
        return None;
    }
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for m in first {
        h.update(m.to_string().as_bytes());
    }
    Some(format!("h:{}", hex::encode(&h.finalize()[..12])))
}

fn plan_error(e: PlanError) -> ProxyError {
    match e {
        PlanError::Resolve(r) => ProxyError::Resolve(r),
        PlanError::Combo(c) => ProxyError::BadRequest(c.to_string()),
    }
}

struct Attempt<'a> {
    gw: &'a Gateway,
    /// The snapshot this request was planned on (its secrets are redacted from upstream text).
    registry: Arc<crate::registry::Registry>,
    call: &'a ChatCall,
    requested: &'a str,
    stream: bool,
    strip_usage_only: bool,
    attempt_timeout: Duration,
    deadline: Instant,
    combo: Option<String>,
    strategy: StrategyKind,
    state: Option<Arc<ComboState>>,
    est_tokens: u64,
    /// Set for sticky combos only.
    session: Option<String>,
    /// The combo's summariser for context relay.
    summarizer: Option<String>,
}

// Returned once per attempt: boxing the outcome would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
enum Tried {
    Done(ChatOutcome),
    Skipped(String),
    Failed(AttemptError, FailureClass, Option<Duration>),
}

/// Releases a half-open probe and a budget reservation if the attempt ends
/// without an outcome (client gone, lost a fusion race).
struct AttemptGuard {
    routing: Arc<Routing>,
    key: String,
    probe: bool,
    reservation: Option<Reservation>,
}

impl AttemptGuard {
    fn settle(&mut self, usd: f64, tokens: u64) {
        if let Some(r) = self.reservation.take() {
            self.routing.budgets.settle(r, usd, tokens);
        }
        self.probe = false;
    }
}

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        if self.probe {
            self.routing.health.release(&self.key);
        }
        if let Some(r) = self.reservation.take() {
            self.routing.budgets.settle(r, 0.0, 0);
        }
    }
}

async fn attempt_all(
    gw: &Gateway,
    call: &ChatCall,
    requested: &str,
    stream: bool,
) -> Result<ChatOutcome, ProxyError> {
    let registry = gw.registry();
    let output_tokens = call
        .body
        .get("max_completion_tokens")
        .or_else(|| call.body.get("max_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_OUTPUT_TOKENS);
    // Only sticky combos use the session; hashing the conversation otherwise
    // costs every request for nothing.
    let sticky = registry
        .combo(requested)
        .is_some_and(|c| c.sticky || c.strategy.implies_sticky());
    let session = if sticky { call.session_key() } else { None };
    let shape = Shape {
        input_tokens: call.estimate_tokens(),
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
    let mut body = call.body.clone();
    // Ask for usage in the stream; hide the extra chunk if the client did not ask.
    let mut strip_usage_only = false;
    if stream && call.native.is_none() {
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
        if let Some(done) = run_fusion(
            &ctx,
            &plan.targets,
            fan_out,
            fusion.and_then(|f| f.judge),
            &body,
            &mut attempts,
            &mut skipped,
        )
        .await?
        {
            return Ok(done);
        }
    } else {
        for (i, p) in plan.targets.iter().enumerate() {
            match try_target(&ctx, &mut body, p, &attempts, &skipped).await {
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
                match try_target(&ctx, &mut body, &plan.targets[i], &attempts, &skipped).await {
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

#[allow(clippy::too_many_arguments)]
async fn run_fusion(
    ctx: &Attempt<'_>,
    targets: &[Planned],
    fan_out: usize,
    judge: Option<String>,
    body: &Map<String, Value>,
    attempts: &mut Vec<AttemptError>,
    skipped: &mut Vec<String>,
) -> Result<Option<ChatOutcome>, ProxyError> {
    use futures::stream::FuturesUnordered;
    let mut racing: FuturesUnordered<_> = targets
        .iter()
        .take(fan_out)
        .map(|p| {
            let mut body = body.clone();
            async move { (p, try_target(ctx, &mut body, p, &[], &[]).await) }
        })
        .collect();
    let mut answers: Vec<(String, ChatOutcome)> = Vec::new();
    while let Some((p, tried)) = racing.next().await {
        match tried {
            Tried::Done(outcome) => {
                if judge.is_none() {
                    // first good answer wins; the others are cancelled
                    return Ok(Some(outcome));
                }
                answers.push((p.key.clone(), outcome));
            }
            Tried::Skipped(reason) => skipped.push(format!("{}: {reason}", p.key)),
            Tried::Failed(err, class, _) => {
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
    drop(racing);
    let Some(judge) = judge else { return Ok(None) };
    if answers.len() < 2 {
        return Ok(answers.pop().map(|(_, o)| o));
    }
    let native = ctx.call.native.as_deref();
    let mut texts = Vec::new();
    for (key, outcome) in &answers {
        if let ChatOutcome::Complete { body, .. } = outcome {
            let text = match native {
                Some(n) => native::answer_text(n.format, body),
                None => {
                    let v: Value = serde_json::from_slice(body).unwrap_or_default();
                    v.pointer("/choices/0/message/content")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                }
            };
            texts.push(format!("Answer from {key}:\n{text}"));
        }
    }
    let full;
    let body = match native {
        Some(n) => match n.openai_body(&judge) {
            Ok(b) => {
                full = b;
                &full
            }
            Err(_) => return Ok(answers.into_iter().next().map(|(_, o)| o)),
        },
        None => body,
    };
    let mut judge_body = body.clone();
    let mut messages = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    messages.push(serde_json::json!({
        "role": "user",
        "content": format!("Several assistants answered the request above. Merge them into the single best answer; reply with that answer only.\n\n{}", texts.join("\n\n")),
    }));
    judge_body.insert("messages".into(), Value::Array(messages));
    judge_body.insert("model".into(), Value::String(judge.clone()));
    let judge_call = ChatCall {
        request_id: ctx.call.request_id.clone(),
        key_id: ctx.call.key_id.clone(),
        endpoint: ctx.call.endpoint,
        body: judge_body,
        started: ctx.call.started,
        session: None,
        native: None,
        hints: Default::default(),
    };
    match Box::pin(attempt_all(ctx.gw, &judge_call, &judge, false)).await {
        Ok(ChatOutcome::Complete {
            status,
            body,
            mut route,
            usage,
        }) => {
            route.failed.push(format!(
                "fusion: merged {} answers with {judge}",
                answers.len()
            ));
            // The judge answered in OpenAI Chat; the client may speak something else.
            let (body, usage) = match native {
                Some(n) => {
                    let mode = native::Mode::Translate {
                        client: n.format,
                        ctx: n.ctx.clone(),
                    };
                    let conversation = n.conversation.as_ref().map(|c| (c, &ctx.gw.store));
                    match native::answer(&mode, WireFormat::Openai, body, conversation) {
                        Ok((b, u)) => (b, u.or(usage)),
                        Err(_) => return Ok(answers.into_iter().next().map(|(_, o)| o)),
                    }
                }
                None => (body, usage),
            };
            Ok(Some(ChatOutcome::Complete {
                status,
                body,
                route,
                usage,
            }))
        }
        // the judge failed: the first answer still stands
        _ => Ok(answers.into_iter().next().map(|(_, o)| o)),
    }
}

async fn try_target(
    ctx: &Attempt<'_>,
    body: &mut Map<String, Value>,
    p: &Planned,
    earlier: &[AttemptError],
    skipped: &[String],
) -> Tried {
    let gw = ctx.gw;
    let routing = &gw.routing;
    let target = &p.target;
    let now = Instant::now();
    if now >= ctx.deadline {
        return Tried::Skipped("total deadline reached".into());
    }
    let admission = routing.health.admit(&p.key);
    if admission == Admission::Rejected {
        return Tried::Skipped("circuit breaker open".into());
    }
    let mut guard = AttemptGuard {
        routing: routing.clone(),
        key: p.key.clone(),
        probe: admission == Admission::Probe,
        reservation: None,
    };
    match routing.budgets.reserve(
        &p.subjects,
        p.est_cost.unwrap_or(0.0),
        ctx.est_tokens,
        now_ms(),
    ) {
        Ok(r) => guard.reservation = Some(r),
        Err(e) => return Tried::Skipped(e.to_string()),
    }
    body.insert("model".into(), Value::String(target.model.clone()));
    // Context relay: this target's window is too small for the conversation.
    let mut relay_note = None;
    let native = ctx.call.native.as_deref();
    let relayed = match (p.relay_window, &ctx.summarizer) {
        (Some(window), Some(summarizer)) => {
            // A native request is summarised in its OpenAI Chat form.
            let full = match native.map(|n| n.openai_body(&target.model)).transpose() {
                Ok(f) => f,
                Err(e) => return Tried::Skipped(format!("context relay failed: {e}")),
            };
            let source = full.as_ref().unwrap_or(body);
            match context_relay::summarise(gw, ctx.call, source, window, summarizer).await {
                Ok((b, note)) => {
                    relay_note = Some(note);
                    Some(b)
                }
                Err(e) => return Tried::Skipped(format!("context relay failed: {e}")),
            }
        }
        _ => None,
    };
    let out = match native::outgoing(
        native,
        body,
        relayed.as_ref(),
        target,
        ctx.stream,
        ctx.strip_usage_only,
    ) {
        Ok(o) => o,
        Err(native::Unsendable::Client(e)) => {
            return Tried::Failed(
                attempt_error(
                    target,
                    None,
                    format!("request cannot be encoded: {e}"),
                    None,
                ),
                FailureClass::ClientFault,
                None,
            )
        }
        Err(native::Unsendable::Target(e)) => {
            return Tried::Skipped(format!(
                "request cannot be translated for this upstream: {e}"
            ))
        }
    };
    let timeout = ctx
        .attempt_timeout
        .min(ctx.deadline.saturating_duration_since(now));
    let sent = Instant::now();
    let fail = |guard: &mut AttemptGuard,
                status: Option<u16>,
                message: String,
                retry_after: Option<String>| {
        // Upstream words may echo the key they were sent: scrub before
        // they reach health, the usage table, a log or the client.
        let message = ctx.registry.redactor().clean(&message);
        let class = classify(status, &message);
        let wait = retry_after.as_deref().and_then(classify::retry_after);
        let rows = routing
            .health
            .record_failure(&p.key, &target.account.id, class, wait, &message);
        persist_health(gw, rows);
        guard.settle(0.0, 0);
        tracing::warn!(target = %p.key, ?status, class = class.as_str(), "upstream attempt failed");
        Tried::Failed(
            attempt_error(target, status, message, retry_after),
            class,
            wait,
        )
    };
    let request = gw.upstream.send(
        target,
        out.format,
        out.bytes.clone(),
        ctx.stream,
        &out.headers,
    );
    let response = match tokio::time::timeout(timeout, request.send()).await {
        Err(_) => {
            return fail(
                &mut guard,
                None,
                format!("no response within {timeout:?}"),
                None,
            )
        }
        Ok(Err(e)) => return fail(&mut guard, None, describe_reqwest(&e), None),
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
        return fail(
            &mut guard,
            Some(status),
            upstream_message(&text),
            retry_after,
        );
    }
    let quota = health::quota_from_headers(response.headers());
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    let route = |upstream_ms: f64| RouteInfo {
        provider: target.provider.spec.id.clone(),
        account_id: target.account.id.clone(),
        model: target.model.clone(),
        attempts: earlier.len() as u32 + 1,
        upstream_ms,
        overhead_ms: (ctx.call.started.elapsed().as_secs_f64() * 1000.0 - upstream_ms).max(0.0),
        failed: earlier.iter().map(|a| a.to_string()).collect(),
        cost_usd: None,
        combo: ctx.combo.clone(),
        strategy: ctx
            .combo
            .as_ref()
            .map(|_| ctx.strategy.as_str().to_string()),
        tier: p.tier.as_str().to_string(),
        skipped: skipped.to_vec(),
        context_relay: relay_note.clone(),
        translation: out.translation.clone(),
        translation_notes: out.notes.clone(),
        cache: None,
    };
    let succeed = |latency_ms: f64| {
        let row = routing
            .health
            .record_success(&p.key, &target.account.id, latency_ms, quota);
        persist_health(gw, row.into_iter().collect());
        if let Some(state) = &ctx.state {
            strategy::on_success(state, &p.key);
        }
    };
    if ctx.stream {
        // Commit to this target only once its first chunk has arrived.
        let mut rest = response.bytes_stream().boxed();
        let remaining = timeout.saturating_sub(sent.elapsed());
        let first = match tokio::time::timeout(remaining, rest.next()).await {
            Ok(Some(Ok(chunk))) => chunk,
            Ok(Some(Err(e))) => {
                return fail(
                    &mut guard,
                    None,
                    format!(
                        "stream failed before its first chunk: {}",
                        describe_reqwest(&e)
                    ),
                    None,
                )
            }
            Ok(None) => {
                return fail(
                    &mut guard,
                    None,
                    "stream ended before its first chunk".into(),
                    None,
                )
            }
            Err(_) => {
                return fail(
                    &mut guard,
                    None,
                    format!("no response within {timeout:?}"),
                    None,
                )
            }
        };
        // Wait for the first whole event: an error there (split over TCP
        // chunks or not) has reached no client yet, so another target can
        // still be tried; so can an HTML page answered with 200.
        let remaining = timeout.saturating_sub(sent.elapsed());
        let first = match tokio::time::timeout(remaining, first_event(first, &mut rest)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(message)) => return fail(&mut guard, None, message, None),
            Err(_) => {
                return fail(
                    &mut guard,
                    None,
                    format!("no response within {timeout:?}"),
                    None,
                )
            }
        };
        if looks_like_html(content_type.as_deref(), &first) {
            return fail(
                &mut guard,
                Some(502),
                not_an_api_answer(content_type.as_deref(), &first),
                None,
            );
        }
        if let Some(e) = crate::formats::observe::early_error(out.format, &first) {
            return fail(&mut guard, Some(e.status), e.message, None);
        }
        let upstream_ms = ms(sent.elapsed());
        succeed(upstream_ms);
        remember_session(ctx, p);
        let route = route(upstream_ms);
        let mut event = usage_event(ctx.call, ctx.requested, Some(target), true, status);
        event.tier = Some(p.tier.as_str().into());
        event.combo = ctx.combo.clone();
        gw.metrics.observe_overhead(route.overhead_ms);
        let mut end_guard = guard;
        let routing_end = routing.clone();
        let (key, account) = (p.key.clone(), target.account.id.clone());
        let store = gw.store.clone();
        let usage_guard = relay::UsageGuard::new(
            gw.store.clone(),
            event,
            target.model_info().cloned(),
            upstream_ms,
            route.overhead_ms,
        )
        .redacting(ctx.registry.redactor().clone())
        .on_end(move |outcome, cost, tokens| {
            end_guard.settle(cost.unwrap_or(0.0), tokens);
            if outcome == "upstream_error" {
                let rows = routing_end.health.record_failure(
                    &key,
                    &account,
                    FailureClass::Transient,
                    None,
                    "stream interrupted",
                );
                if !rows.is_empty() {
                    store.write_detached("target health", move |tx| {
                        crate::store::put_health(tx, &rows)
                    });
                }
            }
        });
        let pipe = match (&out.mode, native) {
            (native::Mode::Pass, None) => relay::Pipe::OpenAi {
                strip_usage_only: ctx.strip_usage_only,
            },
            (native::Mode::Pass, Some(n)) => relay::Pipe::same(n.format, n.ctx.clone()),
            (native::Mode::Translate { client, ctx }, _) => {
                relay::Pipe::translate(out.format, *client, ctx)
            }
        };
        let hook = native
            .and_then(|n| n.conversation.clone())
            .map(|conversation| relay::ResponseHook {
                conversation,
                store: gw.store.clone(),
            });
        let events = relay::relay(
            first,
            rest,
            pipe,
            relay::RelayOptions {
                keep_alive: gw.settings.keep_alive,
                idle_timeout: gw.settings.upstream_timeout,
                streams: gw.streams.clone(),
            },
            usage_guard,
            hook,
        );
        return Tried::Done(ChatOutcome::Stream {
            status,
            events,
            route,
        });
    }
    let remaining = timeout.saturating_sub(sent.elapsed());
    let body = match tokio::time::timeout(remaining, response.bytes()).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return fail(&mut guard, None, describe_reqwest(&e), None),
        Err(_) => {
            return fail(
                &mut guard,
                None,
                format!("no response within {timeout:?}"),
                None,
            )
        }
    };
    // A 200 that is not an API answer (a captive portal, a proxy's HTML
    // error page, a load balancer's notice) is an upstream failure: fall back.
    if !is_json_answer(content_type.as_deref(), &body) {
        return fail(
            &mut guard,
            Some(502),
            not_an_api_answer(content_type.as_deref(), &body),
            None,
        );
    }
    let (body, usage) = match (&out.mode, native) {
        (native::Mode::Pass, None) => {
            let usage = usage::from_openai_body(&body);
            (body, usage)
        }
        (mode, _) => {
            let conversation = native
                .and_then(|n| n.conversation.as_ref())
                .map(|c| (c, &gw.store));
            match native::answer(mode, out.format, body, conversation) {
                Ok(done) => done,
                Err(e) => {
                    return fail(
                        &mut guard,
                        Some(502),
                        format!("the upstream's answer could not be read: {e}"),
                        None,
                    )
                }
            }
        }
    };
    let upstream_ms = ms(sent.elapsed());
    succeed(upstream_ms);
    remember_session(ctx, p);
    let mut route = route(upstream_ms);
    let mut event = usage_event(ctx.call, ctx.requested, Some(target), false, status);
    fill_usage(&mut event, usage.unwrap_or_default(), target);
    guard.settle(
        event.cost_usd.unwrap_or(0.0),
        event.input_tokens + event.output_tokens,
    );
    route.cost_usd = event.cost_usd;
    event.outcome = "ok".into();
    event.upstream_ms = Some(upstream_ms);
    event.overhead_ms = Some(route.overhead_ms);
    event.latency_ms = ms(ctx.call.started.elapsed());
    event.tier = Some(p.tier.as_str().into());
    event.combo = ctx.combo.clone();
    gw.store.record_usage(event);
    gw.metrics.observe_overhead(route.overhead_ms);
    Tried::Done(ChatOutcome::Complete {
        status,
        body,
        route,
        usage,
    })
}

/// Most bytes held back while waiting for the first whole stream event.
const FIRST_EVENT_LIMIT: usize = 256 * 1024;

/// Read on until `first` holds a complete SSE event with data (comment
/// lines before it, such as keep-alives, do not count).
async fn first_event(
    first: Bytes,
    rest: &mut BoxStream<'static, reqwest::Result<Bytes>>,
) -> Result<Bytes, String> {
    if has_data_event(&first) {
        return Ok(first);
    }
    let mut buf = first.to_vec();
    while buf.len() < FIRST_EVENT_LIMIT {
        match rest.next().await {
            Some(Ok(chunk)) => {
                buf.extend_from_slice(&chunk);
                if has_data_event(&buf) {
                    break;
                }
            }
            Some(Err(e)) => {
                return Err(format!(
                    "stream failed before its first event: {}",
                    describe_reqwest(&e)
                ))
            }
            // Ended early: what arrived is judged as it is.
            None => break,
        }
    }
    Ok(Bytes::from(buf))
}

/// Does `buf` hold a whole event carrying a `data:` line (or is it plainly not SSE)?
fn has_data_event(buf: &[u8]) -> bool {
    let text = match buf.iter().position(|b| !b.is_ascii_whitespace()) {
        Some(i) => &buf[i..],
        None => return false,
    };
    // Not an event stream at all (HTML, a JSON error body): nothing to wait for.
    if !(text.starts_with(b"data:")
        || text.starts_with(b"event:")
        || text.starts_with(b":")
        || text.starts_with(b"id:")
        || text.starts_with(b"retry:"))
    {
        return true;
    }
    let mut start = 0;
    let mut i = 0;
    while i < text.len() {
        let sep = if text[i..].starts_with(b"\n\n") {
            2
        } else if text[i..].starts_with(b"\r\n\r\n") {
            4
        } else {
            i += 1;
            continue;
        };
        let event = &text[start..i];
        if event
            .split(|b| *b == b'\n')
            .any(|l| l.starts_with(b"data:"))
        {
            return true;
        }
        i += sep;
        start = i;
    }
    false
}

fn first_bytes(body: &[u8]) -> &[u8] {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    &body[start..]
}

fn looks_like_html(content_type: Option<&str>, body: &[u8]) -> bool {
    content_type.is_some_and(|c| c.starts_with("text/html")) || first_bytes(body).starts_with(b"<")
}

/// Is a 200 body an API answer: a JSON object, not declared as HTML?
/// (Some local servers label JSON `text/plain`, so only HTML is refused by
/// its label.)
fn is_json_answer(content_type: Option<&str>, body: &[u8]) -> bool {
    !looks_like_html(content_type, body) && first_bytes(body).starts_with(b"{")
}

fn not_an_api_answer(content_type: Option<&str>, body: &[u8]) -> String {
    let snippet: String =
        String::from_utf8_lossy(&first_bytes(body)[..first_bytes(body).len().min(80)])
            .chars()
            .filter(|c| !c.is_control())
            .collect();
    format!(
        "the upstream answered 200 with {} instead of an API answer: {snippet:?}",
        content_type.unwrap_or("no content type")
    )
}

fn remember_session(ctx: &Attempt<'_>, p: &Planned) {
    if let Some(session) = &ctx.session {
        ctx.gw.routing.remember_session(session, &p.key);
    }
}

fn persist_health(gw: &Gateway, rows: Vec<health::HealthRow>) {
    if !rows.is_empty() {
        gw.store.write_detached("target health", move |tx| {
            crate::store::put_health(tx, &rows)
        });
    }
}

fn attempt_error(
    target: &Target,
    status: Option<u16>,
    message: String,
    retry_after: Option<String>,
) -> AttemptError {
    AttemptError {
        provider: target.provider.spec.id.clone(),
        account_id: target.account.id.clone(),
        model: target.model.clone(),
        status,
        message,
        retry_after,
    }
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
    let text = gw.registry().redactor().clean(&e.to_string());
    event.error = Some(text.chars().take(1000).collect());
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
            .retry_after()
            .as_deref(),
            Some("3")
        );
    }
}

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
            Ok(Err(e)) => Err((None, describe_reqwest(&e))),
            Ok(Ok(r)) if r.status().is_success() => match r.bytes().await {
                Ok(_) => Ok(()),
                Err(e) => Err((None, describe_reqwest(&e))),
            },
            Ok(Ok(r)) => {
                let status = r.status().as_u16();
                let text = read_limited(r, ERROR_BODY_LIMIT).await;
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
