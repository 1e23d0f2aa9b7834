//! Official client SDKs against the real binary. The test command
//! (`scripts/test.sh`) installs them into a virtualenv and sets
//! OMNIROUTE_PYTHON; with OMNIROUTE_REQUIRE_SDK=1 a missing SDK fails.
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
async fn official_openai_python_sdk_streams_through_the_gateway() {
    let Some(python) = python() else { return };
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gateway.toml");
    let native = up.native_base_url();
    let text = format!(
        "{}\n[[combos]]\nname = \"coding\"\nmodels = [\"mock/fail-429\", \"mock/gpt-4o-mini\"]\n\n\
         [[providers]]\nid = \"claude\"\nformat = \"anthropic\"\nbase_url = \"{native}\"\napi_key = \"a\"\nmodels = [\"claude-fake\"]\n\n\
         [[providers]]\nid = \"gem\"\nformat = \"gemini\"\nbase_url = \"{native}\"\napi_key = \"g\"\nmodels = [\"gemini-fake\"]\n",
        example_config(&up.base_url())
    );
    std::fs::write(&cfg, text).unwrap();
    let gw = Binary::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/openai_sdk.py");
    let out = tokio::process::Command::new(&python)
        .arg(script)
        .env("OMNIROUTE_BASE_URL", gw.url("/v1"))
        .env("OMNIROUTE_KEY", CLIENT_KEY)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "openai sdk script failed:\n{stdout}\n{}\n--- gateway log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.stderr()
    );
    assert!(stdout.contains("all checks passed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_anthropic_python_sdk_against_an_openai_upstream() {
    let Some(python) = python() else { return };
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gateway.toml");
    let text = format!(
        "{}\n[[combos]]\nname = \"coding\"\nmodels = [\"mock/fail-500\", \"mock/gpt-4o-mini\"]\n\n\
         [model_map]\n\"claude-sonnet-*\" = \"coding\"\n\"claude-haiku-*\" = \"mock/tool-call\"\n",
        example_config(&up.base_url())
    );
    std::fs::write(&cfg, text).unwrap();
    let gw = Binary::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/anthropic_sdk.py");
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
        "anthropic sdk script failed:\n{stdout}\n{}\n--- gateway log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.stderr()
    );
    // The streamed tool call came from the upstream's tool-calling model.
    assert_eq!(up.calls("tool-call"), 1);
}

async fn a2a_sdk(version: &str) {
    let Some(python) = python() else { return };
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gateway.toml");
    std::fs::write(&cfg, example_config(&up.base_url())).unwrap();
    let gw = Binary::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/a2a_sdk.py");
    let out = tokio::process::Command::new(&python)
        .arg(script)
        .env("OMNIROUTE_BASE", &gw.base)
        .env("OMNIROUTE_KEY", CLIENT_KEY)
        .env("OMNIROUTE_A2A_VERSION", version)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "a2a sdk script ({version}) failed:\n{stdout}\n{}\n--- gateway log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.stderr()
    );
    assert!(stdout.contains("all checks passed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_a2a_python_sdk_speaking_1_0() {
    a2a_sdk("1.0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_a2a_python_sdk_through_its_0_3_transport() {
    a2a_sdk("0.3").await;
}
