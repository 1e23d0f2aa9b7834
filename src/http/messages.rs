//! Anthropic Messages inbound — `POST /v1/messages` and
//! `POST /v1/messages/count_tokens` — for Claude Code and the Anthropic SDKs.
//!
//! The request is decoded into the canonical model, its model name mapped
//! (`[model_map]`), Claude Code's per-request billing line removed, and it is
//! encoded as OpenAI Chat for the router, so combos, fallback and breakers
//! apply unchanged. The answer comes back translated; a stream is translated
//! event by event as it arrives. Errors use Anthropic's shape and statuses.

use super::chat::{read_body, route_headers};
use super::{auth, header, AppState};
use crate::catalog::WireFormat;
use crate::formats::canonical::{is_context_overflow, ErrorKind};
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

/// An error in Anthropic's shape (`{"type":"error","error":{type,message}}`).
fn error(status: u16, kind: ErrorKind, message: &str) -> Response {
    let (status, body) = formats::encode_error(WireFormat::Anthropic, status, kind, message);
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

fn api_error(e: super::error::ApiError) -> Response {
    let status = e.status.as_u16();
    let mut resp = error(status, kind_for(status, &e.message), &e.message);
    if let Some(ra) = e
        .retry_after
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        resp.headers_mut().insert("retry-after", ra);
    }
    resp
}

/// The decoded request, ready for the router.
struct Prepared {
    call: ChatCall,
    ctx: ClientContext,
    stream: bool,
    notes: Vec<String>,
}

async fn prepare(state: &AppState, req: Request, request_id: &str) -> Result<Prepared, Response> {
    let started = Instant::now();
    let caller = auth::authorize(state, req.headers()).map_err(api_error)?;
    let session = req
        .headers()
        .get("x-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = read_body(req, state.gw.settings.max_body_bytes)
        .await
        .map_err(api_error)?;
    let mut canonical = formats::decode_request(WireFormat::Anthropic, &bytes)
        .map_err(|e| error(400, ErrorKind::BadRequest, &e.to_string()))?;
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
        .map_err(|e| error(400, ErrorKind::BadRequest, &e.to_string()))?;
    notes.extend(translated.lossy);
    let Value::Object(mut body) = translated.body else {
        return Err(error(
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
            endpoint: "messages",
            body,
            started,
            session,
        },
        ctx,
        stream,
        notes,
    })
}

fn translation_headers(h: &mut HeaderMap, notes: &[String]) {
    h.insert(X_TRANSLATION, HeaderValue::from_static("anthropic->openai"));
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

pub async fn messages(State(state): State<AppState>, req: Request) -> Response {
    let request_id = state.next_request_id();
    let mut resp = match prepare(&state, req, &request_id).await {
        Err(resp) => resp,
        Ok(p) => match proxy::chat(&state.gw, p.call).await {
            Err(e) => api_error(super::error::ApiError::from(e)),
            Ok(ChatOutcome::Complete {
                status,
                body,
                route,
                ..
            }) => {
                let mut r = complete(status, &body, &p.ctx);
                route_headers(r.headers_mut(), &route);
                translation_headers(r.headers_mut(), &p.notes);
                r
            }
            Ok(ChatOutcome::Stream { events, route, .. }) if p.stream => {
                let mut r = Response::new(Body::from_stream(translate_stream(events, &p.ctx)));
                let h = r.headers_mut();
                h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
                h.insert("cache-control", HeaderValue::from_static("no-cache"));
                route_headers(h, &route);
                translation_headers(h, &p.notes);
                r
            }
            Ok(ChatOutcome::Stream { .. }) => error(
                502,
                ErrorKind::Upstream,
                "the upstream streamed an answer that was not asked for",
            ),
        },
    };
    resp.headers_mut().insert(X_REQUEST_ID, header(&request_id));
    resp
}

/// A whole OpenAI answer (or upstream error) as Anthropic's.
fn complete(status: u16, body: &[u8], ctx: &ClientContext) -> Response {
    if status >= 300 {
        let info = formats::decode_error(WireFormat::Openai, status, body);
        return error(info.status, info.kind, &info.message);
    }
    match formats::decode_response(WireFormat::Openai, body) {
        Ok(resp) => {
            let out = formats::encode_response(WireFormat::Anthropic, &resp, ctx);
            (StatusCode::OK, axum::Json(out.body)).into_response()
        }
        Err(e) => error(
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
}

impl Translator {
    fn feed(&mut self, chunk: &[u8], out: &mut BytesMut) {
        for ev in self.parser.push(chunk) {
            for c in self.decoder.push(ev.event.as_deref(), &ev.data) {
                out.extend_from_slice(&self.encoder.push(&c));
            }
        }
    }

    fn finish(&mut self, out: &mut BytesMut) {
        for ev in self.parser.finish() {
            for c in self.decoder.push(ev.event.as_deref(), &ev.data) {
                out.extend_from_slice(&self.encoder.push(&c));
            }
        }
        for c in self.decoder.finish() {
            out.extend_from_slice(&self.encoder.push(&c));
        }
    }
}

/// The router's OpenAI SSE (one event per item, keep-alive comments in
/// silences) as Anthropic's event sequence, item by item.
fn translate_stream(
    upstream: BoxStream<'static, Result<Bytes, Infallible>>,
    ctx: &ClientContext,
) -> BoxStream<'static, Result<Bytes, Infallible>> {
    let t = Translator {
        upstream,
        parser: SseParser::new(),
        decoder: StreamDecoder::new(WireFormat::Openai),
        encoder: StreamEncoder::new(WireFormat::Anthropic, ctx),
        ended: false,
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
    if let Err(e) = auth::authorize(&state, req.headers()) {
        return api_error(e);
    }
    let bytes = match read_body(req, state.gw.settings.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return api_error(e),
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
        Err(e) => error(400, ErrorKind::BadRequest, &e.to_string()),
    }
}
