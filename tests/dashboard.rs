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
    // The gateway's machine has Claude Code's credential file (for the import button).
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".claude")).unwrap();
    std::fs::copy(
        root.join("tests/fixtures/credentials/claude.credentials.json"),
        home.join(".claude/.credentials.json"),
    )
    .unwrap();
    let home = home.display().to_string();
    let one = Binary::start_env(
        &dir.path().join("one"),
        &["--config", &cfg],
        &[("HOME", home.as_str())],
    );
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

/// `--open` hands the one-time login link to the desktop's opener
/// (`xdg-open` on Linux, replaced here by a script that writes down its
/// argument), and that link logs a browser in once.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn open_flag_opens_the_login_link() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let seen = dir.path().join("opened.txt");
    let script = bin.join("xdg-open");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nprintf '%s' \"$1\" > {}\n", seen.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let gw = Binary::start_env(&dir.path().join("data"), &["--open"], &[("PATH", &path)]);
    let link = gw.printed("Login link (works once, for 15 minutes):");
    let start = std::time::Instant::now();
    while !seen.exists() && start.elapsed() < std::time::Duration::from_secs(10) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), link);
    assert!(link.starts_with(&format!("{}/api/login/link?token=omr-login-", gw.base)));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http.get(&link).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let session = cookie.split(';').next().unwrap().to_string();
    let me = http
        .get(gw.url("/api/session"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(
        http.get(&link).send().await.unwrap().status(),
        401,
        "used once"
    );
}
