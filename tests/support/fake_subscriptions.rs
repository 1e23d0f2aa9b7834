//! A fake of the subscription providers on 127.0.0.1:0: their OAuth servers
//! (authorize with an automatic consent, token with PKCE checks and refresh
//! rotation, device code) and their subscriber endpoints (Anthropic Messages
//! with an OAuth bearer, the ChatGPT Codex Responses backend, Gemini Code
//! Assist, Qwen's OpenAI-compatible API). Each behaves as the real one is
//! documented to (sources in docs/subscriptions.md):
//! - refresh tokens rotate: a used one is refused with `invalid_grant`
//!   (OpenAI: "refresh token was already used"; Anthropic issues a new one);
//! - an Anthropic request without `anthropic-beta: oauth-2025-04-20` or with
//!   an unknown token gets 401 `authentication_error`;
//! - answers carry the plan windows (`anthropic-ratelimit-unified-*`,
//!   `x-codex-primary-*`); an exhausted user gets 429 with the window rejected
//!   and its reset; an overage user gets Anthropic's 400 "Third-party apps now
//!   draw from your extra usage, not your plan limits";
//! - the Codex backend refuses requests that are not `stream: true, store: false`;
//! - Code Assist wants `{model, project, request}` and answers `{response}`.
//!
//! Tokens are `at-{user}-{n}` / `rt-{user}-{n}`; a user's state is set by the test.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct State_ {
    /// code -> (user, code_challenge, redirect_uri)
    codes: HashMap<String, (String, String, String)>,
    /// valid access tokens -> user
    pub access: HashMap<String, String>,
    /// valid refresh tokens -> user
    pub refresh: HashMap<String, String>,
    /// spent (rotated) refresh tokens
    pub spent: HashSet<String>,
    /// refresh tokens the provider revoked
    pub revoked: HashSet<String>,
    serial: u64,
    pub refresh_calls: u64,
    pub refresh_tokens_used: Vec<String>,
    /// the user the next consent signs in
    pub next_user: String,
    /// user -> epoch ms until which its plan window is exhausted
    pub exhausted_until: HashMap<String, i64>,
    pub overage: HashSet<String>,
    /// user -> served calls
    pub served: HashMap<String, u64>,
    /// bearer tokens seen on subscriber endpoints, in order
    pub bearers: Vec<String>,
    pub last_headers: Option<HeaderMap>,
    pub last_body: Value,
    /// device codes: code -> (user, polls before approval)
    devices: HashMap<String, (String, u32)>,
    pub expires_in: u64,
    pub refresh_delay_ms: u64,
}

#[derive(Clone)]
pub struct FakeSubs {
    pub addr: std::net::SocketAddr,
    pub state: Arc<Mutex<State_>>,
    scheme: &'static str,
}

type S = State<Arc<Mutex<State_>>>;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

impl FakeSubs {
    pub async fn start() -> FakeSubs {
        let state = Self::initial();
        let app = Self::router(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeSubs {
            addr,
            state,
            scheme: "http",
        }
    }

    /// The same fake over TLS (test CA, `localhost`): `base()` is `https://localhost:PORT`.
    pub async fn start_tls() -> FakeSubs {
        let state = Self::initial();
        let (addr, _) = super::tls::serve(Self::router(state.clone()), &[b"h2", b"http/1.1"]).await;
        FakeSubs {
            addr,
            state,
            scheme: "https",
        }
    }

    fn initial() -> Arc<Mutex<State_>> {
        Arc::new(Mutex::new(State_ {
            next_user: "user".into(),
            expires_in: 3600,
            ..State_::default()
        }))
    }

    fn router(state: Arc<Mutex<State_>>) -> Router {
        Router::new()
            .route("/oauth/authorize", get(authorize))
            .route("/o/oauth2/v2/auth", get(authorize))
            .route("/v1/oauth/token", post(token))
            .route("/oauth/token", post(token))
            .route("/token", post(token))
            .route("/api/v1/oauth2/token", post(token))
            .route("/api/v1/oauth2/device/code", post(qwen_device))
            .route("/api/accounts/deviceauth/usercode", post(codex_usercode))
            .route("/api/accounts/deviceauth/token", post(codex_device_token))
            .route("/v1/messages", post(anthropic))
            .route("/backend-api/codex/responses", post(codex))
            .route("/v1internal:loadCodeAssist", post(load_code_assist))
            .route("/v1internal:generateContent", post(gemini))
            .route("/v1internal:streamGenerateContent", post(gemini_stream))
            .route("/v1/chat/completions", post(qwen_chat))
            .with_state(state)
    }

    pub fn base(&self) -> String {
        match self.scheme {
            "https" => format!("https://localhost:{}", self.addr.port()),
            _ => format!("http://{}", self.addr),
        }
    }

    /// Valid tokens for `user`, as if it had signed in earlier.
    pub fn seed(&self, user: &str, access: &str, refresh: &str) {
        let mut s = self.state.lock().unwrap();
        s.access.insert(access.into(), user.into());
        s.refresh.insert(refresh.into(), user.into());
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State_) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    pub fn refresh_calls(&self) -> u64 {
        self.with(|s| s.refresh_calls)
    }

    pub fn served(&self, user: &str) -> u64 {
        self.with(|s| s.served.get(user).copied().unwrap_or(0))
    }
}

async fn authorize(State(st): S, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut s = st.lock().unwrap();
    s.serial += 1;
    let code = format!("code-{}", s.serial);
    let user = s.next_user.clone();
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    if q.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return (StatusCode::BAD_REQUEST, "PKCE S256 required").into_response();
    }
    s.codes.insert(
        code.clone(),
        (
            user,
            q.get("code_challenge").cloned().unwrap_or_default(),
            redirect.clone(),
        ),
    );
    let state = q.get("state").cloned().unwrap_or_default();
    let sep = if redirect.contains('?') { '&' } else { '?' };
    (
        StatusCode::FOUND,
        [(
            "location",
            format!("{redirect}{sep}code={code}&state={state}"),
        )],
    )
        .into_response()
}

/// JSON or form body as string fields.
fn fields(headers: &HeaderMap, body: &Bytes) -> HashMap<String, String> {
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if json {
        let v: Value = serde_json::from_slice(body).unwrap_or_default();
        v.as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        url::form_urlencoded::parse(body).into_owned().collect()
    }
}

fn grant_error(desc: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_grant", "error_description": desc})),
    )
        .into_response()
}

fn issue(s: &mut State_, user: &str) -> Value {
    s.serial += 1;
    let at = format!("at-{user}-{}", s.serial);
    let rt = format!("rt-{user}-{}", s.serial);
    s.access.insert(at.clone(), user.into());
    s.refresh.insert(rt.clone(), user.into());
    // An id_token with the claims Codex and Google put in theirs.
    let claims = json!({"email": format!("{user}@example.com"),
        "https://api.openai.com/auth": {"chatgpt_plan_type": "pro", "chatgpt_account_id": format!("acct-{user}")}});
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    json!({"access_token": at, "refresh_token": rt, "expires_in": s.expires_in, "token_type": "Bearer",
           "id_token": format!("{}.{}.sig", b64(&json!({"alg": "none"})), b64(&claims)),
           "account": {"email_address": format!("{user}@example.com")},
           "resource_url": format!("http://{}/v1", "RESOURCE")})
}

async fn token(State(st): S, headers: HeaderMap, body: Bytes) -> Response {
    let f = fields(&headers, &body);
    let grant = f.get("grant_type").cloned().unwrap_or_default();
    let delay = st.lock().unwrap().refresh_delay_ms;
    if grant == "refresh_token" && delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut s = st.lock().unwrap();
    let mut answer = match grant.as_str() {
        "authorization_code" => {
            let code = f.get("code").cloned().unwrap_or_default();
            let Some((user, challenge, redirect)) = s.codes.remove(&code) else {
                return grant_error("unknown or used authorization code");
            };
            let verifier = f.get("code_verifier").cloned().unwrap_or_default();
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes()));
            if computed != challenge {
                return grant_error("PKCE verification failed");
            }
            if f.get("redirect_uri") != Some(&redirect) {
                return grant_error("redirect_uri mismatch");
            }
            issue(&mut s, &user)
        }
        "refresh_token" => {
            s.refresh_calls += 1;
            let rt = f.get("refresh_token").cloned().unwrap_or_default();
            s.refresh_tokens_used.push(rt.clone());
            if s.revoked.contains(&rt) {
                return grant_error("Token has been revoked");
            }
            if s.spent.contains(&rt) {
                return grant_error("refresh token was already used");
            }
            let Some(user) = s.refresh.remove(&rt) else {
                return grant_error("unknown refresh token");
            };
            s.spent.insert(rt);
            issue(&mut s, &user)
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            let dc = f.get("device_code").cloned().unwrap_or_default();
            let Some((user, polls)) = s.devices.get_mut(&dc) else {
                return grant_error("unknown device code");
            };
            if *polls > 0 {
                *polls -= 1;
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": "authorization_pending", "error_description": "not yet"})),
                )
                    .into_response();
            }
            let user = user.clone();
            s.devices.remove(&dc);
            issue(&mut s, &user)
        }
        _ => return grant_error("unsupported grant_type"),
    };
    answer["resource_url"] = Value::String(format!("http://{host}/v1"));
    Json(answer).into_response()
}

async fn qwen_device(State(st): S, headers: HeaderMap, body: Bytes) -> Response {
    let f = fields(&headers, &body);
    if f.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return (StatusCode::BAD_REQUEST, "PKCE required").into_response();
    }
    let mut s = st.lock().unwrap();
    s.serial += 1;
    let dc = format!("dev-{}", s.serial);
    let user = s.next_user.clone();
    s.devices.insert(dc.clone(), (user, 1));
    Json(json!({"device_code": dc, "user_code": "ABCD-1234", "verification_uri": "https://chat.qwen.ai/authorize",
                "verification_uri_complete": "https://chat.qwen.ai/authorize?user_code=ABCD-1234", "expires_in": 600, "interval": 1}))
        .into_response()
}

async fn codex_usercode(State(st): S, headers: HeaderMap, body: Bytes) -> Response {
    let f = fields(&headers, &body);
    if f.get("client_id").map(String::as_str) != Some("app_EMoamEEZ73f0CkXaXp7hrann") {
        return (StatusCode::BAD_REQUEST, "unknown client").into_response();
    }
    let mut s = st.lock().unwrap();
    s.serial += 1;
    let id = format!("dauth-{}", s.serial);
    let user = s.next_user.clone();
    s.devices.insert(id.clone(), (user, 1));
    // codex-rs reads `interval` as a string.
    Json(json!({"device_auth_id": id, "user_code": "WXYZ-9876", "interval": "1"})).into_response()
}

/// 403 while pending; then the code with the PKCE pair the server made.
async fn codex_device_token(State(st): S, headers: HeaderMap, body: Bytes) -> Response {
    let f = fields(&headers, &body);
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut s = st.lock().unwrap();
    let id = f.get("device_auth_id").cloned().unwrap_or_default();
    let Some((user, polls)) = s.devices.get_mut(&id) else {
        return (StatusCode::NOT_FOUND, "unknown device auth").into_response();
    };
    if *polls > 0 {
        *polls -= 1;
        return (StatusCode::FORBIDDEN, "pending").into_response();
    }
    let user = user.clone();
    s.devices.remove(&id);
    s.serial += 1;
    let code = format!("code-{}", s.serial);
    let verifier = format!("verifier-{}", s.serial);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    s.codes.insert(
        code.clone(),
        (
            user,
            challenge.clone(),
            format!("http://{host}/deviceauth/callback"),
        ),
    );
    Json(
        json!({"authorization_code": code, "code_challenge": challenge, "code_verifier": verifier}),
    )
    .into_response()
}

/// The user behind a valid bearer, else None.
fn user_of(s: &State_, headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    s.access.get(bearer).cloned()
}

fn note(s: &mut State_, headers: &HeaderMap, body: &Value) {
    if let Some(b) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        s.bearers.push(b.to_string());
    }
    s.last_headers = Some(headers.clone());
    s.last_body = body.clone();
}

fn anthropic_error(status: StatusCode, kind: &str, msg: &str) -> Response {
    (
        status,
        Json(json!({"type": "error", "error": {"type": kind, "message": msg}})),
    )
        .into_response()
}

fn unified_headers(r: &mut Response, util: f64, reset_s: i64, status: &str) {
    let h = r.headers_mut();
    let mut set = |k: &'static str, v: String| {
        h.insert(k, v.parse().unwrap());
    };
    set("anthropic-ratelimit-unified-status", status.into());
    set(
        "anthropic-ratelimit-unified-5h-utilization",
        format!("{util}"),
    );
    set("anthropic-ratelimit-unified-5h-reset", reset_s.to_string());
    set("anthropic-ratelimit-unified-5h-status", status.into());
    set("anthropic-ratelimit-unified-7d-utilization", "0.05".into());
    set(
        "anthropic-ratelimit-unified-7d-reset",
        ((now_ms() / 1000) + 6 * 86_400).to_string(),
    );
    set("anthropic-ratelimit-unified-reset", reset_s.to_string());
    set(
        "anthropic-ratelimit-unified-representative-claim",
        "five_hour".into(),
    );
}

/// How a request's plan stands: Err(answer) when it is refused.
fn plan_gate(s: &mut State_, user: &str) -> Result<u64, (i64, bool)> {
    let now = now_ms();
    if let Some(until) = s.exhausted_until.get(user).copied() {
        if until > now {
            return Err((until, false));
        }
        s.exhausted_until.remove(user);
    }
    if s.overage.contains(user) {
        return Err((0, true));
    }
    let n = s.served.entry(user.to_string()).or_default();
    *n += 1;
    Ok(*n)
}

async fn anthropic(State(st): S, headers: HeaderMap, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    let mut s = st.lock().unwrap();
    note(&mut s, &headers, &v);
    let beta_ok = headers
        .get("anthropic-beta")
        .and_then(|b| b.to_str().ok())
        .is_some_and(|b| b.split(',').any(|x| x.trim() == "oauth-2025-04-20"));
    let Some(user) = user_of(&s, &headers).filter(|_| beta_ok) else {
        return anthropic_error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "OAuth authentication is currently not supported.",
        );
    };
    let reset_s = now_ms() / 1000 + 4 * 3600;
    let n = match plan_gate(&mut s, &user) {
        Ok(n) => n,
        Err((until, false)) => {
            let mut r = anthropic_error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "This request would exceed your account's rate limit. Please try again later.",
            );
            unified_headers(&mut r, 1.0, (until + 999) / 1000, "rejected");
            return r;
        }
        Err((_, true)) => {
            return anthropic_error(StatusCode::BAD_REQUEST, "invalid_request_error", "Third-party apps now draw from your extra usage, not your plan limits. Add more at claude.ai/settings/usage and keep going.");
        }
    };
    let util = (n as f64 * 0.1).min(0.9);
    let text = format!("served by {user}");
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("claude")
        .to_string();
    let mut r = if v.get("stream").and_then(Value::as_bool) == Some(true) {
        let events = [
            (
                "message_start",
                json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":model,"content":[],"stop_reason":null,"usage":{"input_tokens":5,"output_tokens":0}}}),
            ),
            (
                "content_block_start",
                json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
            ),
            (
                "content_block_delta",
                json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":text}}),
            ),
            (
                "content_block_stop",
                json!({"type":"content_block_stop","index":0}),
            ),
            (
                "message_delta",
                json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}),
            ),
            ("message_stop", json!({"type":"message_stop"})),
        ];
        let sse: String = events
            .iter()
            .map(|(e, d)| format!("event: {e}\ndata: {d}\n\n"))
            .collect();
        ([("content-type", "text/event-stream")], sse).into_response()
    } else {
        Json(
            json!({"id":"msg_1","type":"message","role":"assistant","model":model,
            "content":[{"type":"text","text":text}],"stop_reason":"end_turn","stop_sequence":null,
            "usage":{"input_tokens":5,"output_tokens":3}}),
        )
        .into_response()
    };
    unified_headers(&mut r, util, reset_s, "allowed");
    r
}

async fn codex(State(st): S, headers: HeaderMap, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    let mut s = st.lock().unwrap();
    note(&mut s, &headers, &v);
    let Some(user) = user_of(&s, &headers) else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": "Unauthorized"})),
        )
            .into_response();
    };
    if headers.get("chatgpt-account-id").is_none() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"detail": "chatgpt-account-id required"})),
        )
            .into_response();
    }
    if v.get("stream") != Some(&Value::Bool(true)) || v.get("store") != Some(&Value::Bool(false)) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"detail": "Stream must be set to true; Store must be set to false"})),
        )
            .into_response();
    }
    let n = match plan_gate(&mut s, &user) {
        Ok(n) => n,
        Err((until, _)) => {
            let mut r = (StatusCode::TOO_MANY_REQUESTS, Json(json!({"error": {"type": "usage_limit_reached",
                "message": "You have hit your ChatGPT usage limit.", "plan_type": "pro", "resets_at": until / 1000}}))).into_response();
            r.headers_mut()
                .insert("x-codex-primary-used-percent", "100".parse().unwrap());
            r.headers_mut().insert(
                "x-codex-primary-reset-at",
                (until / 1000).to_string().parse().unwrap(),
            );
            return r;
        }
    };
    let text = format!("served by {user}");
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("gpt")
        .to_string();
    let resp = |status: &str, output: Value| {
        json!({"id":"resp_up","object":"response","created_at":1,"status":status,"model":model,
        "output":output,"usage":{"input_tokens":5,"output_tokens":3,"total_tokens":8}})
    };
    let msg = json!([{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":text,"annotations":[]}]}]);
    let events = [
        json!({"type":"response.created","sequence_number":0,"response":resp("in_progress", json!([]))}),
        json!({"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"type":"message","id":"msg_1","status":"in_progress","role":"assistant","content":[]}}),
        json!({"type":"response.content_part.added","sequence_number":2,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}),
        json!({"type":"response.output_text.delta","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"delta":text}),
        json!({"type":"response.output_text.done","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"text":text}),
        json!({"type":"response.output_item.done","sequence_number":5,"output_index":0,"item":msg[0]}),
        json!({"type":"response.completed","sequence_number":6,"response":resp("completed", msg)}),
    ];
    let sse: String = events
        .iter()
        .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap()))
        .collect();
    let mut r = ([("content-type", "text/event-stream")], sse).into_response();
    let h = r.headers_mut();
    h.insert(
        "x-codex-primary-used-percent",
        format!("{}", n * 10).parse().unwrap(),
    );
    h.insert("x-codex-primary-window-minutes", "300".parse().unwrap());
    h.insert(
        "x-codex-primary-reset-after-seconds",
        "7200".parse().unwrap(),
    );
    h.insert("x-codex-secondary-used-percent", "3".parse().unwrap());
    h.insert("x-codex-secondary-window-minutes", "10080".parse().unwrap());
    h.insert(
        "x-codex-secondary-reset-after-seconds",
        "500000".parse().unwrap(),
    );
    r
}

async fn load_code_assist(State(st): S, headers: HeaderMap) -> Response {
    let s = st.lock().unwrap();
    match user_of(&s, &headers) {
        Some(user) => Json(json!({"currentTier": {"id": "free-tier"}, "cloudaicompanionProject": format!("proj-{user}")})).into_response(),
        None => (StatusCode::UNAUTHORIZED, Json(json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}))).into_response(),
    }
}

#[allow(clippy::result_large_err)]
fn gemini_gate(
    st: &Arc<Mutex<State_>>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<String, Response> {
    let v: Value = serde_json::from_slice(body).unwrap_or_default();
    let mut s = st.lock().unwrap();
    note(&mut s, headers, &v);
    let Some(user) = user_of(&s, headers) else {
        return Err((StatusCode::UNAUTHORIZED, Json(json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}))).into_response());
    };
    if v.get("project").and_then(Value::as_str) != Some(&format!("proj-{user}"))
        || v.pointer("/request/contents").is_none()
    {
        return Err((StatusCode::BAD_REQUEST, Json(json!({"error": {"code": 400, "message": "Invalid project or request envelope", "status": "INVALID_ARGUMENT"}}))).into_response());
    }
    if plan_gate(&mut s, &user).is_err() {
        return Err((StatusCode::TOO_MANY_REQUESTS, Json(json!({"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}))).into_response());
    }
    Ok(format!("served by {user}"))
}

fn gemini_answer(text: &str) -> Value {
    json!({"response": {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8}, "modelVersion": "gemini"}, "traceId": "t1"})
}

async fn gemini(State(st): S, headers: HeaderMap, body: Bytes) -> Response {
    match gemini_gate(&st, &headers, &body) {
        Ok(text) => Json(gemini_answer(&text)).into_response(),
        Err(r) => r,
    }
}

async fn gemini_stream(State(st): S, headers: HeaderMap, body: Bytes) -> Response {
    match gemini_gate(&st, &headers, &body) {
        Ok(text) => {
            let first = json!({"response": {"candidates": [{"content": {"role": "model", "parts": [{"text": "served "}]}, "index": 0}]}});
            let mut last = gemini_answer(&text);
            last["response"]["candidates"][0]["content"]["parts"][0]["text"] =
                Value::String(text.trim_start_matches("served ").to_string());
            let sse = format!("data: {first}\r\n\r\ndata: {last}\r\n\r\n");
            ([("content-type", "text/event-stream")], sse).into_response()
        }
        Err(r) => r,
    }
}

async fn qwen_chat(State(st): S, headers: HeaderMap, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    let mut s = st.lock().unwrap();
    note(&mut s, &headers, &v);
    let Some(user) = user_of(&s, &headers) else {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": {"message": "invalid access token", "type": "invalid_request_error", "code": "invalid_api_key"}}))).into_response();
    };
    if plan_gate(&mut s, &user).is_err() {
        return (StatusCode::TOO_MANY_REQUESTS, Json(json!({"error": {"message": "Free allocated quota exceeded.", "type": "insufficient_quota", "code": "insufficient_quota"}}))).into_response();
    }
    Json(json!({"id": "c1", "object": "chat.completion", "created": 1, "model": v["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("served by {user}")}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})).into_response()
}
