//! Admin API handlers: decode, call one `ops` function, encode. Errors use
//! the OpenAI error shape like the rest of the HTTP surface.

use super::super::error::ApiError;
use super::super::AppState;
use crate::ops::{self, Actor, OpsError};
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> ApiError {
        match e {
            OpsError::InvalidInput(m) => ApiError::invalid_request("invalid_request", m),
            OpsError::NotFound(what) => ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "not_found",
                format!("{what} not found"),
            ),
            OpsError::Store(e) => ApiError::internal(e.to_string()),
        }
    }
}

/// A query string, with a JSON error when it does not fit.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        axum::extract::Query::try_from_uri(&parts.uri)
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::invalid_request("invalid_query", e.body_text()))
    }
}

/// A JSON body, with a JSON error (naming line and column) when it does not fit.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::invalid_request("invalid_body", e.body_text()))?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| ApiError::invalid_request("invalid_json", format!("body: {e}")))
    }
}

type Answer<T> = Result<axum::Json<T>, ApiError>;

fn ok<T>(r: Result<T, OpsError>) -> Answer<T> {
    r.map(axum::Json).map_err(ApiError::from)
}

/// An answer that only says it worked.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Done {
    pub logged_out: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Removed {
    pub removed: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderFilter {
    /// Only this provider's accounts.
    #[serde(default)]
    pub provider: Option<String>,
}

pub async fn overview(
    State(s): State<AppState>,
    Query(q): Query<ops::overview::OverviewQuery>,
) -> Answer<ops::overview::Overview> {
    ok(ops::overview::overview(&s.gw, q).await)
}

pub async fn health(State(s): State<AppState>) -> Answer<ops::health::Health> {
    ok(ops::health::health(&s.gw).await)
}

pub async fn providers(
    State(s): State<AppState>,
    Query(q): Query<ops::providers::ListProvidersInput>,
) -> Answer<Vec<ops::providers::ProviderView>> {
    ok(ops::providers::list_providers(&s.gw, q).await)
}

pub async fn accounts(
    State(s): State<AppState>,
    Query(q): Query<ProviderFilter>,
) -> Answer<Vec<ops::accounts::AccountView>> {
    ok(ops::accounts::list_accounts(&s.gw, q.provider.as_deref()).await)
}

pub async fn add_account(
    State(s): State<AppState>,
    Body(input): Body<ops::accounts::AddAccountInput>,
) -> Answer<ops::accounts::AccountView> {
    ok(ops::accounts::add_account(&s.gw, input, Actor::Api).await)
}

pub async fn remove_account(State(s): State<AppState>, Path(id): Path<String>) -> Answer<Removed> {
    ok(ops::accounts::remove_account(&s.gw, &id, Actor::Api)
        .await
        .map(|removed| Removed { removed }))
}

pub async fn quota(
    State(s): State<AppState>,
    Query(q): Query<ops::quota::QuotaQuery>,
) -> Answer<ops::quota::QuotaReport> {
    ok(ops::quota::check_quota(&s.gw, q, &crate::access::Principal::operator()).await)
}

pub async fn set_budget(
    State(s): State<AppState>,
    Body(input): Body<ops::quota::SetBudgetInput>,
) -> Answer<crate::routing::budget::BudgetRule> {
    ok(ops::quota::set_budget(&s.gw, input, Actor::Api).await)
}

pub async fn models(
    State(s): State<AppState>,
    Query(q): Query<ops::models::ListModelsInput>,
) -> Answer<Vec<ops::models::ModelView>> {
    ok(ops::models::list_models(&s.gw, q).await)
}

pub async fn combos(State(s): State<AppState>) -> Answer<Vec<ops::combos::ComboView>> {
    ok(ops::combos::list_combos(&s.gw).await)
}

pub async fn combo(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Answer<ops::combos::ComboView> {
    ok(ops::combos::get_combo(&s.gw, &name).await)
}

pub async fn upsert_combo(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Body(input): Body<ops::combos::UpsertComboInput>,
) -> Answer<ops::combos::UpsertComboResult> {
    if input.combo.name != name {
        return Err(ApiError::invalid_request(
            "invalid_request",
            format!(
                "the combo in the body is named {:?} but the path names {name:?}",
                input.combo.name
            ),
        ));
    }
    ok(ops::combos::upsert_combo(&s.gw, input, Actor::Api).await)
}

pub async fn delete_combo(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Answer<crate::routing::combo::Combo> {
    ok(ops::combos::delete_combo(&s.gw, &name, Actor::Api).await)
}

pub async fn rollback_combo(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Answer<ops::combos::RollbackResult> {
    ok(ops::combos::rollback_combo(&s.gw, &name, Actor::Api).await)
}

pub async fn test_combo(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Answer<ops::combos::ComboTest> {
    ok(ops::combos::test_combo(&s.gw, &name).await)
}

pub async fn explain(
    State(s): State<AppState>,
    Body(input): Body<ops::explain::ExplainInput>,
) -> Answer<ops::explain::RouteExplanation> {
    ok(ops::explain::explain_route(&s.gw, input).await)
}

pub async fn audit(
    State(s): State<AppState>,
    Query(q): Query<ops::audit::AuditQuery>,
) -> Answer<Vec<crate::store::AuditEntry>> {
    ok(ops::audit::audit_log(&s.gw, q).await)
}

pub async fn keys(State(s): State<AppState>) -> Answer<Vec<crate::store::ClientKeyRow>> {
    ok(ops::keys::list_keys(&s.gw).await)
}

pub async fn create_key(
    State(s): State<AppState>,
    Body(input): Body<ops::keys::CreateKeyInput>,
) -> Answer<ops::keys::CreatedKey> {
    ok(ops::keys::create_key(&s.gw, input, Actor::Api).await)
}

pub async fn revoke_key(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Answer<crate::store::ClientKeyRow> {
    ok(ops::keys::revoke_key(&s.gw, &id, Actor::Api).await)
}

pub async fn set_key_scopes(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Body(input): Body<ops::keys::SetScopesInput>,
) -> Answer<crate::store::ClientKeyRow> {
    ok(ops::keys::set_key_scopes(&s.gw, &id, input.scopes, Actor::Api).await)
}

pub async fn start_sign_in(
    State(s): State<AppState>,
    Body(input): Body<ops::sign_in::SignInInput>,
) -> Answer<ops::sign_in::SignInStarted> {
    ok(ops::sign_in::start_sign_in(&s.gw, input, Actor::Api).await)
}

pub async fn sign_in_status(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Answer<ops::sign_in::SignInStatus> {
    ok(ops::sign_in::sign_in_status(&s.gw, &id))
}

pub async fn import_account(
    State(s): State<AppState>,
    Body(input): Body<ops::sign_in::ImportInput>,
) -> Answer<ops::accounts::AccountView> {
    ok(ops::sign_in::import_account(&s.gw, input, None, Actor::Api).await)
}

pub async fn requests(
    State(s): State<AppState>,
    Query(q): Query<ops::requests::RequestsQuery>,
) -> Answer<ops::requests::RequestsPage> {
    ok(ops::requests::recent_requests(&s.gw, q).await)
}

pub async fn usage(
    State(s): State<AppState>,
    Query(q): Query<ops::cost::CostQuery>,
) -> Answer<ops::cost::CostReport> {
    ok(ops::cost::cost_report(&s.gw, q, &crate::access::Principal::operator()).await)
}

pub async fn openapi() -> Response {
    axum::Json(super::openapi::document()).into_response()
}

pub async fn metrics(State(s): State<AppState>) -> Response {
    // Milliseconds of CPU with many label sets: keep it off the async workers.
    let gw = s.gw.clone();
    match tokio::task::spawn_blocking(move || ops::metrics::prometheus_text(&gw)).await {
        Ok(text) => ([(header::CONTENT_TYPE, ops::metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => ApiError::internal(format!("metrics failed: {e}")).into_response(),
    }
}
