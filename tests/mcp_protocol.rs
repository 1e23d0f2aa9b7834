//! MCP protocol behaviour of the product server (no conformance fixtures):
//! the normal lists stay the product's own without `--conformance-fixtures`,
//! logging/setLevel filters the log messages a routed request sends,
//! progress of a routed request, cancellation that drops the upstream call,
//! completion of combo names and prompt arguments, resource subscriptions
//! (resources/updated on a combo change, none after unsubscribe) and cursor
//! pagination. Through an rmcp client over an in-memory pipe, against a
//! gateway in this process with a fake upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(deprecated)] // MCP logging types (deprecated for 2026-07-28 only).

mod support;

use omniroute::gateway::Settings;
use omniroute::mcp::OmnirouteMcp;
use rmcp::model::{
    CallToolRequestParams, ClientConfig, ClientRequest, LoggingLevel,
    LoggingMessageNotificationParam, PaginatedRequestParams, ProgressNotificationParam,
    ResourceUpdatedNotificationParam, SetLevelRequestParams, SubscribeRequestParams,
    UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::fake_upstream::FakeUpstream;
use support::InProcess;

/// What the client received besides answers.
#[derive(Clone, Default)]
struct Recorder {
    logs: Arc<Mutex<Vec<LoggingMessageNotificationParam>>>,
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    updated: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::default()
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.logs.lock().unwrap().push(params);
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.updated.lock().unwrap().push(params.uri);
    }
}

fn config(base_url: &str) -> String {
    format!(
        r#"[server]
api_keys = [{{ key = "sk-test-123", scopes = ["admin"] }}]

[[providers]]
id = "mock"
format = "openai"
base_url = "{base_url}"
api_key = "upstream-secret"
tier = "api-key"
models = ["gpt-4o-mini", "hang", "fail-500"]
"#
    )
}

struct Setup {
    _up: FakeUpstream,
    gw: InProcess,
    mcp: RunningService<RoleClient, Recorder>,
    seen: Recorder,
}

async fn setup(up: FakeUpstream, tweak: impl FnOnce(&mut Settings)) -> Setup {
    let gw = InProcess::start_with(&config(&up.base_url()), tweak).await;
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    let server = OmnirouteMcp::new(gw.gw.clone());
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let seen = Recorder::default();
    let mcp = seen.clone().serve(client_io).await.unwrap();
    Setup {
        _up: up,
        gw,
        mcp,
        seen,
    }
}

fn args(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn route(model: &str) -> CallToolRequestParams {
    CallToolRequestParams::new("omniroute_route_request").with_arguments(args(json!({
        "model": model, "messages": [{"role": "user", "content": "hi"}]
    })))
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    for _ in 0..200 {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_lists_hold_no_conformance_fixtures() {
    let checked_in: Value =
        serde_json::from_str(include_str!("../schemas/mcp-tools.json")).unwrap();
    let product: Vec<&str> = checked_in["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();

    let s = setup(FakeUpstream::start().await, |_| {}).await;
    let mut names: Vec<String> = s
        .mcp
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    assert_eq!(
        names, product,
        "the normal tool list is the checked-in catalog"
    );
    let prompts: Vec<String> = s
        .mcp
        .list_all_prompts()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(prompts.len(), 2, "{prompts:?}");
    assert!(
        prompts.iter().all(|p| !p.starts_with("test_")),
        "{prompts:?}"
    );
    let resources = s.mcp.list_all_resources().await.unwrap();
    assert!(resources.iter().all(|r| r.uri.starts_with("omniroute://")));
    let templates = s.mcp.list_all_resource_templates().await.unwrap();
    assert!(templates
        .iter()
        .all(|t| t.uri_template.starts_with("omniroute://")));
    // A fixture tool is unknown without the flag.
    let err = s
        .mcp
        .call_tool(CallToolRequestParams::new("test_simple_text"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown tool"), "{err}");
    let err = s
        .mcp
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "test://static-text",
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown resource"), "{err}");

    // With the flag, the same lists gain the fixtures after the product's own.
    let f = setup(FakeUpstream::start().await, |s| {
        s.conformance_fixtures = true
    })
    .await;
    let with: Vec<String> = f
        .mcp
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(
        with.len(),
        product.len() + omniroute::mcp::fixtures::TOOL_NAMES.len()
    );
    assert!(with.iter().any(|n| n == "test_simple_text"));
    s.gw.stop().await;
    f.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_messages_follow_the_level_the_client_sets() {
    let s = setup(FakeUpstream::start().await, |_| {}).await;
    // Quiet until the client asks.
    s.mcp.call_tool(route("mock/gpt-4o-mini")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(s.seen.logs.lock().unwrap().is_empty());

    s.mcp
        .set_level(SetLevelRequestParams::new(LoggingLevel::Info))
        .await
        .unwrap();
    let r = s.mcp.call_tool(route("mock/gpt-4o-mini")).await.unwrap();
    assert_ne!(r.is_error, Some(true));
    wait_for("an info log message", || {
        !s.seen.logs.lock().unwrap().is_empty()
    })
    .await;
    let log = s.seen.logs.lock().unwrap()[0].clone();
    assert_eq!(log.level, LoggingLevel::Info);
    assert_eq!(log.logger.as_deref(), Some("omniroute.route"));
    assert_eq!(log.data["event"], "routed");
    assert_eq!(log.data["provider"], "mock");

    // At `error`, a success says nothing and a failure says why.
    s.mcp
        .set_level(SetLevelRequestParams::new(LoggingLevel::Error))
        .await
        .unwrap();
    s.seen.logs.lock().unwrap().clear();
    s.mcp.call_tool(route("mock/gpt-4o-mini")).await.unwrap();
    let failed = s.mcp.call_tool(route("mock/fail-500")).await.unwrap();
    assert_eq!(failed.is_error, Some(true));
    wait_for("an error log message", || {
        !s.seen.logs.lock().unwrap().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let logs = s.seen.logs.lock().unwrap().clone();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].level, LoggingLevel::Error);
    assert_eq!(logs[0].data["event"], "failed");
    s.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routed_request_reports_progress() {
    let s = setup(FakeUpstream::start().await, |_| {}).await;
    // rmcp's client puts a progressToken on every request.
    let req = route("mock/gpt-4o-mini");
    let r = s.mcp.call_tool(req).await.unwrap();
    assert_ne!(r.is_error, Some(true));
    wait_for("two progress notifications", || {
        s.seen.progress.lock().unwrap().len() >= 2
    })
    .await;
    let p = s.seen.progress.lock().unwrap().clone();
    assert_eq!(p[0].progress_token, p[1].progress_token);
    assert_eq!((p[0].progress, p[1].progress), (0.0, 1.0));
    assert_eq!(p[1].total, Some(1.0));
    assert!(
        p[1].message
            .as_deref()
            .unwrap()
            .contains("answered by mock/gpt-4o-mini"),
        "{p:?}"
    );
    s.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_routed_request_drops_the_upstream_call() {
    let up = FakeUpstream::start().await;
    let s = setup(up.clone(), |_| {}).await;
    let handle = s
        .mcp
        .send_cancellable_request(
            ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(route("mock/hang"))),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    wait_for("the upstream call", || up.calls("hang") == 1).await;
    assert_eq!(up.seen.hangs_dropped.load(Ordering::SeqCst), 0);
    handle
        .cancel(Some("user pressed stop".into()))
        .await
        .unwrap();
    wait_for("the upstream call to be dropped", || {
        up.seen.hangs_dropped.load(Ordering::SeqCst) == 1
    })
    .await;
    // The session goes on.
    let r = s.mcp.call_tool(route("mock/gpt-4o-mini")).await.unwrap();
    assert_ne!(r.is_error, Some(true));
    s.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_suggests_combo_names_and_prompt_arguments() {
    let s = setup(FakeUpstream::start().await, |_| {}).await;
    for name in ["fast-lane", "frugal", "slow-lane"] {
        let r = s
            .mcp
            .call_tool(
                CallToolRequestParams::new("omniroute_upsert_combo").with_arguments(args(json!({
                    "combo": {"name": name, "models": ["mock/gpt-4o-mini"]}
                }))),
            )
            .await
            .unwrap();
        assert_ne!(r.is_error, Some(true), "{:?}", r.content);
    }
    let c = s
        .mcp
        .complete_resource_argument("omniroute://combos/{name}", "name", "f", None)
        .await
        .unwrap();
    assert_eq!(c.values, ["fast-lane", "frugal"]);
    let c = s
        .mcp
        .complete_resource_argument("omniroute://combos/{name}", "name", "lane", None)
        .await
        .unwrap();
    assert_eq!(c.values, ["fast-lane", "slow-lane"]);
    assert_eq!((c.total, c.has_more), (Some(2), Some(false)));
    let c = s
        .mcp
        .complete_prompt_argument("review_spend", "since", "7", None)
        .await
        .unwrap();
    assert_eq!(c.values, ["7d"]);
    let err = s
        .mcp
        .complete_prompt_argument("no_such_prompt", "x", "", None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no_such_prompt"), "{err}");
    s.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_combo_sends_updates_until_unsubscribed() {
    let s = setup(FakeUpstream::start().await, |_| {}).await;
    let uri = "omniroute://combos/watched";
    s.mcp
        .subscribe(SubscribeRequestParams::new(uri))
        .await
        .unwrap();
    let upsert = |strategy: &str| {
        CallToolRequestParams::new("omniroute_upsert_combo").with_arguments(args(json!({
            "combo": {"name": "watched", "models": ["mock/gpt-4o-mini"], "strategy": strategy}
        })))
    };
    // Created: a change.
    s.mcp.call_tool(upsert("priority")).await.unwrap();
    wait_for("resources/updated", || {
        !s.seen.updated.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(s.seen.updated.lock().unwrap().as_slice(), [uri]);
    // Changed: another.
    s.mcp.call_tool(upsert("round-robin")).await.unwrap();
    wait_for("a second resources/updated", || {
        s.seen.updated.lock().unwrap().len() == 2
    })
    .await;

    // Unsubscribed: the next change says nothing.
    s.mcp
        .unsubscribe(UnsubscribeRequestParams::new(uri))
        .await
        .unwrap();
    s.mcp.call_tool(upsert("priority")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(s.seen.updated.lock().unwrap().len(), 2);

    // Only resources that exist (or could: a combo name) can be followed.
    let err = s
        .mcp
        .subscribe(SubscribeRequestParams::new("omniroute://nothing"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown resource"), "{err}");
    s.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_paginated_by_cursor() {
    let s = setup(FakeUpstream::start().await, |s| s.mcp_page_size = 5).await;
    let first = s.mcp.list_tools(None).await.unwrap();
    assert_eq!(first.tools.len(), 5);
    let cursor = first.next_cursor.clone().expect("a next cursor");
    let second = s
        .mcp
        .list_tools(Some(
            PaginatedRequestParams::default().with_cursor(Some(cursor)),
        ))
        .await
        .unwrap();
    assert_eq!(second.tools.len(), 5);
    assert_ne!(first.tools[0].name, second.tools[0].name);
    // The client's list_all follows cursors to the end: every tool once.
    let all = s.mcp.list_all_tools().await.unwrap();
    let mut names: Vec<_> = all.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names.len(),
        OmnirouteMcp::tool_catalog()["tools"]
            .as_array()
            .unwrap()
            .len()
    );
    let err = s
        .mcp
        .list_tools(Some(
            PaginatedRequestParams::default().with_cursor(Some("forged".into())),
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid cursor"), "{err}");
    s.gw.stop().await;
}
