//! Official SDKs (Anthropic, OpenAI Responses) against the real binary whose
//! upstreams speak Anthropic, Gemini and OpenAI Responses: same-format
//! passthrough and translation seen through the clients' own parsers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::fake_upstream::FakeUpstream;
use support::{example_config, Binary, CLIENT_KEY};

fn python() -> Option<String> {
    match std::env::var("OMNIROUTE_PYTHON") {
        Ok(p) => Some(p),
        Err(_) if std::env::var_os("OMNIROUTE_REQUIRE_SDK").is_some() => {
            panic!("OMNIROUTE_REQUIRE_SDK is set but OMNIROUTE_PYTHON is not")
        }
        Err(_) => {
            eprintln!("skipping SDK test: run scripts/test.sh (it installs the SDKs)");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdks_against_native_format_upstreams() {
    let Some(python) = python() else { return };
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gateway.toml");
    let native = up.native_base_url();
    let base = up.base_url();
    let models = r#"["echo", "tool-call", "thinking"]"#;
    let text = format!(
        "{}\n[model_map]\n\"claude-sonnet-*\" = \"claude/tool-call\"\n\n\
         [[providers]]\nid = \"claude\"\nformat = \"anthropic\"\nbase_url = \"{native}\"\napi_key = \"a\"\nmodels = {models}\n\n\
         [[providers]]\nid = \"gem\"\nformat = \"gemini\"\nbase_url = \"{native}\"\napi_key = \"g\"\nmodels = {models}\n\n\
         [[providers]]\nid = \"resp\"\nformat = \"openai-responses\"\nbase_url = \"{base}\"\napi_key = \"r\"\nmodels = {models}\n",
        example_config(&base)
    );
    std::fs::write(&cfg, text).unwrap();
    let gw = Binary::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/native_sdk.py");
    let out = tokio::process::Command::new(&python)
        .arg(script)
        .env("OMNIROUTE_BASE", &gw.base)
        .env("OMNIROUTE_KEY", CLIENT_KEY)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("all checks passed"),
        "native sdk script failed:\n{stdout}\n{}\n--- gateway log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.stderr()
    );
    // The thinking turn sent back reached the upstream with its signature.
    let bodies = up.seen.bodies.lock().unwrap().clone();
    assert!(bodies
        .iter()
        .any(|b| b.to_string().contains("sig-anthropic-1")));
}
