//! MCP over Streamable HTTP at `/mcp` (rmcp's service nested into axum):
//! sessions for the handshake revisions, stateless requests for 2026-07-28,
//! SSE, the protocol version header, and a cancellation token that is a
//! child of the server's shutdown.
//!
//! In front of it (after the browser guard every route has, see `guard`),
//! `guard` here: a client key (as on `/v1`) or the local bridge token from
//! `gateway.json` is required (401 otherwise), and a session is usable only
//! by the key that opened it (404 for any other). Each tool checks its own
//! scope (see `crate::mcp::access`).

use super::auth::{authorize, presented_key};
use super::error::ApiError;
use super::{AppState, Caller};
use crate::mcp::OmnirouteMcp;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// `/mcp` and `GET /sse`, and (second) the legacy `POST /messages` router,
/// each behind `guard`.
pub fn routes(state: &AppState) -> (Router<AppState>, Router) {
    let settings = &state.gw.settings;
    let mut config = StreamableHttpServerConfig::default()
        .with_cancellation_token(state.shutdown.child_token())
        .with_sse_keep_alive(Some(settings.keep_alive))
        .with_max_request_body_bytes(settings.max_body_bytes);
    if !crate::server::is_loopback(&settings.host) {
        // Reached by whatever name the host has; keys are required off loopback.
        config = config.disable_allowed_hosts();
    }
    let gw = state.gw.clone();
    let service = StreamableHttpService::new(
        move || Ok(OmnirouteMcp::new(gw.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let (sse, messages) = super::mcp_sse::routes(state);
    let owners = Arc::new(SessionOwners::default());
    let main = Router::new()
        .nest_service("/mcp", service)
        // rmcp builds its own SSE answers: they get the gateway's stream headers.
        .layer(axum::middleware::from_fn(super::stream::mark_streams))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            validate,
        ))
        .merge(sse)
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), owners.clone()),
            guard,
        ));
    let messages = messages
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), owners),
            guard,
        ))
        .with_state(state.clone());
    (main, messages)
}

/// A JSON-RPC error response body; `id` is the request's raw id text.
pub(super) fn rpc_error(id: Option<&str>, code: i64, message: &str) -> String {
    let msg = serde_json::to_string(message).unwrap_or_else(|_| "\"error\"".into());
    format!(
        r#"{{"jsonrpc":"2.0","id":{},"error":{{"code":{code},"message":{msg}}}}}"#,
        id.unwrap_or("null")
    )
}

/// The members of a message this check reads (the id kept as sent).
#[derive(serde::Deserialize)]
struct Peek<'a> {
    #[serde(borrow)]
    id: Option<&'a serde_json::value::RawValue>,
    method: Option<serde_json::Value>,
    params: Option<serde_json::Value>,
}

/// Check one posted JSON-RPC message (or batch) before the MCP service sees
/// it, so malformed input gets a JSON-RPC error rather than a plain-text
/// HTTP one: not JSON → -32700 (HTTP 400); `params` not an object → -32602;
/// `tools/call` without a string `name` → -32602.
pub(super) fn check_message(body: &[u8]) -> Result<(), (StatusCode, String)> {
    let raw: &serde_json::value::RawValue = serde_json::from_slice(body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            rpc_error(
                None,
                -32700,
                &format!("Parse error: the body is not JSON ({e})"),
            ),
        )
    })?;
    let text = raw.get().trim_start();
    let items: Vec<&serde_json::value::RawValue> = if text.starts_with('[') {
        serde_json::from_str(text).unwrap_or_default()
    } else {
        vec![raw]
    };
    for item in items {
        let Ok(peek) = serde_json::from_str::<Peek>(item.get()) else {
            continue; // Not an object: the service answers it.
        };
        let (Some(id), Some(serde_json::Value::String(method))) = (peek.id, &peek.method) else {
            continue; // Notifications and responses get no error answer.
        };
        let id = Some(id.get());
        let invalid = |m: String| Err((StatusCode::OK, rpc_error(id, -32602, &m)));
        match &peek.params {
            None | Some(serde_json::Value::Object(_)) => {}
            Some(other) => {
                let kind = if other.is_array() {
                    "an array"
                } else {
                    "not an object"
                };
                return invalid(format!(
                    "Invalid params: `params` of {method} is {kind}; MCP params are an object"
                ));
            }
        }
        if method == "tools/call" {
            let name = peek.params.as_ref().and_then(|p| p.get("name"));
            if !name.is_some_and(serde_json::Value::is_string) {
                return invalid(
                    "Invalid params: tools/call needs `name` (a string): the tool to call; tools/list lists them".into(),
                );
            }
        }
    }
    Ok(())
}

/// POSTs to `/mcp` pass `check_message` first; others go straight on.
async fn validate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != axum::http::Method::POST {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let limit = state.gw.settings.max_body_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                [(header::CONTENT_TYPE, "application/json")],
                rpc_error(
                    None,
                    -32600,
                    &format!("the request body is larger than {limit} bytes"),
                ),
            )
                .into_response()
        }
    };
    if let Err((status, body)) = check_message(&bytes) {
        return (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

fn same_secret(a: &str, b: &str) -> bool {
    // Comparing digests keeps the comparison's timing independent of the secret.
    !b.is_empty() && Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

/// Which client key opened each session: a session id is usable only by
/// the key that opened it (bounded; the oldest entries go first).
#[derive(Default)]
pub(super) struct SessionOwners {
    inner: Mutex<Owned>,
}

/// Session id → the key that opened it, and the ids oldest first.
type Owned = (HashMap<String, Option<String>>, VecDeque<String>);

const MAX_TRACKED_SESSIONS: usize = 10_000;

impl SessionOwners {
    fn owner(&self, session: &str) -> Option<Option<String>> {
        self.inner.lock().ok()?.0.get(session).cloned()
    }

    fn record(&self, session: String, owner: Option<String>) {
        let Ok(mut g) = self.inner.lock() else { return };
        let (map, order) = &mut *g;
        if map.insert(session.clone(), owner).is_none() {
            order.push_back(session);
        }
        while order.len() > MAX_TRACKED_SESSIONS {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    fn forget(&self, session: &str) {
        if let Ok(mut g) = self.inner.lock() {
            g.0.remove(session);
            g.1.retain(|s| s != session);
        }
    }
}

async fn guard(
    State((state, owners)): State<(AppState, Arc<SessionOwners>)>,
    mut req: Request,
    next: Next,
) -> Response {
    let local = presented_key(req.headers()).is_some_and(|k| same_secret(k, state.local_token()));
    let caller = if local {
        Ok(Caller::operator())
    } else {
        authorize(&state, req.headers())
    };
    let caller = match caller {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let session = req
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(sid) = &session {
        if let Some(owner) = owners.owner(sid) {
            if owner != caller.key_id {
                // As if it did not exist: another key's session is not yours to probe.
                return ApiError::new(
                    StatusCode::NOT_FOUND,
                    "invalid_request_error",
                    "session_not_found",
                    "MCP session not found for this key; start one with initialize",
                )
                .into_response();
            }
        }
    }
    let deleting = req.method() == axum::http::Method::DELETE;
    let key_id = caller.key_id.clone();
    req.extensions_mut().insert(caller);
    let resp = next.run(req).await;
    match session {
        Some(sid) if deleting && resp.status().is_success() => owners.forget(&sid),
        Some(_) => {}
        None => {
            if let Some(sid) = resp
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
            {
                owners.record(sid.to_string(), key_id);
            }
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::check_message;

    #[test]
    fn malformed_messages_get_jsonrpc_errors() {
        let err = |b: &str| check_message(b.as_bytes()).unwrap_err();
        let (status, body) = err("{not json");
        assert_eq!(status, 400);
        assert!(
            body.contains("-32700") && body.contains(r#""id":null"#),
            "{body}"
        );
        let (_, body) = err(
            r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"tools/list","params":[]}"#,
        );
        assert!(
            body.contains("-32602") && body.contains(r#""id":123456789012345678901234567890"#),
            "{body}"
        );
        let (_, body) =
            err(r#"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"arguments":{}}}"#);
        assert!(body.contains("-32602") && body.contains("name"), "{body}");
        assert!(check_message(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}"#
        )
        .is_ok());
        assert!(
            check_message(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).is_ok()
        );
    }
}
