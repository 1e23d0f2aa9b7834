//! The A2A surface: the agent card (public) and JSON-RPC on `POST /a2a`
//! (behind the client-key check), in protocol versions 1.0 and 0.3 chosen
//! per request by method name, with the `A2A-Version` header checked.
//!
//! `jsonrpc` (envelopes, error codes) · `wire` (the two dialects over one
//! task model) · `card` · `skills` (one façade per skill over `ops`) ·
//! `manage` (quota and combo skills over the routing ops) · `runner` (running tasks,
//! events, cancel) · `methods` (one function per method). Tasks are kept
//! through `ops::tasks`, owned by the key that created them.

pub mod card;
pub mod jsonrpc;
pub mod manage;
mod methods;
pub mod runner;
pub mod skills;
pub mod wire;

use crate::gateway::Gateway;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// Requests to `/a2a` are small; bound them well below the proxy's limit.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The agent: the gateway and the tasks running in this process.
pub struct Agent {
    pub gw: Arc<Gateway>,
    pub live: Arc<runner::Live>,
    /// When this agent started: the card's `Last-Modified`.
    pub started: std::time::SystemTime,
}

impl Agent {
    pub fn new(gw: Arc<Gateway>) -> Arc<Agent> {
        Arc::new(Agent {
            gw,
            live: Arc::new(runner::Live::default()),
            started: std::time::SystemTime::now(),
        })
    }

    fn body_limit(&self) -> usize {
        MAX_BODY_BYTES.min(self.gw.settings.max_body_bytes)
    }
}

/// `POST /a2a`, for the protected part of the router (the auth layer adds
/// the caller).
pub fn rpc_routes<S: Clone + Send + Sync + 'static>(agent: Arc<Agent>) -> Router<S> {
    Router::new()
        .route("/a2a", post(methods::handle))
        // The 1.0 TCK and some clients post to the card's URL with a slash.
        .route("/a2a/", post(methods::handle))
        // The extended card at the HTTP+JSON binding's path, for 0.3 clients
        // that look for it there; behind the key check like the RPC.
        .route("/a2a/v1/card", get(serve_card))
        .with_state(agent)
}

/// The agent card at both well-known paths, public.
pub fn card_routes<S: Clone + Send + Sync + 'static>(agent: Arc<Agent>) -> Router<S> {
    Router::new()
        .route("/.well-known/agent-card.json", get(serve_card))
        .route("/.well-known/agent.json", get(serve_card))
        // A GET on the card's interface URL answers with the public card too.
        .route("/a2a", get(serve_card))
        .route("/a2a/", get(serve_card))
        .with_state(agent)
}

async fn serve_card(
    State(agent): State<Arc<Agent>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let version = card::CardVersion::for_request(uri.path(), &headers);
    let body = card::card(version, &base_for(&agent.gw, &headers));
    card::serve(&body, &headers, agent.started)
}

/// The base URL for links in a card: the address the client used only when
/// that name is this gateway's own (never an arbitrary `Host`).
pub(crate) fn base_for(gw: &Gateway, headers: &HeaderMap) -> String {
    let s = &gw.settings;
    let fallback = format!("http://{}:{}", s.host, s.port);
    let hosts = crate::http::guard::HostPolicy::new(&s.host, &s.allowed_hosts, &s.allowed_origins);
    card::base_url(headers, &fallback, |h| hosts.trusts_for_links(h))
}
