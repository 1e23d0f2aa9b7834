//! The scope each tool needs, and who a request acts as. Over stdio the
//! caller is the operator (whoever may read the data dir); over HTTP it is
//! the client key the `/mcp` guard attached (the local bridge's token acts
//! as the operator too).

use crate::access::{Principal, Scope};
use rmcp::service::RequestContext;
use rmcp::RoleServer;

/// The scope a tool needs; a tool missing here needs `admin`.
pub fn tool_scope(name: &str) -> Scope {
    if super::fixtures::is_tool(name) {
        // The conformance suite's fixtures (only with --conformance-fixtures):
        // they touch no gateway data.
        return Scope::Inference;
    }
    match name {
        "omniroute_route_request" | "omniroute_list_models" => Scope::Inference,
        "omniroute_get_health"
        | "omniroute_list_providers"
        | "omniroute_cost_report"
        | "omniroute_list_combos"
        | "omniroute_get_combo"
        | "omniroute_explain_route"
        | "omniroute_check_quota"
        | "omniroute_cache_stats" => Scope::Read,
        _ => Scope::Admin,
    }
}

/// A read-only tool a `read` key may also call though it is listed under
/// `inference` (the model list is part of both).
fn also_for_read(name: &str) -> bool {
    name == "omniroute_list_models"
}

/// Refuse the call unless `who` may use tool `name`.
pub fn check_tool(who: &Principal, name: &str) -> Result<(), crate::access::AccessDenied> {
    if also_for_read(name) && who.allows(Scope::Read) {
        return Ok(());
    }
    who.require(tool_scope(name), name)
}

/// Who this request acts as.
pub fn principal(ctx: &RequestContext<RoleServer>) -> Principal {
    match ctx.extensions.get::<axum::http::request::Parts>() {
        // Over HTTP: the guard always attaches one; none means nothing is allowed.
        Some(parts) => parts
            .extensions
            .get::<Principal>()
            .cloned()
            .unwrap_or_default(),
        None => Principal::operator(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Scopes;

    #[test]
    fn every_tool_is_named_and_management_needs_admin() {
        let listed = [
            "omniroute_route_request",
            "omniroute_list_models",
            "omniroute_get_health",
            "omniroute_list_providers",
            "omniroute_cost_report",
            "omniroute_list_combos",
            "omniroute_get_combo",
            "omniroute_explain_route",
            "omniroute_check_quota",
            "omniroute_cache_stats",
        ];
        let catalog = crate::mcp::OmnirouteMcp::tool_catalog();
        for tool in catalog["tools"].as_array().unwrap() {
            let name = tool["name"].as_str().unwrap();
            let read_only = tool["annotations"]["readOnlyHint"].as_bool() == Some(true);
            if !listed.contains(&name) {
                assert_eq!(tool_scope(name), Scope::Admin, "{name}");
            }
            // A tool that changes something is never below admin, except routing a request.
            if !read_only && name != "omniroute_route_request" {
                assert_eq!(tool_scope(name), Scope::Admin, "{name} changes state");
            }
        }
        let reader = Principal::key("k", Scopes::of(&[Scope::Read]));
        assert!(check_tool(&reader, "omniroute_list_models").is_ok());
        assert!(check_tool(&reader, "omniroute_route_request").is_err());
        assert!(check_tool(&reader, "omniroute_set_budget").is_err());
        assert!(check_tool(&reader, "omniroute_cache_stats").is_ok());
        assert_eq!(tool_scope("omniroute_cache_flush"), Scope::Admin);
    }
}
