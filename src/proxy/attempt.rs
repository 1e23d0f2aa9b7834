//! One attempt at one target, top to bottom: admit it (deadline, breaker,
//! budget), encode what it is sent (forwarded bytes, a translation, or a
//! context-relay summary), send it and classify a refusal, then commit a
//! stream once its first whole event has arrived or finish a whole answer;
//! health, budgets and usage are settled on every way out.

use super::answers::{
    first_event, is_json_answer, looks_like_html, not_an_api_answer, upstream_message,
    ERROR_BODY_LIMIT,
};
use super::{
    context_relay, fill_usage, ms, native, relay, usage, usage_event, AttemptError, ChatCall,
    ChatOutcome, RouteInfo,
};
use crate::gateway::Gateway;
use crate::registry::Target;
use crate::routing::breaker::Admission;
use crate::routing::budget::Reservation;
use crate::routing::classify::{self, classify, FailureClass};
use crate::routing::health;
use crate::routing::plan::Planned;
use crate::routing::strategy::{self, ComboState, StrategyKind};
use crate::routing::Routing;
use crate::store::now_ms;
use futures::StreamExt;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What every attempt of one request shares.
pub(super) struct Attempt<'a> {
    pub gw: &'a Gateway,
    /// The snapshot this request was planned on (its secrets are redacted from upstream text).
    pub registry: Arc<crate::registry::Registry>,
    pub call: &'a ChatCall,
    pub requested: &'a str,
    pub stream: bool,
    /// The client did not ask for usage in its stream: hide the usage-only chunk.
    pub strip_usage_only: bool,
    pub attempt_timeout: Duration,
    pub deadline: Instant,
    pub combo: Option<String>,
    pub strategy: StrategyKind,
    pub state: Option<Arc<ComboState>>,
    pub est_tokens: u64,
    /// Set for sticky combos only.
    pub session: Option<String>,
    /// The combo's summariser for context relay.
    pub summarizer: Option<String>,
}

// Returned once per attempt: boxing the outcome would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
pub(super) enum Tried {
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

/// One admitted attempt: what failing or succeeding must update.
struct Trial<'c, 'a> {
    ctx: &'c Attempt<'a>,
    p: &'c Planned,
    guard: AttemptGuard,
    /// When the request left for the upstream (for the trace's timing).
    sent_at: Option<Instant>,
}

impl Trial<'_, '_> {
    fn target(&self) -> &Target {
        &self.p.target
    }

    /// Record the failure (health, breaker, budget) and say how it failed.
    fn fail(&mut self, status: Option<u16>, message: String, retry_after: Option<String>) -> Tried {
        let (gw, p) = (self.ctx.gw, self.p);
        // Upstream words may echo the key they were sent: scrub before
        // they reach health, the usage table, a log or the client.
        let message = self.ctx.registry.redactor().clean(&message);
        let class = classify(status, &message);
        let wait = retry_after.as_deref().and_then(classify::retry_after);
        let rows =
            gw.routing
                .health
                .record_failure(&p.key, &p.target.account.id, class, wait, &message);
        persist_health(gw, rows);
        self.guard.settle(0.0, 0);
        tracing::warn!(target = %p.key, ?status, class = class.as_str(), "upstream attempt failed");
        let mut err = attempt_error(&p.target, status, message, retry_after);
        if let Some(at) = self.sent_at {
            err.timing = Some((
                ms(at.saturating_duration_since(self.ctx.call.started)),
                ms(at.elapsed()),
            ));
        }
        Tried::Failed(err, class, wait)
    }

    fn timed_out(&mut self, timeout: Duration) -> Tried {
        self.fail(None, format!("no response within {timeout:?}"), None)
    }

    /// Health, strategy state and session stickiness after a good answer.
    fn succeed(&self, latency_ms: f64, quota: Option<health::QuotaObservation>) {
        let (gw, p) = (self.ctx.gw, self.p);
        let row = gw
            .routing
            .health
            .record_success(&p.key, &p.target.account.id, latency_ms, quota);
        persist_health(gw, row.into_iter().collect());
        if let Some(state) = &self.ctx.state {
            strategy::on_success(state, &p.key);
        }
        if let Some(session) = &self.ctx.session {
            gw.routing.remember_session(session, &p.key);
        }
    }
}

/// What the route header will say, known before the answer.
struct RouteDraft<'c> {
    earlier: &'c [AttemptError],
    skipped: &'c [String],
    relay_note: Option<String>,
}

impl Trial<'_, '_> {
    fn route(&self, draft: &RouteDraft<'_>, out: &native::Outgoing, upstream_ms: f64) -> RouteInfo {
        let (ctx, p) = (self.ctx, self.p);
        let target = &p.target;
        RouteInfo {
            provider: target.provider.spec.id.clone(),
            account_id: target.account.id.clone(),
            model: target.model.clone(),
            attempts: draft.earlier.len() as u32 + 1,
            upstream_ms,
            overhead_ms: (ms(ctx.call.started.elapsed()) - upstream_ms).max(0.0),
            failed: draft.earlier.iter().map(|a| a.to_string()).collect(),
            cost_usd: None,
            combo: ctx.combo.clone(),
            strategy: ctx
                .combo
                .as_ref()
                .map(|_| ctx.strategy.as_str().to_string()),
            tier: p.tier.as_str().to_string(),
            skipped: draft.skipped.to_vec(),
            context_relay: draft.relay_note.clone(),
            translation: out.translation.clone(),
            translation_notes: out.notes.clone(),
            cache: None,
            spans: usage::spans(
                draft.earlier,
                Some(usage::AttemptSpan {
                    target: p.key.clone(),
                    start_ms: self
                        .sent_at
                        .map(|at| ms(at.saturating_duration_since(ctx.call.started)))
                        .unwrap_or(0.0),
                    duration_ms: upstream_ms,
                    status: Some(200),
                    error: None,
                }),
            ),
        }
    }
}

/// A response head from the upstream, with what the answer's reading needs.
struct Sent {
    response: crate::upstream::Response,
    status: u16,
    quota: Option<health::QuotaObservation>,
    content_type: Option<String>,
    at: Instant,
    timeout: Duration,
    /// Subscription kind of the account, when it is one.
    sub: Option<crate::catalog::SubscriptionKind>,
    /// The subscriber endpoint streams though the client asked for a whole answer.
    collect_stream: bool,
}

pub(super) async fn try_target(
    ctx: &Attempt<'_>,
    p: &Planned,
    earlier: &[AttemptError],
    skipped: &[String],
) -> Tried {
    let mut trial = match admit(ctx, p) {
        Ok(t) => t,
        Err(tried) => return tried,
    };
    let (out, relay_note) = match encode(ctx, p).await {
        Ok(v) => v,
        Err(tried) => return tried,
    };
    let sent = match send(&mut trial, &out).await {
        Ok(s) => s,
        Err(tried) => return tried,
    };
    let draft = RouteDraft {
        earlier,
        skipped,
        relay_note,
    };
    if ctx.stream {
        commit_stream(trial, out, sent, draft).await
    } else {
        finish_whole(trial, out, sent, draft).await
    }
}

/// Deadline, breaker and budget: may this target be tried now?
// The error is the attempt's outcome, returned once: not worth a box.
#[allow(clippy::result_large_err)]
fn admit<'c, 'a>(ctx: &'c Attempt<'a>, p: &'c Planned) -> Result<Trial<'c, 'a>, Tried> {
    let routing = &ctx.gw.routing;
    if Instant::now() >= ctx.deadline {
        return Err(Tried::Skipped("total deadline reached".into()));
    }
    let admission = routing.health.admit(&p.key);
    if admission == Admission::Rejected {
        return Err(Tried::Skipped("circuit breaker open".into()));
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
        Err(e) => return Err(Tried::Skipped(e.to_string())),
    }
    Ok(Trial {
        ctx,
        p,
        guard,
        sent_at: None,
    })
}

/// What this target is sent: the client's bytes (only `model` rewritten),
/// a translation, or, when its window is too small, a relayed summary.
#[allow(clippy::result_large_err)]
async fn encode(
    ctx: &Attempt<'_>,
    p: &Planned,
) -> Result<(native::Outgoing, Option<String>), Tried> {
    let target = &p.target;
    let native = ctx.call.native.as_deref();
    let mut relay_note = None;
    let relayed = match (p.relay_window, &ctx.summarizer) {
        (Some(window), Some(summarizer)) => {
            // Summarised in the request's OpenAI Chat form.
            let full = match native {
                Some(n) => n.openai_body(&target.model),
                None => serde_json::from_slice::<Map<String, Value>>(&ctx.call.raw)
                    .map_err(|e| e.to_string()),
            };
            let full = full.map_err(|e| Tried::Skipped(format!("context relay failed: {e}")))?;
            match context_relay::summarise(ctx.gw, ctx.call, &full, window, summarizer).await {
                Ok((mut b, note)) => {
                    relay_note = Some(note);
                    b.insert("model".into(), Value::String(target.model.clone()));
                    if ctx.stream && native.is_none() {
                        b.insert(
                            "stream_options".into(),
                            serde_json::json!({"include_usage": true}),
                        );
                    }
                    Some(b)
                }
                Err(e) => return Err(Tried::Skipped(format!("context relay failed: {e}"))),
            }
        }
        _ => None,
    };
    match native::outgoing(
        ctx.call,
        relayed.as_ref(),
        target,
        ctx.stream,
        ctx.strip_usage_only,
    ) {
        Ok(o) => Ok((o, relay_note)),
        Err(native::Unsendable::Client(e)) => Err(Tried::Failed(
            attempt_error(
                target,
                None,
                format!("request cannot be encoded: {e}"),
                None,
            ),
            FailureClass::ClientFault,
            None,
        )),
        Err(native::Unsendable::Target(e)) => Err(Tried::Skipped(format!(
            "request cannot be translated for this upstream: {e}"
        ))),
    }
}

/// Send `out` and read the response head; a refusal is classified here.
#[allow(clippy::result_large_err)]
async fn send(trial: &mut Trial<'_, '_>, out: &native::Outgoing) -> Result<Sent, Tried> {
    let ctx = trial.ctx;
    let gw = ctx.gw;
    let target = trial.target().clone();
    let timeout = ctx
        .attempt_timeout
        .min(ctx.deadline.saturating_duration_since(Instant::now()));
    let at = Instant::now();
    trial.sent_at = Some(at);
    // Subscription accounts: their own endpoint, token (refreshed when due) and envelope.
    let sub = target.provider.spec.subscription;
    let mut collect_stream = false;
    let request = match sub {
        Some(kind) => {
            let credential = ctx
                .call
                .native
                .as_deref()
                .and_then(|n| n.client_credential.as_ref());
            let id = &ctx.call.request_id;
            match crate::subscription::prepare(gw, &target, kind, out, ctx.stream, id, credential)
                .await
            {
                Ok(p) => {
                    collect_stream = p.collect_stream;
                    p.request
                }
                Err(crate::subscription::Unready::Skip(why)) => return Err(Tried::Skipped(why)),
                Err(crate::subscription::Unready::Account { status, message }) => {
                    return Err(trial.fail(status, message, None))
                }
            }
        }
        None => gw.upstream.send(
            &target,
            out.format,
            out.bytes.clone(),
            ctx.stream,
            &out.headers,
        ),
    };
    let response = match tokio::time::timeout(timeout, request.send()).await {
        Err(_) => return Err(trial.timed_out(timeout)),
        Ok(Err(e)) => return Err(trial.fail(None, e.describe().to_string(), None)),
        Ok(Ok(r)) => r,
    };
    let status = response.status().as_u16();
    if !response.status().is_success() {
        let mut retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let headers = sub.map(|_| response.headers().clone());
        let text = response.read_limited(ERROR_BODY_LIMIT).await;
        let mut message = upstream_message(&text);
        if let (Some(kind), Some(h)) = (sub, headers) {
            // An exhausted plan rests the account until the reset the provider names.
            if let Some(wait) = crate::subscription::on_error(gw, &target, kind, &h, status, &text)
            {
                retry_after = Some(format!("{:.3}", wait.as_secs_f64()));
                if status == 429 {
                    message = format!("{message} (plan quota exhausted until its reset)");
                }
            }
        }
        return Err(trial.fail(Some(status), message, retry_after));
    }
    let quota = match sub {
        Some(kind) => crate::subscription::observe(gw, &target, kind, response.headers()),
        None => health::quota_from_headers(response.headers()),
    };
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    Ok(Sent {
        response,
        status,
        quota,
        content_type,
        at,
        timeout,
        sub,
        collect_stream,
    })
}

/// Commit to this target once its first whole event has arrived (an error
/// or an HTML page before that still falls back), then relay the rest.
async fn commit_stream(
    mut trial: Trial<'_, '_>,
    out: native::Outgoing,
    sent: Sent,
    draft: RouteDraft<'_>,
) -> Tried {
    let (ctx, p) = (trial.ctx, trial.p);
    let gw = ctx.gw;
    let target = &p.target;
    let native = ctx.call.native.as_deref();
    let Sent {
        response,
        status,
        quota,
        content_type,
        at,
        timeout,
        sub,
        ..
    } = sent;
    let mut rest = response.bytes_stream().boxed();
    if let Some(kind) = sub {
        rest = crate::subscription::unwrap_stream(kind, rest);
    }
    let remaining = timeout.saturating_sub(at.elapsed());
    let first = match tokio::time::timeout(remaining, rest.next()).await {
        Ok(Some(Ok(chunk))) => chunk,
        Ok(Some(Err(e))) => {
            let message = format!("stream failed before its first chunk: {}", e.describe());
            return trial.fail(None, message, None);
        }
        Ok(None) => return trial.fail(None, "stream ended before its first chunk".into(), None),
        Err(_) => return trial.timed_out(timeout),
    };
    // Wait for the first whole event: an error there (split over TCP
    // chunks or not) has reached no client yet, so another target can
    // still be tried; so can an HTML page answered with 200.
    let remaining = timeout.saturating_sub(at.elapsed());
    let first = match tokio::time::timeout(remaining, first_event(first, &mut rest)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(message)) => return trial.fail(None, message, None),
        Err(_) => return trial.timed_out(timeout),
    };
    if looks_like_html(content_type.as_deref(), &first) {
        let message = not_an_api_answer(content_type.as_deref(), &first);
        return trial.fail(Some(502), message, None);
    }
    if let Some(e) = crate::formats::observe::early_error(out.format, &first) {
        return trial.fail(Some(e.status), e.message, None);
    }
    let upstream_ms = ms(at.elapsed());
    trial.succeed(upstream_ms, quota);
    let route = trial.route(&draft, &out, upstream_ms);
    let mut event = usage_event(ctx.call, ctx.requested, Some(target), true, status);
    event.route = usage::trace(&route);
    event.tier = Some(p.tier.as_str().into());
    event.combo = ctx.combo.clone();
    gw.metrics.observe_overhead(route.overhead_ms);
    let mut end_guard = trial.guard;
    let routing_end = gw.routing.clone();
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
            persist_rows(&store, rows);
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
    Tried::Done(ChatOutcome::Stream {
        status,
        events,
        route,
    })
}

/// Read the whole answer, check it is one, put it in the client's format
/// and record its usage.
async fn finish_whole(
    mut trial: Trial<'_, '_>,
    out: native::Outgoing,
    sent: Sent,
    draft: RouteDraft<'_>,
) -> Tried {
    let (ctx, p) = (trial.ctx, trial.p);
    let gw = ctx.gw;
    let target = &p.target;
    let native = ctx.call.native.as_deref();
    let Sent {
        response,
        status,
        quota,
        content_type,
        at,
        timeout,
        sub,
        collect_stream,
    } = sent;
    let remaining = timeout.saturating_sub(at.elapsed());
    let body = match tokio::time::timeout(remaining, response.bytes()).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return trial.fail(None, e.describe().to_string(), None),
        Err(_) => return trial.timed_out(timeout),
    };
    // A 200 that is not an API answer (a captive portal, a proxy's HTML
    // error page, a load balancer's notice) is an upstream failure: fall back.
    if looks_like_html(content_type.as_deref(), &body) {
        let message = not_an_api_answer(content_type.as_deref(), &body);
        return trial.fail(Some(502), message, None);
    }
    let body = match sub {
        Some(k) => match crate::subscription::unwrap_body(k, collect_stream, body) {
            Ok(b) => b,
            Err(e) => {
                let message = format!("the upstream's answer could not be read: {e}");
                return trial.fail(Some(502), message, None);
            }
        },
        None => body,
    };
    if !is_json_answer(None, &body) {
        let message = not_an_api_answer(content_type.as_deref(), &body);
        return trial.fail(Some(502), message, None);
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
                    let message = format!("the upstream's answer could not be read: {e}");
                    return trial.fail(Some(502), message, None);
                }
            }
        }
    };
    let upstream_ms = ms(at.elapsed());
    trial.succeed(upstream_ms, quota);
    let mut route = trial.route(&draft, &out, upstream_ms);
    let mut event = usage_event(ctx.call, ctx.requested, Some(target), false, status);
    fill_usage(&mut event, usage.unwrap_or_default(), target);
    trial.guard.settle(
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
    event.route = usage::trace(&route);
    gw.store.record_usage(event);
    gw.metrics.observe_overhead(route.overhead_ms);
    Tried::Done(ChatOutcome::Complete {
        status,
        body,
        route,
        usage,
    })
}

pub(super) fn persist_health(gw: &Gateway, rows: Vec<health::HealthRow>) {
    persist_rows(&gw.store, rows);
}

fn persist_rows(store: &crate::store::Store, rows: Vec<health::HealthRow>) {
    if !rows.is_empty() {
        store.write_detached("target health", move |tx| {
            crate::store::put_health(tx, &rows)
        });
    }
}

pub(super) fn attempt_error(
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
        timing: None,
    }
}
