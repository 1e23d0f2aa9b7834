//! Secrets that never leak and faults that never lose or hide work, through
//! the real binary or an in-process gateway over real sockets: an upstream
//! that echoes its key, an upstream answering 200 with HTML, a stream whose
//! first event is an error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::fake_upstream::FakeUpstream;
use support::{client, example_config, Binary, InProcess, CLIENT_KEY};

const UPSTREAM_SECRET: &str = "upstream-secret";

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

fn write_config(dir: &std::path::Path, text: &str) -> String {
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

async fn mcp_tool(base: &str, name: &str) -> String {
    let url = format!("{base}/mcp");
    let post = |body: Value, session: Option<String>| {
        let mut r = client()
            .post(&url)
            .bearer_auth(CLIENT_KEY)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .body(body.to_string());
        if let Some(s) = session {
            r = r.header("mcp-session-id", s);
        }
        r.send()
    };
    let init = post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
        None,
    )
    .await
    .unwrap();
    let sid = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let _ = init.text().await;
    let _ = post(
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        Some(sid.clone()),
    )
    .await
    .unwrap();
    post(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": {}}}),
        Some(sid),
    )
    .await
    .unwrap()
    .text()
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_echoes_its_key_leaks_it_nowhere() {
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = write_config(dir.path(), &example_config(&up.base_url()));
    let gw = Binary::start(&data, &["--config", &cfg, "--log-level", "trace"]);
    let mut answers = Vec::new();
    for stream in [false, true] {
        let r = client()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(CLIENT_KEY)
            .json(&chat("mock/echo-key", stream))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error() || r.status().is_server_error());
        answers.push(r.text().await.unwrap());
    }
    // The upstream really did echo it: the test would be empty otherwise.
    assert!(up.last_auth().contains(UPSTREAM_SECRET));
    assert!(
        answers[0].contains("Incorrect API key provided"),
        "{}",
        answers[0]
    );
    let mut seen = answers.clone();
    for key in [None, Some(CLIENT_KEY)] {
        let mut req = client().get(gw.url("/health"));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        seen.push(req.send().await.unwrap().text().await.unwrap());
    }
    assert!(
        seen[2].contains("\"status\"") && !seen[2].contains("mock"),
        "open health: {}",
        seen[2]
    );
    assert!(seen[3].contains("last_error"), "{}", seen[3]);
    for tool in [
        "omniroute_get_health",
        "omniroute_check_quota",
        "omniroute_list_providers",
    ] {
        seen.push(mcp_tool(&gw.base, tool).await);
    }
    for text in &seen {
        assert!(
            !text.contains(UPSTREAM_SECRET),
            "secret in an answer: {text}"
        );
    }
    // The usage table and the trace log.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let conn = rusqlite::Connection::open(data.join("omniroute.sqlite")).unwrap();
    let errors: Vec<String> = conn
        .prepare("SELECT COALESCE(error, '') FROM usage_events")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("[REDACTED]")),
        "{errors:?}"
    );
    assert!(
        errors.iter().all(|e| !e.contains(UPSTREAM_SECRET)),
        "{errors:?}"
    );
    drop(conn);
    // Nowhere in the database or its WAL, in any table (the account's key is
    // stored encrypted, so its plain text must not appear at all).
    for file in ["omniroute.sqlite", "omniroute.sqlite-wal"] {
        let bytes = std::fs::read(data.join(file)).unwrap_or_default();
        assert!(
            !bytes
                .windows(UPSTREAM_SECRET.len())
                .any(|w| w == UPSTREAM_SECRET.as_bytes()),
            "secret in {file}"
        );
    }
    drop(gw);
    let log = std::fs::read_to_string(data.with_extension("stderr.log")).unwrap();
    assert!(
        log.contains("upstream attempt failed"),
        "the trace log was written"
    );
    assert!(!log.contains(UPSTREAM_SECRET), "secret in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_with_html_is_a_failure_that_falls_back_and_trips_the_breaker() {
    let up = FakeUpstream::start().await;
    let cfg = format!(
        "{}\n[[combos]]\nname = \"portal\"\nmodels = [\"mock/html-200\", \"mock/gpt-4o-mini\"]\n",
        example_config(&up.base_url())
    );
    let gw = InProcess::start(&cfg).await;
    for i in 0..20 {
        let stream = i % 2 == 1;
        let r = client()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(CLIENT_KEY)
            .json(&chat("portal", stream))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(
            text.contains("echo: hi") && !text.contains("<html"),
            "{text}"
        );
    }
    let html_calls = up.calls("html-200");
    assert!(
        html_calls < 20,
        "the breaker never opened: {html_calls} calls"
    );
    // And straight to the target: a 502 that says what came back.
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .json(&chat("mock/html-200", false))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_server_error());
    let v: Value = r.json().await.unwrap();
    let m = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        m.contains("text/html") || m.contains("circuit breaker"),
        "{m}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_stream_whose_first_event_is_an_error_falls_back() {
    let up = FakeUpstream::start().await;
    let cfg = format!(
        "{}\n[[combos]]\nname = \"shaky\"\nmodels = [\"mock/error-first\", \"mock/gpt-4o-mini\"]\n",
        example_config(&up.base_url())
    );
    let gw = InProcess::start(&cfg).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let url = gw.url("/v1/chat/completions");
        tasks.push(tokio::spawn(async move {
            let r = client()
                .post(url)
                .bearer_auth(CLIENT_KEY)
                .json(&chat("shaky", true))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }));
    }
    for t in tasks {
        let (status, text) = t.await.unwrap();
        assert_eq!(status, 200);
        assert!(
            text.contains("echo") && !text.contains("server had an error"),
            "{text}"
        );
        assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    }
    assert!(up.calls("error-first") >= 1);
    gw.stop().await;
}
