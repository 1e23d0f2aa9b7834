//! Model listings, in the shape each client expects: `GET /v1/models` as
//! OpenAI's list, as Anthropic's (a request with `anthropic-version` or
//! `x-api-key`: Claude Code, Anthropic SDKs) or as Codex CLI's (a
//! `client_version` query), and `GET /v1beta/models` as Gemini's.

use super::error::ApiError;
use super::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// Every usable `prefix/model`, then the combos: (id, owner).
async fn ids(state: &AppState) -> Result<Vec<(String, String)>, ApiError> {
    let models = crate::ops::models::list_models(&state.gw, Default::default())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let combos = crate::ops::combos::list_combos(&state.gw)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(models
        .into_iter()
        .map(|m| (m.id, m.provider))
        .chain(
            combos
                .into_iter()
                .map(|c| (c.combo.name, "omniroute-combo".to_string())),
        )
        .collect())
}

fn has_query(uri: &Uri, name: &str) -> bool {
    uri.query()
        .is_some_and(|q| q.split('&').any(|kv| kv.split('=').next() == Some(name)))
}

pub async fn list_models(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    if has_query(&uri, "client_version") {
        // Codex CLI reads `{"models":[…]}` in its own schema; an empty list
        // keeps its bundled catalog, and `model` in its config picks ours.
        let mut r = Json(json!({"models": []})).into_response();
        r.headers_mut()
            .insert(header::ETAG, HeaderValue::from_static("\"omniroute-0\""));
        return r;
    }
    let ids = match ids(&state).await {
        Ok(ids) => ids,
        Err(e) => return e.into_response(),
    };
    if headers.contains_key("anthropic-version") || headers.contains_key("x-api-key") {
        let data: Vec<Value> = ids
            .iter()
            .map(|(id, _)| {
                json!({"type": "model", "id": id, "display_name": id,
                       "created_at": "1970-01-01T00:00:00Z"})
            })
            .collect();
        return Json(json!({
            "data": data,
            "has_more": false,
            "first_id": ids.first().map(|(id, _)| id),
            "last_id": ids.last().map(|(id, _)| id),
        }))
        .into_response();
    }
    let data: Vec<Value> = ids
        .into_iter()
        .map(|(id, owner)| json!({"id": id, "object": "model", "created": 0, "owned_by": owner}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

/// `GET /v1beta/models`: Gemini's list (`models/<id>`), with Gemini's auth and errors.
pub async fn list_gemini(State(state): State<AppState>, req: Request) -> Response {
    let fmt = crate::catalog::WireFormat::Gemini;
    if let Err(e) = super::translated::authorize(&state, &req) {
        return super::translated::api_error(fmt, e);
    }
    let ids = match ids(&state).await {
        Ok(ids) => ids,
        Err(e) => return super::translated::api_error(fmt, e),
    };
    let models: Vec<Value> = ids
        .into_iter()
        .map(|(id, _)| {
            json!({"name": format!("models/{id}"), "displayName": id,
                   "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"]})
        })
        .collect();
    Json(json!({ "models": models })).into_response()
}
