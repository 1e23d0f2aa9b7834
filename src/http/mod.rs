//! The HTTP surface (axum): the OpenAI-compatible `/v1` routes, health, and
//! (on the same port, or on `DASHBOARD_PORT` in split-port mode) the
//! dashboard, the admin API and `/metrics` (`admin`, behind its own
//! admin-session-or-key layer).
//!
//! Layers, outermost first: panic → 500 JSON; tracing span per request with
//! its id; then, on every route but the open ones (`/`, `/api/hello`,
//! `/health`, the A2A agent card), the client-key check (`/v1/messages`
//! checks it itself, to answer in Anthropic's error shape). `/mcp` (MCP Streamable HTTP) has its
//! own guard: Origin check, then the client key or the local bridge token.

pub mod admin;
mod auth;
mod chat;
mod embeddings;
pub mod error;
pub mod guard;
mod mcp;
mod mcp_sse;
mod models;
pub mod stream;
pub mod timing;
mod translated;

pub use auth::Caller;

use crate::gateway::Gateway;
use axum::http::{HeaderValue, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What every handler shares, behind one `Arc`: axum clones the state for
/// each layer and extractor of every request, and one count is cheaper than
/// one per field.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

impl std::ops::Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

#[derive(Clone)]
pub struct AppInner {
    pub gw: Arc<Gateway>,
    ids: Arc<RequestIds>,
    /// Accepted by `/mcp` from local bridges (`omniroute --mcp`); see `server::RuntimeInfo`.
    local_token: Arc<str>,
    /// Cancelled when the server shuts down; long-lived streams hang off it.
    shutdown: CancellationToken,
    /// Which `Host` and `Origin` values requests may carry.
    pub hosts: Arc<guard::HostPolicy>,
    /// Dashboard sessions and the one-time login link.
    pub admin: Arc<admin::auth::Sessions>,
}

struct RequestIds {
    prefix: String,
    next: AtomicU64,
}

impl AppState {
    pub fn new(gw: Arc<Gateway>) -> AppState {
        let prefix = crate::secret::random_bytes::<4>()
            .map(hex::encode)
            .unwrap_or_else(|_| "00000000".into());
        let local_token = crate::secret::random_bytes::<32>()
            .map(|b| format!("omr-local-{}", hex::encode(b)))
            // Without randomness, no token can be trusted: make it unguessable by never matching.
            .unwrap_or_default();
        let hosts = Arc::new(guard::HostPolicy::new(
            &gw.settings.host,
            &gw.settings.allowed_hosts,
            &gw.settings.allowed_origins,
        ));
        AppState(Arc::new(AppInner {
            hosts,
            gw,
            ids: Arc::new(RequestIds {
                prefix,
                next: AtomicU64::new(1),
            }),
            local_token: local_token.into(),
            shutdown: CancellationToken::new(),
            admin: Arc::new(admin::auth::Sessions::default()),
        }))
    }

    /// Tie long-lived streams (MCP sessions, SSE) to the server's shutdown.
    pub fn with_shutdown(self, shutdown: CancellationToken) -> AppState {
        let mut inner = Arc::unwrap_or_clone(self.0);
        inner.shutdown = shutdown;
        AppState(Arc::new(inner))
    }

    /// The token a local `omniroute --mcp` bridge presents to `/mcp`.
    pub fn local_token(&self) -> &str {
        &self.local_token
    }

    pub fn next_request_id(&self) -> String {
        format!(
            "req_{}{:08x}",
            self.ids.prefix,
            self.ids.next.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// What one listening port serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serves {
    /// The API and the dashboard (one port, the default).
    Both,
    /// The API only (split-port mode's API port).
    Api,
    /// The dashboard, the admin API, `/metrics` and `/health` (`DASHBOARD_PORT`).
    Dashboard,
}

/// The API and the dashboard on one port.
pub fn router(state: AppState) -> Router {
    router_for(state, Serves::Both)
}

pub fn router_for(state: AppState, serves: Serves) -> Router {
    let root_handler = match serves {
        Serves::Both => get(root_or_dashboard).head(root),
        Serves::Api => get(root).head(root),
        Serves::Dashboard => get(dashboard_page).head(root),
    };
    if serves == Serves::Dashboard {
        let app = Router::new()
            .route("/", root_handler)
            .route("/health", get(health))
            .merge(admin::router(&state));
        return layered(app, state);
    }
    let agent = crate::a2a::Agent::new(state.gw.clone());
    let protected = Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/chat/completions", post(chat::chat_completions))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/embeddings", post(embeddings::embeddings))
        .route("/v1/responses/{id}", get(translated::get_response))
        .route("/v1/models", get(models::list_models))
        .route("/models", get(models::list_models))
        // Claude Code's telemetry: accepted and dropped.
        .route("/api/event_logging/batch", post(event_sink))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_inference,
        ));
    // A2A checks each skill's scope itself, to answer in JSON-RPC.
    let agent_rpc = crate::a2a::rpc_routes(agent.clone()).route_layer(
        axum::middleware::from_fn_with_state(state.clone(), auth::require_key),
    );
    let (mcp_routes, legacy_mcp_messages) = mcp::routes(&state);
    // `/messages` is both Claude Code's alias of `/v1/messages` and, with a
    // `sessionId`, the legacy MCP SSE transport's post endpoint.
    let messages_alias = Router::new()
        .route("/messages", post(translated::messages))
        .route_layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let legacy = legacy_mcp_messages.clone();
                async move {
                    if mcp_sse::is_session_post(req.uri()) {
                        use tower::ServiceExt;
                        match legacy.oneshot(req).await {
                            Ok(r) => r,
                            Err(e) => match e {},
                        }
                    } else {
                        next.run(req).await
                    }
                }
            },
        ));
    // Routes in other formats check the key themselves, to answer in their own shape.
    let translated = Router::new()
        .route("/v1/messages", post(translated::messages))
        .merge(messages_alias)
        .route("/v1/v1/messages", post(translated::messages))
        .route("/v1/messages/count_tokens", post(translated::count_tokens))
        .route("/v1/responses", post(translated::responses))
        .route("/responses", post(translated::responses))
        .route("/v1beta/models", get(models::list_gemini))
        .route("/v1beta/models/{*target}", post(translated::gemini))
        .route("/v1/models/{*target}", post(translated::gemini));
    let app = Router::new()
        .route("/", root_handler)
        // Claude Code probes these before it starts.
        .route("/api/hello", get(root).head(root))
        .route("/health", get(health))
        .merge(translated)
        .merge(crate::a2a::card_routes(agent))
        .merge(protected)
        .merge(agent_rpc)
        .merge(mcp_routes);
    let app = if serves == Serves::Both {
        app.merge(admin::router(&state))
    } else {
        app
    };
    layered(app, state)
}

/// The layers every port has, outermost last: the browser guard (Host,
/// Origin, Content-Type); then arrival time, tracing span, panic → 500 JSON
/// and the overhead header in one (`timing::Outer`).
fn layered(app: Router<AppState>, state: AppState) -> Router {
    app.fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::browser_guard,
        ))
        .with_state(state)
        .layer(timing::OuterLayer(on_panic))
}

async fn event_sink() -> impl IntoResponse {
    axum::Json(serde_json::json!({}))
}

async fn root_or_dashboard(headers: axum::http::HeaderMap) -> Response {
    if admin::wants_html(&headers) {
        admin::dashboard_index(&headers)
    } else {
        root().await.into_response()
    }
}

async fn dashboard_page(headers: axum::http::HeaderMap) -> Response {
    admin::dashboard_index(&headers)
}

async fn root() -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "name": "omniroute",
        "version": env!("CARGO_PKG_VERSION"),
        "openai_base_url": "/v1",
    }))
}

/// Open: status only; the full report (providers, figures, last upstream
/// errors) needs a key with the `read` scope.
async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    let full =
        auth::authorize(&state, &headers).is_ok_and(|c| c.allows(crate::access::Scope::Read));
    match crate::ops::health::health(&state.gw).await {
        Ok(h) => {
            let status = if h.store.ok {
                axum::http::StatusCode::OK
            } else {
                axum::http::StatusCode::SERVICE_UNAVAILABLE
            };
            if full {
                (status, axum::Json(h)).into_response()
            } else {
                let summary = crate::ops::health::HealthSummary::from(&h);
                (status, axum::Json(summary)).into_response()
            }
        }
        Err(e) => error::ApiError::internal(e.to_string()).into_response(),
    }
}

async fn not_found(req: Request<axum::body::Body>) -> Response {
    error::ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "invalid_request_error",
        "unknown_url",
        format!("unknown route {} {}", req.method(), req.uri().path()),
    )
    .into_response()
}

fn on_panic(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "request handler panicked");
    error::ApiError::internal("internal error: the request handler failed; see the gateway log")
        .into_response()
}

pub(crate) fn header(v: &str) -> HeaderValue {
    HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// `v` with `places` decimals (as `{v:.places$}` prints it, ties aside),
/// written without the formatter: route headers carry three or four per answer.
pub(crate) fn decimal_header(v: f64, places: u32) -> HeaderValue {
    let scale = 10u64.pow(places.min(9));
    let scaled = v * scale as f64;
    if !(0.0..1e15).contains(&scaled) {
        return header(&format!("{v:.*}", places as usize));
    }
    let n = scaled.round() as u64;
    let (mut int, mut frac) = (n / scale, n % scale);
    let mut buf = [0u8; 32];
    let mut i = buf.len();
    for _ in 0..places.min(9) {
        i -= 1;
        buf[i] = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    if places > 0 {
        i -= 1;
        buf[i] = b'.';
    }
    loop {
        i -= 1;
        buf[i] = b'0' + (int % 10) as u8;
        int /= 10;
        if int == 0 {
            break;
        }
    }
    HeaderValue::from_bytes(&buf[i..]).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod decimal_tests {
    use super::decimal_header;

    #[test]
    fn decimal_headers_read_as_the_formatter_writes_them() {
        for (v, places) in [
            (0.0, 3),
            (0.0004, 3),
            (1.2344, 3),
            (12.3456, 3),
            (999.9996, 3),
            (0.000012346, 8),
            (3.5, 0),
            (123456.789, 4),
            (-1.5, 3),
            (f64::NAN, 3),
            (1e20, 3),
        ] {
            let want = format!("{v:.*}", places as usize);
            assert_eq!(
                decimal_header(v, places).to_str().unwrap(),
                want,
                "{v} {places}"
            );
        }
    }
}
