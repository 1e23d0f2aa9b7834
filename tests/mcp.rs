//! The MCP server: every tool through an in-process rmcp client over
//! `tokio::io::duplex` (structured content checked against the advertised
//! outputSchema, which must equal the checked-in `schemas/mcp-tools.json`),
//! the `/mcp` guard (Origin 403, key 401, local bridge token), and
//! `omniroute --mcp` over stdio: parse errors keep the session going, and
//! with a gateway running on the data dir it bridges to that gateway.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use omniroute::mcp::OmnirouteMcp;
use rmcp::model::{
    CallToolRequestParams, ClientConfig, GetPromptRequestParams, ReadResourceRequestParams,
};
use rmcp::{ClientHandler, ServiceExt};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::fake_upstream::FakeUpstream;
use support::schema_check::violations;
use support::{client, example_config, InProcess, CLIENT_KEY};

#[derive(Debug, Clone, Default)]
struct TestClient;

impl ClientHandler for TestClient {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::default()
    }
}

fn args(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_in_process_matches_its_output_schema() {
    let up = FakeUpstream::start().await;
    let gw = InProcess::start(&example_config(&up.base_url())).await;
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    let server = OmnirouteMcp::new(gw.gw.clone());
    let server_task = tokio::spawn(async move {
        server
            .serve(server_io)
            .await
            .unwrap()
            .waiting()
            .await
            .unwrap();
    });
    let mcp = TestClient.serve(client_io).await.unwrap();

    let tools = mcp.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 18);
    let checked_in: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schemas/mcp-tools.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let schema_of = |name: &str| -> Value {
        let listed = tools.iter().find(|t| t.name == name).unwrap();
        let listed = serde_json::to_value(listed).unwrap();
        let file = checked_in["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap();
        assert_eq!(&listed, file, "{name} differs from schemas/mcp-tools.json");
        listed["outputSchema"].clone()
    };

    let calls = [
        ("omniroute_get_health", json!({})),
        ("omniroute_list_providers", json!({"usable_only": true})),
        ("omniroute_list_models", json!({"provider": "mock"})),
        (
            "omniroute_route_request",
            json!({"model": "mock/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
        ),
        ("omniroute_cost_report", json!({"since": "1h"})),
        ("omniroute_get_audit_log", json!({"limit": 10})),
        ("omniroute_cache_stats", json!({"since": "1d"})),
        (
            "omniroute_cache_flush",
            json!({"combo": "mock/gpt-4o-mini"}),
        ),
        // The routing tools, in an order that exercises each one.
        (
            "omniroute_upsert_combo",
            json!({"combo": {"name": "fast", "models": ["mock/gpt-4o-mini"]}, "dry_run": true}),
        ),
        ("omniroute_list_combos", json!({})),
        (
            "omniroute_upsert_combo#save",
            json!({"combo": {"name": "fast", "models": ["mock/gpt-4o-mini"]}}),
        ),
        (
            "omniroute_set_routing_strategy",
            json!({"name": "fast", "strategy": "round-robin"}),
        ),
        ("omniroute_get_combo", json!({"name": "fast"})),
        ("omniroute_rollback_combo", json!({"name": "fast"})),
        ("omniroute_explain_route", json!({"model": "fast"})),
        ("omniroute_test_combo", json!({"name": "fast"})),
        (
            "omniroute_set_budget",
            json!({"scope": "global", "period": "day", "limit_usd": 5.0}),
        ),
        ("omniroute_check_quota", json!({})),
        ("omniroute_delete_combo", json!({"name": "fast"})),
    ];
    let mut results = std::collections::HashMap::new();
    for (key, a) in calls {
        let name = key.split('#').next().unwrap();
        let r = mcp
            .call_tool(CallToolRequestParams::new(name).with_arguments(args(a)))
            .await
            .unwrap();
        assert_ne!(r.is_error, Some(true), "{name}: {:?}", r.content);
        let content = r.structured_content.clone().expect(name);
        let schema = schema_of(name);
        assert!(schema.is_object(), "{name} has no outputSchema");
        let bad = violations(&schema, &content);
        assert!(bad.is_empty(), "{name}: {bad:#?}\n{content:#}");
        // The text content carries the same JSON for clients without structured output.
        let text = r.content[0].as_text().unwrap().text.clone();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), content);
        results.insert(key, content);
    }
    let providers = &results["omniroute_list_providers"]["providers"];
    assert_eq!(providers[0]["id"], "mock");
    assert_eq!(providers[0]["account_list"][0]["usable"], true);
    assert!(!providers.to_string().contains("upstream-secret"));
    assert_eq!(
        results["omniroute_list_models"]["models"][0]["id"],
        "mock/gpt-4o-mini"
    );
    let answer = &results["omniroute_route_request"];
    assert_eq!(answer["answer"], "echo: hi");
    assert_eq!(answer["route"]["provider"], "mock");
    // One call from route_request, one from test_combo.
    assert_eq!(up.calls("gpt-4o-mini"), 2);
    // The config apply wrote audit entries (provider, account, key).
    assert!(!results["omniroute_get_audit_log"]["entries"]
        .as_array()
        .unwrap()
        .is_empty());

    // Usage is written off the hot path; once flushed, health and cost see it.
    gw.gw.store.flush().await.unwrap();
    let health = mcp
        .call_tool(CallToolRequestParams::new("omniroute_get_health"))
        .await
        .unwrap()
        .structured_content
        .unwrap();
    let mock = &health["providers"][0];
    assert_eq!(
        (mock["id"].as_str(), mock["requests"].as_u64()),
        (Some("mock"), Some(1))
    );
    assert_eq!(mock["usable_accounts"], 1);
    assert_eq!(health["overhead"]["requests"], 1);
    let cost = mcp
        .call_tool(
            CallToolRequestParams::new("omniroute_cost_report")
                .with_arguments(args(json!({"since": "1h"}))),
        )
        .await
        .unwrap()
        .structured_content
        .unwrap();
    assert_eq!(cost["total_requests"], 1);
    assert_eq!(cost["by_model"][0]["group"], "mock/gpt-4o-mini");
    assert!(cost["by_day"][0]["group"].as_str().unwrap().len() == 10);

    // The routing tools did what they say.
    let dry = &results["omniroute_upsert_combo"];
    assert_eq!(
        (dry["saved"].as_bool(), dry["created"].as_bool()),
        (Some(false), Some(true))
    );
    let listed: Vec<&str> = results["omniroute_list_combos"]["combos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["combo"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["auto"], "a dry run saves nothing");
    assert_eq!(results["omniroute_upsert_combo#save"]["saved"], true);
    assert_eq!(
        results["omniroute_set_routing_strategy"]["diff"][0],
        "strategy: \"priority\" -> \"round-robin\""
    );
    assert_eq!(
        results["omniroute_get_combo"]["combo"]["strategy"],
        "round-robin"
    );
    assert_eq!(
        results["omniroute_get_combo"]["targets"][0],
        "mock/gpt-4o-mini"
    );
    assert_eq!(
        results["omniroute_rollback_combo"]["restored"]["strategy"],
        "priority"
    );
    let plan = &results["omniroute_explain_route"];
    assert_eq!(plan["combo"], "fast");
    assert_eq!(plan["targets"][0]["model"], "gpt-4o-mini");
    let test = &results["omniroute_test_combo"];
    assert_eq!(
        (test["ok"].as_u64(), test["failed"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(results["omniroute_set_budget"]["limit_usd"], 5.0);
    let quota = &results["omniroute_check_quota"];
    assert_eq!(quota["accounts"][0]["provider"], "mock");
    assert_eq!(quota["budgets"][0]["rule"]["limit_usd"], 5.0);
    assert_eq!(results["omniroute_delete_combo"]["name"], "fast");
    let gone = mcp
        .call_tool(
            CallToolRequestParams::new("omniroute_get_combo")
                .with_arguments(args(json!({"name": "fast"}))),
        )
        .await
        .unwrap();
    assert_eq!(gone.is_error, Some(true));
    assert!(
        gone.content[0]
            .as_text()
            .unwrap()
            .text
            .contains("not found"),
        "{gone:?}"
    );

    // Bad arguments: an isError result that names the problem; unknown tool: JSON-RPC error.
    let bad = mcp
        .call_tool(
            CallToolRequestParams::new("omniroute_route_request")
                .with_arguments(args(json!({"model": "mock/gpt-4o-mini", "messages": []}))),
        )
        .await
        .unwrap();
    assert_eq!(bad.is_error, Some(true));
    assert!(bad.content[0]
        .as_text()
        .unwrap()
        .text
        .contains("messages must not be empty"));
    let bad = mcp
        .call_tool(
            CallToolRequestParams::new("omniroute_route_request")
                .with_arguments(args(json!({"modle": "x"}))),
        )
        .await
        .unwrap();
    assert_eq!(bad.is_error, Some(true));
    assert!(
        bad.content[0].as_text().unwrap().text.contains("modle"),
        "{bad:?}"
    );
    let unknown = mcp
        .call_tool(CallToolRequestParams::new("omniroute_nope"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        unknown.contains("unknown tool") && unknown.contains("omniroute_get_health"),
        "{unknown}"
    );

    // Resources and prompts.
    let res = mcp
        .read_resource(ReadResourceRequestParams::new("omniroute://health"))
        .await
        .unwrap();
    let text = serde_json::to_value(&res.contents[0]).unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["status"],
        "ok"
    );
    let combo = mcp
        .read_resource(ReadResourceRequestParams::new("omniroute://combos/auto"))
        .await
        .unwrap();
    let text = serde_json::to_value(&combo.contents[0]).unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["builtin"],
        true
    );
    let missing = mcp
        .read_resource(ReadResourceRequestParams::new("omniroute://combos/fast"))
        .await
        .unwrap_err()
        .to_string();
    assert!(missing.contains("not found"), "{missing}");
    let templates = mcp.list_all_resource_templates().await.unwrap();
    assert_eq!(templates[0].uri_template, "omniroute://combos/{name}");
    let prompts = mcp.list_all_prompts().await.unwrap();
    assert_eq!(prompts.len(), 2);
    let p = mcp
        .get_prompt(
            GetPromptRequestParams::new("pick_model").with_arguments(args(
                json!({"task": "write unit tests", "max_output_price": "100"}),
            )),
        )
        .await
        .unwrap();
    let text = serde_json::to_value(&p.messages[0].content).unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains("write unit tests") && text.contains("mock/gpt-4o-mini"),
        "{text}"
    );
    assert!(
        text.contains("- auto (strategy auto"),
        "the prompt lists combos: {text}"
    );

    mcp.cancel().await.unwrap();
    server_task.await.unwrap();
    gw.stop().await;
}

async fn post_initialize(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}}})
            .to_string(),
        );
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_mcp_checks_origin_and_key() {
    let up = FakeUpstream::start().await;
    let gw = InProcess::start(&example_config(&up.base_url())).await;
    let url = gw.url("/mcp");
    let bearer = format!("Bearer {CLIENT_KEY}");

    let r = post_initialize(
        &url,
        &[
            ("authorization", &bearer),
            ("origin", "http://evil.example"),
        ],
    )
    .await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("evil.example"));
    let r = post_initialize(&url, &[]).await;
    assert_eq!(r.status(), 401);
    let r = post_initialize(&url, &[("x-api-key", "sk-wrong-key")]).await;
    assert_eq!(r.status(), 401);

    let r = post_initialize(
        &url,
        &[
            ("authorization", &bearer),
            ("origin", "http://localhost:5173"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("mcp-session-id").is_some());
    let r = post_initialize(&url, &[("x-api-key", CLIENT_KEY)]).await;
    assert_eq!(r.status(), 200);

    // The local bridge token from gateway.json (owner-only file) is accepted too.
    let path = gw.dir.path().join("gateway.json");
    let info: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let token = format!("Bearer {}", info["mcp_token"].as_str().unwrap());
    let r = post_initialize(&url, &[("authorization", &token)]).await;
    assert_eq!(r.status(), 200);
    gw.stop().await;
}

/// Run `omniroute --data-dir DIR --mcp`, send `lines`, and collect the JSON
/// lines it writes until `want` responses with an id arrived.
fn stdio_session(data_dir: &std::path::Path, lines: &[String], want: usize) -> Vec<Value> {
    let mut child = Command::new(support::binary_path())
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--mcp", "--log-level", "warn"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut out = Vec::new();
    let mut answered = 0;
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        // Wait for the answer to a request before sending what follows it.
        let expects = serde_json::from_str::<Value>(line).map_or(true, |v| v.get("id").is_some());
        if !expects {
            continue;
        }
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("no answer on stdout");
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not JSON on stdout: {line:?}: {e}"));
        answered += 1;
        out.push(v);
    }
    assert_eq!(answered, want);
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success());
    out
}

fn session_lines() -> Vec<String> {
    vec![
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#.to_string(),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string(),
        "this is { not json".to_string(),
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"omniroute_get_health","arguments":{}}}"#.to_string(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_bridges_to_the_running_gateway_and_survives_bad_json() {
    let up = FakeUpstream::start().await;
    let gw = InProcess::start(&example_config(&up.base_url())).await;
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .json(
            &json!({"model": "mock/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let dir = gw.dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || stdio_session(&dir, &session_lines(), 3))
        .await
        .unwrap();
    assert_eq!(out[0]["result"]["serverInfo"]["name"], "omniroute");
    assert_eq!(out[1]["error"]["code"], -32700);
    let health = &out[2]["result"]["structuredContent"];
    // The running gateway (this test process) answered, with its live figures.
    assert_eq!(health["pid"], std::process::id());
    assert_eq!(health["overhead"]["requests"], 1);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_in_process_without_a_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || stdio_session(&data, &session_lines(), 3))
        .await
        .unwrap();
    assert_eq!(out[0]["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(out[1]["error"]["code"], -32700);
    assert!(out[1]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not JSON"));
    let health = &out[2]["result"]["structuredContent"];
    assert_ne!(health["pid"], std::process::id());
    assert_eq!(health["status"], "ok");
}

/// Malformed posts to /mcp get JSON-RPC errors (not 415 plain text).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_mcp_answers_malformed_requests_with_jsonrpc_errors() {
    let up = FakeUpstream::start().await;
    let gw = InProcess::start(&example_config(&up.base_url())).await;
    let post = |body: &'static str| {
        client()
            .post(gw.url("/mcp"))
            .header("x-api-key", CLIENT_KEY)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .body(body)
            .send()
    };
    let r = post("{not json").await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["error"]["code"].as_i64(), &v["id"]),
        (Some(-32700), &Value::Null)
    );
    let r = post(r#"{"jsonrpc":"2.0","id":7,"method":"tools/list","params":[]}"#)
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["error"]["code"].as_i64(), &v["id"]),
        (Some(-32602), &json!(7))
    );
    let r = post(r#"{"jsonrpc":"2.0","id":"c","method":"tools/call","params":{"arguments":{}}}"#)
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert_eq!(v["id"], "c");
    gw.stop().await;
}

/// One SSE event (name, data) at a time from a legacy `/sse` stream.
struct SseReader {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

impl SseReader {
    async fn next(&mut self) -> (String, String) {
        use futures::StreamExt;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = Vec::new();
                for line in frame.lines() {
                    if let Some(n) = line.strip_prefix("event:") {
                        name = n.trim().to_string();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push(d.trim_start().to_string());
                    }
                }
                if !data.is_empty() {
                    return (name, data.join("\n"));
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("an SSE event")
                .expect("the stream is open")
                .unwrap();
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next `message` event's JSON.
    async fn message(&mut self) -> Value {
        let (name, data) = self.next().await;
        assert_eq!(name, "message");
        serde_json::from_str(&data).unwrap()
    }
}

/// The legacy HTTP+SSE transport (2024-11-05): GET /sse names the post
/// endpoint, answers arrive on the stream; same guard and tools as /mcp;
/// another key cannot post into the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_sse_transport_serves_the_same_tools() {
    use futures::StreamExt;
    let up = FakeUpstream::start().await;
    let cfg = example_config(&up.base_url()).replace(
        r#"api_keys = [{ key = "sk-test-123", scopes = ["admin"] }]"#,
        r#"api_keys = [{ key = "sk-test-123", scopes = ["admin"] }, { key = "sk-other-456", scopes = ["admin"] }]"#,
    );
    let gw = InProcess::start(&cfg).await;
    let sse = gw.url("/sse");
    assert_eq!(client().get(&sse).send().await.unwrap().status(), 401);
    let r = client()
        .get(&sse)
        .header("x-api-key", CLIENT_KEY)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client()
        .get(&sse)
        .header("x-api-key", CLIENT_KEY)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut events = SseReader {
        stream: r.bytes_stream().boxed(),
        buf: String::new(),
    };
    let (name, endpoint) = events.next().await;
    assert_eq!(name, "endpoint");
    assert!(endpoint.starts_with("/messages?sessionId="), "{endpoint}");
    let post_url = gw.url(&endpoint);
    let post = |key: &'static str, body: Value| {
        client()
            .post(&post_url)
            .header("x-api-key", key)
            .json(&body)
            .send()
    };
    let r = post(
        CLIENT_KEY,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {},
            "clientInfo": {"name": "legacy", "version": "1"}}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    let init = events.message().await;
    assert_eq!(init["id"], 1);
    assert_eq!(init["result"]["protocolVersion"], "2024-11-05");
    assert_eq!(init["result"]["serverInfo"]["name"], "omniroute");
    let r = post(
        CLIENT_KEY,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    post(
        CLIENT_KEY,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await
    .unwrap();
    let list = events.message().await;
    let tools = list["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 18);
    assert!(!list.to_string().contains("uint32"));
    post(
        CLIENT_KEY,
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
               "params": {"name": "omniroute_get_health", "arguments": {}}}),
    )
    .await
    .unwrap();
    let call = events.message().await;
    assert_eq!(call["id"], 3);
    assert_eq!(
        call["result"]["structuredContent"]["status"], "ok",
        "{call}"
    );
    // Malformed posts get JSON-RPC errors; another key's post is refused.
    let r = client()
        .post(&post_url)
        .header("x-api-key", CLIENT_KEY)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = post(
        "sk-other-456",
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    // The Anthropic alias on the same path is untouched.
    let r = client()
        .post(gw.url("/messages"))
        .header("x-api-key", CLIENT_KEY)
        .json(&json!({"model": "mock/gpt-4o-mini", "max_tokens": 8,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(events);
    gw.stop().await;
}
