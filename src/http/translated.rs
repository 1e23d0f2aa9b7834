//! Inbound formats other than OpenAI Chat: Anthropic Messages
//! (`POST /v1/messages`, `/v1/messages/count_tokens`: Claude Code, Anthropic
//! SDKs), OpenAI Responses (`POST /v1/responses`: Codex CLI) and Gemini
//! (`POST /v1beta/models/{model}:generateContent` / `:streamGenerateContent`).
//!
//! One path for all three: the request is decoded into the canonical model,
//! its model name mapped (`[model_map]`), Claude Code's per-request billing
//! line removed, and it is encoded as OpenAI Chat for the router, so combos,
//! fallback and breakers apply unchanged. The answer comes back translated
//! into the client's format; a stream is translated event by event as it
//! arrives. Errors use the client format's shape and statuses.

use super::chat::{read_body, route_headers};
use super::{auth, header, AppState};
use crate::catalog::WireFormat;
use crate::formats::canonical::{is_context_overflow, ErrorKind, StreamEvent};
use crate::formats::sse::SseParser;
use crate::formats::{self, ClientContext, StreamDecoder, StreamEncoder};
use crate::proxy::{self, ChatCall, ChatOutcome};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};
use serde_json::Value;
use std::convert::Infallible;
use std::time::Instant;

const X_TRANSLATION: HeaderName = HeaderName::from_static("x-omniroute-translation");
const X_TRANSLATION_NOTES: HeaderName = HeaderName::from_static("x-omniroute-translation-notes");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// An error in the client format's shape (Anthropic:
/// `{"type":"error","error":{type,message}}`, Gemini: `{"error":{code,status,message}}`).
fn error(fmt: WireFormat, status: u16, kind: ErrorKind, message: &str) -> Response {
    let (status, body) = formats::encode_error(fmt, status, kind, message);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    (status, axum::Json(body)).into_response()
}

fn kind_for(status: u16, message: &str) -> ErrorKind {
    if is_context_overflow(message) {
        ErrorKind::ContextTooLong
    } else {
        ErrorKind::from_status(status)
    }
}

fn api_error(fmt: WireFormat, e: super::error::ApiError) -> Response {
    let status = e.status.as_u16();
    let mut resp = error(fmt, status, kind_for(status, &e.message), &e.message);
    if let Some(ra) = e
        .retry_after
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        resp.headers_mut().insert("retry-after", ra);
    }
    resp
}

/// How a route presents its request: its format, and for Gemini the model
/// and whether to stream, which come from the path.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub format: WireFormat,
    pub path_model: Option<String>,
    pub path_stream: bool,
}

impl Inbound {
    pub fn body(format: WireFormat) -> Inbound {
        Inbound {
            format,
            path_model: None,
            path_stream: false,
        }
    }

    fn label(&self) -> &'static str {
        match self.format {
            WireFormat::Anthropic => "anthropic->openai",
            WireFormat::OpenaiResponses => "openai-responses->openai",
            WireFormat::Gemini => "gemini->openai",
            WireFormat::Openai => "openai->openai",
        }
    }

    fn endpoint(&self) -> &'static str {
        match self.format {
            WireFormat::Anthropic => "messages",
            WireFormat::OpenaiResponses => "responses",
            WireFormat::Gemini => "generate_content",
            WireFormat::Openai => "chat.completions",
        }
    }
}

/// The decoded request, ready for the router.
struct Prepared {
    call: ChatCall,
    ctx: ClientContext,
    stream: bool,
    notes: Vec<String>,
    /// Responses only: the conversation to store with the answer.
    conversation: Option<Conversation>,
}

/// A Responses conversation: every input item so far (earlier turns from
/// `previous_response_id` included), kept with the answer under its id.
#[derive(Clone)]
struct Conversation {
    id: String,
    owner: String,
    items: Vec<Value>,
    store: bool,
}

impl Conversation {
    /// Store the answer (`response`, as the client got it) with the conversation.
    fn save(&self, state: &AppState, response: &Value) {
        if !self.store {
            return;
        }
        let mut items = self.items.clone();
        if let Some(out) = response.get("output").and_then(Value::as_array) {
            items.extend(out.iter().cloned());
        }
        let row = crate::store::responses::StoredResponse {
            id: self.id.clone(),
            owner: self.owner.clone(),
            items: Value::Array(items).to_string(),
            response: response.to_string(),
            created_ms: crate::store::now_ms(),
        };
        state.gw.store.write_detached("response", move |tx| {
            crate::store::responses::put_response(tx, &row)
        });
    }
}

/// Responses input with the earlier turns of `previous_response_id` put in
/// front, so the router sees the whole conversation whichever provider
/// served those turns.
async fn with_history(
    state: &AppState,
    owner: &str,
    id: String,
    bytes: Bytes,
) -> Result<(Bytes, Option<Conversation>), Response> {
    let fmt = WireFormat::OpenaiResponses;
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&bytes) else {
        // Not an object: the decoder says what is wrong.
        return Ok((bytes, None));
    };
    let mut items = match body.remove("input") {
        Some(Value::String(text)) => {
            vec![serde_json::json!({"type": "message", "role": "user", "content": text})]
        }
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    if let Some(prev) = body.remove("previous_response_id") {
        let Some(prev) = prev.as_str().map(str::to_string) else {
            return Err(error(
                fmt,
                400,
                ErrorKind::BadRequest,
                "previous_response_id must be a string",
            ));
        };
        let lookup = |state: &AppState| {
            let (p, o) = (prev.clone(), owner.to_string());
            let store = state.gw.store.clone();
            async move {
                store
                    .read(move |c| crate::store::responses::get_response(c, &p, &o))
                    .await
            }
        };
        let mut row = lookup(state)
            .await
            .map_err(|e| error(fmt, 500, ErrorKind::Upstream, &e.to_string()))?;
        if row.is_none() {
            // The previous answer may still be queued for the writer: let it land, look again.
            let _ = state.gw.store.flush().await;
            row = lookup(state)
                .await
                .map_err(|e| error(fmt, 500, ErrorKind::Upstream, &e.to_string()))?;
        }
        let Some(row) = row else {
            return Err(error(
                fmt,
                404,
                ErrorKind::NotFound,
                &format!("previous response {prev:?} not found (it was not stored, or another key made it)"),
            ));
        };
        let mut earlier: Vec<Value> = serde_json::from_str(&row.items).unwrap_or_default();
        earlier.append(&mut items);
        items = earlier;
    }
    let store = body.get("store").and_then(Value::as_bool).unwrap_or(true);
    body.insert("input".into(), Value::Array(items.clone()));
    let bytes = serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| error(fmt, 400, ErrorKind::BadRequest, &e.to_string()))?;
    Ok((
        bytes,
        Some(Conversation {
            id,
            owner: owner.to_string(),
            items,
            store,
        }),
    ))
}

async fn prepare(
    state: &AppState,
    inbound: &Inbound,
    req: Request,
    request_id: &str,
) -> Result<Prepared, Response> {
    let fmt = inbound.format;
    let started = Instant::now();
    let caller = authorize(state, &req).map_err(|e| api_error(fmt, e))?;
    let session = req
        .headers()
        .get("x-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = read_body(req, state.gw.settings.max_body_bytes)
        .await
        .map_err(|e| api_error(fmt, e))?;
    let (bytes, conversation) = if fmt == WireFormat::OpenaiResponses {
        let owner = caller.key_id.clone().unwrap_or_default();
        // Unique per gateway run and process: upstream ids may repeat.
        let id = format!("resp_{}", request_id.trim_start_matches("req_"));
        with_history(state, &owner, id, bytes).await?
    } else {
        (bytes, None)
    };
    let mut canonical = formats::decode_request(fmt, &bytes)
        .map_err(|e| error(fmt, 400, ErrorKind::BadRequest, &e.to_string()))?;
    if let Some(model) = &inbound.path_model {
        canonical.model = model.clone();
        canonical.stream = inbound.path_stream;
        canonical.stream_usage = true;
    }
    let client_model = canonical.model.clone();
    if let Some(to) = crate::config::map_model(&state.gw.settings.model_map, &client_model) {
        canonical.model = to.to_string();
    }
    let mut notes = Vec::new();
    // Every upstream the router can reach today speaks OpenAI Chat, never Anthropic.
    if formats::strip_billing_header(&mut canonical) {
        notes.push("removed Claude Code's billing header line from the system prompt".into());
    }
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut ctx = ClientContext::for_request(&canonical, created);
    ctx.model = client_model;
    let stream = canonical.stream;
    let translated = formats::encode_request(WireFormat::Openai, &canonical)
        .map_err(|e| error(fmt, 400, ErrorKind::BadRequest, &e.to_string()))?;
    notes.extend(translated.lossy);
    let Value::Object(mut body) = translated.body else {
        return Err(error(
            fmt,
            500,
            ErrorKind::Upstream,
            "request encoding produced no object",
        ));
    };
    if stream {
        // The translated stream needs the usage chunk for message_delta.
        body.insert(
            "stream_options".into(),
            serde_json::json!({"include_usage": true}),
        );
    }
    Ok(Prepared {
        call: ChatCall {
            request_id: request_id.to_string(),
            key_id: caller.key_id,
            endpoint: inbound.endpoint(),
            body,
            started,
            session,
        },
        ctx,
        stream,
        notes,
        conversation,
    })
}

/// The client key from the headers, or Gemini's `?key=` query parameter.
fn authorize(state: &AppState, req: &Request) -> Result<super::Caller, super::error::ApiError> {
    let query_key = req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("key="))
            .map(str::to_string)
    });
    match query_key {
        Some(k) if auth::presented_key(req.headers()).is_none() => {
            let mut headers = HeaderMap::new();
            headers.insert("x-goog-api-key", header(&k));
            auth::authorize(state, &headers)
        }
        _ => auth::authorize(state, req.headers()),
    }
}

fn translation_headers(h: &mut HeaderMap, label: &'static str, notes: &[String]) {
    h.insert(X_TRANSLATION, HeaderValue::from_static(label));
    if !notes.is_empty() {
        let text: String = notes
            .join("; ")
            .chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control())
            .take(500)
            .collect();
        h.insert(X_TRANSLATION_NOTES, header(&text));
    }
}

/// Serve one request in `inbound`'s format through the router.
pub async fn handle(state: AppState, inbound: Inbound, req: Request) -> Response {
    let fmt = inbound.format;
    let request_id = state.next_request_id();
    let mut resp = match prepare(&state, &inbound, req, &request_id).await {
        Err(resp) => resp,
        Ok(p) => match proxy::chat(&state.gw, p.call).await {
            Err(e) => api_error(fmt, super::error::ApiError::from(e)),
            Ok(ChatOutcome::Complete {
                status,
                body,
                route,
                ..
            }) => {
                let mut r = complete(&state, fmt, status, &body, &p.ctx, p.conversation.as_ref());
                route_headers(r.headers_mut(), &route);
                translation_headers(r.headers_mut(), inbound.label(), &p.notes);
                r
            }
            Ok(ChatOutcome::Stream { events, route, .. }) if p.stream => {
                let saver = p.conversation.clone().map(|c| (c, state.clone()));
                let mut r = Response::new(Body::from_stream(translate_stream(
                    fmt, events, &p.ctx, saver,
                )));
                let h = r.headers_mut();
                h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
                h.insert("cache-control", HeaderValue::from_static("no-cache"));
                route_headers(h, &route);
                translation_headers(h, inbound.label(), &p.notes);
                r
            }
            Ok(ChatOutcome::Stream { .. }) => error(
                fmt,
                502,
                ErrorKind::Upstream,
                "the upstream streamed an answer that was not asked for",
            ),
        },
    };
    resp.headers_mut().insert(X_REQUEST_ID, header(&request_id));
    resp
}

/// A whole OpenAI answer (or upstream error) in the client's format.
fn complete(
    state: &AppState,
    fmt: WireFormat,
    status: u16,
    body: &[u8],
    ctx: &ClientContext,
    conversation: Option<&Conversation>,
) -> Response {
    if status >= 300 {
        let info = formats::decode_error(WireFormat::Openai, status, body);
        return error(fmt, info.status, info.kind, &info.message);
    }
    match formats::decode_response(WireFormat::Openai, body) {
        Ok(mut resp) => {
            if let Some(c) = conversation {
                resp.id = c.id.clone();
            }
            let out = formats::encode_response(fmt, &resp, ctx);
            if let Some(c) = conversation {
                c.save(state, &out.body);
            }
            (StatusCode::OK, axum::Json(out.body)).into_response()
        }
        Err(e) => error(
            fmt,
            502,
            ErrorKind::Upstream,
            &format!("the upstream's answer could not be read: {e}"),
        ),
    }
}

struct Translator {
    upstream: BoxStream<'static, Result<Bytes, Infallible>>,
    parser: SseParser,
    decoder: StreamDecoder,
    encoder: StreamEncoder,
    ended: bool,
    /// Responses: where the final response object is stored.
    saver: Option<(Conversation, AppState)>,
}

impl Translator {
    fn encode(&mut self, mut ev: StreamEvent, out: &mut BytesMut) {
        if let (StreamEvent::Start { id, .. }, Some((c, _))) = (&mut ev, &self.saver) {
            *id = c.id.clone();
        }
        let frames = self.encoder.frames(&ev);
        if let Some((c, state)) = &self.saver {
            for f in frames
                .iter()
                .filter(|f| f.starts_with("event: response.completed"))
            {
                let data = f.lines().find_map(|l| l.strip_prefix("data: "));
                if let Some(v) = data.and_then(|d| serde_json::from_str::<Value>(d).ok()) {
                    c.save(state, &v["response"]);
                }
            }
        }
        out.extend_from_slice(&formats::sse::to_bytes(frames));
    }

    fn feed(&mut self, chunk: &[u8], out: &mut BytesMut) {
        for ev in self.parser.push(chunk) {
            for c in self.decoder.push(ev.event.as_deref(), &ev.data) {
                self.encode(c, out);
            }
        }
    }

    fn finish(&mut self, out: &mut BytesMut) {
        for ev in self.parser.finish() {
            for c in self.decoder.push(ev.event.as_deref(), &ev.data) {
                self.encode(c, out);
            }
        }
        for c in self.decoder.finish() {
            self.encode(c, out);
        }
    }
}

/// The router's OpenAI SSE (one event per item, keep-alive comments in
/// silences) as the client format's event sequence, item by item.
fn translate_stream(
    fmt: WireFormat,
    upstream: BoxStream<'static, Result<Bytes, Infallible>>,
    ctx: &ClientContext,
    saver: Option<(Conversation, AppState)>,
) -> BoxStream<'static, Result<Bytes, Infallible>> {
    let t = Translator {
        upstream,
        parser: SseParser::new(),
        decoder: StreamDecoder::new(WireFormat::Openai),
        encoder: StreamEncoder::new(fmt, ctx),
        ended: false,
        saver,
    };
    futures::stream::unfold(t, |mut t| async move {
        loop {
            if t.ended {
                return None;
            }
            let mut out = BytesMut::new();
            match t.upstream.next().await {
                Some(Ok(chunk)) if chunk.starts_with(b":") => {
                    return Some((Ok(t.encoder.keep_alive()), t));
                }
                Some(Ok(chunk)) => t.feed(&chunk, &mut out),
                Some(Err(never)) => match never {},
                None => {
                    t.finish(&mut out);
                    t.ended = true;
                }
            }
            if !out.is_empty() {
                return Some((Ok(out.freeze()), t));
            }
        }
    })
    .boxed()
}

/// `POST /v1/messages/count_tokens`: an estimate (about four bytes of
/// request text per token), as the router estimates for budgets.
pub async fn count_tokens(State(state): State<AppState>, req: Request) -> Response {
    let fmt = WireFormat::Anthropic;
    if let Err(e) = auth::authorize(&state, req.headers()) {
        return api_error(fmt, e);
    }
    let bytes = match read_body(req, state.gw.settings.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return api_error(fmt, e),
    };
    match formats::decode_request(WireFormat::Anthropic, &bytes) {
        Ok(canonical) => {
            let encoded = formats::encode_request(WireFormat::Openai, &canonical);
            let tokens = match encoded {
                Ok(t) => t.body.as_object().map(proxy::estimate_tokens).unwrap_or(0),
                Err(_) => (bytes.len() / 4) as u64,
            };
            axum::Json(serde_json::json!({ "input_tokens": tokens.max(1) })).into_response()
        }
        Err(e) => error(fmt, 400, ErrorKind::BadRequest, &e.to_string()),
    }
}

/// `POST /v1/messages`: Anthropic Messages.
pub async fn messages(State(state): State<AppState>, req: Request) -> Response {
    handle(state, Inbound::body(WireFormat::Anthropic), req).await
}

/// `POST /v1/responses`: OpenAI Responses.
pub async fn responses(State(state): State<AppState>, req: Request) -> Response {
    handle(state, Inbound::body(WireFormat::OpenaiResponses), req).await
}

/// `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent`.
pub async fn gemini(
    State(state): State<AppState>,
    axum::extract::Path(target): axum::extract::Path<String>,
    req: Request,
) -> Response {
    let (model, action) = match target.rsplit_once(':') {
        Some((m, a)) => (m.to_string(), a.to_string()),
        None => (target.clone(), String::new()),
    };
    let stream = match action.as_str() {
        "generateContent" => false,
        "streamGenerateContent" => true,
        "countTokens" => return gemini_count_tokens(state, req).await,
        _ => {
            return error(
                WireFormat::Gemini,
                404,
                ErrorKind::NotFound,
                &format!(
                    "unknown method {action:?} on models/{model}: use generateContent, streamGenerateContent or countTokens"
                ),
            )
        }
    };
    let inbound = Inbound {
        format: WireFormat::Gemini,
        path_model: Some(model),
        path_stream: stream,
    };
    handle(state, inbound, req).await
}

/// `:countTokens`: the same estimate as `count_tokens`, in Gemini's shape.
async fn gemini_count_tokens(state: AppState, req: Request) -> Response {
    let fmt = WireFormat::Gemini;
    if let Err(e) = authorize(&state, &req) {
        return api_error(fmt, e);
    }
    let bytes = match read_body(req, state.gw.settings.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return api_error(fmt, e),
    };
    match formats::decode_request(fmt, &bytes) {
        Ok(canonical) => {
            let tokens = formats::encode_request(WireFormat::Openai, &canonical)
                .ok()
                .and_then(|t| t.body.as_object().map(proxy::estimate_tokens))
                .unwrap_or((bytes.len() / 4) as u64);
            axum::Json(serde_json::json!({ "totalTokens": tokens.max(1) })).into_response()
        }
        Err(e) => error(fmt, 400, ErrorKind::BadRequest, &e.to_string()),
    }
}

/// `GET /v1/responses/{id}`: a stored response, for the key that made it.
pub async fn get_response(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    axum::Extension(caller): axum::Extension<super::Caller>,
) -> Response {
    let owner = caller.key_id.unwrap_or_default();
    let read = |state: &AppState| {
        let (lookup, owner) = (id.clone(), owner.clone());
        let store = state.gw.store.clone();
        async move {
            store
                .read(move |c| crate::store::responses::get_response(c, &lookup, &owner))
                .await
        }
    };
    let mut row = read(&state).await;
    if matches!(row, Ok(None)) {
        // It may still be queued for the writer.
        let _ = state.gw.store.flush().await;
        row = read(&state).await;
    }
    match row {
        Ok(Some(row)) => match serde_json::from_str::<Value>(&row.response) {
            Ok(v) => axum::Json(v).into_response(),
            Err(e) => super::error::ApiError::internal(e.to_string()).into_response(),
        },
        Ok(None) => super::error::ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "response_not_found",
            format!("response {id:?} not found (not stored, or made with another key)"),
        )
        .into_response(),
        Err(e) => super::error::ApiError::internal(e.to_string()).into_response(),
    }
}
