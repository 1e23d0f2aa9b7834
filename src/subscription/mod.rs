//! Subscription accounts (tier 1): accounts signed in with the provider's own
//! OAuth flow (`omniroute login claude|codex|gemini|qwen`, or an import of
//! its CLI's credential file), kept refreshed, and served at the endpoint the
//! provider gives its subscribers, in its format, through the same codecs as
//! every other upstream:
//!
//! | kind | endpoint | format | auth |
//! |---|---|---|---|
//! | claude | `{base}/v1/messages` | Anthropic Messages | `Authorization: Bearer` + `anthropic-beta: oauth-2025-04-20` |
//! | codex | `{base}/responses` (ChatGPT Codex backend) | OpenAI Responses, always streamed, `store: false` | bearer + `chatgpt-account-id` |
//! | gemini | `{base}/v1internal:generateContent` / `:streamGenerateContent?alt=sse` | Gemini inside `{model, project, request}`; answers inside `{response}` | bearer |
//! | qwen | `{resource_url or base}/chat/completions` | OpenAI Chat | bearer |
//!
//! The quota windows each answer carries are parsed (`crate::quota_windows`),
//! stored per account and fed to routing (reset-aware, reset-window,
//! headroom, and the cooldown of an exhausted account until its reset).
//! Sources for every endpoint and header: docs/subscriptions.md.

pub mod import;
pub mod login;
pub mod oauth;
pub mod tokens;

use crate::catalog::SubscriptionKind;
use crate::gateway::Gateway;
use crate::proxy::native::Outgoing;
use crate::quota_windows::{self, Report};
use crate::registry::{AccountOrigin, Target};
use crate::routing::health::QuotaObservation;
use crate::secret::Secret;
use crate::store::subscriptions::WindowRow;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The beta Anthropic requires for requests authenticated with an OAuth token.
pub const ANTHROPIC_OAUTH_BETA: &str = "oauth-2025-04-20";

/// Live subscription state shared by every request: tokens and plan windows.
#[derive(Default)]
pub struct Subscriptions {
    pub tokens: tokens::TokenBook,
    windows: Mutex<HashMap<(String, String), WindowRow>>,
    /// Sign-ins started from the dashboard or the admin API, by id.
    sign_ins: Mutex<HashMap<String, crate::ops::sign_in::SignInStatus>>,
}

impl Subscriptions {
    pub fn set_sign_in(&self, id: &str, status: crate::ops::sign_in::SignInStatus) {
        if let Ok(mut m) = self.sign_ins.lock() {
            // A few at a time in practice; keep the map from growing without end.
            if m.len() > 256 {
                m.retain(|_, s| s.state == "pending");
            }
            m.insert(id.to_string(), status);
        }
    }

    pub fn sign_in(&self, id: &str) -> Option<crate::ops::sign_in::SignInStatus> {
        self.sign_ins.lock().ok()?.get(id).cloned()
    }
}

/// A client's own subscription credential, seen on its request (provider
/// mode `client-credential`).
#[derive(Debug, Clone)]
pub struct ClientCredential {
    pub kind: SubscriptionKind,
    pub token: Secret,
    /// Codex: the `chatgpt-account-id` the client sent.
    pub account_ref: Option<String>,
}

impl ClientCredential {
    /// Claude Code signed in with its plan sends its OAuth access token
    /// (`sk-ant-oat…`) as the bearer; Codex with `requires_openai_auth`
    /// sends the ChatGPT access token (a JWT) and `chatgpt-account-id`.
    pub fn from_headers(
        fmt: crate::catalog::WireFormat,
        headers: &reqwest::header::HeaderMap,
    ) -> Option<ClientCredential> {
        let bearer = headers
            .get(reqwest::header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .trim()
            .strip_prefix("Bearer ")?
            .trim();
        match fmt {
            crate::catalog::WireFormat::Anthropic if bearer.starts_with("sk-ant-oat") => {
                Some(ClientCredential {
                    kind: SubscriptionKind::Claude,
                    token: Secret::new(bearer),
                    account_ref: None,
                })
            }
            crate::catalog::WireFormat::OpenaiResponses
                if bearer.matches('.').count() == 2 && bearer.starts_with("eyJ") =>
            {
                Some(ClientCredential {
                    kind: SubscriptionKind::Codex,
                    token: Secret::new(bearer),
                    account_ref: headers
                        .get("chatgpt-account-id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string),
                })
            }
            _ => None,
        }
    }
}

/// Does `requested` name a subscription provider's model (`cc/claude-…`)?
/// Such requests keep their session on one account of the pool.
pub fn pooled(registry: &crate::registry::Registry, requested: &str) -> bool {
    let Some((prefix, _)) = requested.split_once('/') else {
        return false;
    };
    registry
        .provider_by_prefix(prefix)
        .is_some_and(|p| p.spec.subscription.is_some())
}

/// Why a subscription target cannot be sent this request.
#[derive(Debug)]
pub enum Unready {
    /// Not for this request (no client credential on it): skip the target.
    Skip(String),
    /// The account failed (refresh refused, token missing): fail the attempt.
    Account {
        status: Option<u16>,
        message: String,
    },
}

/// A request built for a subscription target.
pub struct Prepared {
    pub request: crate::upstream::Request,
    /// Codex always streams; a client that did not ask gets the collected answer.
    pub collect_stream: bool,
}

fn with_betas(client: Option<&str>) -> String {
    match client {
        Some(b) if b.split(',').any(|x| x.trim() == ANTHROPIC_OAUTH_BETA) => b.to_string(),
        Some(b) if !b.trim().is_empty() => format!("{ANTHROPIC_OAUTH_BETA},{b}"),
        _ => ANTHROPIC_OAUTH_BETA.to_string(),
    }
}

fn base(target: &Target) -> &str {
    target.provider.spec.base_url.trim_end_matches('/')
}

/// Build the request to a subscription target: its endpoint, its token
/// (refreshed first when due) and the body its backend wants.
pub async fn prepare(
    gw: &Gateway,
    target: &Target,
    kind: SubscriptionKind,
    out: &Outgoing,
    stream: bool,
    request_id: &str,
    client_credential: Option<&ClientCredential>,
) -> Result<Prepared, Unready> {
    let (token, account_ref) = if target.account.origin == AccountOrigin::ClientCredential {
        match client_credential.filter(|c| c.kind == kind) {
            Some(c) => (c.token.clone(), c.account_ref.clone()),
            None => {
                return Err(Unready::Skip(
                    "the request carries no client credential for this provider".into(),
                ))
            }
        }
    } else {
        match gw
            .subscriptions
            .tokens
            .bearer(&target.account.id, gw.upstream.client(), &gw.store)
            .await
        {
            Ok(b) => (b.token, b.account_ref),
            // A long-lived token given as a key (`claude setup-token`, `accounts add --api-key`).
            Err(tokens::TokenError::Missing) if target.account.secret.is_some() => (
                target
                    .account
                    .secret
                    .clone()
                    .unwrap_or_else(|| Secret::new("")),
                None,
            ),
            Err(e) => {
                if matches!(e, tokens::TokenError::Unusable(_)) {
                    // The credential's new status reaches the registry now, not at the next poll.
                    if let Err(err) = gw.reload().await {
                        tracing::warn!(error = %err, "registry reload failed");
                    }
                }
                return Err(Unready::Account {
                    status: None,
                    message: e.to_string(),
                });
            }
        }
    };
    let client = gw.upstream.client();
    let accept = |stream: bool| {
        if stream {
            "text/event-stream"
        } else {
            "application/json"
        }
    };
    let header = |name: &str| {
        out.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    };
    match kind {
        SubscriptionKind::Claude => {
            let req = gw
                .upstream
                .post(&format!("{}/v1/messages", base(target)))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::ACCEPT, accept(stream))
                .header(
                    "anthropic-version",
                    header("anthropic-version").unwrap_or(crate::formats::anthropic::API_VERSION),
                )
                .header("anthropic-beta", with_betas(header("anthropic-beta")))
                .bearer_auth(token.expose())
                .body(out.bytes.clone());
            Ok(Prepared {
                request: req,
                collect_stream: false,
            })
        }
        SubscriptionKind::Codex => {
            let body = codex_body(&out.bytes).map_err(|m| Unready::Account {
                status: Some(400),
                message: m,
            })?;
            let mut req = gw
                .upstream
                .post(&format!("{}/responses", base(target)))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::ACCEPT, "text/event-stream")
                .header("openai-beta", "responses=experimental")
                .bearer_auth(token.expose())
                .body(body);
            if let Some(id) = &account_ref {
                req = req.header("chatgpt-account-id", id.as_str());
            }
            Ok(Prepared {
                request: req,
                collect_stream: !stream,
            })
        }
        SubscriptionKind::Gemini => {
            let project = match account_ref {
                Some(p) => Some(p),
                None => {
                    // An imported Gemini CLI login names no project: ask Code Assist once, keep it.
                    let found = login::code_assist_project(client, base(target), token.expose())
                        .await
                        .ok()
                        .flatten();
                    if let Some(p) = &found {
                        gw.subscriptions
                            .tokens
                            .set_account_ref(&target.account.id, p);
                        let (id, p) = (target.account.id.clone(), p.clone());
                        gw.store.write_detached("code assist project", move |tx| {
                            crate::store::subscriptions::set_oauth_facts(tx, &id, None, Some(&p))
                        });
                    }
                    found
                }
            };
            let body = gemini_body(&out.bytes, &target.model, project.as_deref(), request_id)
                .map_err(|m| Unready::Account {
                    status: Some(400),
                    message: m,
                })?;
            let path = if stream {
                "/v1internal:streamGenerateContent?alt=sse"
            } else {
                "/v1internal:generateContent"
            };
            let req = gw
                .upstream
                .post(&format!("{}{path}", base(target)))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::ACCEPT, accept(stream))
                .bearer_auth(token.expose())
                .body(body);
            Ok(Prepared {
                request: req,
                collect_stream: false,
            })
        }
        SubscriptionKind::Qwen => {
            let url = match account_ref.as_deref().filter(|r| !r.is_empty()) {
                Some(r) if r.starts_with("http://") || r.starts_with("https://") => {
                    format!("{}/chat/completions", qwen_base(r))
                }
                Some(host) => format!("https://{}/chat/completions", qwen_base(host)),
                None => format!("{}/chat/completions", base(target)),
            };
            let req = gw
                .upstream
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::ACCEPT, accept(stream))
                .bearer_auth(token.expose())
                .body(out.bytes.clone());
            Ok(Prepared {
                request: req,
                collect_stream: false,
            })
        }
    }
}

/// Qwen's `resource_url` (`portal.qwen.ai`) as an API base ending in `/v1`.
fn qwen_base(resource: &str) -> String {
    let r = resource.trim_end_matches('/');
    if r.ends_with("/v1") {
        r.to_string()
    } else {
        format!("{r}/v1")
    }
}

/// The Codex backend takes only streamed, unstored Responses requests.
fn codex_body(bytes: &[u8]) -> Result<Bytes, String> {
    let mut v: serde_json::Map<String, Value> =
        serde_json::from_slice(bytes).map_err(|e| format!("request is not JSON: {e}"))?;
    v.insert("stream".into(), Value::Bool(true));
    v.insert("store".into(), Value::Bool(false));
    v.entry("instructions")
        .or_insert_with(|| Value::String(String::new()));
    // The gateway keeps the conversation; the backend is not asked to.
    v.remove("previous_response_id");
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

/// A Gemini request inside Code Assist's envelope.
fn gemini_body(
    bytes: &[u8],
    model: &str,
    project: Option<&str>,
    request_id: &str,
) -> Result<Bytes, String> {
    let inner: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("request is not JSON: {e}"))?;
    let mut env = serde_json::json!({
        "model": model,
        "user_prompt_id": request_id,
        "request": inner,
    });
    if let Some(p) = project {
        env["project"] = Value::String(p.to_string());
    }
    serde_json::to_vec(&env)
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

/// A whole answer as the codecs expect it: Code Assist's `{response}`
/// envelope opened; a collected Codex stream reduced to its final response.
pub fn unwrap_body(
    kind: SubscriptionKind,
    collect_stream: bool,
    body: Bytes,
) -> Result<Bytes, String> {
    match kind {
        SubscriptionKind::Gemini => {
            let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            match v.get("response") {
                Some(inner) => serde_json::to_vec(inner)
                    .map(Bytes::from)
                    .map_err(|e| e.to_string()),
                None => Ok(body),
            }
        }
        SubscriptionKind::Codex if collect_stream => codex_completed(&body),
        _ => Ok(body),
    }
}

/// The `response` of a Responses stream's `response.completed` event.
fn codex_completed(sse: &[u8]) -> Result<Bytes, String> {
    let text = String::from_utf8_lossy(sse);
    let mut failure = None;
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(data.trim()) else {
            continue;
        };
        match v.get("type").and_then(Value::as_str) {
            Some("response.completed") | Some("response.incomplete") => {
                if let Some(r) = v.get("response") {
                    return serde_json::to_vec(r)
                        .map(Bytes::from)
                        .map_err(|e| e.to_string());
                }
            }
            Some("response.failed") | Some("error") => {
                failure = Some(
                    v.pointer("/response/error/message")
                        .or_else(|| v.pointer("/error/message"))
                        .or_else(|| v.get("message"))
                        .and_then(Value::as_str)
                        .unwrap_or("the response failed")
                        .to_string(),
                );
            }
            _ => {}
        }
    }
    Err(failure.unwrap_or_else(|| "the stream ended without response.completed".into()))
}

/// A streamed answer as the codecs expect it (Code Assist: each event's
/// `{response}` envelope opened); other kinds pass unchanged.
pub fn unwrap_stream(
    kind: SubscriptionKind,
    s: crate::upstream::BodyStream,
) -> crate::upstream::BodyStream {
    if kind != SubscriptionKind::Gemini {
        return s;
    }
    let mut buf: Vec<u8> = Vec::new();
    s.map(move |item| {
        item.map(|chunk| {
            buf.extend_from_slice(&chunk);
            let mut out = Vec::new();
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                out.extend_from_slice(&gemini_line(&line));
            }
            Bytes::from(out)
        })
    })
    .filter(|r| futures::future::ready(!matches!(r, Ok(b) if b.is_empty())))
    .boxed()
}

fn gemini_line(line: &[u8]) -> Vec<u8> {
    let Some(data) = line.strip_prefix(b"data:") else {
        // Code Assist may end lines with CRLF; the codecs read LF.
        return if line.trim_ascii().is_empty() {
            b"\n".to_vec()
        } else {
            line.to_vec()
        };
    };
    match serde_json::from_slice::<Value>(data.trim_ascii()) {
        Ok(v) => match v.get("response") {
            Some(inner) => format!("data: {inner}\n").into_bytes(),
            None => line.to_vec(),
        },
        Err(_) => line.to_vec(),
    }
}

fn report_of(kind: SubscriptionKind, headers: &reqwest::header::HeaderMap) -> Report {
    match kind {
        SubscriptionKind::Claude => quota_windows::from_anthropic(headers),
        SubscriptionKind::Codex => quota_windows::from_codex(headers, crate::store::now_ms()),
        _ => Report::default(),
    }
}

fn instant_at(ms: i64) -> tokio::time::Instant {
    let now = crate::store::now_ms();
    tokio::time::Instant::now() + Duration::from_millis((ms - now).max(0) as u64)
}

impl Subscriptions {
    pub fn load_windows(&self, rows: Vec<WindowRow>) {
        if let Ok(mut w) = self.windows.lock() {
            for r in rows {
                w.insert((r.account_id.clone(), r.window.clone()), r);
            }
        }
    }

    /// The account's stored windows, by name.
    pub fn windows_of(&self, account_id: &str) -> Vec<WindowRow> {
        let Ok(w) = self.windows.lock() else {
            return Vec::new();
        };
        let mut v: Vec<WindowRow> = w
            .iter()
            .filter(|((a, _), _)| a == account_id)
            .map(|(_, r)| r.clone())
            .collect();
        v.sort_by(|a, b| a.window.cmp(&b.window));
        v
    }

    /// Keep what an answer said about the account's windows; rows to persist.
    fn record(&self, account_id: &str, report: &Report) -> Vec<WindowRow> {
        let now = crate::store::now_ms();
        let Ok(mut book) = self.windows.lock() else {
            return Vec::new();
        };
        let mut changed = Vec::new();
        for w in &report.windows {
            let key = (account_id.to_string(), w.name.clone());
            let prev = book.get(&key);
            // A new window instance (its reset moved on, or usage fell): a new first sample.
            let same_window = prev.is_some_and(|p| {
                p.used_pct <= w.used_pct + 0.5
                    && match (p.resets_ms, w.resets_ms) {
                        (Some(a), Some(b)) => (a - b).abs() < 120_000,
                        (None, None) => true,
                        _ => false,
                    }
            });
            let (first_pct, first_ms) = match prev {
                Some(p) if same_window => (p.first_pct, p.first_ms),
                _ => (w.used_pct, now),
            };
            let row = WindowRow {
                account_id: account_id.to_string(),
                window: w.name.clone(),
                used_pct: w.used_pct,
                resets_ms: w.resets_ms,
                window_minutes: w.window_minutes,
                status: w.status.clone(),
                observed_ms: now,
                first_pct,
                first_ms,
            };
            let moved = prev.is_none_or(|p| {
                (p.used_pct - row.used_pct).abs() > 1e-9
                    || p.resets_ms != row.resets_ms
                    || p.status != row.status
                    || now - p.observed_ms > 60_000
            });
            if moved {
                changed.push(row.clone());
            }
            book.insert(key, row);
        }
        changed
    }
}

/// Stored windows as routing's quota figures (after a restart).
pub fn restore_windows(health: &crate::routing::health::HealthBook, rows: &[WindowRow]) {
    let now = crate::store::now_ms();
    let mut by_account: HashMap<&str, &WindowRow> = HashMap::new();
    for w in rows.iter().filter(|w| w.resets_ms.is_none_or(|r| r > now)) {
        let e = by_account.entry(w.account_id.as_str()).or_insert(w);
        if w.used_pct > e.used_pct {
            *e = w;
        }
    }
    for (account, w) in by_account {
        health.set_quota(
            account,
            QuotaObservation {
                remaining: (100.0 - w.used_pct).max(0.0),
                limit: 100.0,
                reset_at: w.resets_ms.map(instant_at),
            },
        );
    }
}

fn persist(gw: &Gateway, rows: Vec<WindowRow>) {
    if !rows.is_empty() {
        gw.store.write_detached("quota windows", move |tx| {
            crate::store::subscriptions::put_windows(tx, &rows)
        });
    }
}

/// What a served answer says about the account's plan, for routing: the
/// binding window as remaining share (0 when the plan refuses, or when the
/// answer came from overage on an account that does not allow it).
pub fn observe(
    gw: &Gateway,
    target: &Target,
    kind: SubscriptionKind,
    headers: &reqwest::header::HeaderMap,
) -> Option<QuotaObservation> {
    let report = report_of(kind, headers);
    if report.is_empty() {
        return None;
    }
    let rows = gw.subscriptions.record(&target.account.id, &report);
    persist(gw, rows);
    let allow_overage = gw
        .subscriptions
        .tokens
        .snapshot(&target.account.id)
        .is_some_and(|c| c.allow_overage);
    if report.overage && !allow_overage {
        tracing::warn!(account = %target.account.id, "answer billed as extra usage: the account rests until its plan window resets");
        let reset = report
            .reset_ms
            .or_else(|| report.binding().and_then(|w| w.resets_ms));
        return Some(QuotaObservation {
            remaining: 0.0,
            limit: 100.0,
            reset_at: reset.map(instant_at),
        });
    }
    if report.rejected && !report.overage {
        return Some(QuotaObservation {
            remaining: 0.0,
            limit: 100.0,
            reset_at: report.exhausted_until().map(instant_at),
        });
    }
    let w = report.binding()?;
    Some(QuotaObservation {
        remaining: (100.0 - w.used_pct).max(0.0),
        limit: 100.0,
        reset_at: w.resets_ms.map(instant_at),
    })
}

/// A failed answer from a subscription target: keep its windows, and say how
/// long the account must rest when the plan is exhausted (its reset).
pub fn on_error(
    gw: &Gateway,
    target: &Target,
    kind: SubscriptionKind,
    headers: &reqwest::header::HeaderMap,
    status: u16,
    body: &[u8],
) -> Option<Duration> {
    if status == 401 && target.account.origin != AccountOrigin::ClientCredential {
        // The token was refused before its time: refresh on the next use.
        gw.subscriptions.tokens.expire(&target.account.id);
    }
    let report = report_of(kind, headers);
    if !report.is_empty() {
        let rows = gw.subscriptions.record(&target.account.id, &report);
        persist(gw, rows);
    }
    let now = crate::store::now_ms();
    let mut until = report.exhausted_until();
    if until.is_none() && (status == 429 || status == 400) {
        // Codex: {"error":{"type":"usage_limit_reached","resets_at":…,"resets_in_seconds":…}}
        let v: Value = serde_json::from_slice(body).unwrap_or_default();
        let e = v.get("error").unwrap_or(&Value::Null);
        until = e
            .get("resets_at")
            .and_then(Value::as_f64)
            .map(|s| (s * 1000.0) as i64)
            .or_else(|| {
                e.get("resets_in_seconds")
                    .and_then(Value::as_f64)
                    .map(|s| now + (s * 1000.0) as i64)
            });
        // An exhausted 429 without a named reset: the binding stored window's reset.
        if until.is_none() && status == 429 {
            until = gw
                .subscriptions
                .windows_of(&target.account.id)
                .into_iter()
                .filter(|w| w.used_pct >= 100.0)
                .filter_map(|w| w.resets_ms)
                .max();
        }
    }
    until
        .filter(|u| *u > now)
        .map(|u| Duration::from_millis((u - now) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn betas_keep_the_clients_and_add_oauth_once() {
        assert_eq!(with_betas(None), "oauth-2025-04-20");
        assert_eq!(
            with_betas(Some("claude-code-20250219,oauth-2025-04-20")),
            "claude-code-20250219,oauth-2025-04-20"
        );
        assert_eq!(
            with_betas(Some("interleaved-thinking-2025-05-14")),
            "oauth-2025-04-20,interleaved-thinking-2025-05-14"
        );
    }

    #[test]
    fn code_assist_envelopes() {
        let b = gemini_body(
            br#"{"contents":[]}"#,
            "gemini-2.5-pro",
            Some("proj-1"),
            "req_1",
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["project"], "proj-1");
        assert_eq!(v["model"], "gemini-2.5-pro");
        assert_eq!(v["request"]["contents"], serde_json::json!([]));
        let out = unwrap_body(
            SubscriptionKind::Gemini,
            false,
            Bytes::from_static(br#"{"response":{"candidates":[]},"traceId":"t"}"#),
        )
        .unwrap();
        assert_eq!(&out[..], br#"{"candidates":[]}"#);
        assert_eq!(
            gemini_line(b"data: {\"response\":{\"a\":1}}\n"),
            b"data: {\"a\":1}\n".to_vec()
        );
        assert_eq!(gemini_line(b"\n"), b"\n".to_vec());
    }

    #[test]
    fn codex_requests_stream_unstored_and_answers_are_collected() {
        let b =
            codex_body(br#"{"model":"m","input":[],"stream":false,"previous_response_id":"x"}"#)
                .unwrap();
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["stream"], true);
        assert_eq!(v["store"], false);
        assert_eq!(v["instructions"], "");
        assert!(v.get("previous_response_id").is_none());
        let sse = b"event: response.created\ndata: {\"type\":\"response.created\"}\n\nevent: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\",\"status\":\"completed\"}}\n\n";
        let out = codex_completed(sse).unwrap();
        assert_eq!(&out[..], br#"{"id":"r","status":"completed"}"#);
        assert!(codex_completed(b"data: {\"type\":\"response.failed\",\"response\":{\"error\":{\"message\":\"boom\"}}}\n").unwrap_err().contains("boom"));
    }

    #[test]
    fn qwen_resource_urls_become_api_bases() {
        assert_eq!(qwen_base("portal.qwen.ai"), "portal.qwen.ai/v1");
        assert_eq!(qwen_base("http://127.0.0.1:9/v1/"), "http://127.0.0.1:9/v1");
    }
}
