//! The MCP surface: one server type over the shared `Gateway`, whose tools are
//! thin façades over `ops`. Served over stdio (`omniroute --mcp`, see `stdio`)
//! and over Streamable HTTP at `/mcp` (see `crate::http`).
//!
//! `tools` holds the tools over the general ops, `routing_tools` those over
//! the routing core (combos, strategies, quotas, budgets, explain, test).

pub mod access;
mod bridge;
mod prompts;
mod resources;
mod routing_tools;
pub mod stdio;
mod tools;
pub mod types;

use crate::gateway::Gateway;
use crate::ops::OpsError;
use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListResourceTemplatesResult,
    ListResourcesResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{prompt_handler, tool_handler, ErrorData, RoleServer, ServerHandler};
use std::sync::Arc;

pub use types::*;

const INSTRUCTIONS: &str = "omniroute is a local AI gateway that routes chat requests across \
providers and accounts. Use omniroute_get_health and omniroute_list_providers to see what is \
usable, omniroute_list_models to pick a model (names are `prefix/model`), \
omniroute_route_request to send a prompt through the gateway, omniroute_cost_report for spend \
and omniroute_get_audit_log for configuration changes. Combos are named routing plans used as \
model names: omniroute_list_combos, omniroute_explain_route to see the order a request would \
take, omniroute_upsert_combo (dry_run first) to change one, omniroute_check_quota for what is \
left.";

/// The MCP server: state plus the tool and prompt routers.
#[derive(Clone)]
pub struct OmnirouteMcp {
    pub(crate) gw: Arc<Gateway>,
    tool_router: ToolRouter<Self>,
    prompt_router: PromptRouter<Self>,
}

impl OmnirouteMcp {
    pub fn new(gw: Arc<Gateway>) -> OmnirouteMcp {
        OmnirouteMcp {
            gw,
            tool_router: clean_schemas(Self::ops_tools() + Self::routing_tools()),
            prompt_router: Self::prompt_router(),
        }
    }

    /// Every tool as advertised (name, description, input and output schemas).
    pub fn tools(&self) -> Vec<rmcp::model::Tool> {
        self.tool_router.list_all()
    }

    /// The tools as clients see them in `tools/list`, sorted by name: checked
    /// into `schemas/mcp-tools.json` so a change to any tool's schema shows.
    pub fn tool_catalog() -> serde_json::Value {
        let mut tools = clean_schemas(Self::ops_tools() + Self::routing_tools()).list_all();
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        serde_json::json!({ "tools": tools })
    }
}

/// Tools' schemas with only the `format`s JSON Schema defines (see
/// `crate::schema::standard_formats`).
fn clean_schemas<S>(mut router: ToolRouter<S>) -> ToolRouter<S> {
    let clean = |o: &Arc<rmcp::model::JsonObject>| {
        let mut v = serde_json::Value::Object(o.as_ref().clone());
        crate::schema::standard_formats(&mut v);
        match v {
            serde_json::Value::Object(m) => Arc::new(m),
            _ => o.clone(),
        }
    };
    for route in router.map.values_mut() {
        route.attr.input_schema = clean(&route.attr.input_schema);
        route.attr.output_schema = route.attr.output_schema.as_ref().map(clean);
    }
    router
}

/// The message a client sees when an operation fails, saying what to fix.
pub(crate) fn tool_error(e: OpsError) -> String {
    match e {
        OpsError::InvalidInput(m) => format!("invalid input: {m}"),
        OpsError::NotFound(what) => format!("{what} not found"),
        OpsError::Store(e) => format!("the gateway's store failed: {e}"),
    }
}

#[tool_handler(router = self.tool_router)]
#[prompt_handler(router = self.prompt_router)]
impl ServerHandler for OmnirouteMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .build(),
        )
        .with_server_info(
            Implementation::new("omniroute", env!("CARGO_PKG_VERSION"))
                .with_title("omniroute AI gateway"),
        )
        .with_instructions(INSTRUCTIONS)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if !self.tool_router.has_route(&request.name) {
            let known: Vec<String> = self
                .tools()
                .into_iter()
                .map(|t| t.name.to_string())
                .collect();
            return Err(ErrorData::invalid_params(
                format!(
                    "unknown tool {:?}; the tools are: {}",
                    request.name,
                    known.join(", ")
                ),
                None,
            ));
        }
        if let Err(denied) = access::check_tool(&access::principal(&context), &request.name) {
            return Ok(
                rmcp::model::CallToolResult::error(vec![rmcp::model::ContentBlock::text(
                    denied.to_string(),
                )])
                .into(),
            );
        }
        let call = ToolCallContext::new(self, request, context);
        self.tool_router.call(call).await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(resources::list()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        access::principal(&context)
            .require(
                crate::access::Scope::Read,
                &format!("reading {}", request.uri),
            )
            .map_err(|e| ErrorData::invalid_request(e.to_string(), None))?;
        resources::read(&self.gw, &request.uri)
            .await
            .map(Into::into)
    }
}
