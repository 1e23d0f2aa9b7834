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

fn run(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    support::run_binary(data, args)
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_deleted_or_replaced_secret_key_refuses_to_start_and_says_how_to_recover() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = write_config(dir.path(), &example_config("http://127.0.0.1:9/v1"));
    let ok = run(&data, &["--config", &cfg, "accounts", "list"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let key = data.join("secret.key");
    std::fs::remove_file(&key).unwrap();
    let refused = run(&data, &["accounts", "list"]);
    assert!(!refused.status.success());
    let e = stderr(&refused);
    assert!(
        e.contains("secret.key is missing") && e.contains("omniroute secrets reset --yes"),
        "{e}"
    );
    assert!(!key.exists(), "a new key was made in silence");
    // The gateway itself refuses too.
    let refused = run(&data, &["--port", "0"]);
    assert!(!refused.status.success());
    std::fs::write(&key, [7u8; 32]).unwrap();
    let e = stderr(&run(&data, &["accounts", "list"]));
    assert!(
        e.contains("does not match") && e.contains("secrets reset"),
        "{e}"
    );
    let no = run(&data, &["secrets", "reset"]);
    assert!(!no.status.success() && stderr(&no).contains("--yes"));
    let reset = run(&data, &["secrets", "reset", "--yes"]);
    assert!(reset.status.success(), "{}", stderr(&reset));
    assert!(String::from_utf8_lossy(&reset.stdout).contains("1 stored secret(s) dropped"));
    let list = run(&data, &["--json", "accounts", "list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("no key"), "the account stays, marked: {text}");
}

#[test]
fn a_second_gateway_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = Binary::start(&data, &[]);
    let runtime = data.join("gateway.json");
    for _ in 0..100 {
        if runtime.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = run(&data, &["--port", "0"]);
    assert!(!second.status.success());
    let e = stderr(&second);
    assert!(e.contains(&format!("pid {}", first.child.id())), "{e}");
    assert!(
        data.join("gateway.json").exists(),
        "the first gateway's runtime file survived"
    );
    // The CLI still works beside the running gateway.
    assert!(run(&data, &["keys", "list"]).status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_streams_past_the_grace_period_cleanly_and_records_them() {
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = write_config(
        dir.path(),
        &example_config(&up.base_url())
            .replace("port = 20128", "port = 20128\nshutdown_grace = \"1s\""),
    );
    let mut gw = Binary::start(&data, &["--config", &cfg]);
    let mut streams = Vec::new();
    for _ in 0..10 {
        let r = client()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(CLIENT_KEY)
            .json(&chat("mock/long-stream", true))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        streams.push(tokio::spawn(async move { r.text().await }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.signal("TERM");
    for s in streams {
        let body = tokio::time::timeout(Duration::from_secs(10), s)
            .await
            .expect("stream did not end")
            .unwrap()
            .expect("the body ended cleanly, not with a reset");
        let last = body
            .trim_end()
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        assert!(last.starts_with("data: {\"error\""), "last event: {last}");
        assert!(last.contains("shutting down"), "{last}");
    }
    let status = gw.wait(Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    let log = gw.stderr();
    assert!(log.contains("streams_cut=10"), "{log}");
    let conn = rusqlite::Connection::open(data.join("omniroute.sqlite")).unwrap();
    let cut: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM usage_events WHERE outcome = 'cut'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(cut, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_keeps_rows_in_memory_reports_degraded_and_loses_none() {
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let plain = example_config(&up.base_url());
    let cfg = write_config(dir.path(), &plain);
    // A first run makes the database; its size then becomes nearly the cap.
    let mut gw = Binary::start(&data, &["--config", &cfg]);
    gw.signal("TERM");
    assert!(gw.wait(Duration::from_secs(10)).success());
    let size = std::fs::metadata(data.join("omniroute.sqlite"))
        .unwrap()
        .len();
    let capped_path = dir.path().join("capped.toml");
    std::fs::write(
        &capped_path,
        format!("{plain}\n[store]\nmax_db_bytes = {}\n", size + 2 * 4096),
    )
    .unwrap();
    let capped = capped_path.display().to_string();
    let mut gw = Binary::start(&data, &["--config", &capped]);
    const N: usize = 300;
    for _ in 0..N {
        let r = client()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(CLIENT_KEY)
            .json(&chat("mock/gpt-4o-mini", false))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "requests keep being served");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = client()
        .get(gw.url("/health"))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let h: Value = r.json().await.unwrap();
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["store"]["writes_failing"], true, "{h}");
    assert!(h["store"]["pending_rows"].as_u64().unwrap() > 0, "{h}");
    assert!(
        h["store"]["error"]
            .as_str()
            .unwrap()
            .contains("omniroute.sqlite"),
        "{h}"
    );
    gw.signal("TERM");
    assert!(gw.wait(Duration::from_secs(15)).success());
    let log = gw.stderr();
    assert_eq!(
        log.matches("cannot write usage rows").count(),
        1,
        "logged once per episode: {log}"
    );
    assert!(data.join("usage-spill.jsonl").exists());
    // Without the cap the next start takes every row back.
    let mut gw = Binary::start(&data, &["--config", &cfg]);
    gw.signal("TERM");
    assert!(gw.wait(Duration::from_secs(10)).success());
    assert!(!data.join("usage-spill.jsonl").exists(), "{}", gw.stderr());
    let conn = rusqlite::Connection::open(data.join("omniroute.sqlite")).unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM usage_events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows as usize, N, "every usage row was kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_combo_cycle_in_the_config_says_cycle() {
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let text = format!(
        "{}\n[[combos]]\nname = \"a\"\nmodels = [\"b\"]\n[[combos]]\nname = \"b\"\nmodels = [\"mock/gpt-4o-mini\", \"a\"]\n",
        example_config(&up.base_url())
    );
    let cfg = write_config(dir.path(), &text);
    let out = run(&data, &["--config", &cfg, "combos", "list"]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("cycle") || e.contains("refers to itself"), "{e}");
    assert!(!e.contains("unknown combo"), "{e}");
    // Referring forward to a combo defined later in the file is fine.
    let text = format!(
        "{}\n[[combos]]\nname = \"outer\"\nmodels = [\"inner\"]\n[[combos]]\nname = \"inner\"\nmodels = [\"mock/gpt-4o-mini\"]\n",
        example_config(&up.base_url())
    );
    let cfg = write_config(dir.path(), &text);
    let out = run(&data, &["--config", &cfg, "combos", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_read_only_database_error_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(run(&data, &["keys", "list"]).status.success());
    let db = data.join("omniroute.sqlite");
    let mut perms = std::fs::metadata(&db).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&db, perms).unwrap();
    let out = run(&data, &["keys", "create", "--label", "x"]);
    let e = stderr(&out);
    if nix_is_root() {
        // root writes through a read-only mode bit: nothing to check here.
        return;
    }
    assert!(!out.status.success());
    assert!(e.contains("omniroute.sqlite"), "{e}");
}

fn nix_is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn provider_base_urls_cannot_reach_metadata_or_private_networks_without_a_rule() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let meta = example_config("http://169.254.169.254/latest/v1");
    let cfg = write_config(dir.path(), &meta);
    let out = run(&data, &["--config", &cfg, "providers", "list"]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains("169.254.169.254")
            && e.contains("link-local")
            && e.contains("allowed_upstreams"),
        "{e}"
    );
    for url in [
        "http://metadata.google.internal/v1",
        "http://[fd00::1]:8080/v1",
        "http://192.168.1.20:1234/v1",
    ] {
        let out = run(
            &data,
            &[
                "providers",
                "add",
                "lan",
                "--format",
                "openai",
                "--base-url",
                url,
            ],
        );
        assert!(!out.status.success(), "{url}");
        assert!(
            stderr(&out).contains("refused unless server.allowed_upstreams"),
            "{url}: {}",
            stderr(&out)
        );
    }
    // Loopback (local model servers) needs no rule; a LAN box does, and then works.
    let out = run(
        &data,
        &[
            "providers",
            "add",
            "local",
            "--format",
            "openai",
            "--base-url",
            "http://127.0.0.1:11434/v1",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let allowed = example_config("http://192.168.1.20:1234/v1").replace(
        "port = 20128",
        "port = 20128\nallowed_upstreams = [\"192.168.1.0/24\"]",
    );
    let cfg = write_config(dir.path(), &allowed);
    let out = run(&data, &["--config", &cfg, "providers", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Without the rule, the stored provider is kept but unusable, and says why.
    let out = run(&data, &["--json", "accounts", "list", "--provider", "mock"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("base URL refused") && text.contains("private"),
        "{text}"
    );
}
