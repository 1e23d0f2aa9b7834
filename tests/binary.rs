//! The real `omniroute` binary: startup errors, first start, the documented
//! config as is, SIGTERM drain and SIGKILL durability.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::fake_upstream::FakeUpstream;
use support::{client, example_config, run_binary, Binary, CLIENT_KEY};

fn write_config(dir: &std::path::Path, text: &str) -> String {
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn unknown_config_key_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = example_config("http://127.0.0.1:9/v1").replace("tier = ", "teir = ");
    let cfg = write_config(dir.path(), &text);
    let out = run_binary(
        &dir.path().join("data"),
        &["--config", &cfg, "providers", "list"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("teir") && err.contains("line 10") && err.contains("gateway.toml"),
        "{err}"
    );
}

#[test]
fn bad_toml_is_reported_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[server]\nport = 20128\napi_keys = [\"unterminated]\n",
    );
    let out = run_binary(&dir.path().join("data"), &["--config", &cfg]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(run_binary(&data, &["keys", "list"]).status.success());
    let conn = rusqlite::Connection::open(data.join("omniroute.sqlite")).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let out = run_binary(&data, &["keys", "list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("schema version 999") && err.contains("newer"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let junk = b"this is not sqlite, but somebody's notes ".repeat(200);
    std::fs::write(data.join("omniroute.sqlite"), &junk).unwrap();
    let out = run_binary(&data, &["keys", "list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("omniroute.sqlite") && err.contains("not a database"),
        "{err}"
    );
    assert_eq!(std::fs::read(data.join("omniroute.sqlite")).unwrap(), junk);
}

#[test]
fn cli_manages_keys_accounts_and_providers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = run_binary(
        &data,
        &[
            "providers",
            "add",
            "local-llm",
            "--format",
            "openai",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--api-key",
            "k-1",
            "--models",
            "a,b",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_binary(
        &data,
        &[
            "accounts",
            "add",
            "local-llm",
            "--label",
            "second",
            "--api-key-env",
            "SOME_VAR",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_binary(
        &data,
        &["--json", "accounts", "list", "--provider", "local-llm"],
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[1]["problem"], "env variable SOME_VAR is not set");
    let out = run_binary(&data, &["--json", "providers", "list"]);
    let providers: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(providers.as_array().unwrap().len() >= 31);
    let custom = providers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "local-llm")
        .unwrap();
    assert_eq!(custom["usable"], true);
    assert_eq!(custom["origin"], "custom");
    let out = run_binary(&data, &["--json", "keys", "create", "--label", "ci"]);
    let key: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(key["key"].as_str().unwrap().starts_with("sk-omni-"));
    let out = run_binary(&data, &["keys", "revoke", key["id"].as_str().unwrap()]);
    assert!(out.status.success());
    let out = run_binary(&data, &["--json", "keys", "list"]);
    let keys: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(keys[0]["revoked_ms"].is_number());
    let id = list[1]["id"].as_str().unwrap();
    assert!(run_binary(&data, &["accounts", "remove", id])
        .status
        .success());
    let out = run_binary(&data, &["usage", "--since", "7d", "--by", "model"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("usage since 7d"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_config_works_as_is_and_first_start_prints_a_key() {
    // The file names port 9100 for the upstream: use it when free.
    let up = match tokio::net::TcpListener::bind("127.0.0.1:9100").await {
        Ok(l) => FakeUpstream::serve(l),
        Err(_) => FakeUpstream::start().await,
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &example_config(&up.base_url()));
    let data = dir.path().join("data");
    let gw = Binary::start(&data, &["--config", &cfg]);
    let first = gw.first_key.clone().expect("first start prints a key");
    assert!(first.starts_with("sk-omni-"));
    for key in [first.as_str(), CLIENT_KEY] {
        let r = client()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&json!({"model": "mock/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let wal: String = rusqlite::Connection::open(data.join("omniroute.sqlite"))
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(wal, "wal");
    drop(gw);
    // a second start applies the same file again and prints no new key
    let gw = Binary::start(&data, &["--config", &cfg]);
    assert!(gw.first_key.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_streams_then_exits_cleanly() {
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &example_config(&up.base_url()));
    let data = dir.path().join("data");
    let mut gw = Binary::start(&data, &["--config", &cfg]);
    let mut resp = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .json(&json!({"model": "mock/slow-stream", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let mut text = String::from_utf8(resp.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    gw.signal("TERM");
    // new connections are refused while the stream in flight goes on to its end
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(client().get(gw.url("/health")).send().await.is_err());
    while let Some(chunk) = resp.chunk().await.unwrap() {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let status = tokio::task::spawn_blocking(move || {
        let s = gw.wait(Duration::from_secs(10));
        (s, gw.stderr())
    })
    .await
    .unwrap();
    assert!(status.0.success(), "{}", status.1);
    // the usage row was flushed and the WAL checkpointed into the main file
    let conn = rusqlite::Connection::open(data.join("omniroute.sqlite")).unwrap();
    let (n, outcome): (i64, String) = conn
        .query_row("SELECT COUNT(*), MAX(outcome) FROM usage_events", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((n, outcome.as_str()), (1, "ok"));
    let wal_len = std::fs::metadata(data.join("omniroute.sqlite-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert_eq!(wal_len, 0, "WAL checkpointed and truncated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_leaves_a_database_that_reopens_intact() {
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &example_config(&up.base_url()));
    let data = dir.path().join("data");
    let gw = Binary::start(&data, &["--config", &cfg]);
    let url = gw.url("/v1/chat/completions");
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut load = Vec::new();
    for _ in 0..8 {
        let url = url.clone();
        let answered = answered.clone();
        load.push(tokio::spawn(async move {
            let c = client();
            for _ in 0..200 {
                let r = c
                    .post(&url)
                    .bearer_auth(CLIENT_KEY)
                    .json(&json!({"model": "mock/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}))
                    .send()
                    .await;
                if r.is_err() {
                    break;
                }
                answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    // Under load, however slow the machine: kill once rows have had time to commit.
    let start = std::time::Instant::now();
    while answered.load(std::sync::atomic::Ordering::Relaxed) < 50
        && start.elapsed() < Duration::from_secs(20)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    gw.signal("KILL");
    for l in load {
        l.await.unwrap();
    }
    drop(gw);
    let conn = rusqlite::Connection::open(data.join("omniroute.sqlite")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM usage_events", [], |r| r.get(0))
        .unwrap();
    assert!(rows > 0, "some usage rows were committed before the kill");
    let incomplete: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM usage_events WHERE request_id = '' OR model IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(incomplete, 0);
    drop(conn);
    // and the gateway starts again on it with everything in place
    let gw = Binary::start(&data, &["--config", &cfg]);
    let health: Value = client()
        .get(gw.url("/health"))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["store"]["ok"], true);
    let conn = rusqlite::Connection::open(data.join("omniroute.sqlite")).unwrap();
    let after: i64 = conn
        .query_row("SELECT COUNT(*) FROM usage_events", [], |r| r.get(0))
        .unwrap();
    assert!(after >= rows);
}

#[test]
fn cli_edits_combos_explains_routes_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = write_config(dir.path(), &example_config("http://127.0.0.1:9/v1"));
    let run = |args: &[&str]| {
        let mut all = vec!["--config", cfg.as_str()];
        all.extend_from_slice(args);
        let out = run_binary(&data, &all);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&[
        "combos",
        "set",
        "coding",
        "--models",
        "mock/a,mock/b",
        "--strategy",
        "weighted",
    ]);
    run(&["combos", "set", "coding", "--strategy", "p2c"]);
    let shown: Value = serde_json::from_str(&run(&["combos", "show", "coding"])).unwrap();
    assert_eq!(shown["combo"]["strategy"], "p2c");
    assert_eq!(shown["version"], 2);
    let same = run(&["combos", "set", "coding"]);
    assert!(same.contains("unchanged"), "{same}");
    let dry = run(&[
        "combos",
        "set",
        "coding",
        "--strategy",
        "random",
        "--dry-run",
    ]);
    assert!(
        dry.contains("\"p2c\" -> \"random\"") && dry.contains("dry run"),
        "{dry}"
    );
    let bad = run_binary(&data, &["combos", "set", "coding", "--strategy", "nope"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("round-robin"));
    run(&["combos", "rollback", "coding"]);
    let shown: Value = serde_json::from_str(&run(&["combos", "show", "coding"])).unwrap();
    assert_eq!(shown["combo"]["strategy"], "weighted");
    let explained: Value =
        serde_json::from_str(&run(&["--json", "route", "explain", "coding"])).unwrap();
    assert_eq!(explained["targets"].as_array().unwrap().len(), 2);
    assert_eq!(explained["strategy"], "weighted");
    let list = run(&["combos", "list"]);
    assert!(list.contains("coding") && list.contains("auto"));
    run(&["budgets", "set", "tier", "api-key", "--usd", "5"]);
    let quota: Value = serde_json::from_str(&run(&["--json", "quota"])).unwrap();
    assert_eq!(quota["budgets"][0]["rule"]["scope_id"], "api-key");
}

/// `[store.retention]` with short limits: responses, usage rows, audit
/// entries (but the newest of each entity) and A2A tasks are deleted by the
/// gateway's background sweep once older than their limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_rows_past_their_limit() {
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}\n[store.retention]\nresponses = \"2s\"\nusage = \"2s\"\naudit = \"2s\"\ntasks = \"2s\"\nsweep_every = \"200ms\"\n",
        example_config(&up.base_url())
    );
    let cfg = write_config(dir.path(), &text);
    let data = dir.path().join("data");
    let gw = Binary::start(&data, &["--config", &cfg]);
    // Two changes to one combo (two audit entries), from the CLI.
    for strategy in ["p2c", "random"] {
        let out = run_binary(
            &data,
            &[
                "combos",
                "set",
                "coding",
                "--models",
                "mock/gpt-4o-mini",
                "--strategy",
                strategy,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let post = |path: &str, body: Value| {
        client()
            .post(gw.url(path))
            .bearer_auth(CLIENT_KEY)
            .header("A2A-Version", "1.0")
            .json(&body)
            .send()
    };
    let r = post(
        "/v1/chat/completions",
        json!({"model": "mock/gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let first: Value = post(
        "/v1/responses",
        json!({"model": "mock/gpt-4o-mini", "input": "hi"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let second: Value = post(
        "/v1/responses",
        json!({"model": "mock/gpt-4o-mini", "input": "again", "previous_response_id": first["id"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let task: Value = post(
        "/a2a",
        json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage",
        "params": {"message": {"messageId": "m-1", "role": "ROLE_USER",
            "parts": [{"text": "health"}], "metadata": {"skill": "health"}}}}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(task["result"]["task"]["id"].is_string(), "{task}");

    let db = rusqlite::Connection::open(data.join("omniroute.sqlite")).unwrap();
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    let counts = || {
        (
            count("SELECT COUNT(*) FROM responses"),
            count("SELECT COUNT(*) FROM usage_events"),
            count("SELECT COUNT(*) FROM a2a_tasks"),
            count("SELECT COUNT(*) FROM audit_log WHERE entity = 'combo' AND entity_id = 'coding'"),
        )
    };
    // Written (a sweep may have run, but nothing is 2 s old yet).
    let (responses, usage, tasks, audit) = counts();
    assert!(
        responses >= 1 && usage >= 3 && tasks == 1 && audit >= 1,
        "{:?}",
        counts()
    );
    let audit_kinds = count("SELECT COUNT(DISTINCT entity || '/' || entity_id) FROM audit_log");
    let newest_combo_change: String = db
        .query_row(
            "SELECT after FROM audit_log WHERE entity = 'combo' AND entity_id = 'coding' ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(newest_combo_change.contains("random"));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while counts() != (0, 0, 0, 1) {
        assert!(
            std::time::Instant::now() < deadline,
            "not swept: {:?}",
            counts()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // One entry per entity is left: the newest, so a rollback still has its before-image.
    assert_eq!(count("SELECT COUNT(*) FROM audit_log"), audit_kinds);
    let left: String = db
        .query_row(
            "SELECT after FROM audit_log WHERE entity = 'combo' AND entity_id = 'coding'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, newest_combo_change);
    // The deleted conversation is gone for its follow-ups too.
    let r = post(
        "/v1/responses",
        json!({"model": "mock/gpt-4o-mini", "input": "and?", "previous_response_id": second["id"]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    assert!(gw
        .stderr()
        .contains("retention: deleted rows past their limit"));
}
