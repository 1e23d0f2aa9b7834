//! The legacy MCP transport, HTTP+SSE (protocol revision 2024-11-05), beside
//! Streamable HTTP for clients still configured with an `…/sse` URL:
//!
//! - `GET /sse` opens a session: an SSE stream whose first event,
//!   `endpoint`, names `/messages?sessionId=ID`; every server message
//!   (responses, notifications, server requests) follows as a `message` event.
//! - `POST /messages?sessionId=ID` carries one client message; the answer is
//!   202 and the reply travels on the stream.
//!
//! Both sit behind the same guard as `/mcp` (Origin check, client key or
//! local token); a session is served by the same `OmnirouteMcp` as `/mcp`
//! and stdio, and only the key that opened it may post to it. Each posted
//! message carries its HTTP request parts, as on `/mcp`, so tools see the
//! caller. Closing the stream ends the session.

use super::error::ApiError;
use super::mcp::check_message;
use super::{AppState, Caller};
use crate::mcp::OmnirouteMcp;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use rmcp::model::{ClientJsonRpcMessage, GetExtensions};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::{RoleServer, ServiceExt};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// The open SSE sessions of this process.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

#[derive(Clone)]
struct Session {
    /// The client key that opened the session (None without keys).
    owner: Option<String>,
    to_server: mpsc::Sender<RxJsonRpcMessage<RoleServer>>,
}

impl Sessions {
    fn get(&self, id: &str) -> Option<Session> {
        self.map.lock().ok()?.get(id).cloned()
    }

    fn insert(&self, id: String, s: Session) {
        if let Ok(mut m) = self.map.lock() {
            m.insert(id, s);
        }
    }

    fn remove(&self, id: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(id);
        }
    }
}

/// `GET /sse`, and `POST /messages` (which shares its path with the
/// Anthropic alias: `http::router` sends it here when it names a session).
pub fn routes(state: &AppState) -> (Router<AppState>, Router<AppState>) {
    let sessions = Arc::new(Sessions::default());
    let open_route = Router::new()
        .route("/sse", get(open))
        .layer(axum::Extension(sessions.clone()))
        .layer(axum::Extension(state.shutdown.clone()));
    let post_route = Router::new()
        .route("/messages", post(message))
        .layer(axum::Extension(sessions));
    (open_route, post_route)
}

/// Is this a post for a legacy SSE session (`/messages?sessionId=…`)?
pub fn is_session_post(uri: &axum::http::Uri) -> bool {
    uri.path() == "/messages"
        && uri
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("sessionId=")))
}

/// Ends the session when the SSE stream is dropped (the client went away).
struct Closer {
    id: String,
    sessions: Arc<Sessions>,
    cancel: CancellationToken,
}

impl Drop for Closer {
    fn drop(&mut self) {
        self.sessions.remove(&self.id);
        self.cancel.cancel();
    }
}

async fn open(
    State(state): State<AppState>,
    axum::Extension(sessions): axum::Extension<Arc<Sessions>>,
    axum::Extension(shutdown): axum::Extension<CancellationToken>,
    req: Request,
) -> Response {
    let owner = req
        .extensions()
        .get::<Caller>()
        .and_then(|c| c.key_id.clone());
    let id = match crate::secret::random_bytes::<16>() {
        Ok(b) => hex::encode(b),
        Err(e) => return ApiError::internal(format!("no session id: {e}")).into_response(),
    };
    let (to_server, from_client) = mpsc::channel::<RxJsonRpcMessage<RoleServer>>(64);
    let (to_client, from_server) = mpsc::channel::<TxJsonRpcMessage<RoleServer>>(64);
    sessions.insert(id.clone(), Session { owner, to_server });
    let cancel = shutdown.child_token();
    let server = OmnirouteMcp::new(state.gw.clone());
    let run = cancel.clone();
    let sid = id.clone();
    tokio::spawn(async move {
        match server.serve_with_ct((to_client, from_client), run).await {
            Ok(running) => {
                if let Err(e) = running.waiting().await {
                    tracing::debug!(session = %sid, error = %e, "MCP SSE session ended");
                }
            }
            Err(e) => tracing::info!(session = %sid, error = %e, "MCP SSE session did not start"),
        }
    });
    let closer = Closer {
        id: id.clone(),
        sessions,
        cancel: cancel.clone(),
    };
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/messages?sessionId={id}"));
    let messages = from_server
        .map(|msg| {
            let data = serde_json::to_string(&msg).unwrap_or_default();
            Event::default().event("message").data(data)
        })
        .take_until(cancel.cancelled_owned());
    let events = futures::stream::once(async move { endpoint })
        .chain(messages)
        .map(move |ev| {
            let _keep = &closer;
            Ok::<_, Infallible>(ev)
        });
    super::stream::sse(
        Sse::new(events).keep_alive(KeepAlive::new().interval(state.gw.settings.keep_alive)),
    )
}

#[derive(serde::Deserialize)]
struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

fn jsonrpc_error(status: StatusCode, body: String) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn message(
    State(state): State<AppState>,
    axum::Extension(sessions): axum::Extension<Arc<Sessions>>,
    Query(q): Query<SessionQuery>,
    req: Request,
) -> Response {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "unknown_session",
            "no such MCP SSE session: open one with GET /sse and post to the endpoint it names",
        )
        .into_response()
    };
    let Some(session_id) = q.session_id else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "missing_session",
            "sessionId is required: post to the endpoint the /sse stream named",
        )
        .into_response();
    };
    let Some(session) = sessions.get(&session_id) else {
        return not_found();
    };
    let caller = req
        .extensions()
        .get::<Caller>()
        .and_then(|c| c.key_id.clone());
    if session.owner.is_some() && session.owner != caller {
        // Another key's session looks like no session at all.
        return not_found();
    }
    let (parts, body) = req.into_parts();
    let limit = state.gw.settings.max_body_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return jsonrpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                super::mcp::rpc_error(
                    None,
                    -32600,
                    &format!("the body is larger than {limit} bytes"),
                ),
            )
        }
    };
    if let Err((status, body)) = check_message(&bytes) {
        return jsonrpc_error(status, body);
    }
    let mut msg: ClientJsonRpcMessage = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            return jsonrpc_error(
                StatusCode::BAD_REQUEST,
                super::mcp::rpc_error(None, -32600, &format!("not an MCP message: {e}")),
            )
        }
    };
    match &mut msg {
        ClientJsonRpcMessage::Request(r) => {
            r.request.extensions_mut().insert(parts);
        }
        ClientJsonRpcMessage::Notification(n) => {
            n.notification.extensions_mut().insert(parts);
        }
        _ => {}
    }
    let mut tx = session.to_server.clone();
    if tx.send(msg).await.is_err() {
        return not_found();
    }
    (StatusCode::ACCEPTED, "Accepted").into_response()
}
