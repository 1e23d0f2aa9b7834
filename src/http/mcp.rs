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

pub fn routes(state: &AppState) -> Router<AppState> {
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
    Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
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
    use super::origin_is_local;
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
