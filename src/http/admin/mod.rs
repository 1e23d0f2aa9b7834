//! The admin surface: the JSON API under `/api/` that the dashboard uses
//! (and scripts can), `/metrics`, and the dashboard's embedded assets. Every
//! API route is one call into `ops`. The route table below builds both the
//! router and the OpenAPI description (`schemas/openapi.json`), so the two
//! cannot drift.
//!
//! Layers: `auth::require_admin` on every route but login and the assets.

mod assets;
pub mod auth;
mod handlers;
pub mod openapi;

use super::AppState;
use axum::http::Method;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use schemars::{JsonSchema, Schema, SchemaGenerator};

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// One admin route: how it is served and how it is documented.
pub struct Route {
    pub method: Method,
    /// axum and OpenAPI share the `{param}` syntax.
    pub path: &'static str,
    pub summary: &'static str,
    /// The `ops` function it calls.
    pub op: &'static str,
    pub query: Option<SchemaFn>,
    pub body: Option<SchemaFn>,
    /// None: the answer is not JSON (see `content_type`).
    pub response: Option<SchemaFn>,
    pub content_type: &'static str,
    handler: fn() -> MethodRouter<AppState>,
}

const JSON: &str = "application/json";

macro_rules! route {
    ($method:ident $path:literal, $summary:literal, $op:literal, query: $q:ty, body: $b:ty, out: $o:ty, $h:expr) => {
        Route {
            method: Method::$method,
            path: $path,
            summary: $summary,
            op: $op,
            query: route!(@s $q),
            body: route!(@s $b),
            response: Some(schema::<$o>),
            content_type: JSON,
            handler: || $h,
        }
    };
    (@s ()) => { None };
    (@s $t:ty) => { Some(schema::<$t>) };
}

/// Every admin API route, in the order the OpenAPI document lists them.
pub fn routes() -> Vec<Route> {
    use crate::ops;
    use handlers as h;
    vec![
        route!(GET "/api/session", "The CSRF token of the caller's session.", "-",
            query: (), body: (), out: auth::SessionInfo, get(auth::session)),
        route!(POST "/api/logout", "End the session.", "-",
            query: (), body: (), out: h::Done, post(auth::logout)),
        route!(GET "/api/overview", "Requests/min, latency and overhead percentiles, error and cache hit rates and spend over the last hour or day.", "ops::overview::overview",
            query: ops::overview::OverviewQuery, body: (), out: ops::overview::Overview, get(h::overview)),
        route!(GET "/api/health", "Store, overhead, per-provider traffic, breakers and cooldowns.", "ops::health::health",
            query: (), body: (), out: ops::health::Health, get(h::health)),
        route!(GET "/api/providers", "Providers with their accounts and whether they are usable.", "ops::providers::list_providers",
            query: ops::providers::ListProvidersInput, body: (), out: Vec<ops::providers::ProviderView>, get(h::providers)),
        route!(GET "/api/accounts", "Accounts of every provider, without secrets.", "ops::accounts::list_accounts",
            query: h::ProviderFilter, body: (), out: Vec<ops::accounts::AccountView>, get(h::accounts)),
        route!(POST "/api/accounts", "Add an API key (or an env variable's name) for a provider.", "ops::accounts::add_account",
            query: (), body: ops::accounts::AddAccountInput, out: ops::accounts::AccountView, post(h::add_account)),
        route!(DELETE "/api/accounts/{id}", "Remove an account.", "ops::accounts::remove_account",
            query: (), body: (), out: h::Removed, axum::routing::delete(h::remove_account)),
        route!(GET "/api/quota", "Per account and tier: spend, upstream quota with reset, cooldowns, budgets.", "ops::quota::check_quota",
            query: ops::quota::QuotaQuery, body: (), out: ops::quota::QuotaReport, get(h::quota)),
        route!(PUT "/api/budgets", "Set a budget (omit both limits to remove it).", "ops::quota::set_budget",
            query: (), body: ops::quota::SetBudgetInput, out: crate::routing::budget::BudgetRule, axum::routing::put(h::set_budget)),
        route!(GET "/api/models", "The models clients can ask for now.", "ops::models::list_models",
            query: ops::models::ListModelsInput, body: (), out: Vec<ops::models::ModelView>, get(h::models)),
        route!(GET "/api/combos", "Combos with their flattened targets (the built-in auto included).", "ops::combos::list_combos",
            query: (), body: (), out: Vec<ops::combos::ComboView>, get(h::combos)),
        route!(GET "/api/combos/{name}", "One combo.", "ops::combos::get_combo",
            query: (), body: (), out: ops::combos::ComboView, get(h::combo)),
        route!(PUT "/api/combos/{name}", "Create or replace a combo; dry_run returns the diff without saving.", "ops::combos::upsert_combo",
            query: (), body: ops::combos::UpsertComboInput, out: ops::combos::UpsertComboResult, axum::routing::put(h::upsert_combo)),
        route!(DELETE "/api/combos/{name}", "Delete a combo.", "ops::combos::delete_combo",
            query: (), body: (), out: crate::routing::combo::Combo, axum::routing::delete(h::delete_combo)),
        route!(POST "/api/combos/{name}/rollback", "Undo the last change to a combo.", "ops::combos::rollback_combo",
            query: (), body: (), out: ops::combos::RollbackResult, post(h::rollback_combo)),
        route!(POST "/api/combos/{name}/test", "Send a tiny prompt through every target of a combo.", "ops::combos::test_combo",
            query: (), body: (), out: ops::combos::ComboTest, post(h::test_combo)),
        route!(POST "/api/route/explain", "The ordered plan for a model or combo, with reasons and skips.", "ops::explain::explain_route",
            query: (), body: ops::explain::ExplainInput, out: ops::explain::RouteExplanation, post(h::explain)),
        route!(GET "/api/audit", "The audit log of configuration changes, newest first.", "ops::audit::audit_log",
            query: ops::audit::AuditQuery, body: (), out: Vec<crate::store::AuditEntry>, get(h::audit)),
        route!(POST "/api/subscriptions/sign-in", "Start a subscription account's sign-in (the provider's own OAuth flow, run by the gateway): answers its URL or device code; poll the id.", "ops::sign_in::start_sign_in",
            query: (), body: ops::sign_in::SignInInput, out: ops::sign_in::SignInStarted, post(h::start_sign_in)),
        route!(GET "/api/subscriptions/sign-in/{id}", "Where a started sign-in is: pending, signed_in (with the account) or failed (with the reason).", "ops::sign_in::sign_in_status",
            query: (), body: (), out: ops::sign_in::SignInStatus, get(h::sign_in_status)),
        route!(POST "/api/subscriptions/import", "Import the credential the provider's CLI keeps on the gateway's machine (Claude Code, Codex CLI, Gemini CLI, Qwen Code).", "ops::sign_in::import_account",
            query: (), body: ops::sign_in::ImportInput, out: ops::accounts::AccountView, post(h::import_account)),
        route!(GET "/api/keys", "Client keys (never their values).", "ops::keys::list_keys",
            query: (), body: (), out: Vec<crate::store::ClientKeyRow>, get(h::keys)),
        route!(POST "/api/keys", "Create a client key; its value is in this answer only.", "ops::keys::create_key",
            query: (), body: ops::keys::CreateKeyInput, out: ops::keys::CreatedKey, post(h::create_key)),
        route!(DELETE "/api/keys/{id}", "Revoke a client key.", "ops::keys::revoke_key",
            query: (), body: (), out: crate::store::ClientKeyRow, axum::routing::delete(h::revoke_key)),
        route!(PUT "/api/keys/{id}/scopes", "Replace what a client key may do (inference, read, admin).", "ops::keys::set_key_scopes",
            query: (), body: ops::keys::SetScopesInput, out: crate::store::ClientKeyRow, axum::routing::put(h::set_key_scopes)),
        route!(GET "/api/requests", "Recent requests with their route explanation, filtered by key, model and status.", "ops::requests::recent_requests",
            query: ops::requests::RequestsQuery, body: (), out: ops::requests::RequestsPage, get(h::requests)),
        route!(GET "/api/usage", "Spend by provider, model, key and day, with savings suggestions.", "ops::cost::cost_report",
            query: ops::cost::CostQuery, body: (), out: ops::cost::CostReport, get(h::usage)),
        Route {
            method: Method::GET,
            path: "/api/openapi.json",
            summary: "This description.",
            op: "-",
            query: None,
            body: None,
            response: None,
            content_type: JSON,
            handler: || get(h::openapi),
        },
        Route {
            method: Method::GET,
            path: "/metrics",
            summary: "Prometheus text format 0.0.4: requests, latency histograms, errors, breakers, cooldowns, quota, budgets, cache hits, store queue.",
            op: "ops::metrics::prometheus_text",
            query: None,
            body: None,
            response: None,
            content_type: crate::ops::metrics::CONTENT_TYPE,
            handler: || get(h::metrics),
        },
    ]
}

/// The dashboard, its API and `/metrics`, for the port that serves them.
pub fn router(state: &AppState) -> Router<AppState> {
    let mut protected = Router::new();
    for r in routes() {
        // /api/session authenticates by cookie only; it must answer 401 itself.
        if r.path == "/api/session" {
            continue;
        }
        protected = protected.route(r.path, (r.handler)());
    }
    let protected = protected.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_admin,
    ));
    Router::new()
        .route("/api/session", get(auth::session))
        .route("/api/login", post(auth::login))
        .route("/api/login/link", get(auth::login_link))
        .merge(protected)
        .merge(assets::routes())
}

/// `GET /` on a port that serves the dashboard: the page for browsers, the
/// JSON line for everything else (Claude Code probes it).
pub fn wants_html(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

pub use assets::index as dashboard_index;
