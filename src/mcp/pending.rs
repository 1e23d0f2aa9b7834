//! Answers for the MCP tools and resources that need the routing core
//! (issue 3: combos, strategies, quotas, budgets, explain, test). Each such
//! tool's body is one call into this file; wiring one to its op replaces that
//! call and the tool's input/output types.

use rmcp::model::{CallToolResult, ContentBlock, ReadResourceResult};
use rmcp::ErrorData;

/// The `isError` result of a tool that is registered but not built yet.
pub fn needs_routing_core(tool: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(format!(
        "{tool} needs the routing core (issue 3), not built yet; for now use \
         omniroute_list_models and omniroute_route_request with a `prefix/model` name"
    ))])
}

/// `omniroute://combos/{name}` until combos exist.
pub fn combo_resource(name: &str) -> Result<ReadResourceResult, ErrorData> {
    Err(ErrorData::resource_not_found(
        format!("combo {name:?}: combos need the routing core (issue 3), not built yet"),
        None,
    ))
}
