//! The official MCP Python SDK (2.x) against the real binary: over stdio
//! (in-process and bridged to a running gateway) and over Streamable HTTP,
//! in its `legacy` (initialize) and `auto` (2026-07-28 discovery) modes.
//! The script validates every tool result against the tool's outputSchema.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use support::fake_upstream::FakeUpstream;
use support::{client, example_config, run_binary, sdk_python, Binary, CLIENT_KEY};

fn write_config(dir: &Path, upstream: &FakeUpstream) -> String {
    let cfg = dir.join("gateway.toml");
    std::fs::write(&cfg, example_config(&upstream.base_url())).unwrap();
    cfg.to_str().unwrap().to_string()
}

async fn run_script(python: &str, mode: &str, transport: &str, env: &[(&str, String)]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/mcp_sdk.py");
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(script).arg(mode).arg(transport);
    cmd.env("OMNIROUTE_BIN", support::binary_path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
        .await
        .expect("the MCP SDK script timed out")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("all checks passed"),
        "mcp sdk script ({mode}, {transport}) failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_stdio_in_process_legacy_and_auto() {
    let Some(python) = sdk_python() else { return };
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = write_config(dir.path(), &up);
    // Apply the config into the store; no gateway is left running.
    assert!(run_binary(&data, &["--config", &cfg, "keys", "list"])
        .status
        .success());
    let env = [
        ("OMNIROUTE_DATA_DIR", data.display().to_string()),
        ("OMNIROUTE_MODEL", "mock/gpt-4o-mini".to_string()),
    ];
    let legacy = run_script(&python, "legacy", "stdio", &env).await;
    assert!(legacy.contains("protocol version: 2025-11-25"), "{legacy}");
    let auto = run_script(&python, "auto", "stdio", &env).await;
    assert!(auto.contains("protocol version: 2026-07-28"), "{auto}");
    assert_eq!(up.calls("gpt-4o-mini"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_http_legacy_and_auto() {
    let Some(python) = sdk_python() else { return };
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &up);
    let gw = Binary::start(&dir.path().join("data"), &["--config", &cfg]);
    let env = [
        ("OMNIROUTE_MCP_URL", gw.url("/mcp")),
        ("OMNIROUTE_KEY", CLIENT_KEY.to_string()),
        ("OMNIROUTE_MODEL", "mock/gpt-4o-mini".to_string()),
        ("OMNIROUTE_V1_URL", gw.url("/v1")),
    ];
    let legacy = run_script(&python, "legacy", "http", &env).await;
    assert!(legacy.contains("protocol version: 2025-11-25"), "{legacy}");
    let auto = run_script(&python, "auto", "http", &env).await;
    assert!(auto.contains("protocol version: 2026-07-28"), "{auto}");
    // Per mode: one route_request and one chat through the combo made over MCP.
    assert_eq!(up.calls("gpt-4o-mini"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_stdio_bridged_to_the_running_gateway() {
    let Some(python) = sdk_python() else { return };
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = write_config(dir.path(), &up);
    let gw = Binary::start(&data, &["--config", &cfg]);
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .json(&serde_json::json!({"model": "mock/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let env = [
        ("OMNIROUTE_DATA_DIR", data.display().to_string()),
        ("OMNIROUTE_MODEL", "mock/gpt-4o-mini".to_string()),
        ("OMNIROUTE_EXPECT_REQUESTS", "1".to_string()),
        ("OMNIROUTE_KEY", CLIENT_KEY.to_string()),
        ("OMNIROUTE_V1_URL", gw.url("/v1")),
    ];
    for mode in ["legacy", "auto"] {
        let out = run_script(&python, mode, "stdio", &env).await;
        assert!(
            out.contains(&format!("pid={}", gw.child.id())),
            "health must come from the running gateway:\n{out}"
        );
    }
    // The /v1 request, then per mode one route_request and one chat through
    // the combo saved over stdio, all served by the gateway.
    assert_eq!(up.calls("gpt-4o-mini"), 5);
}
