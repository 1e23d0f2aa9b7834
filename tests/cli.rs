//! The real coding CLIs, installed from the npm registry by
//! `scripts/test.sh` (into `.cache-test/cli`), against the real gateway
//! binary and the fake upstream, one smoke test each:
//!
//! - Claude Code (`claude -p`, `ANTHROPIC_BASE_URL` at the gateway, its
//!   model names mapped to an OpenAI-format upstream: translated);
//! - Codex CLI (`codex exec`, a custom model provider on the gateway's
//!   `/v1` Responses API);
//! - Gemini CLI (`gemini -p` on its default `auto` model, which first asks
//!   for a routing decision as structured JSON, then sends the prompt; a
//!   Gemini-format upstream: forwarded), set up as the README says.
//!
//! No network: each test re-runs itself inside a new network namespace
//! (`unshare -rn`, loopback only) when the machine allows it, so the CLIs
//! work with no route to the internet at all; every CLI also gets the
//! settings that stop its own traffic (telemetry, update checks, plugin
//! syncs) and proxy variables that point at a local recorder which refuses
//! every request, and the test fails if any CLI tried to reach beyond
//! loopback through it.
//!
//! `scripts/test.sh` sets OMNIROUTE_CLI_<NAME> (the executable) or, when the
//! package could not be installed, OMNIROUTE_CLI_<NAME>_UNAVAILABLE (why):
//! only then is a test skipped, with the reason printed. With
//! OMNIROUTE_REQUIRE_SDK=1 neither being set fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::fake_upstream::FakeUpstream;
use support::Binary;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "sk-test-123";
const NETNS_VAR: &str = "OMNIROUTE_CLI_IN_NETNS";

/// The CLI's executable, or None with the reason printed (package not installable).
fn installed(name: &str) -> Option<String> {
    let var = format!("OMNIROUTE_CLI_{name}");
    if let Ok(path) = std::env::var(&var) {
        assert!(Path::new(&path).exists(), "{var}={path} does not exist");
        return Some(path);
    }
    if let Ok(why) = std::env::var(format!("{var}_UNAVAILABLE")) {
        eprintln!("skipping: the {name} CLI could not be installed: {why}");
        return None;
    }
    if std::env::var_os("OMNIROUTE_REQUIRE_SDK").is_some() {
        panic!("OMNIROUTE_REQUIRE_SDK is set but neither {var} nor {var}_UNAVAILABLE is (scripts/test.sh sets one)");
    }
    eprintln!("skipping: {var} is not set; run scripts/test.sh (it installs the CLIs)");
    None
}

/// Re-run this test alone inside a new user + network namespace with only
/// loopback up. Returns true when it ran there (its result is this one's);
/// false when already inside, or when namespaces are not available here
/// (then the test runs as it is, offline by settings and proxy recorder).
fn ran_in_netns(test: &str) -> bool {
    if std::env::var_os(NETNS_VAR).is_some() {
        return false;
    }
    let probe = Command::new("unshare")
        .args(["-rn", "sh", "-c", "ip link set lo up"])
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!(
            "network namespaces unavailable (unshare -rn); running with the offline settings only"
        );
        return false;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["-rn", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(NETNS_VAR, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("--- {test}, in a network namespace with loopback only ---\n{text}");
    assert!(
        out.status.success(),
        "{test} failed in its network namespace"
    );
    assert!(
        text.contains("1 passed"),
        "{test} did not run in its network namespace"
    );
    true
}

/// A local stand-in for an HTTP(S) proxy that refuses everything and
/// remembers what was asked of it (`CONNECT host:443`, `GET http://…`).
struct ProxyRecorder {
    url: String,
    asked: Arc<Mutex<Vec<String>>>,
}

impl ProxyRecorder {
    async fn start() -> ProxyRecorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let asked = Arc::new(Mutex::new(Vec::new()));
        let seen = asked.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = sock.read(&mut buf).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]);
                    let line = head.lines().next().unwrap_or("").to_string();
                    seen.lock().unwrap().push(line);
                    let _ = sock
                        .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                });
            }
        });
        ProxyRecorder { url, asked }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

/// The gateway binary with `config` (its `{upstream}` and `{native}` filled in).
fn gateway(up: &FakeUpstream, dir: &Path, config: &str) -> Binary {
    let cfg = dir.join("gateway.toml");
    let text = config
        .replace("{upstream}", &up.base_url())
        .replace("{native}", &up.native_base_url());
    std::fs::write(&cfg, text).unwrap();
    Binary::start(&dir.join("data"), &["--config", cfg.to_str().unwrap()])
}

/// The environment every CLI gets: a private HOME, Node 22 first on PATH,
/// the proxy recorder for anything not on loopback, nothing else inherited.
fn base_env(cmd: &mut Command, home: &Path, proxy: &ProxyRecorder) {
    let node = std::env::var("OMNIROUTE_NODE22").ok();
    let node_dir = node
        .as_deref()
        .and_then(|n| Path::new(n).parent())
        .map(|p| format!("{}:", p.display()))
        .unwrap_or_default();
    cmd.env_clear()
        .env("PATH", format!("{node_dir}/usr/local/bin:/usr/bin:/bin"))
        .env("HOME", home)
        .env("TERM", "dumb")
        .env("CI", "1")
        .env("NO_COLOR", "1")
        .env("HTTPS_PROXY", &proxy.url)
        .env("HTTP_PROXY", &proxy.url)
        .env("https_proxy", &proxy.url)
        .env("http_proxy", &proxy.url)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null());
}

/// Run with a deadline; a CLI that hangs (a retry loop) fails the test.
async fn run(mut cmd: Command, limit: Duration, what: &str) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let waited = tokio::time::timeout(
        limit,
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await;
    match waited {
        Ok(out) => out.unwrap().unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{what} did not finish within {limit:?}");
        }
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const CLAUDE_CONFIG: &str = r#"[server]
api_keys = [{ key = "sk-test-123", scopes = ["inference"] }]

[model_map]
"claude-*" = "mock/gpt-4o-mini"

[[providers]]
id = "mock"
format = "openai"
base_url = "{upstream}"
api_key = "upstream-secret"
tier = "api-key"
models = ["gpt-4o-mini"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_print_mode_through_the_gateway() {
    let Some(claude) = installed("CLAUDE") else {
        return;
    };
    if ran_in_netns("claude_code_print_mode_through_the_gateway") {
        return;
    }
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&up, dir.path(), CLAUDE_CONFIG);
    let proxy = ProxyRecorder::start().await;
    let home = dir.path().join("home");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&work).unwrap();

    let mut cmd = Command::new(&claude);
    base_env(&mut cmd, &home, &proxy);
    cmd.current_dir(&work)
        .env("ANTHROPIC_BASE_URL", &gw.base)
        .env("ANTHROPIC_API_KEY", KEY)
        // Claude Code's documented switches for traffic it does not need:
        // CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC covers the other four.
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_TELEMETRY", "1")
        .env("DISABLE_ERROR_REPORTING", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("DISABLE_BUG_COMMAND", "1")
        .args([
            "-p",
            "Reply with the word pineapple.",
            "--output-format",
            "json",
        ]);
    let out = run(cmd, Duration::from_secs(120), "claude -p").await;
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "claude -p failed\n{stdout}\n{stderr}\n{}",
        gw.stderr()
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("claude -p --output-format json printed no JSON ({e}):\n{stdout}\n{stderr}")
    });
    assert_eq!(result["is_error"], false, "{result}");
    // The answer is the fake upstream's (it echoes the last user text, and
    // Claude Code sends its environment notes after the prompt).
    let said = result["result"].as_str().unwrap_or_default();
    assert!(said.starts_with("echo:"), "{result}");
    let sent = up.last_body().to_string();
    assert!(
        sent.contains("Reply with the word pineapple."),
        "the prompt did not reach the upstream: {sent}"
    );
    assert!(up.calls("gpt-4o-mini") >= 1, "the upstream saw no call");
    assert!(
        up.last_body()["messages"].is_array(),
        "translated to OpenAI Chat"
    );
    assert_eq!(
        proxy.asked(),
        Vec::<String>::new(),
        "Claude Code tried to go off loopback"
    );
}

const CODEX_CONFIG: &str = r#"[server]
api_keys = [{ key = "sk-test-123", scopes = ["inference"] }]

[[providers]]
id = "mock"
format = "openai"
base_url = "{upstream}"
api_key = "upstream-secret"
tier = "api-key"
models = ["gpt-4o-mini"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_exec_with_a_custom_provider() {
    let Some(codex) = installed("CODEX") else {
        return;
    };
    if ran_in_netns("codex_exec_with_a_custom_provider") {
        return;
    }
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&up, dir.path(), CODEX_CONFIG);
    let proxy = ProxyRecorder::start().await;
    let home = dir.path().join("home");
    let codex_home = home.join(".codex");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&codex_home).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    // The README's provider block, plus the settings that keep Codex off the
    // network: no update check, no analytics (its metrics exporter), no
    // curated-plugin sync from GitHub, no connector apps.
    std::fs::write(
        codex_home.join("config.toml"),
        format!(
            r#"model = "mock/gpt-4o-mini"
model_provider = "omniroute"
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false
apps = false

[model_providers.omniroute]
name = "omniroute"
base_url = "{}/v1"
env_key = "OMNIROUTE_API_KEY"
wire_api = "responses"
"#,
            gw.base
        ),
    )
    .unwrap();

    let mut cmd = Command::new(&codex);
    base_env(&mut cmd, &home, &proxy);
    cmd.current_dir(&work)
        .env("CODEX_HOME", &codex_home)
        .env("OMNIROUTE_API_KEY", KEY)
        .args([
            "exec",
            "--skip-git-repo-check",
            "--json",
            "Reply with the word pineapple.",
        ]);
    let out = run(cmd, Duration::from_secs(120), "codex exec").await;
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "codex exec failed\n{stdout}\n{stderr}\n{}",
        gw.stderr()
    );
    // --json: one event per line; the answer is an agent message item.
    let answers: Vec<String> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["item"]["type"] == "agent_message")
        .filter_map(|e| e["item"]["text"].as_str().map(str::to_string))
        .collect();
    assert!(
        answers
            .iter()
            .any(|a| a.starts_with("echo:") && a.contains("pineapple")),
        "no answer from the fake upstream in:\n{stdout}\n{stderr}"
    );
    assert!(up.calls("gpt-4o-mini") >= 1, "the upstream saw no call");
    assert_eq!(
        proxy.asked(),
        Vec::<String>::new(),
        "Codex tried to go off loopback"
    );
}

const GEMINI_CONFIG: &str = r#"[server]
api_keys = [{ key = "sk-test-123", scopes = ["inference"] }]

# Gemini CLI's auto model names its router and chat models itself.
[model_map]
"gemini-*" = "gem/gemini-2.5-flash"

[[providers]]
id = "gem"
format = "gemini"
base_url = "{native}"
api_key = "upstream-secret"
tier = "api-key"
models = ["gemini-2.5-flash"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_cli_default_auto_model() {
    let Some(gemini) = installed("GEMINI") else {
        return;
    };
    if ran_in_netns("gemini_cli_default_auto_model") {
        return;
    }
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&up, dir.path(), GEMINI_CONFIG);
    let proxy = ProxyRecorder::start().await;
    let home = dir.path().join("home");
    let work = dir.path().join("work");
    std::fs::create_dir_all(home.join(".gemini")).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    // The README's settings (API-key auth), plus no update checks and no
    // usage statistics, which would leave loopback.
    std::fs::write(
        home.join(".gemini/settings.json"),
        r#"{"security": {"auth": {"selectedType": "gemini-api-key"}},
            "general": {"enableAutoUpdate": false, "enableAutoUpdateNotification": false},
            "privacy": {"usageStatisticsEnabled": false},
            "telemetry": {"enabled": false}}"#,
    )
    .unwrap();

    let mut cmd = Command::new(&gemini);
    base_env(&mut cmd, &home, &proxy);
    cmd.current_dir(&work)
        .env("GOOGLE_GEMINI_BASE_URL", &gw.base)
        .env("GEMINI_API_KEY", KEY)
        .env("GEMINI_CLI_TRUST_WORKSPACE", "true")
        .args(["-p", "Reply with the word pineapple."]);
    let out = run(cmd, Duration::from_secs(120), "gemini -p").await;
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "gemini -p failed\n{stdout}\n{stderr}\n{}",
        gw.stderr()
    );
    assert!(
        stdout.contains("echo:") && stdout.contains("pineapple"),
        "no answer from the fake upstream in:\n{stdout}\n{stderr}"
    );
    // The auto model's routing call was answered once with JSON (no retry
    // loop), then the prompt itself went through.
    let json_answers = up
        .seen
        .json_answers
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(json_answers, 1, "routing calls answered: {json_answers}");
    assert!(up.calls("gemini-2.5-flash") >= 2, "routing call and prompt");
    assert_eq!(
        proxy.asked(),
        Vec::<String>::new(),
        "Gemini CLI tried to go off loopback"
    );
}
