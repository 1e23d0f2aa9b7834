//! Who may do what, over real sockets: the scope matrix over every model
//! route, every MCP tool (over `/mcp`) and every A2A skill; a key sees only
//! its own spend; an MCP session belongs to the key that opened it; and the
//! browser guard (Host, Origin, Content-Type) on every surface, with keys
//! required and with `--no-auth`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use support::fake_upstream::FakeUpstream;
use support::{client, example_config, run_binary, Binary, InProcess, CLIENT_KEY};

const INFERENCE: &str = "sk-inference-0001";
const READ: &str = "sk-read-only-0001";
const BOTH: &str = "sk-inf-and-read-01";

fn config(base_url: &str) -> String {
    example_config(base_url).replace(
        r#"api_keys = [{ key = "sk-test-123", scopes = ["admin"] }]"#,
        &format!(
            r#"api_keys = [{{ key = "sk-test-123", scopes = ["admin"] }}, "{INFERENCE}", {{ key = "{READ}", scopes = ["read"], label = "dashboards" }}, {{ key = "{BOTH}", scopes = ["inference", "read"] }}]"#
        ),
    )
}

/// (method, path, body) of every model route.
fn model_routes() -> Vec<(&'static str, &'static str, Option<Value>)> {
    let chat =
        json!({"model": "mock/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    let anthropic = json!({"model": "mock/gpt-4o-mini", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]});
    let gemini = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    vec![
        ("POST", "/v1/chat/completions", Some(chat.clone())),
        ("POST", "/chat/completions", Some(chat)),
        ("POST", "/v1/messages", Some(anthropic.clone())),
        ("POST", "/v1/messages/count_tokens", Some(anthropic)),
        (
            "POST",
            "/v1/responses",
            Some(json!({"model": "mock/gpt-4o-mini", "input": "hi"})),
        ),
        (
            "POST",
            "/v1beta/models/mock/gpt-4o-mini:generateContent",
            Some(gemini),
        ),
        ("GET", "/v1/models", None),
        ("GET", "/v1beta/models", None),
    ]
}

async fn call(
    base: &str,
    method: &str,
    path: &str,
    body: &Option<Value>,
    key: Option<&str>,
) -> (u16, Value) {
    let url = format!("{base}{path}");
    let mut req = match method {
        "GET" => client().get(url),
        _ => client().post(url),
    };
    if let Some(b) = body {
        req = req.json(b);
    }
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The error message in any of the surfaces' shapes.
fn message(v: &Value) -> String {
    v.pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_routes_need_the_inference_scope() {
    let up = FakeUpstream::start().await;
    let gw = InProcess::start(&config(&up.base_url())).await;
    for (method, path, body) in model_routes() {
        for key in [CLIENT_KEY, INFERENCE, BOTH] {
            let (status, v) = call(&gw.base, method, path, &body, Some(key)).await;
            assert_eq!(status, 200, "{method} {path} with {key}: {v}");
        }
        let (status, v) = call(&gw.base, method, path, &body, Some(READ)).await;
        assert_eq!(status, 403, "{method} {path} with a read key: {v}");
        let m = message(&v);
        assert!(
            m.contains("needs the `inference` scope") && m.contains("has read"),
            "{path}: {m}"
        );
        // Each surface answers in its own shape.
        if path.contains("/messages") {
            assert_eq!(v["type"], "error", "{v}");
            assert_eq!(v["error"]["type"], "permission_error", "{v}");
        } else if path.starts_with("/v1beta") {
            assert_eq!(v["error"]["status"], "PERMISSION_DENIED", "{v}");
        } else {
            assert_eq!(v["error"]["type"], "permission_error", "{v}");
        }
        let (status, _) = call(&gw.base, method, path, &body, None).await;
        assert_eq!(status, 401, "{method} {path} without a key");
    }
    gw.stop().await;
}

/// A minimal Streamable HTTP MCP client: one session per key.
struct McpHttp {
    url: String,
    key: String,
    session: String,
}

async fn mcp_post(url: &str, key: &str, session: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = client()
        .post(url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_string());
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    req.send().await.unwrap()
}

/// The JSON-RPC answer in a JSON or SSE body.
async fn rpc_answer(resp: reqwest::Response) -> Value {
    let text = resp.text().await.unwrap();
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        return v;
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC answer in {text:?}"))
}

impl McpHttp {
    async fn open(base: &str, key: &str) -> McpHttp {
        let url = format!("{base}/mcp");
        let resp = mcp_post(
            &url,
            key,
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "access-test", "version": "1"}}}),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let session = resp.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_string();
        let _ = rpc_answer(resp).await;
        let r = mcp_post(
            &url,
            key,
            Some(&session),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await;
        assert!(r.status().is_success());
        McpHttp {
            url,
            key: key.to_string(),
            session,
        }
    }

    async fn tool(&self, name: &str, args: Value) -> Value {
        let resp = mcp_post(
            &self.url,
            &self.key,
            Some(&self.session),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": args}}),
        )
        .await;
        assert_eq!(resp.status(), 200, "{name}");
        rpc_answer(resp).await
    }
}

fn tool_calls() -> Vec<(&'static str, Value)> {
    vec![
        ("omniroute_get_health", json!({})),
        ("omniroute_list_providers", json!({})),
        ("omniroute_list_models", json!({})),
        (
            "omniroute_route_request",
            json!({"model": "mock/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
        ),
        ("omniroute_cost_report", json!({"since": "1h"})),
        ("omniroute_get_audit_log", json!({"limit": 5})),
        ("omniroute_list_combos", json!({})),
        (
            "omniroute_upsert_combo",
            json!({"combo": {"name": "c1", "models": ["mock/gpt-4o-mini"]}}),
        ),
        ("omniroute_get_combo", json!({"name": "c1"})),
        (
            "omniroute_set_routing_strategy",
            json!({"name": "c1", "strategy": "round-robin"}),
        ),
        ("omniroute_rollback_combo", json!({"name": "c1"})),
        ("omniroute_explain_route", json!({"model": "c1"})),
        ("omniroute_test_combo", json!({"name": "c1"})),
        (
            "omniroute_set_budget",
            json!({"scope": "global", "period": "day", "limit_usd": 0.0}),
        ),
        ("omniroute_check_quota", json!({})),
        ("omniroute_delete_combo", json!({"name": "c1"})),
        ("omniroute_cache_stats", json!({"since": "1d"})),
        ("omniroute_cache_flush", json!({})),
    ]
}

/// The scope each tool needs, as the matrix expects it.
fn expected_scope(tool: &str) -> &'static str {
    match tool {
        "omniroute_route_request" => "inference",
        "omniroute_list_models" => "inference or read",
        "omniroute_get_health"
        | "omniroute_list_providers"
        | "omniroute_cost_report"
        | "omniroute_list_combos"
        | "omniroute_get_combo"
        | "omniroute_explain_route"
        | "omniroute_check_quota"
        | "omniroute_cache_stats" => "read",
        _ => "admin",
    }
}

fn allowed(scope: &str, key: &str) -> bool {
    match key {
        k if k == CLIENT_KEY => true,
        INFERENCE => scope.contains("inference"),
        READ => scope.contains("read"),
        BOTH => scope != "admin",
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mcp_tool_checks_its_scope() {
    let up = FakeUpstream::start().await;
    let gw = InProcess::start(&config(&up.base_url())).await;
    let listed = McpHttp::open(&gw.base, INFERENCE).await;
    let resp = mcp_post(
        &listed.url,
        INFERENCE,
        Some(&listed.session),
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}),
    )
    .await;
    let tools = rpc_answer(resp).await;
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    // The matrix covers every tool the server lists.
    let calls = tool_calls();
    for n in &names {
        assert!(
            calls.iter().any(|(c, _)| c == n),
            "tool {n} is not in the matrix"
        );
    }
    for key in [INFERENCE, READ, BOTH, CLIENT_KEY] {
        let s = McpHttp::open(&gw.base, key).await;
        for (tool, args) in &calls {
            let scope = expected_scope(tool);
            let answer = s.tool(tool, args.clone()).await;
            let result = &answer["result"];
            let refused = result["isError"] == true
                && result["content"][0]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("scope"));
            if allowed(scope, key) {
                assert!(!refused, "{tool} with {key} was refused: {answer}");
            } else {
                assert!(refused, "{tool} with {key} should need {scope}: {answer}");
                let text = result["content"][0]["text"].as_str().unwrap();
                let needed = if scope == "inference or read" {
                    "inference"
                } else {
                    scope
                };
                assert!(
                    text.contains(&format!("needs the `{needed}` scope")),
                    "{text}"
                );
            }
        }
    }
    // The $0 global budget an inference key tried to set never took hold:
    // the admin's own set_budget above did, so remove it and check traffic flows.
    let admin = McpHttp::open(&gw.base, CLIENT_KEY).await;
    let r = admin
        .tool(
            "omniroute_set_budget",
            json!({"scope": "global", "period": "day"}),
        )
        .await;
    assert_ne!(r["result"]["isError"], true, "{r}");
    let (status, _) = call(
        &gw.base,
        "POST",
        "/v1/chat/completions",
        &model_routes()[0].2,
        Some(INFERENCE),
    )
    .await;
    assert_eq!(status, 200);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_sees_only_its_own_spend_unless_admin() {
    let up = FakeUpstream::start().await;
    let gw = InProcess::start(&config(&up.base_url())).await;
    let body = model_routes()[0].2.clone();
    for key in [BOTH, BOTH, INFERENCE] {
        let (status, _) = call(&gw.base, "POST", "/v1/chat/completions", &body, Some(key)).await;
        assert_eq!(status, 200);
    }
    gw.gw.store.flush().await.unwrap();
    let mine = McpHttp::open(&gw.base, BOTH).await;
    let r = mine
        .tool("omniroute_cost_report", json!({"since": "1h"}))
        .await;
    let report = &r["result"]["structuredContent"];
    assert_eq!(report["total_requests"], 2, "{r}");
    assert_eq!(report["by_key"].as_array().unwrap().len(), 1, "{report}");
    let admin = McpHttp::open(&gw.base, CLIENT_KEY).await;
    let r = admin
        .tool("omniroute_cost_report", json!({"since": "1h"}))
        .await;
    assert_eq!(r["result"]["structuredContent"]["total_requests"], 3, "{r}");
    assert_eq!(
        r["result"]["structuredContent"]["by_key"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Quota: the same split for per-account spend.
    let r = mine.tool("omniroute_check_quota", json!({})).await;
    let accounts = r["result"]["structuredContent"]["accounts"]
        .as_array()
        .unwrap();
    let reqs: u64 = accounts
        .iter()
        .map(|a| a["requests_today"].as_u64().unwrap())
        .sum();
    assert_eq!(reqs, 2, "{r}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_session_belongs_to_the_key_that_opened_it() {
    let up = FakeUpstream::start().await;
    let gw = InProcess::start(&config(&up.base_url())).await;
    let admin = McpHttp::open(&gw.base, CLIENT_KEY).await;
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    let theirs = mcp_post(&admin.url, INFERENCE, Some(&admin.session), list.clone()).await;
    assert_eq!(theirs.status(), 404);
    // A management call through the borrowed session is refused the same way.
    let borrowed = mcp_post(
        &admin.url,
        READ,
        Some(&admin.session),
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "omniroute_set_budget", "arguments": {"scope": "global", "period": "day", "limit_usd": 0.0}}}),
    )
    .await;
    assert_eq!(borrowed.status(), 404);
    let own = mcp_post(&admin.url, CLIENT_KEY, Some(&admin.session), list).await;
    assert_eq!(own.status(), 200);
    gw.stop().await;
}

async fn a2a(base: &str, key: &str, data: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "SendMessage", "params": {
        "message": {"messageId": omniroute::ops::tasks::new_id(), "role": "ROLE_USER",
                    "parts": [{"text": "do it"}, {"data": data}]},
        "configuration": {"returnImmediately": false}}});
    client()
        .post(format!("{base}/a2a"))
        .bearer_auth(key)
        .header("A2A-Version", "1.0")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_a2a_skill_checks_its_scope() {
    let up = FakeUpstream::start().await;
    let gw = InProcess::start(&config(&up.base_url())).await;
    let cases = [
        (json!({"skill": "health"}), "read"),
        (json!({"skill": "cost-analysis", "since": "1h"}), "read"),
        (
            json!({"skill": "quota-management", "action": "summary"}),
            "read",
        ),
        (
            json!({"skill": "quota-management", "action": "set-budget", "budget_usd": 1.0, "period": "day"}),
            "admin",
        ),
        (
            json!({"skill": "combo-management", "action": "list"}),
            "read",
        ),
        (
            json!({"skill": "combo-management", "action": "create", "name": "x1", "targets": ["mock/gpt-4o-mini"]}),
            "admin",
        ),
        (
            json!({"skill": "combo-management", "action": "delete", "name": "x1"}),
            "admin",
        ),
        (
            json!({"skill": "smart-routing", "model": "mock/gpt-4o-mini", "prompt": "hi"}),
            "inference",
        ),
    ];
    for key in [INFERENCE, READ, BOTH, CLIENT_KEY] {
        for (data, scope) in &cases {
            let v = a2a(&gw.base, key, data.clone()).await;
            if allowed(scope, key) {
                assert!(v.get("error").is_none(), "{data} with {key}: {v}");
            } else {
                assert_eq!(v["error"]["code"], -32000, "{data} with {key}: {v}");
                let m = v["error"]["message"].as_str().unwrap();
                assert!(m.contains(&format!("needs the `{scope}` scope")), "{m}");
                assert_eq!(v["error"]["data"][0]["reason"], "INSUFFICIENT_SCOPE");
            }
        }
    }
    gw.stop().await;
}

#[test]
fn cli_keys_carry_scopes_and_the_first_start_key_is_admin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let gw = Binary::start(&data, &[]);
    let first = gw.first_key.clone().expect("first-start key printed");
    drop(gw);
    let out = run_binary(
        &data,
        &["keys", "create", "--label", "ci", "--scope", "read"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("scopes read"), "{text}");
    let out = run_binary(&data, &["keys", "create", "--scope", "root"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("root"));
    let out = run_binary(&data, &["--json", "keys", "list"]);
    let keys: Value = serde_json::from_slice(&out.stdout).unwrap();
    let scopes = |label: &str| {
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["label"] == label)
            .map(|k| k["scopes"].clone())
            .unwrap()
    };
    assert_eq!(scopes("first-start"), json!(["admin"]));
    assert_eq!(scopes("ci"), json!(["read"]));
    let id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == "ci")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = run_binary(&data, &["keys", "scope", &id, "--scope", "inference,read"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("inference,read"));
    // The only admin key keeps admin: nobody could manage the gateway otherwise.
    let first_id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == "first-start")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = run_binary(&data, &["keys", "scope", &first_id, "--scope", "read"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only admin key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // With a second admin it may drop it, and take it back.
    run_binary(&data, &["keys", "scope", &id, "--scope", "admin"]);
    let out = run_binary(&data, &["keys", "scope", &first_id, "--scope", "read"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run_binary(&data, &["keys", "scope", &first_id, "--scope", "admin"]);
    run_binary(&data, &["keys", "scope", &id, "--scope", "inference,read"]);
    // The first-start key manages the running gateway over MCP.
    let gw = Binary::start(&data, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = McpHttp::open(&gw.base, &first).await;
        let r = s.tool("omniroute_get_audit_log", json!({"limit": 3})).await;
        assert_ne!(r["result"]["isError"], true, "{r}");
    });
}

async fn raw(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let url = format!("{base}{path}");
    let mut req = match method {
        "GET" => client().get(url),
        _ => client().post(url).body(body.to_string()),
    };
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A page on another site, or one reached by DNS rebinding, gets nothing:
/// with keys required and with keys turned off.
async fn browser_attacks_are_refused(gw: &InProcess, key: &str) {
    let auth = format!("Bearer {key}");
    let chat = r#"{"model":"mock/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    let anthropic = r#"{"model":"mock/gpt-4o-mini","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#;
    let cases = [
        ("/v1/chat/completions", chat, "openai"),
        ("/v1/messages", anthropic, "anthropic"),
        (
            "/v1/responses",
            r#"{"model":"mock/gpt-4o-mini","input":"hi"}"#,
            "openai",
        ),
        (
            "/v1beta/models/mock/gpt-4o-mini:generateContent",
            r#"{"contents":[{"parts":[{"text":"hi"}]}]}"#,
            "gemini",
        ),
    ];
    for (path, body, shape) in cases {
        // A cross-site form or a no-preflight fetch sends text/plain.
        let (status, v) = raw(
            &gw.base,
            "POST",
            path,
            &[("authorization", &auth), ("content-type", "text/plain")],
            body,
        )
        .await;
        assert_eq!(status, 415, "{path}: {v}");
        assert!(message(&v).contains("application/json"), "{path}: {v}");
        match shape {
            "anthropic" => assert_eq!(v["type"], "error"),
            "gemini" => assert_eq!(v["error"]["status"], "INVALID_ARGUMENT"),
            _ => assert_eq!(v["error"]["code"], "unsupported_media_type"),
        }
        let (status, v) = raw(
            &gw.base,
            "POST",
            path,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
                ("origin", "http://evil.example"),
            ],
            body,
        )
        .await;
        assert_eq!(status, 403, "{path}: {v}");
        assert!(message(&v).contains("evil.example"), "{v}");
        let (status, v) = raw(
            &gw.base,
            "POST",
            path,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
                ("host", "evil.example:20128"),
            ],
            body,
        )
        .await;
        assert_eq!(status, 403, "{path}: {v}");
        assert!(message(&v).contains("server.allowed_hosts"), "{v}");
        // The same request from the gateway's own origin goes through.
        let origin = gw.base.clone();
        let (status, v) = raw(
            &gw.base,
            "POST",
            path,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
                ("origin", &origin),
            ],
            body,
        )
        .await;
        assert_eq!(status, 200, "{path}: {v}");
    }
    for path in [
        "/a2a",
        "/mcp",
        "/health",
        "/.well-known/agent-card.json",
        "/v1/models",
    ] {
        let (status, v) = raw(
            &gw.base,
            "GET",
            path,
            &[("authorization", &auth), ("host", "rebind.evil.example")],
            "",
        )
        .await;
        assert_eq!(status, 403, "{path}: {v}");
        let (status, _) = raw(
            &gw.base,
            "GET",
            path,
            &[("authorization", &auth), ("origin", "https://evil.example")],
            "",
        )
        .await;
        assert_eq!(status, 403, "{path}");
    }
    // A forwarded host is not echoed into the card.
    let (status, card) = raw(
        &gw.base,
        "GET",
        "/.well-known/agent-card.json",
        &[("x-forwarded-host", "evil.example")],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(!card.to_string().contains("evil.example"), "{card}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_guard_with_keys_required() {
    let up = FakeUpstream::start().await;
    let gw = InProcess::start(&config(&up.base_url())).await;
    browser_attacks_are_refused(&gw, INFERENCE).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_guard_with_no_auth() {
    let up = FakeUpstream::start().await;
    let gw = InProcess::start_with(&config(&up.base_url()), |s| s.require_api_key = false).await;
    browser_attacks_are_refused(&gw, "no-key-needed").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_hosts_and_origins_from_settings() {
    let up = FakeUpstream::start().await;
    let gw = InProcess::start_with(&config(&up.base_url()), |s| {
        s.allowed_hosts = vec!["gateway.lan".into()];
        s.allowed_origins = vec!["https://tools.example".into()];
    })
    .await;
    let auth = format!("Bearer {INFERENCE}");
    let (status, _) = raw(
        &gw.base,
        "GET",
        "/v1/models",
        &[("authorization", &auth), ("host", "gateway.lan:20128")],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = raw(
        &gw.base,
        "GET",
        "/v1/models",
        &[
            ("authorization", &auth),
            ("origin", "https://tools.example"),
        ],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let (status, card) = raw(
        &gw.base,
        "GET",
        "/.well-known/agent-card.json",
        &[("host", "gateway.lan:20128")],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        card["supportedInterfaces"][0]["url"],
        "http://gateway.lan:20128/a2a"
    );
    gw.stop().await;
}
