//! The answer cache and idempotency through the official OpenAI and
//! Anthropic Python SDKs against the real binary (installed by
//! scripts/test.sh; skipped without OMNIROUTE_PYTHON unless
//! OMNIROUTE_REQUIRE_SDK is set).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::time::Duration;
use support::fake_upstream::FakeUpstream;
use support::{sdk_python, Binary, CLIENT_KEY};

const KEY_B: &str = "sk-cache-sdk-key-b";

fn config(base_url: &str) -> String {
    format!(
        r#"[server]
api_keys = [{{ key = "{CLIENT_KEY}", scopes = ["admin"] }}, "{KEY_B}"]

[[providers]]
id = "mock"
format = "openai"
base_url = "{base_url}"
api_key = "upstream-secret"
models = ["gpt-4o-mini", "text-embedding-fake"]

[[combos]]
name = "embed"
models = ["mock/text-embedding-fake"]

[[combos]]
name = "faq"
models = ["mock/gpt-4o-mini"]
cache = {{ semantic = {{ embedding_model = "embed", threshold = 0.9 }} }}
"#
    )
}

fn start(data: &Path, cfg: &Path) -> Binary {
    Binary::start(data, &["--config", cfg.to_str().unwrap()])
}

async fn script(python: &str, gw: &Binary, up: &FakeUpstream, name: &str, phase: &str) {
    let path = format!("{}/tests/python/{name}", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new(python)
        .arg(&path)
        .env("OMNIROUTE_BASE", &gw.base)
        .env("OMNIROUTE_BASE_URL", gw.url("/v1"))
        .env("OMNIROUTE_KEY", CLIENT_KEY)
        .env("OMNIROUTE_KEY_B", KEY_B)
        .env("OMNIROUTE_UPSTREAM", format!("http://{}", up.addr))
        .env("OMNIROUTE_PHASE", phase)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("all checks passed"),
        "{name} ({phase}) failed:\n{stdout}\n{}\n--- gateway log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.stderr()
    );
}

fn stop(mut gw: Binary) {
    gw.signal("TERM");
    assert!(gw.wait(Duration::from_secs(20)).success());
}

/// Usage rows the gateway wrote (read once it has stopped).
fn usage_rows(data: &Path) -> u64 {
    let store = omniroute::store::Store::open(data).unwrap();
    let n = store.read_blocking(omniroute::store::count_usage).unwrap();
    drop(store);
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_sdk_cache_hits_streams_scopes_coalescing_and_restart() {
    let Some(python) = sdk_python() else { return };
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gateway.toml");
    std::fs::write(&cfg, config(&up.base_url())).unwrap();
    let data = dir.path().join("data");
    let gw = start(&data, &cfg);
    script(&python, &gw, &up, "cache_openai.py", "main").await;
    stop(gw);
    // The figures reached the store: `omniroute cache stats` in another process.
    let out = support::run_binary(&data, &["--json", "cache", "stats"]);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(stats["totals"]["hits"].as_u64().unwrap() >= 22, "{stats}");
    assert_eq!(stats["totals"]["semantic_hits"], 1, "{stats}");
    assert!(
        stats["totals"]["tokens_saved"].as_u64().unwrap() > 0,
        "{stats}"
    );
    let usage = support::run_binary(&data, &["usage"]);
    let text = String::from_utf8_lossy(&usage.stdout);
    assert!(text.contains("answered by the cache"), "{text}");
    // A restart keeps the entries.
    let gw = start(&data, &cfg);
    script(&python, &gw, &up, "cache_openai.py", "restart").await;
    stop(gw);
    let flushed = support::run_binary(&data, &["cache", "flush", "--combo", "faq"]);
    assert!(
        String::from_utf8_lossy(&flushed.stdout).contains("flushed 2 answers"),
        "{}",
        String::from_utf8_lossy(&flushed.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_sdk_idempotent_retry_after_a_client_timeout() {
    let Some(python) = sdk_python() else { return };
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gateway.toml");
    std::fs::write(&cfg, config(&up.base_url())).unwrap();
    let data = dir.path().join("data");
    let gw = start(&data, &cfg);
    script(&python, &gw, &up, "cache_openai.py", "idempotency").await;
    stop(gw);
    assert_eq!(up.calls("slow"), 1);
    assert_eq!(
        usage_rows(&data),
        1,
        "one usage row for the request and its retry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_anthropic_sdk_cache_hits_and_streams_replayed_as_anthropic_events() {
    let Some(python) = sdk_python() else { return };
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gateway.toml");
    std::fs::write(&cfg, config(&up.base_url())).unwrap();
    let data = dir.path().join("data");
    let gw = start(&data, &cfg);
    script(&python, &gw, &up, "cache_anthropic.py", "main").await;
    stop(gw);
}
