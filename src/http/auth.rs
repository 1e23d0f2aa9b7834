//! Client-key authentication for every route but the open ones, and the
//! scope check of the model routes.

use super::error::ApiError;
use super::AppState;
use crate::access::{Principal, Scope};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Who is calling, attached to the request by the auth layer.
pub type Caller = Principal;

/// A header that carries the gateway key when `Authorization` carries the
/// client's own subscription token (Claude Code signed in with its plan,
/// Codex with its ChatGPT login): set it with `ANTHROPIC_CUSTOM_HEADERS` or
/// Codex's `env_http_headers`.
pub const GATEWAY_KEY_HEADER: &str = "x-omniroute-key";

/// The key a client presented: `x-omniroute-key`, else `Authorization: Bearer`,
/// `x-api-key` or `x-goog-api-key`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(k) = headers
        .get(GATEWAY_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        return Some(k.trim());
    }
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if let Some(k) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            return Some(k.trim());
        }
    }
    ["x-api-key", "x-goog-api-key"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()).map(str::trim))
}

/// Who is calling, from the presented client key; the error says how to fix it.
pub fn authorize(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let registry = state.gw.registry();
    let known = presented_key(headers)
        .filter(|k| !k.is_empty())
        .map(|k| registry.authenticate(k));
    match known {
        Some(Some(info)) => Ok(Principal::key(info.id.clone(), info.scopes)),
        // With keys not required (loopback only), any or no key is accepted
        // and acts as the operator.
        _ if !state.gw.settings.require_api_key => Ok(Principal::operator()),
        Some(None) => Err(ApiError::unauthorized("invalid API key")),
        None => Err(ApiError::unauthorized(
            "missing API key: send `Authorization: Bearer KEY` or `x-api-key: KEY` (create one with `omniroute keys create`)",
        )),
    }
}

/// 403 in OpenAI's shape when `caller` lacks `scope` for `what`.
pub fn require(caller: &Principal, scope: Scope, what: &str) -> Result<(), ApiError> {
    caller.require(scope, what).map_err(|e| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "insufficient_scope",
            e.to_string(),
        )
    })
}

/// Any valid key (the route checks scopes per operation).
pub async fn require_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match authorize(&state, req.headers()) {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// A key with the `inference` scope: the model routes.
pub async fn require_inference(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let checked = authorize(&state, req.headers()).and_then(|caller| {
        let what = format!("{} {}", req.method(), req.uri().path());
        require(&caller, Scope::Inference, &what).map(|()| caller)
    });
    match checked {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}
