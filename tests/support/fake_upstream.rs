//! A fake OpenAI-compatible provider on 127.0.0.1:0. Behaviour is chosen by
//! the model name: anything normal answers; `fail-429` (rate limit,
//! Retry-After: 7), `fail-quota` (quota exhausted, Retry-After: 30), `dead-stream`
//! (fails before its first chunk),
//! `fail-500`, `fail-400`, `slow` (300 ms), `hang`, `cut-stream` (stops
//! after two chunks without [DONE]), `slow-stream` (10 chunks, 150 ms apart).
//! A key containing "bad" gets 401. Calls are counted per model.
//! The same server also speaks Anthropic Messages (`POST /v1/messages`, base
//! URL `native_base_url()`) and Gemini (`POST /v1beta/models/{m}:generateContent`
//! and `:streamGenerateContent?alt=sse`), each with `fail-429` and streaming.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
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

    pub fn serve(listener: tokio::net::TcpListener) -> FakeUpstream {
        let seen = Arc::new(Seen::default());
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/messages", post(anthropic))
            .route("/v1beta/models/{target}", post(gemini))
            .with_state(seen.clone());
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
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

async fn anthropic(
    State(seen): State<Arc<Seen>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let model = body["model"].as_str().unwrap_or("").to_string();
    seen.record(&model, &body, &headers, "x-api-key");
    if model == "fail-429" {
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Number of requests has exceeded your rate limit"}})),
        )
            .into_response();
        r.headers_mut().insert("retry-after", "7".parse().unwrap());
        return r;
    }
    let text = format!("echo: {}", last_text(body.get("messages"), "content"));
    if body["stream"].as_bool() != Some(true) {
        return Json(json!({"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 9, "output_tokens": 4, "cache_read_input_tokens": 2}}))
        .into_response();
    }
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut frames = vec![
        ev(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_fake", "type": "message",
            "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 9, "output_tokens": 1}}}),
        ),
        ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        ev("ping", json!({"type": "ping"})),
    ];
    for piece in [text.as_str(), "[0]", "[1]"] {
        frames.push(ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": piece}}),
        ));
    }
    frames.push(ev(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    frames.push(ev("message_delta", json!({"type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 3}})));
    frames.push(ev("message_stop", json!({"type": "message_stop"})));
    sse(frames)
}

async fn gemini(
    State(seen): State<Arc<Seen>>,
    axum::extract::Path(target): axum::extract::Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let (model, action) = target.rsplit_once(':').unwrap_or((target.as_str(), ""));
    seen.record(model, &body, &headers, "x-goog-api-key");
    if model == "fail-429" {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Resource has been exhausted (e.g. check quota)."}})),
        )
            .into_response();
    }
    let text = format!("echo: {}", last_text(body.get("contents"), "parts"));
    let usage = json!({"promptTokenCount": 9, "candidatesTokenCount": 4, "totalTokenCount": 13});
    if action == "generateContent" {
        return Json(
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
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
    sse(vec![
        chunk(json!([{"text": text}]), None, None),
        chunk(json!([{"text": "[0]"}]), None, None),
        chunk(json!([{"text": "[1]"}]), Some("STOP"), Some(&usage)),
    ])
}
