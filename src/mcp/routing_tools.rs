//! Tools over the routing core: combos (list, get, upsert with dry run,
//! delete, rollback, strategy, test), quotas and budgets, and route
//! explanations. Each body is one ops call mapped into structured content.

use super::{tool_error, CombosOutput, OmnirouteMcp};
use crate::ops;
use crate::ops::combos::{
    ComboName, ComboTest, ComboView, RollbackResult, SetStrategyInput, UpsertComboInput,
    UpsertComboResult,
};
use crate::ops::explain::{ExplainInput, RouteExplanation};
use crate::ops::quota::{QuotaQuery, QuotaReport, SetBudgetInput};
use crate::ops::Actor;
use crate::routing::budget::BudgetRule;
use crate::routing::combo::Combo;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router, Json};

#[tool_router(router = routing_tools, vis = "pub(super)")]
impl OmnirouteMcp {
    #[tool(
        name = "omniroute_list_combos",
        description = "Combos (named routing plans clients use as a model name): strategy, steps, \
                       limits, version, and the steps flattened to `prefix/model` targets. \
                       Includes the built-in `auto` combo.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_combos(&self) -> Result<Json<CombosOutput>, String> {
        ops::combos::list_combos(&self.gw)
            .await
            .map(|combos| Json(CombosOutput { combos }))
            .map_err(tool_error)
    }

    #[tool(
        name = "omniroute_get_combo",
        description = "One combo by `name`: strategy, ordered steps, limits, version and targets.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_combo(
        &self,
        Parameters(input): Parameters<ComboName>,
    ) -> Result<Json<ComboView>, String> {
        ops::combos::get_combo(&self.gw, &input.name)
            .await
            .map(Json)
            .map_err(tool_error)
    }

    #[tool(
        name = "omniroute_upsert_combo",
        description = "Create or replace a combo. Validates first (targets exist, no reference \
                       cycles, limits sane); `dry_run: true` returns the diff and warnings \
                       without saving. Every saved change is audited with the previous version \
                       and takes effect in the running gateway within a second.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn upsert_combo(
        &self,
        Parameters(input): Parameters<UpsertComboInput>,
    ) -> Result<Json<UpsertComboResult>, String> {
        ops::combos::upsert_combo(&self.gw, input, Actor::Mcp)
            .await
            .map(Json)
            .map_err(tool_error)
    }

    #[tool(
        name = "omniroute_delete_combo",
        description = "Delete a combo by `name`; returns the deleted definition (kept in the \
                       audit log, so omniroute_rollback_combo restores it).",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            open_world_hint = false
        )
    )]
    async fn delete_combo(
        &self,
        Parameters(input): Parameters<ComboName>,
    ) -> Result<Json<Combo>, String> {
        ops::combos::delete_combo(&self.gw, &input.name, Actor::Mcp)
            .await
            .map(Json)
            .map_err(tool_error)
    }

    #[tool(
        name = "omniroute_rollback_combo",
        description = "Undo the last change to a combo from the audit log: restores the previous \
                       version, or removes a combo that the last change created.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            open_world_hint = false
        )
    )]
    async fn rollback_combo(
        &self,
        Parameters(input): Parameters<ComboName>,
    ) -> Result<Json<RollbackResult>, String> {
        ops::combos::rollback_combo(&self.gw, &input.name, Actor::Mcp)
            .await
            .map(Json)
            .map_err(tool_error)
    }

    #[tool(
        name = "omniroute_set_routing_strategy",
        description = "Set a combo's strategy: priority, weighted, round-robin, fill-first, \
                       random, strict-random, least-used, p2c, cost-optimized, \
                       context-optimized, lkgp, reset-aware, reset-window, headroom, auto, \
                       fusion or context-relay.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn set_routing_strategy(
        &self,
        Parameters(input): Parameters<SetStrategyInput>,
    ) -> Result<Json<UpsertComboResult>, String> {
        ops::combos::set_routing_strategy(&self.gw, input, Actor::Mcp)
            .await
            .map(Json)
            .map_err(tool_error)
    }

    #[tool(
        name = "omniroute_check_quota",
        description = "Quota per account and tier: spend today, budgets (used, limit, remaining, \
                       reset time), cooldowns with their reason, the remaining quota the \
                       upstream last reported, and each subscription plan window (used %, reset \
                       time, burn-rate forecast). `provider` narrows to one provider.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn check_quota(
        &self,
        Parameters(input): Parameters<QuotaQuery>,
        ctx: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<Json<QuotaReport>, String> {
        ops::quota::check_quota(&self.gw, input, &super::access::principal(&ctx))
            .await
            .map(Json)
            .map_err(tool_error)
    }

    #[tool(
        name = "omniroute_set_budget",
        description = "Set a budget in USD and/or tokens per day or month for the whole gateway, \
                       a client key, an account, a tier or a combo; omit both limits to remove \
                       it. An exhausted budget skips that scope's targets.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn set_budget(
        &self,
        Parameters(input): Parameters<SetBudgetInput>,
    ) -> Result<Json<BudgetRule>, String> {
        ops::quota::set_budget(&self.gw, input, Actor::Mcp)
            .await
            .map(Json)
            .map_err(tool_error)
    }

    #[tool(
        name = "omniroute_explain_route",
        description = "The ordered plan for a model, combo or `auto`: each target with its tier, \
                       estimated cost and the reason for its place, and the targets left out \
                       (breaker open, cooldown, budget exhausted, context too small).",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn explain_route(
        &self,
        Parameters(input): Parameters<ExplainInput>,
    ) -> Result<Json<RouteExplanation>, String> {
        ops::explain::explain_route(&self.gw, input)
            .await
            .map(Json)
            .map_err(tool_error)
    }

    #[tool(
        name = "omniroute_test_combo",
        description = "Send a tiny prompt through each target of a combo, in parallel, and report \
                       each target's latency and outcome (status, error).",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = true
        )
    )]
    async fn test_combo(
        &self,
        Parameters(input): Parameters<ComboName>,
    ) -> Result<Json<ComboTest>, String> {
        ops::combos::test_combo(&self.gw, &input.name)
            .await
            .map(Json)
            .map_err(tool_error)
    }
}
