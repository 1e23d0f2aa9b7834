//! The MCP surface: one server type over the shared `Gateway`, whose tools are
//! thin façades over `ops`. Served over stdio (`omniroute --mcp`, see `stdio`)
//! and over Streamable HTTP at `/mcp` (see `crate::http`).
//!
//! `tools` holds the tools over the general ops, `routing_tools` those over
//! the routing core (combos, strategies, quotas, budgets, explain, test).

pub mod access;
mod bridge;
mod completion;
pub mod fixtures;
mod paging;
mod prompts;
mod resources;
mod routing_tools;
mod session;
pub mod stdio;
mod subscriptions;
mod tools;
pub mod types;

use crate::gateway::Gateway;
use crate::ops::OpsError;
use rmcp::handler::server::prompt::PromptContext;
use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
#[allow(deprecated)] // SetLevelRequestParams: MCP logging, see `session`.
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult,
    GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig, SetLevelRequestParams, SubscribeRequestParams, Tool, UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use session::Session;
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
    /// This session's log level and subscriptions.
    pub(crate) session: Arc<Session>,
}

impl OmnirouteMcp {
    /// A server for one session (each stdio process, each HTTP session).
    pub fn new(gw: Arc<Gateway>) -> OmnirouteMcp {
        OmnirouteMcp {
            gw,
            tool_router: clean_schemas(Self::ops_tools() + Self::routing_tools()),
            prompt_router: Self::prompt_router(),
            session: Arc::new(Session::default()),
        }
    }

    /// Whether the conformance suite's fixtures are served (`--conformance-fixtures`).
    fn fixtures_on(&self) -> bool {
        self.gw.settings.conformance_fixtures
    }

    /// Every tool as advertised (name, description, input and output
    /// schemas), the fixtures last when they are on.
    pub fn tools(&self) -> Vec<Tool> {
        let mut tools = self.tool_router.list_all();
        if self.fixtures_on() {
            tools.extend(fixtures::tools());
        }
        tools
    }

    fn page_size(&self) -> usize {
        self.gw.settings.mcp_page_size
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

/// Cache hints for list results on 2026-07-28 and later (SEP-2549): fresh
/// for no time (the lists follow live configuration), cacheable by anyone
/// (they do not depend on the caller). Older revisions get neither field.
fn cache_hints(ctx: &RequestContext<RoleServer>) -> (Option<u64>, Option<CacheScope>) {
    let modern = ctx
        .protocol_version()
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
    (modern.then_some(0), modern.then_some(CacheScope::Public))
}

fn cursor(request: &Option<PaginatedRequestParams>) -> Option<&str> {
    request.as_ref().and_then(|r| r.cursor.as_deref())
}

// Logging (`logging/setLevel`, `notifications/message`) and the legacy
// subscribe methods are deprecated in rmcp for 2026-07-28 (SEP-2577) but
// belong to every handshake revision clients use.
#[allow(deprecated)]
impl ServerHandler for OmnirouteMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_logging()
                .enable_completions()
                .enable_prompts()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_tools()
                .build(),
        )
        .with_server_info(
            Implementation::new("omniroute", env!("CARGO_PKG_VERSION"))
                .with_title("omniroute AI gateway"),
        )
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let (tools, next_cursor) = paging::page(self.tools(), cursor(&request), self.page_size())?;
        let (ttl_ms, cache_scope) = cache_hints(&context);
        let mut result = ListToolsResult::with_all_items(tools);
        result.next_cursor = next_cursor;
        result.ttl_ms = ttl_ms;
        result.cache_scope = cache_scope;
        Ok(result)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        if let Some(t) = self.tool_router.get(name) {
            return Some(t.clone());
        }
        if self.fixtures_on() && fixtures::is_tool(name) {
            return fixtures::tools().into_iter().find(|t| t.name == name);
        }
        None
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let fixture = self.fixtures_on() && fixtures::is_tool(&request.name);
        if !fixture && !self.tool_router.has_route(&request.name) {
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
        if fixture {
            let name = request.name.to_string();
            return fixtures::call(self, &name, request.arguments, context)
                .await
                .map(Into::into);
        }
        let call = ToolCallContext::new(self, request, context);
        self.tool_router.call(call).await
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let mut prompts = self.prompt_router.list_all();
        if self.fixtures_on() {
            prompts.extend(fixtures::prompts());
        }
        let (prompts, next_cursor) = paging::page(prompts, cursor(&request), self.page_size())?;
        let (ttl_ms, cache_scope) = cache_hints(&context);
        let mut result = ListPromptsResult::with_all_items(prompts);
        result.next_cursor = next_cursor;
        result.ttl_ms = ttl_ms;
        result.cache_scope = cache_scope;
        Ok(result)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if self.fixtures_on() && fixtures::is_prompt(&request.name) {
            return fixtures::get_prompt(&request.name, request.arguments).map(Into::into);
        }
        let prompt = PromptContext::new(self, request.name, request.arguments, context);
        self.prompt_router.get_prompt(prompt).await
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let mut all = resources::list();
        if self.fixtures_on() {
            all.extend(fixtures::resources());
        }
        let (items, next_cursor) = paging::page(all, cursor(&request), self.page_size())?;
        let (ttl_ms, cache_scope) = cache_hints(&context);
        let mut result = ListResourcesResult::with_all_items(items);
        result.next_cursor = next_cursor;
        result.ttl_ms = ttl_ms;
        result.cache_scope = cache_scope;
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let mut all = resources::templates();
        if self.fixtures_on() {
            all.extend(fixtures::templates());
        }
        let (items, next_cursor) = paging::page(all, cursor(&request), self.page_size())?;
        let (ttl_ms, cache_scope) = cache_hints(&context);
        let mut result = ListResourceTemplatesResult::with_all_items(items);
        result.next_cursor = next_cursor;
        result.ttl_ms = ttl_ms;
        result.cache_scope = cache_scope;
        Ok(result)
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
        if self.fixtures_on() {
            if let Some(r) = fixtures::read(&request.uri) {
                return r.map(Into::into);
            }
        }
        resources::read(&self.gw, &request.uri)
            .await
            .map(Into::into)
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        access::principal(&context)
            .require(
                crate::access::Scope::Read,
                &format!("following {}", request.uri),
            )
            .map_err(|e| ErrorData::invalid_request(e.to_string(), None))?;
        let fp = subscriptions::fingerprint(&self.gw, self.fixtures_on(), &request.uri).await?;
        self.session.subscribe(&request.uri, fp);
        subscriptions::ensure_watcher(self.gw.clone(), self.session.clone(), context.peer);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        // Unsubscribing from something not followed is harmless: nothing to stop.
        self.session.unsubscribe(&request.uri);
        Ok(())
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.session.set_level(request.level);
        Ok(())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        completion::complete(&self.gw, self.fixtures_on(), request).await
    }
}
