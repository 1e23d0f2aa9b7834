//! Tools that need the routing core (issue 3). They are registered now, with
//! their names and descriptions, so clients see the whole surface; each body
//! is a single call into `pending` until its op lands.

use super::{pending, OmnirouteMcp, PendingInput};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};

#[tool_router(router = routing_tools, vis = "pub(super)")]
impl OmnirouteMcp {
    #[tool(
        name = "omniroute_list_combos",
        description = "Combos (named routing plans): name, strategy, targets and limits. (Needs the routing core, not built yet.)",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_combos(&self, Parameters(_input): Parameters<PendingInput>) -> CallToolResult {
        pending::needs_routing_core("omniroute_list_combos")
    }

    #[tool(
        name = "omniroute_get_combo",
        description = "One combo by `name`: its strategy, ordered steps and limits, with its version. (Needs the routing core, not built yet.)",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_combo(&self, Parameters(_input): Parameters<PendingInput>) -> CallToolResult {
        pending::needs_routing_core("omniroute_get_combo")
    }

    #[tool(
        name = "omniroute_upsert_combo",
        description = "Create or replace a combo; validates first, and with `dry_run` returns the diff without saving. (Needs the routing core, not built yet.)",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = false
        )
    )]
    async fn upsert_combo(&self, Parameters(_input): Parameters<PendingInput>) -> CallToolResult {
        pending::needs_routing_core("omniroute_upsert_combo")
    }

    #[tool(
        name = "omniroute_delete_combo",
        description = "Delete a combo by `name` (kept in the audit log). (Needs the routing core, not built yet.)",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            open_world_hint = false
        )
    )]
    async fn delete_combo(&self, Parameters(_input): Parameters<PendingInput>) -> CallToolResult {
        pending::needs_routing_core("omniroute_delete_combo")
    }

    #[tool(
        name = "omniroute_rollback_combo",
        description = "Restore a combo's previous (or a given) version from its history. (Needs the routing core, not built yet.)",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = false
        )
    )]
    async fn rollback_combo(&self, Parameters(_input): Parameters<PendingInput>) -> CallToolResult {
        pending::needs_routing_core("omniroute_rollback_combo")
    }

    #[tool(
        name = "omniroute_set_routing_strategy",
        description = "Set a combo's strategy (priority, round-robin, least-latency, cost...). (Needs the routing core, not built yet.)",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = false
        )
    )]
    async fn set_routing_strategy(
        &self,
        Parameters(_input): Parameters<PendingInput>,
    ) -> CallToolResult {
        pending::needs_routing_core("omniroute_set_routing_strategy")
    }

    #[tool(
        name = "omniroute_check_quota",
        description = "Quota per account and tier: used, limit, remaining, reset time, cooldown. (Needs the routing core, not built yet.)",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn check_quota(&self, Parameters(_input): Parameters<PendingInput>) -> CallToolResult {
        pending::needs_routing_core("omniroute_check_quota")
    }

    #[tool(
        name = "omniroute_set_budget",
        description = "Set a spend budget (USD per period) for a client key or combo. (Needs the routing core, not built yet.)",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = false
        )
    )]
    async fn set_budget(&self, Parameters(_input): Parameters<PendingInput>) -> CallToolResult {
        pending::needs_routing_core("omniroute_set_budget")
    }

    #[tool(
        name = "omniroute_explain_route",
        description = "The ordered plan for a model or combo with the reason for each target's place or exclusion. (Needs the routing core, not built yet.)",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn explain_route(&self, Parameters(_input): Parameters<PendingInput>) -> CallToolResult {
        pending::needs_routing_core("omniroute_explain_route")
    }

    #[tool(
        name = "omniroute_test_combo",
        description = "Send a tiny prompt through each target of a combo and report latency and outcome. (Needs the routing core, not built yet.)",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = true
        )
    )]
    async fn test_combo(&self, Parameters(_input): Parameters<PendingInput>) -> CallToolResult {
        pending::needs_routing_core("omniroute_test_combo")
    }
}
