//! The dashboard in a real browser: the real binary (once on one port, once
//! in split-port mode) against the fake upstream, driven by
//! `dashboard/tests/dashboard.test.mjs` in Debian's headless Chromium with
//! playwright-core. Screenshots land in `test-artifacts/dashboard/`.
//! scripts/test.sh installs Chromium and the npm packages; without them
//! this test is skipped unless OMNIROUTE_REQUIRE_BROWSER is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::Command;
use support::fake_upstream::FakeUpstream;
use support::Binary;

fn browser_ready(root: &Path) -> bool {
    let ok = Path::new("/usr/bin/chromium").exists()
        && root.join("dashboard/node_modules/playwright-core").exists()
        && Command::new("node").arg("--version").output().is_ok();
    if !ok {
        assert!(
            std::env::var_os("OMNIROUTE_REQUIRE_BROWSER").is_none(),
            "OMNIROUTE_REQUIRE_BROWSER is set but Chromium, node or dashboard/node_modules is missing (run scripts/test.sh)"
        );
        eprintln!("skipping the browser test: run scripts/test.sh (it installs Chromium and playwright-core)");
    }
    ok
}

fn config(fake: &FakeUpstream) -> String {
    // `fake` has no key yet: the browser adds one on the Providers page.
    format!(
        r#"[[providers]]
id = "fake"
format = "openai"
base_url = "{}"
tier = "api-key"
models = ["gpt-4o-mini", "fail-500"]
"#,
        fake.base_url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !browser_ready(root) {
        return;
    }
    let fake = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gateway.toml");
    std::fs::write(&cfg, config(&fake)).unwrap();
    let cfg = cfg.display().to_string();
    let one = Binary::start(&dir.path().join("one"), &["--config", &cfg]);
    let split = Binary::start(
        &dir.path().join("split"),
        &["--config", &cfg, "--dashboard-port", "0"],
    );
    let artifacts = root.join("test-artifacts/dashboard");
    let out = tokio::task::spawn_blocking({
        let root = root.to_path_buf();
        let admin = one.first_key.clone().unwrap();
        let (base, split_api) = (one.base.clone(), split.base.clone());
        let split_dash = split
            .printed("Dashboard:")
            .trim_end_matches('/')
            .to_string();
        let split_link = split.printed("Login link (works once, for 15 minutes):");
        move || {
            Command::new("node")
                .args(["--test", "--test-reporter=spec", "tests/dashboard.test.mjs"])
                .current_dir(root.join("dashboard"))
                .env("OMNIROUTE_URL", base)
                .env("OMNIROUTE_ADMIN_KEY", admin)
                .env("OMNIROUTE_ARTIFACTS", artifacts)
                .env("SPLIT_API_URL", split_api)
                .env("SPLIT_DASHBOARD_URL", split_dash)
                .env("SPLIT_LOGIN_LINK", split_link)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "browser tests failed:\n{stdout}\n{stderr}\ngateway log:\n{}",
        one.stderr()
    );
    for page in [
        "keys",
        "providers",
        "combos",
        "overview",
        "requests",
        "usage",
        "health",
        "split-port-overview",
    ] {
        assert!(
            root.join(format!("test-artifacts/dashboard/{page}.png"))
                .exists(),
            "no screenshot of {page}"
        );
    }
}
