//! Inbound formats other than OpenAI Chat: Anthropic Messages
//! (`POST /v1/messages`, `/v1/messages/count_tokens`: Claude Code, Anthropic
//! SDKs), OpenAI Responses (`POST /v1/responses`: Codex CLI) and Gemini
//! (`POST /v1beta/models/{model}:generateContent` / `:streamGenerateContent`).
//!
//! One path for all three: the request is decoded into the canonical model
//! once, its model name mapped (`[model_map]`), and handed to the router
//! with the client's bytes, so combos, fallback and breakers apply
//! unchanged. Each target gets the client's bytes when it speaks the same
//! format (only `model` rewritten) or the canonical request encoded for it
//! (Claude Code's per-request billing line removed); the answer comes back
//! in the client's format, a stream event by event (`src/proxy/native.rs`).
//! Errors use the client format's shape and statuses.

use super::chat::{read_body, route_headers};
use super::{auth, header, AppState};
use crate::catalog::WireFormat;
use crate::formats::canonical::{is_context_overflow, ErrorKind};
use crate::formats::{self, ClientContext};
use crate::proxy::native::{HistoryError, Native};
use crate::proxy::RequestView;
use crate::proxy::{self, ChatCall, ChatOutcome};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

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

pub(super) fn api_error(fmt: WireFormat, e: super::error::ApiError) -> Response {
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
    stream: bool,
}

async fn prepare(
    state: &AppState,
    inbound: &Inbound,
    req: Request,
    request_id: &str,
) -> Result<Prepared, Response> {
    let fmt = inbound.format;
    let started = super::timing::arrived(&req);
    let caller = authorize(state, &req).map_err(|e| api_error(fmt, e))?;
    let headers = req.headers();
    // The client's own subscription token rides in `Authorization` only when
    // the gateway key came in `x-omniroute-key` (or keys are off).
    let client_credential = (headers.contains_key(auth::GATEWAY_KEY_HEADER)
        || !state.gw.settings.require_api_key)
        .then(|| crate::subscription::ClientCredential::from_headers(fmt, headers))
        .flatten();
    let hints = super::chat::request_hints(headers);
    // Sticky sessions: the gateway's own header, else the one the client tool sends.
    let session = ["x-session-id", "x-claude-code-session-id", "session-id"]
        .iter()
        .find_map(|h| headers.get(*h)?.to_str().ok())
        .map(str::to_string);
    // Forwarded as they came when the upstream speaks Anthropic too.
    let forward_headers: Vec<(&'static str, String)> = if fmt == WireFormat::Anthropic {
        ["anthropic-version", "anthropic-beta"]
            .into_iter()
            .filter_map(|h| Some((h, headers.get(h)?.to_str().ok()?.to_string())))
            .collect()
    } else {
        Vec::new()
    };
    let bytes = read_body(req, state.gw.settings.max_body_bytes)
        .await
        .map_err(|e| api_error(fmt, e))?;
    let (bytes, conversation) = if fmt == WireFormat::OpenaiResponses {
        let owner = caller.key_id.clone().unwrap_or_default();
        // Unique per gateway run and process: upstream ids may repeat.
        let id = format!("resp_{}", request_id.trim_start_matches("req_"));
        proxy::native::with_history(&state.gw, &owner, id, bytes)
            .await
            .map_err(|e| match e {
                HistoryError::BadRequest(m) => error(fmt, 400, ErrorKind::BadRequest, &m),
                HistoryError::NotFound(m) => error(fmt, 404, ErrorKind::NotFound, &m),
                HistoryError::Store(m) => error(fmt, 500, ErrorKind::Upstream, &m),
            })?
    } else {
        (bytes, None)
    };
    // What routing reads, in one pass over the bytes; the body is decoded
    // into the canonical model only if a target needs a translation.
    let mut view = RequestView::peek(fmt, &bytes)
        .map_err(|e| error(fmt, 400, ErrorKind::BadRequest, &e.to_string()))?;
    if let Some(model) = &inbound.path_model {
        view.model = model.clone();
        view.stream = inbound.path_stream;
    }
    let client_model = view.model.clone();
    if let Some(to) = crate::config::map_model(&state.gw.settings.model_map, &client_model) {
        view.model = to.to_string();
    }
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let ctx = ClientContext {
        model: client_model,
        created,
        // Gemini streams always carry usage.
        include_usage: fmt == WireFormat::Gemini,
        custom_tools: Vec::new(),
    };
    let stream = view.stream;
    let native = Native::new(
        fmt,
        bytes,
        view,
        ctx,
        forward_headers,
        conversation,
        client_credential,
    );
    Ok(Prepared {
        call: ChatCall {
            hints,
            ..ChatCall::native(
                request_id.to_string(),
                caller.key_id,
                inbound.endpoint(),
                native,
                started,
                session,
            )
        },
        stream,
    })
}

/// The client key from the headers, or Gemini's `?key=` query parameter.
pub(super) fn authorize(
    state: &AppState,
    req: &Request,
) -> Result<super::Caller, super::error::ApiError> {
    let query_key = req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("key="))
            .map(str::to_string)
    });
    let caller = match query_key {
        Some(k) if auth::presented_key(req.headers()).is_none() => {
            let mut headers = HeaderMap::new();
            headers.insert("x-goog-api-key", header(&k));
            auth::authorize(state, &headers)
        }
        _ => auth::authorize(state, req.headers()),
    }?;
    let what = format!("{} {}", req.method(), req.uri().path());
    auth::require(&caller, crate::access::Scope::Inference, &what)?;
    Ok(caller)
}

/// Serve one request in `inbound`'s format through the router; the proxy
/// answers in that format (forwarded or translated per target).
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
                let mut r = Response::new(Body::from(body));
                *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                r.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                route_headers(r.headers_mut(), &route);
                r
            }
            Ok(ChatOutcome::Stream { events, route, .. }) if p.stream => {
                let mut r = super::stream::response(StatusCode::OK, Body::from_stream(events));
                route_headers(r.headers_mut(), &route);
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

/// `POST /v1/messages/count_tokens`: an estimate (about four bytes of
/// request text per token), as the router estimates for budgets.
pub async fn count_tokens(State(state): State<AppState>, req: Request) -> Response {
    let fmt = WireFormat::Anthropic;
    if let Err(e) = authorize(&state, &req) {
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
                Ok(t) => t
                    .body
                    .get("messages")
                    .map_or(0, |m| (proxy::json_len(m) / 4) as u64),
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

/// `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent`
/// (also under `/v1/models/`); `{model}` may hold a `/` (`mock/gpt-4o-mini`).
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
                .map(|t| {
                    t.body
                        .get("messages")
                        .map_or(0, |m| (proxy::json_len(m) / 4) as u64)
                })
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
