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
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

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
    let owners = Arc::new(SessionOwners::default());
    Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), owners),
            guard,
        ))
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
