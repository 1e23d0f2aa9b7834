//! A fake OpenAI-compatible provider on 127.0.0.1:0. Behaviour is chosen by
//! the model name: anything normal answers; `fail-429` (rate limit,
//! Retry-After: 7), `fail-quota` (quota exhausted, Retry-After: 30), `dead-stream`
//! (fails before its first chunk),
//! `fail-500`, `fail-400`, `slow` (300 ms), `hang`, `cut-stream` (stops
//! after two chunks without [DONE]), `slow-stream` (10 chunks, 150 ms apart),
//! `long-stream` (100 chunks, 100 ms apart).
//! A key containing "bad" gets 401. Calls are counted per model.
//! Faults a real upstream (or what sits in front of it) can show:
//! `echo-key` (401 whose message repeats the Authorization header it got,
//! in OpenAI's 401 wording "Incorrect API key provided: …"), `html-200`
//! (200 with a `text/html` page, as a captive portal or a proxy's error page
//! answers), `error-first` (a stream whose first event is `data: {"error":…}`,
//! the shape OpenAI-compatible servers such as OpenRouter use for stream
//! errors, split over two TCP writes 20 ms apart).
//! The same server also speaks Anthropic Messages (`POST /v1/messages`, base
//! URL `native_base_url()`), Gemini (`POST /v1beta/models/{m}:generateContent`
//! and `:streamGenerateContent?alt=sse`) and OpenAI Responses (`POST
//! /v1/responses`), each streaming or not, by model name: `fail-429`,
//! `fail-500`, `fail-context` (400 in the format's words), `tool-call` (one
//! call to the first declared tool, its arguments split over several deltas),
//! `thinking` (Anthropic: a signed thinking block, then text),
//! `overloaded-stream` (Anthropic: 200, then an error as the first event),
//! `ratelimit-{n}-{s}` (Anthropic: an answer whose rate-limit headers say n
//! of 50 requests are left until a reset s seconds away) and
//! `mid-error…` (some text, then an error event); a Gemini request for
//! structured output (`responseMimeType: application/json` with a schema)
//! gets JSON that fits the schema. The raw bodies and headers
//! of those calls are kept (`raw_bodies`, `headers`).
//! `POST /v1/embeddings` answers in OpenAI's documented shape
//! (platform.openai.com/docs/api-reference/embeddings: `{"object":"list",
//! "data":[{"object":"embedding","index":i,"embedding":[…]}],"model",
//! "usage":{"prompt_tokens","total_tokens"}}`, `encoding_format` `float` or
//! `base64` (little-endian f32, which the OpenAI SDKs ask for by default),
//! `dimensions`), with deterministic vectors: a bag of words (lowercased,
//! common words left out, a trailing "s" dropped) hashed into 64 dimensions,
//! so paraphrases sharing their content words are close and other texts are
//! not. Model `fail-500` answers 500. `GET /_calls` returns the call counts
//! per model (tests written in Python read them).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct Seen {
    pub calls: Mutex<HashMap<String, u64>>,
    pub bodies: Mutex<Vec<Value>>,
    pub auth: Mutex<Vec<String>>,
    /// Streams whose body was dropped before it ended (the client went away).
    pub streams_dropped: AtomicU64,
    pub streams_finished: AtomicU64,
    /// `hang` requests whose client went away (the handler was dropped).
    pub hangs_dropped: AtomicU64,
    /// Gemini structured-output (JSON mode) requests answered.
    pub json_answers: AtomicU64,
    /// Bodies as sent, and request headers (Anthropic, Gemini and Responses routes).
    pub raw_bodies: Mutex<Vec<bytes::Bytes>>,
    pub headers: Mutex<Vec<HeaderMap>>,
}

#[derive(Clone)]
pub struct FakeUpstream {
    pub addr: std::net::SocketAddr,
    pub seen: Arc<Seen>,
}

impl FakeUpstream {
    pub async fn start() -> FakeUpstream {
        Self::start_on("127.0.0.1:0").await
    }

    pub async fn start_on(addr: &str) -> FakeUpstream {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        Self::serve(listener)
    }

    /// The fake's routes over `seen`, for a caller that serves them its own way (TLS).
    pub fn router(seen: Arc<Seen>) -> Router {
        Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/messages", post(anthropic))
            .route("/v1beta/models/{target}", post(gemini))
            .route("/v1/responses", post(responses))
            .route("/v1/embeddings", post(embeddings))
            .route("/_calls", axum::routing::get(calls))
            .with_state(seen)
    }

    pub fn serve(listener: tokio::net::TcpListener) -> FakeUpstream {
        let seen = Arc::new(Seen::default());
        let app = Self::router(seen.clone());
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            // As real servers do; without it a response's head and body can
            // sit out a 40 ms delayed ACK each.
            use axum::serve::ListenerExt;
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = axum::serve(listener, app).await;
        });
        FakeUpstream { addr, seen }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The base URL for the Anthropic and Gemini formats (no `/v1`).
    pub fn native_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn calls(&self, model: &str) -> u64 {
        self.seen
            .calls
            .lock()
            .unwrap()
            .get(model)
            .copied()
            .unwrap_or(0)
    }

    pub fn last_body(&self) -> Value {
        self.seen
            .bodies
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or(Value::Null)
    }

    pub fn last_raw_body(&self) -> bytes::Bytes {
        self.seen
            .raw_bodies
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }

    pub fn last_header(&self, name: &str) -> Option<String> {
        self.seen
            .headers
            .lock()
            .unwrap()
            .last()
            .and_then(|h| h.get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    pub fn last_auth(&self) -> String {
        self.seen
            .auth
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }
}

fn error(status: StatusCode, message: &str, kind: &str) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "type": kind, "code": null}})),
    )
        .into_response()
}

impl Seen {
    /// Counts a call to `model`, keeps its body, and the value of the
    /// `auth_header` it came with (returned).
    fn record(&self, model: &str, body: &Value, headers: &HeaderMap, auth_header: &str) -> String {
        *self
            .calls
            .lock()
            .unwrap()
            .entry(model.to_string())
            .or_default() += 1;
        self.bodies.lock().unwrap().push(body.clone());
        let auth = headers
            .get(auth_header)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let shown = if auth_header == "authorization" {
            auth.clone()
        } else {
            format!("{auth_header} {auth}")
        };
        self.auth.lock().unwrap().push(shown);
        auth
    }
}

async fn chat(
    State(seen): State<Arc<Seen>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let model = body["model"].as_str().unwrap_or("").to_string();
    let auth = seen.record(&model, &body, &headers, "authorization");
    if auth.contains("bad") {
        return error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided",
            "invalid_request_error",
        );
    }
    match model.as_str() {
        "echo-key" => {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": {
                    "message": format!("Incorrect API key provided: {auth}. You can find your API key at https://platform.openai.com/account/api-keys."),
                    "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})),
            )
                .into_response();
        }
        "html-200" => {
            return Response::builder()
                .header("content-type", "text/html; charset=utf-8")
                .body(Body::from(
                    "<!DOCTYPE html><html><body><h1>Service temporarily unavailable</h1></body></html>",
                ))
                .unwrap();
        }
        "error-first" if body["stream"].as_bool() == Some(true) => {
            let event = json!({"error": {"message": "The server had an error while processing your request. Sorry about that!", "type": "server_error", "code": null}});
            let text = format!("data: {event}\n\n");
            let (a, b) = text.split_at(text.len() / 2);
            let (a, b) = (a.to_string(), b.to_string());
            let s = futures::stream::iter([a, b]).then(|part| async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, std::io::Error>(bytes::Bytes::from(part))
            });
            return Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(s))
                .unwrap();
        }
        "fail-429" => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit reached for requests per minute",
                "rate_limit_exceeded",
            );
            r.headers_mut().insert("retry-after", "7".parse().unwrap());
            return r;
        }
        "fail-quota" => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "You exceeded your current quota, please check your plan",
                "insufficient_quota",
            );
            r.headers_mut().insert("retry-after", "30".parse().unwrap());
            return r;
        }
        "fail-500" => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "upstream exploded",
                "server_error",
            )
        }
        "fail-400" => {
            return error(
                StatusCode::BAD_REQUEST,
                "messages must not be empty",
                "invalid_request_error",
            )
        }
        "fail-context" => {
            return error(
                StatusCode::BAD_REQUEST,
                "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
                "invalid_request_error",
            )
        }
        "hang" => {
            struct Hung(Arc<Seen>);
            impl Drop for Hung {
                fn drop(&mut self) {
                    self.0.hangs_dropped.fetch_add(1, Ordering::SeqCst);
                }
            }
            let _hung = Hung(seen.clone());
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        "slow" => tokio::time::sleep(Duration::from_millis(300)).await,
        _ => {}
    }
    let last = body["messages"].as_array().and_then(|m| m.last());
    let prompt = match last.map(|m| &m["content"]) {
        Some(Value::String(s)) => s.clone(),
        // Content as parts: the text parts joined.
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    };
    let text = format!("echo: {prompt}");
    if model == "tool-call" {
        return tool_call(&body, body["stream"].as_bool() == Some(true));
    }
    if body["stream"].as_bool() == Some(true) {
        let include_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
        return stream(seen, model, text, include_usage);
    }
    Json(json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18,
                  "prompt_tokens_details": {"cached_tokens": 3}}
    }))
    .into_response()
}

/// Model `tool-call`: calls the first declared tool with `{"path":"src/main.rs"}`;
/// streamed, the arguments arrive split over three deltas.
fn tool_call(body: &Value, stream: bool) -> Response {
    let name = body["tools"][0]["function"]["name"]
        .as_str()
        .unwrap_or("read_file")
        .to_string();
    let usage = json!({"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29});
    if !stream {
        return Json(json!({
            "id": "chatcmpl-tool", "object": "chat.completion", "created": 1_700_000_000, "model": "tool-call",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
                "tool_calls": [{"id": "call_fake_1", "type": "function",
                    "function": {"name": name, "arguments": "{\"path\":\"src/main.rs\"}"}}]}}],
            "usage": usage
        }))
        .into_response();
    }
    let chunk = |choices: Value| {
        let c = json!({"id": "chatcmpl-tool", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": "tool-call", "choices": choices});
        format!("data: {c}\n\n")
    };
    let mut events = vec![chunk(
        json!([{"index": 0, "delta": {"role": "assistant", "content": null,
            "tool_calls": [{"index": 0, "id": "call_fake_1", "type": "function",
                "function": {"name": name, "arguments": ""}}]}, "finish_reason": null}]),
    )];
    for piece in ["{\"pa", "th\":\"src/m", "ain.rs\"}"] {
        events.push(chunk(
            json!([{"index": 0, "delta": {"tool_calls": [{"index": 0,
            "function": {"arguments": piece}}]}, "finish_reason": null}]),
        ));
    }
    events.push(chunk(
        json!([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]),
    ));
    let u = json!({"id": "chatcmpl-tool", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": "tool-call", "choices": [], "usage": usage});
    events.push(format!("data: {u}\n\n"));
    events.push("data: [DONE]\n\n".to_string());
    let s = futures::stream::iter(
        events
            .into_iter()
            .map(|e| Ok::<_, std::io::Error>(bytes::Bytes::from(e))),
    );
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(s))
        .unwrap()
}

const CUT: &str = "!cut";

struct DropCounter {
    seen: Arc<Seen>,
    finished: bool,
}

impl DropCounter {
    fn mark_finished(&mut self) {
        self.finished = true;
    }
}

impl Drop for DropCounter {
    fn drop(&mut self) {
        if self.finished {
            self.seen.streams_finished.fetch_add(1, Ordering::SeqCst);
        } else {
            self.seen.streams_dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn stream(seen: Arc<Seen>, model: String, text: String, include_usage: bool) -> Response {
    if model == "dead-stream" {
        let s = futures::stream::once(async {
            Err::<bytes::Bytes, _>(std::io::Error::other("dead before the first chunk"))
        });
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(s))
            .unwrap();
    }
    let (pieces, pause, cut) = match model.as_str() {
        "cut-stream" => (5, Duration::ZERO, Some(2)),
        "slow-stream" => (10, Duration::from_millis(150), None),
        // Outlasts any shutdown grace a test sets: 100 chunks 100 ms apart.
        "long-stream" => (100, Duration::from_millis(100), None),
        _ => (5, Duration::ZERO, None),
    };
    let chunk = |delta: Value, finish: Value| {
        let c = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {c}\n\n")
    };
    let mut events: Vec<String> = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for i in 0..pieces {
        events.push(chunk(
            json!({"content": format!("{}[{i}]", if i == 0 { text.as_str() } else { "" })}),
            Value::Null,
        ));
    }
    events.push(chunk(json!({}), json!("stop")));
    if include_usage {
        let u = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": model, "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": pieces, "total_tokens": 11 + pieces}});
        events.push(format!("data: {u}\n\n"));
    }
    events.push("data: [DONE]\n\n".to_string());
    if let Some(n) = cut {
        events.truncate(n + 1);
        events.push(CUT.to_string());
    }
    let guard = DropCounter {
        seen,
        finished: false,
    };
    let s = futures::stream::unfold(
        (events.into_iter(), guard, pause),
        |(mut it, mut guard, pause)| async move {
            match it.next() {
                Some(ev) if ev == CUT => {
                    // let the head and first chunks reach the gateway before the cut
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Some((
                        Err(std::io::Error::other("connection cut")),
                        (it, guard, pause),
                    ))
                }
                Some(ev) => {
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                    Some((
                        Ok::<_, std::io::Error>(bytes::Bytes::from(ev)),
                        (it, guard, pause),
                    ))
                }
                None => {
                    guard.mark_finished();
                    None
                }
            }
        },
    );
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(s))
        .unwrap()
}

/// The text of the last user turn, whatever its shape (string or text parts).
fn last_text(turns: Option<&Value>, parts_key: &str) -> String {
    let last = turns.and_then(Value::as_array).and_then(|t| t.last());
    match last.map(|m| &m[parts_key]) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

fn sse(frames: Vec<String>) -> Response {
    let s = futures::stream::iter(
        frames
            .into_iter()
            .map(|f| Ok::<_, std::io::Error>(bytes::Bytes::from(f))),
    );
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(s))
        .unwrap()
}

/// Counts the call and keeps its body and headers; the parsed body.
fn note(seen: &Seen, model: &str, headers: &HeaderMap, raw: &bytes::Bytes, auth: String) -> Value {
    *seen
        .calls
        .lock()
        .unwrap()
        .entry(model.to_string())
        .or_default() += 1;
    let body: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
    seen.bodies.lock().unwrap().push(body.clone());
    seen.raw_bodies.lock().unwrap().push(raw.clone());
    seen.headers.lock().unwrap().push(headers.clone());
    seen.auth.lock().unwrap().push(auth);
    body
}

fn header_of(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn anthropic_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"type": "error", "error": {"type": kind, "message": message}})),
    )
        .into_response()
}

/// Anthropic's rate-limit headers for a model named
/// `ratelimit-{remaining}-{seconds}`: `remaining` of 50 requests left until a
/// reset `seconds` from now. Anthropic sends these on every answer
/// (docs.anthropic.com/en/api/rate-limits, "Response headers"): for requests,
/// tokens (the most restrictive token limit in effect), input tokens and
/// output tokens, each `-limit`, `-remaining` and `-reset` (an RFC 3339 time).
/// The token buckets here are full and refill within 2 s.
fn anthropic_rate_limits(model: &str) -> Option<Vec<(String, String)>> {
    let rest = model.strip_prefix("ratelimit-")?;
    let (remaining, secs) = rest.split_once('-')?;
    let (remaining, secs): (u64, i64) = (remaining.parse().ok()?, secs.parse().ok()?);
    let at = |s: i64| {
        (chrono::Utc::now() + chrono::Duration::seconds(s))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let mut h = vec![
        ("anthropic-ratelimit-requests-limit".into(), "50".into()),
        (
            "anthropic-ratelimit-requests-remaining".into(),
            remaining.to_string(),
        ),
        ("anthropic-ratelimit-requests-reset".into(), at(secs)),
    ];
    for family in ["tokens", "input-tokens", "output-tokens"] {
        h.push((
            format!("anthropic-ratelimit-{family}-limit"),
            "40000".into(),
        ));
        h.push((
            format!("anthropic-ratelimit-{family}-remaining"),
            "40000".into(),
        ));
        h.push((format!("anthropic-ratelimit-{family}-reset"), at(2)));
    }
    Some(h)
}

async fn anthropic(
    State(seen): State<Arc<Seen>>,
    headers: HeaderMap,
    raw: bytes::Bytes,
) -> Response {
    let model = serde_json::from_slice::<Value>(&raw).unwrap_or(Value::Null)["model"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let limits = anthropic_rate_limits(&model);
    let mut r = anthropic_answer(seen, headers, raw, model).await;
    for (name, value) in limits.unwrap_or_default() {
        r.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    r
}

async fn anthropic_answer(
    seen: Arc<Seen>,
    headers: HeaderMap,
    raw: bytes::Bytes,
    model: String,
) -> Response {
    let key = header_of(&headers, "x-api-key");
    let body = note(&seen, &model, &headers, &raw, format!("x-api-key {key}"));
    match model.as_str() {
        "fail-429" => {
            let mut r = anthropic_error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "Number of requests has exceeded your rate limit",
            );
            r.headers_mut().insert("retry-after", "7".parse().unwrap());
            return r;
        }
        "fail-500" => {
            return anthropic_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "api_error",
                "Internal server error",
            )
        }
        "fail-context" => {
            return anthropic_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "prompt is too long: 210000 tokens > 200000 maximum",
            )
        }
        _ => {}
    }
    let text = format!("echo: {}", last_text(body.get("messages"), "content"));
    let tool = body["tools"][0]["name"]
        .as_str()
        .unwrap_or("read_file")
        .to_string();
    let stream = body["stream"].as_bool() == Some(true);
    let usage = json!({"input_tokens": 9, "output_tokens": 4, "cache_read_input_tokens": 2});
    if !stream {
        let (content, stop) = match model.as_str() {
            "tool-call" => (
                json!([{"type": "text", "text": "Reading it."},
                       {"type": "tool_use", "id": "toolu_fake_1", "name": tool, "input": {"path": "src/main.rs"}}]),
                "tool_use",
            ),
            "thinking" => (
                json!([{"type": "thinking", "thinking": "Let me think.", "signature": "sig-anthropic-1"},
                       {"type": "text", "text": text}]),
                "end_turn",
            ),
            _ => (json!([{"type": "text", "text": text}]), "end_turn"),
        };
        return Json(
            json!({"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": null, "usage": usage}),
        )
        .into_response();
    }
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    if model == "overloaded-stream" {
        return sse(vec![ev(
            "error",
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        )]);
    }
    let mut frames = vec![ev(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_fake", "type": "message",
        "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 9, "output_tokens": 1, "cache_read_input_tokens": 2}}}),
    )];
    let mut index = 0;
    let block_start = |index: usize, block: Value| {
        ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        )
    };
    let delta = |index: usize, d: Value| {
        ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": d}),
        )
    };
    let stop = |index: usize| {
        ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        )
    };
    if model == "thinking" {
        frames.push(block_start(
            index,
            json!({"type": "thinking", "thinking": "", "signature": ""}),
        ));
        for piece in ["Let me ", "think."] {
            frames.push(delta(
                index,
                json!({"type": "thinking_delta", "thinking": piece}),
            ));
        }
        frames.push(delta(
            index,
            json!({"type": "signature_delta", "signature": "sig-anthropic-1"}),
        ));
        frames.push(stop(index));
        index += 1;
    }
    frames.push(block_start(index, json!({"type": "text", "text": ""})));
    frames.push(ev("ping", json!({"type": "ping"})));
    let pieces: Vec<String> = if model == "tool-call" {
        vec!["Reading it.".into()]
    } else {
        vec![text.clone(), "[0]".into(), "[1]".into()]
    };
    for piece in pieces {
        frames.push(delta(index, json!({"type": "text_delta", "text": piece})));
    }
    if model.starts_with("mid-error") {
        frames.push(ev(
            "error",
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ));
        return sse(frames);
    }
    frames.push(stop(index));
    let mut reason = "end_turn";
    if model == "tool-call" {
        index += 1;
        frames.push(block_start(
            index,
            json!({"type": "tool_use", "id": "toolu_fake_1", "name": tool, "input": {}}),
        ));
        for piece in ["{\"pa", "th\":\"src/m", "ain.rs\"}"] {
            frames.push(delta(
                index,
                json!({"type": "input_json_delta", "partial_json": piece}),
            ));
        }
        frames.push(stop(index));
        reason = "tool_use";
    }
    frames.push(ev(
        "message_delta",
        json!({"type": "message_delta",
        "delta": {"stop_reason": reason, "stop_sequence": null}, "usage": {"output_tokens": 3}}),
    ));
    frames.push(ev("message_stop", json!({"type": "message_stop"})));
    sse(frames)
}

async fn gemini(
    State(seen): State<Arc<Seen>>,
    axum::extract::Path(target): axum::extract::Path<String>,
    headers: HeaderMap,
    raw: bytes::Bytes,
) -> Response {
    let (model, action) = target.rsplit_once(':').unwrap_or((target.as_str(), ""));
    let key = header_of(&headers, "x-goog-api-key");
    let body = note(
        &seen,
        model,
        &headers,
        &raw,
        format!("x-goog-api-key {key}"),
    );
    let gerror = |status: StatusCode, s: &str, message: &str| {
        (
            status,
            Json(json!({"error": {"code": status.as_u16(), "status": s, "message": message}})),
        )
            .into_response()
    };
    match model {
        "fail-429" => {
            return gerror(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                "Resource has been exhausted (e.g. check quota).",
            )
        }
        "fail-500" => return gerror(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "Internal error"),
        "fail-context" => {
            return gerror(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            )
        }
        _ => {}
    }
    let mut text = format!("echo: {}", last_text(body.get("contents"), "parts"));
    // Structured output: with `responseMimeType: application/json` and a
    // schema (`responseJsonSchema`, JSON Schema; or `responseSchema`, the
    // OpenAPI subset with upper-case types), the API answers with one text
    // part holding JSON that conforms to the schema (ai.google.dev/gemini-api/
    // docs/structured-output). Gemini CLI's auto model asks this way for its
    // routing decision (packages/core/src/core/baseLlmClient.ts generateJson,
    // routing/strategies/classifierStrategy.ts: {reasoning, model_choice}).
    let gen = &body["generationConfig"];
    let json_mode = gen["responseMimeType"].as_str() == Some("application/json");
    if json_mode {
        let schema = gen
            .get("responseJsonSchema")
            .or_else(|| gen.get("responseSchema"))
            .cloned()
            .unwrap_or(Value::Null);
        text = schema_instance(&schema).to_string();
        seen.json_answers.fetch_add(1, Ordering::SeqCst);
    }
    let tool = body["tools"][0]["functionDeclarations"][0]["name"]
        .as_str()
        .unwrap_or("read_file")
        .to_string();
    let usage = json!({"promptTokenCount": 9, "candidatesTokenCount": 4, "totalTokenCount": 13,
        "cachedContentTokenCount": 2});
    if action == "generateContent" {
        let parts = if model == "tool-call" {
            json!([{"functionCall": {"name": tool, "args": {"path": "src/main.rs"}}}])
        } else {
            json!([{"text": text}])
        };
        return Json(
            json!({"candidates": [{"content": {"role": "model", "parts": parts},
            "finishReason": "STOP", "index": 0}], "usageMetadata": usage, "modelVersion": model}),
        )
        .into_response();
    }
    let chunk = |parts: Value, finish: Option<&str>, usage: Option<&Value>| {
        let mut c = json!({"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}], "modelVersion": model});
        if let Some(f) = finish {
            c["candidates"][0]["finishReason"] = json!(f);
        }
        if let Some(u) = usage {
            c["usageMetadata"] = u.clone();
        }
        format!("data: {c}\r\n\r\n")
    };
    match model {
        "tool-call" => sse(vec![
            chunk(json!([{"text": "Reading it."}]), None, None),
            chunk(
                json!([{"functionCall": {"name": tool, "args": {"path": "src/main.rs"}}}]),
                Some("STOP"),
                Some(&usage),
            ),
        ]),
        m if m.starts_with("mid-error") => sse(vec![
            chunk(json!([{"text": text}]), None, None),
            "data: {\"error\":{\"code\":503,\"status\":\"UNAVAILABLE\",\"message\":\"The model is overloaded.\"}}\r\n\r\n".into(),
        ]),
        _ if json_mode => sse(vec![chunk(json!([{"text": text}]), Some("STOP"), Some(&usage))]),
        _ => sse(vec![
            chunk(json!([{"text": text}]), None, None),
            chunk(json!([{"text": "[0]"}]), None, None),
            chunk(json!([{"text": "[1]"}]), Some("STOP"), Some(&usage)),
        ]),
    }
}

/// A value that conforms to `schema` (JSON Schema, or Gemini's OpenAPI
/// subset whose `type` is upper case): every property filled, the first
/// `enum` value or `anyOf` branch, a number at its `minimum` (else 1).
fn schema_instance(schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(first) = schema[key].as_array().and_then(|e| e.first()) {
            return schema_instance(first);
        }
    }
    let ty = schema["type"].as_str().unwrap_or("object").to_lowercase();
    match ty.as_str() {
        "object" => {
            let mut out = serde_json::Map::new();
            if let Some(props) = schema["properties"].as_object() {
                for (name, s) in props {
                    out.insert(name.clone(), schema_instance(s));
                }
            }
            Value::Object(out)
        }
        "array" => json!([schema_instance(&schema["items"])]),
        "integer" => json!(schema["minimum"].as_i64().unwrap_or(1)),
        "number" => json!(schema["minimum"].as_f64().unwrap_or(1.0)),
        "boolean" => json!(true),
        _ => json!("fake upstream structured answer"),
    }
}

/// OpenAI Responses (`POST /v1/responses`): the same id every time, so the
/// gateway's own ids can be told apart.
async fn responses(
    State(seen): State<Arc<Seen>>,
    headers: HeaderMap,
    raw: bytes::Bytes,
) -> Response {
    let model = serde_json::from_slice::<Value>(&raw).unwrap_or(Value::Null)["model"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let auth = header_of(&headers, "authorization");
    let body = note(&seen, &model, &headers, &raw, auth);
    if model == "fail-429" {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit reached",
            "rate_limit_exceeded",
        );
    }
    if model == "fail-context" {
        // OpenAI Responses' answer to an input past the window (400, code
        // `context_length_exceeded`, param `input`), as Codex CLI and SDK
        // users report it (e.g. github.com/dyad-sh/dyad/issues/1672).
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {
                "message": "Your input exceeds the context window of this model. Please adjust your input and try again.",
                "type": "invalid_request_error", "param": "input", "code": "context_length_exceeded"}})),
        )
            .into_response();
    }
    // The text of the last input message.
    let last = body["input"].as_array().and_then(|i| {
        i.iter()
            .rev()
            .find(|it| it["role"] == "user" || it["type"] == "message")
    });
    let prompt = match last.map(|m| &m["content"]) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => body["input"].as_str().unwrap_or("").to_string(),
    };
    let text = format!("echo: {prompt}");
    let tool = body["tools"][0]["name"]
        .as_str()
        .unwrap_or("read_file")
        .to_string();
    let item = if model == "tool-call" {
        json!({"type": "function_call", "id": "fc_up_1", "call_id": "call_up_1", "name": tool,
               "arguments": "{\"path\":\"src/main.rs\"}", "status": "completed"})
    } else {
        json!({"type": "message", "id": "msg_up_1", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": text, "annotations": []}]})
    };
    let usage = json!({"input_tokens": 12, "input_tokens_details": {"cached_tokens": 5},
        "output_tokens": 6, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 18});
    let response = |status: &str, output: Value, usage: Value| {
        json!({"id": "resp_upstream_fixed", "object": "response", "created_at": 1_700_000_000,
               "status": status, "model": model, "output": output, "usage": usage})
    };
    if body["stream"].as_bool() != Some(true) {
        return Json(response("completed", json!([item]), usage)).into_response();
    }
    let mut seq = 0;
    let mut frames = Vec::new();
    let mut ev = |ty: &str, mut data: Value| {
        data["type"] = json!(ty);
        data["sequence_number"] = json!(seq);
        seq += 1;
        frames.push(format!("event: {ty}\ndata: {data}\n\n"));
    };
    ev(
        "response.created",
        json!({"response": response("in_progress", json!([]), Value::Null)}),
    );
    ev(
        "response.in_progress",
        json!({"response": response("in_progress", json!([]), Value::Null)}),
    );
    if model == "tool-call" {
        let mut added = item.clone();
        added["arguments"] = json!("");
        added["status"] = json!("in_progress");
        ev(
            "response.output_item.added",
            json!({"output_index": 0, "item": added}),
        );
        for piece in ["{\"pa", "th\":\"src/m", "ain.rs\"}"] {
            ev(
                "response.function_call_arguments.delta",
                json!({"item_id": "fc_up_1", "output_index": 0, "delta": piece}),
            );
        }
        ev(
            "response.function_call_arguments.done",
            json!({"item_id": "fc_up_1", "output_index": 0, "arguments": "{\"path\":\"src/main.rs\"}"}),
        );
    } else {
        ev(
            "response.output_item.added",
            json!({"output_index": 0,
            "item": {"type": "message", "id": "msg_up_1", "role": "assistant", "status": "in_progress", "content": []}}),
        );
        ev(
            "response.content_part.added",
            json!({"item_id": "msg_up_1", "output_index": 0, "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": []}}),
        );
        for piece in [text.as_str(), "[0]", "[1]"] {
            ev(
                "response.output_text.delta",
                json!({"item_id": "msg_up_1", "output_index": 0, "content_index": 0, "delta": piece}),
            );
        }
        let full = format!("{text}[0][1]");
        ev(
            "response.output_text.done",
            json!({"item_id": "msg_up_1", "output_index": 0, "content_index": 0, "text": full}),
        );
    }
    let mut done = item.clone();
    if model != "tool-call" {
        done["content"][0]["text"] = json!(format!("{text}[0][1]"));
    }
    ev(
        "response.output_item.done",
        json!({"output_index": 0, "item": done}),
    );
    ev(
        "response.completed",
        json!({"response": response("completed", json!([done]), usage)}),
    );
    sse(frames)
}

async fn calls(State(seen): State<Arc<Seen>>) -> Json<Value> {
    let calls = seen.calls.lock().unwrap().clone();
    Json(json!(calls))
}

/// Words that carry no content, left out of the fake embeddings.
const STOPWORDS: &[&str] = &[
    "a", "an", "the", "of", "is", "are", "what", "whats", "which", "me", "tell", "please", "to",
    "in", "on", "for", "and", "or", "do", "does", "i", "you", "it", "its", "city",
];

/// The fake's deterministic embedding of `text` (unit length, `dims` wide).
pub fn fake_embedding(text: &str, dims: usize) -> Vec<f32> {
    let mut v = vec![0f32; dims.max(1)];
    for word in text
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .map(|w| w.replace('\'', "").to_lowercase())
        .filter(|w| !w.is_empty() && !STOPWORDS.contains(&w.as_str()))
    {
        let w = word
            .strip_suffix('s')
            .filter(|s| s.len() > 2)
            .unwrap_or(&word);
        // FNV-1a
        let mut h: u64 = 0xcbf29ce484222325;
        for b in w.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        let n = v.len() as u64;
        v[(h % n) as usize] += 1.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in &mut v {
            *x /= norm;
        }
    }
    v
}

async fn embeddings(
    State(seen): State<Arc<Seen>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let model = body["model"].as_str().unwrap_or("").to_string();
    let auth = seen.record(&model, &body, &headers, "authorization");
    if auth.contains("bad") {
        return error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided",
            "invalid_request_error",
        );
    }
    if model == "fail-500" {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "upstream exploded",
            "server_error",
        );
    }
    let inputs: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "'input' must be a string or an array of strings",
                "invalid_request_error",
            )
        }
    };
    let dims = body["dimensions"].as_u64().unwrap_or(64) as usize;
    let base64 = body["encoding_format"].as_str() == Some("base64");
    let mut tokens = 0;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            tokens += text.split_whitespace().count().max(1);
            let v = fake_embedding(text, dims);
            let embedding = if base64 {
                use base64::Engine;
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Json(json!({"object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}))
    .into_response()
}
