//! Official client SDKs against the real binary. The test command
//! (`scripts/test.sh`) installs them into a virtualenv and sets
//! OMNIROUTE_PYTHON; with OMNIROUTE_REQUIRE_SDK=1 a missing SDK fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::fake_upstream::FakeUpstream;
use support::{example_config, sdk_python, Binary, CLIENT_KEY};

/// The real binary on the example config plus `extra` TOML, and a script from
/// tests/python run against it with `env`; fails with both outputs and the log.
async fn run_sdk_script(
    python: &str,
    up: &FakeUpstream,
    extra: &str,
    script: &str,
    env: &[(&str, &str)],
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gateway.toml");
    std::fs::write(&cfg, format!("{}\n{extra}", example_config(&up.base_url()))).unwrap();
    let gw = Binary::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let path = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(&path)
        .env("OMNIROUTE_BASE", &gw.base)
        .env("OMNIROUTE_BASE_URL", gw.url("/v1"))
        .env("OMNIROUTE_KEY", CLIENT_KEY);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("all checks passed"),
        "{script} failed:\n{stdout}\n{}\n--- gateway log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.stderr()
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_python_sdk_streams_through_the_gateway() {
    let Some(python) = sdk_python() else { return };
    let up = FakeUpstream::start().await;
    let native = up.native_base_url();
    let extra = format!(
        "[[combos]]\nname = \"coding\"\nmodels = [\"mock/fail-429\", \"mock/gpt-4o-mini\"]\n\n\
         [[providers]]\nid = \"claude\"\nformat = \"anthropic\"\nbase_url = \"{native}\"\napi_key = \"a\"\nmodels = [\"claude-fake\"]\n\n\
         [[providers]]\nid = \"gem\"\nformat = \"gemini\"\nbase_url = \"{native}\"\napi_key = \"g\"\nmodels = [\"gemini-fake\"]\n"
    );
    run_sdk_script(&python, &up, &extra, "openai_sdk.py", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_anthropic_python_sdk_against_an_openai_upstream() {
    let Some(python) = sdk_python() else { return };
    let up = FakeUpstream::start().await;
    let extra = "[[combos]]\nname = \"coding\"\nmodels = [\"mock/fail-500\", \"mock/gpt-4o-mini\"]\n\n\
                 [model_map]\n\"claude-sonnet-*\" = \"coding\"\n\"claude-haiku-*\" = \"mock/tool-call\"\n";
    run_sdk_script(&python, &up, extra, "anthropic_sdk.py", &[]).await;
    // The streamed tool call came from the upstream's tool-calling model.
    assert_eq!(up.calls("tool-call"), 1);
}

async fn a2a_sdk(version: &str) {
    let Some(python) = sdk_python() else { return };
    let up = FakeUpstream::start().await;
    run_sdk_script(
        &python,
        &up,
        "",
        "a2a_sdk.py",
        &[("OMNIROUTE_A2A_VERSION", version)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_a2a_python_sdk_speaking_1_0() {
    a2a_sdk("1.0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_a2a_python_sdk_through_its_0_3_transport() {
    a2a_sdk("0.3").await;
}

/// The cards validate against the official A2A 1.0 and 0.3 JSON schemas
/// (vendored in tests/fixtures/a2a), with their cache headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_cards_validate_against_the_official_a2a_schemas() {
    let Some(python) = sdk_python() else { return };
    let up = FakeUpstream::start().await;
    run_sdk_script(&python, &up, "", "a2a_cards.py", &[]).await;
}
