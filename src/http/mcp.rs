//! MCP over Streamable HTTP at `/mcp` (rmcp's service nested into axum):
//! sessions for the handshake revisions, stateless requests for 2026-07-28,
//! SSE, the protocol version header, and a cancellation token that is a
//! child of the server's shutdown.
//!
//! In front of it, `guard`: a browser `Origin` other than localhost,
//! 127.0.0.1 or [::1] is refused with 403 (no `Origin` is fine: not a
//! browser); then a client key (as on `/v1`) or the local bridge token from
//! `gateway.json` is required (401 otherwise).

use super::auth::{authorize, presented_key};
use super::error::ApiError;
use super::{AppState, Caller};
use crate::mcp::OmnirouteMcp;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use sha2::{Digest, Sha256};
use std::sync::Arc;

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
    let main = Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            validate,
        ))
        .merge(sse)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard));
    let messages = messages
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
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

/// Is this `Origin` a page served from this machine?
fn origin_is_local(origin: &HeaderValue) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = if let Some(v6) = rest.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, port)) if port.is_empty() || port.starts_with(':') => h,
            _ => return false,
        }
    } else {
        rest.split(':').next().unwrap_or("")
    };
    if rest.contains('/') {
        return false;
    }
    matches!(
        host.to_ascii_lowercase().as_str(),
        "localhost" | "127.0.0.1" | "::1"
    )
}

fn same_secret(a: &str, b: &str) -> bool {
    // Comparing digests keeps the comparison's timing independent of the secret.
    !b.is_empty() && Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        if !origin_is_local(origin) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_request_error",
                "origin_not_allowed",
                format!(
                    "Origin {:?} is not allowed on /mcp: only pages from localhost, 127.0.0.1 or [::1] may call it",
                    origin.to_str().unwrap_or("(not text)")
                ),
            )
            .into_response();
        }
    }
    let local = presented_key(req.headers()).is_some_and(|k| same_secret(k, state.local_token()));
    let caller = if local {
        Ok(Caller::default())
    } else {
        authorize(&state, req.headers())
    };
    match caller {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::{check_message, origin_is_local};

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
    use axum::http::HeaderValue;

    #[test]
    fn local_origins_only() {
        let ok = |s: &'static str| origin_is_local(&HeaderValue::from_static(s));
        assert!(ok("http://localhost:3000"));
        assert!(ok("http://127.0.0.1"));
        assert!(ok("https://[::1]:8443"));
        assert!(ok("http://LOCALHOST:1"));
        assert!(!ok("http://evil.example"));
        assert!(!ok("http://localhost.evil.example"));
        assert!(!ok("http://127.0.0.1.evil.example:80"));
        assert!(!ok("null"));
        assert!(!ok("file://"));
    }
}
