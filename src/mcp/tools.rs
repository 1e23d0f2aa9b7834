//! The tools built on existing ops: each body is one ops call and a mapping
//! of its result into structured content (or an `isError` result).

use super::session::Progress;
use super::{tool_error, AuditOutput, ModelsOutput, OmnirouteMcp, ProvidersOutput};
use crate::cache::rows::FlushFilter;
use crate::ops;
use crate::ops::audit::AuditQuery;
use crate::ops::cache::{CacheReport, CacheStatsQuery, FlushReport};
use crate::ops::cost::{CostQuery, CostReport};
use crate::ops::health::Health;
use crate::ops::models::ListModelsInput;
use crate::ops::providers::ListProvidersInput;
use crate::ops::route::{RouteAnswer, RouteRequest};
use rmcp::handler::server::wrapper::Parameters;
#[allow(deprecated)] // MCP logging: see `super::session`.
use rmcp::model::LoggingLevel;
use rmcp::service::RequestContext;
use rmcp::{tool, tool_router, Json, RoleServer};
use serde_json::json;

/// The `logger` of the log messages these tools send.
const LOGGER: &str = "omniroute.route";

#[tool_router(router = ops_tools, vis = "pub(super)")]
#[allow(deprecated)] // MCP logging levels: see `super::session`.
impl OmnirouteMcp {
    #[tool(
        name = "omniroute_get_health",
        description = "Gateway health: status, version, uptime, store, the gateway's own overhead \
                       (p50/p95/p99 ms) and, per usable or recently used provider, usable accounts, \
                       requests, errors, error rate and mean latency over the last hour.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_health(&self) -> Result<Json<Health>, String> {
        ops::health::health(&self.gw)
            .await
            .map(Json)
            .map_err(tool_error)
    }

    #[tool(
        name = "omniroute_list_providers",
        description = "The provider catalog and custom providers: wire format, base URL, tier, \
                       whether usable, models, and each provider's accounts (never secrets) with \
                       why an account is unusable. `usable_only` keeps usable providers.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_providers(
        &self,
        Parameters(input): Parameters<ListProvidersInput>,
    ) -> Result<Json<ProvidersOutput>, String> {
        ops::providers::list_providers(&self.gw, input)
            .await
            .map(|providers| Json(ProvidersOutput { providers }))
            .map_err(tool_error)
    }

    #[tool(
        name = "omniroute_list_models",
        description = "Models a client can ask for right now (`prefix/model`), with provider, tier, \
                       context window and USD prices per million input/output tokens. \
                       `provider` filters by provider id.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_models(
        &self,
        Parameters(input): Parameters<ListModelsInput>,
    ) -> Result<Json<ModelsOutput>, String> {
        ops::models::list_models(&self.gw, input)
            .await
            .map(|models| Json(ModelsOutput { models }))
            .map_err(tool_error)
    }

    #[tool(
        name = "omniroute_cost_report",
        description = "Spend for a period: totals and lines by provider, model, client key and day \
                       (requests, errors, tokens, USD cost, mean latency). `since`/`until` take a \
                       duration back from now (\"24h\", \"7d\") or a UTC date (\"2025-06-01\").",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn cost_report(
        &self,
        Parameters(q): Parameters<CostQuery>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<CostReport>, String> {
        ops::cost::cost_report(&self.gw, q, &super::access::principal(&ctx))
            .await
            .map(Json)
            .map_err(tool_error)
    }

    #[tool(
        name = "omniroute_route_request",
        description = "Send a chat request through the gateway's router and wait for the answer: \
                       returns the text, finish reason, the route taken (provider, account, model, \
                       attempts), token usage and cost. `model` is a `prefix/model` or bare model name.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = true
        )
    )]
    async fn route_request(
        &self,
        Parameters(req): Parameters<RouteRequest>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<RouteAnswer>, String> {
        let mut progress = Progress::of(&ctx);
        let model = req.model.clone();
        progress
            .report(0.0, Some(1.0), format!("routing a request for {model}"))
            .await;
        let routed = tokio::select! {
            r = ops::route::route_chat(&self.gw, req, super::access::principal(&ctx).key_id) => r,
            // notifications/cancelled: dropping the call drops the upstream request.
            () = ctx.ct.cancelled() => {
                self.session
                    .log(&ctx.peer, LoggingLevel::Notice, LOGGER, json!({
                        "event": "cancelled", "model": model,
                        "message": format!("request for {model} cancelled by the client"),
                    }))
                    .await;
                return Err(format!("the request for {model} was cancelled by the client"));
            }
        };
        match &routed {
            Ok(a) => {
                for failed in &a.route.failed {
                    self.session
                        .log(
                            &ctx.peer,
                            LoggingLevel::Warning,
                            LOGGER,
                            json!({
                                "event": "fallback", "model": model, "message": failed,
                            }),
                        )
                        .await;
                }
                let done = format!(
                    "answered by {}/{} (account {}, {} attempt(s))",
                    a.route.provider, a.route.model, a.route.account_id, a.route.attempts
                );
                self.session
                    .log(
                        &ctx.peer,
                        LoggingLevel::Info,
                        LOGGER,
                        json!({
                            "event": "routed", "model": model, "provider": a.route.provider,
                            "routed_model": a.route.model, "attempts": a.route.attempts,
                            "message": done,
                        }),
                    )
                    .await;
                progress.report(1.0, Some(1.0), done).await;
            }
            Err(e) => {
                self.session
                    .log(
                        &ctx.peer,
                        LoggingLevel::Error,
                        LOGGER,
                        json!({
                            "event": "failed", "model": model, "message": e.to_string(),
                        }),
                    )
                    .await;
            }
        }
        routed.map(Json).map_err(tool_error)
    }

    #[tool(
        name = "omniroute_cache_stats",
        description = "The answer cache: whether it is on, its mode, TTL and byte bound, answers \
                       and bytes stored, and over a period (`since`, default 30d; `combo` to pick \
                       one) hits (exact, semantic, coalesced), misses, bypasses, idempotent \
                       replays, hit rate, bytes served, tokens and USD saved, by combo and by key. \
                       A key without `admin` sees its own figures only.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn cache_stats(
        &self,
        Parameters(q): Parameters<CacheStatsQuery>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<CacheReport>, String> {
        ops::cache::cache_stats(&self.gw, q, &super::access::principal(&ctx))
            .await
            .map(Json)
            .map_err(tool_error)
    }

    #[tool(
        name = "omniroute_cache_flush",
        description = "Remove stored answers from the cache: all of them, or only those for one \
                       model or combo (`combo`) or one namespace (`namespace`: a key id or a \
                       shared namespace). Returns how many answers and bytes were removed.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn cache_flush(
        &self,
        Parameters(f): Parameters<FlushFilter>,
    ) -> Result<Json<FlushReport>, String> {
        ops::cache::cache_flush(&self.gw, f, ops::Actor::Mcp)
            .await
            .map(Json)
            .map_err(tool_error)
    }

    #[tool(
        name = "omniroute_get_audit_log",
        description = "Configuration changes, newest first: who (config, cli, mcp, a2a, api), when, \
                       what, and the before/after values (secrets omitted). `entity` filters \
                       (provider, account, client_key, combo); `limit` defaults to 50.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_audit_log(
        &self,
        Parameters(q): Parameters<AuditQuery>,
    ) -> Result<Json<AuditOutput>, String> {
        ops::audit::audit_log(&self.gw, q)
            .await
            .map(|entries| Json(AuditOutput { entries }))
            .map_err(tool_error)
    }
}
