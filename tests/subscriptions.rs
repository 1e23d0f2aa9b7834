//! Subscription accounts end to end through the real binary, against the
//! fake OAuth servers and subscriber endpoints of tests/support/fake_subscriptions.rs:
//! login by code flow (the test plays the browser) and by device code, import
//! of each provider's credential file, refresh under 50 concurrent requests,
//! rotation surviving a SIGKILL, refresh failure and exhausted windows moving
//! to the next account (and back after the reset), the overage answer, and
//! Claude Code's own bearer passed through before the gateway's accounts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::fake_subscriptions::FakeSubs;
use support::{binary_path, client, run_binary_env, Binary, CLIENT_KEY};

struct Setup {
    fake: FakeSubs,
    dir: tempfile::TempDir,
    config: String,
    env: Vec<(String, String)>,
}

impl Setup {
    /// `claude_extra`: more keys for the `claude-code` provider (e.g. its mode).
    async fn new(claude_extra: &str) -> Setup {
        Self::with_modes(claude_extra, "").await
    }

    async fn with_modes(claude_extra: &str, codex_extra: &str) -> Setup {
        Self::with_fake(FakeSubs::start().await, claude_extra, codex_extra)
    }

    /// The providers' fake over TLS, trusted through the test CA.
    async fn over_tls() -> Setup {
        let mut s = Self::with_fake(FakeSubs::start_tls().await, "", "");
        s.env
            .push(("SSL_CERT_FILE".to_string(), support::tls::ca()));
        s
    }

    fn with_fake(fake: FakeSubs, claude_extra: &str, codex_extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let base = fake.base();
        let cfg = format!(
            r#"[server]
api_keys = [{{ key = "{CLIENT_KEY}", scopes = ["inference", "read"] }}]

[[providers]]
id = "claude-code"
base_url = "{base}"
{claude_extra}

[[providers]]
id = "codex"
base_url = "{base}/backend-api/codex"
{codex_extra}

[[providers]]
id = "gemini-cli"
base_url = "{base}"

[[providers]]
id = "qwen-code"
base_url = "{base}/v1"
"#
        );
        let config = dir.path().join("gateway.toml");
        std::fs::write(&config, cfg).unwrap();
        let env = ["CLAUDE", "CODEX", "GEMINI", "QWEN"]
            .iter()
            .map(|k| (format!("OMNIROUTE_OAUTH_BASE_{k}"), base.clone()))
            .chain([(
                "HOME".to_string(),
                dir.path().join("home").display().to_string(),
            )])
            .collect();
        Setup {
            fake,
            config: config.display().to_string(),
            dir,
            env,
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// `omniroute --config C ARGS`, which must succeed; its stdout.
    fn cli(&self, args: &[&str]) -> String {
        let mut all = vec!["--config", self.config.as_str()];
        all.extend_from_slice(args);
        let out = run_binary_env(&self.data(), &all, &self.env());
        assert!(
            out.status.success(),
            "{args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.cli(&all)).unwrap()
    }

    fn serve(&self) -> Binary {
        Binary::start_env(&self.data(), &["--config", &self.config], &self.env())
    }

    /// Write a credential file and import it as account `label`.
    fn import(&self, kind: &str, label: &str, body: &Value, priority: i64) -> Value {
        let path = self.dir.path().join(format!("{kind}-{label}.json"));
        std::fs::write(&path, body.to_string()).unwrap();
        let p = priority.to_string();
        self.json(&[
            "login",
            kind,
            "--import",
            "--from",
            path.to_str().unwrap(),
            "--label",
            label,
            "--priority",
            &p,
        ])
    }

    fn accounts(&self) -> Vec<Value> {
        self.json(&["accounts", "list"]).as_array().unwrap().clone()
    }

    fn account(&self, label: &str) -> Value {
        self.accounts()
            .into_iter()
            .find(|a| a["label"] == label)
            .unwrap_or_else(|| panic!("no account {label}"))
    }
}

fn claude_creds(access: &str, refresh: &str, expires_ms: i64) -> Value {
    json!({"claudeAiOauth": {"accessToken": access, "refreshToken": refresh, "expiresAt": expires_ms,
           "scopes": ["user:inference", "user:profile"], "subscriptionType": "max"}})
}

fn far() -> i64 {
    4_102_444_800_000
}

fn past() -> i64 {
    1_600_000_000_000
}

async fn messages(gw: &Binary, model: &str) -> reqwest::Response {
    say(gw, model, "hi").await
}

/// A message in its own conversation (sticky sessions key on the first turns).
async fn say(gw: &Binary, model: &str, text: &str) -> reqwest::Response {
    client()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", CLIENT_KEY)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": model, "max_tokens": 32, "messages": [{"role": "user", "content": text}]}))
        .send()
        .await
        .unwrap()
}

async fn text_of(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let account = r
        .headers()
        .get("x-omniroute-account")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let v: Value = r.json().await.unwrap_or_default();
    let text = v
        .pointer("/content/0/text")
        .or_else(|| v.pointer("/choices/0/message/content"))
        .and_then(Value::as_str)
        .unwrap_or(&v.to_string())
        .to_string();
    (status, account, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_by_code_flow_with_the_test_playing_the_browser() {
    let s = Setup::new("").await;
    s.fake.with(|st| st.next_user = "erin".into());
    let mut child = Command::new(binary_path())
        .args([
            "--data-dir",
            s.data().to_str().unwrap(),
            "--config",
            &s.config,
        ])
        .args(["login", "claude", "--label", "work", "--callback-port", "0"])
        .envs(s.env())
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("login printed no URL").unwrap();
        if let Some(u) = line.trim().strip_prefix("http") {
            break format!("http{u}");
        }
    };
    let q: std::collections::HashMap<String, String> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["client_id"], "9d1c250a-e61b-44d9-88ed-5944d1962f5e");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["redirect_uri"].starts_with("http://localhost:"), "{url}");
    assert!(q["scope"].contains("user:inference"));
    // The browser: the consent page redirects to the login's localhost callback.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let consent = browser.get(&url).send().await.unwrap();
    assert_eq!(consent.status(), 302);
    let callback = consent.headers()["location"].to_str().unwrap().to_string();
    let page = browser
        .get(&callback)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Signed in"), "{page}");
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.starts_with("signed in: account")),
        "{rest:?}"
    );
    let a = s.account("work");
    assert_eq!(a["provider"], "claude-code");
    assert_eq!(a["origin"], "oauth");
    assert_eq!(a["tier"], "subscription");
    assert_eq!(a["usable"], true);
    assert_eq!(a["subscription"]["email"], "erin@example.com");
    assert!(a["subscription"]["token_expires_in_s"].as_f64().unwrap() > 3000.0);
    // The signed-in account serves Claude requests with its OAuth bearer.
    let gw = s.serve();
    let (status, account, text) = text_of(messages(&gw, "cc/claude-sonnet-4-5").await).await;
    assert_eq!((status, text.as_str()), (200, "served by erin"));
    assert_eq!(account, a["id"].as_str().unwrap());
    let bearer = s.fake.with(|st| st.bearers.last().cloned().unwrap());
    assert!(bearer.starts_with("Bearer at-erin-"), "{bearer}");
    let beta = s.fake.with(|st| {
        st.last_headers.as_ref().unwrap()["anthropic-beta"]
            .to_str()
            .unwrap()
            .to_string()
    });
    assert!(beta.contains("oauth-2025-04-20"), "{beta}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_login_for_qwen_then_requests_on_its_resource_url() {
    let s = Setup::new("").await;
    s.fake.with(|st| st.next_user = "frank".into());
    let out = run_binary_env(
        &s.data(),
        &["--config", &s.config, "login", "qwen", "--label", "q1"],
        &s.env(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ABCD-1234"), "{stdout}");
    let a = s.account("q1");
    assert_eq!(a["provider"], "qwen-code");
    let gw = s.serve();
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .json(&json!({"model": "qw/qwen3-coder-plus", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let (status, _, text) = text_of(r).await;
    assert_eq!((status, text.as_str()), (200, "served by frank"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_each_providers_credential_file_and_serve_each_subscriber_format() {
    let s = Setup::new("").await;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/credentials");
    let codex: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("codex.auth.json")).unwrap())
            .unwrap();
    s.fake
        .seed("alice", "sk-ant-oat01-alice", "sk-ant-ort01-alice");
    s.fake.seed(
        "bob",
        codex["tokens"]["access_token"].as_str().unwrap(),
        "rt-bob-codex",
    );
    s.fake.seed("carol", "ya29.carol-gemini", "1//carol-gemini");
    s.fake.seed("dave", "dave-qwen-access", "dave-qwen-refresh");
    // Claude Code's file where Claude Code keeps it (~/.claude/.credentials.json).
    let home = s.dir.path().join("home");
    std::fs::create_dir_all(home.join(".claude")).unwrap();
    std::fs::copy(
        fixtures.join("claude.credentials.json"),
        home.join(".claude/.credentials.json"),
    )
    .unwrap();
    s.cli(&["login", "claude", "--import", "--label", "alice"]);
    let from = |f: &str| fixtures.join(f).display().to_string();
    s.cli(&[
        "login",
        "codex",
        "--import",
        "--from",
        &from("codex.auth.json"),
        "--label",
        "bob",
    ]);
    s.cli(&[
        "login",
        "gemini",
        "--import",
        "--from",
        &from("gemini.oauth_creds.json"),
        "--label",
        "carol",
    ]);
    // Qwen's resource_url names the API host; here it is the fake's.
    let qwen = std::fs::read_to_string(fixtures.join("qwen.oauth_creds.json"))
        .unwrap()
        .replace("portal.qwen.ai", &format!("{}/v1", s.fake.base()));
    let qpath = s.dir.path().join("qwen.json");
    std::fs::write(&qpath, qwen).unwrap();
    s.cli(&[
        "login",
        "qwen",
        "--import",
        "--from",
        qpath.to_str().unwrap(),
        "--label",
        "dave",
    ]);
    let list = s.cli(&["accounts", "list"]);
    assert!(list.contains("claude plan max"), "{list}");
    let bob = s.account("bob");
    assert_eq!(bob["subscription"]["plan"], "plus");
    assert_eq!(bob["subscription"]["email"], "bob@example.com");
    assert_eq!(
        bob["subscription"]["token_expires_at"],
        "2100-01-01T00:00:00Z"
    );
    // A file of the wrong shape is refused with the reason.
    let out = run_binary_env(
        &s.data(),
        &[
            "--config",
            &s.config,
            "login",
            "codex",
            "--import",
            "--from",
            &from("claude.credentials.json"),
        ],
        &s.env(),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tokens object"));

    let gw = s.serve();
    // Claude: Anthropic Messages, forwarded.
    let (status, _, text) = text_of(messages(&gw, "cc/claude-sonnet-4-5").await).await;
    assert_eq!((status, text.as_str()), (200, "served by alice"));
    // Codex: an OpenAI Chat client, translated to the Responses backend (streamed there, collected here).
    let chat = |model: &str, stream: bool| {
        client()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(CLIENT_KEY)
            .json(&json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    let (status, _, text) = text_of(chat("cx/gpt-5.5", false).await.unwrap()).await;
    assert_eq!((status, text.as_str()), (200, "served by bob"));
    let body = s.fake.with(|st| st.last_body.clone());
    assert_eq!(
        (body["stream"].clone(), body["store"].clone()),
        (json!(true), json!(false))
    );
    let acct = s.fake.with(|st| {
        st.last_headers.as_ref().unwrap()["chatgpt-account-id"]
            .to_str()
            .unwrap()
            .to_string()
    });
    assert_eq!(acct, "acct-bob");
    // Gemini Code Assist, streamed: envelopes opened event by event.
    let r = chat("gc/gemini-2.5-pro", true).await.unwrap();
    assert_eq!(r.status(), 200);
    let sse = r.text().await.unwrap();
    let text: String = sse
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    assert_eq!(text, "served by carol");
    let env = s.fake.with(|st| st.last_body.clone());
    assert_eq!(env["project"], "proj-carol");
    // Qwen: OpenAI Chat at the account's resource URL.
    let (status, _, text) = text_of(chat("qw/qwen3-coder-plus", false).await.unwrap()).await;
    assert_eq!((status, text.as_str()), (200, "served by dave"));
    // The windows of the Claude and Codex answers are stored and shown.
    let q = s.json(&["quota", "--provider", "codex"]);
    let w = &q["accounts"][0]["windows"];
    assert_eq!(w[0]["window"], "primary");
    assert_eq!(w[0]["used_pct"], 10.0);
    assert!(
        w[0]["forecast"].as_str().unwrap().contains("5-hour window"),
        "{w}"
    );
    let q = s.cli(&["quota", "--provider", "claude-code"]);
    assert!(q.contains("5h") && q.contains("7d"), "{q}");
}

/// Both clients over TLS: the token refresh (reqwest, sign-in and token
/// calls) and the subscriber request (the hot client) share one set of roots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_and_the_subscriber_call_both_go_over_tls() {
    let s = Setup::over_tls().await;
    assert!(s.fake.base().starts_with("https://localhost:"));
    s.fake.seed("tess", "at-tess-old", "rt-tess-0");
    s.import(
        "claude",
        "tess",
        &claude_creds("at-tess-old", "rt-tess-0", past()),
        0,
    );
    let gw = s.serve();
    let (status, _, text) = text_of(messages(&gw, "cc/claude-haiku-4-5").await).await;
    assert_eq!(
        (status, text.as_str()),
        (200, "served by tess"),
        "{}",
        gw.stderr()
    );
    assert_eq!(s.fake.refresh_calls(), 1);
    assert_eq!(s.fake.served("tess"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_make_exactly_one_refresh_and_rotation_survives_sigkill() {
    let s = Setup::new("").await;
    s.fake.seed("gina", "at-gina-old", "rt-gina-0");
    s.fake.with(|st| st.refresh_delay_ms = 300);
    s.import(
        "claude",
        "gina",
        &claude_creds("at-gina-old", "rt-gina-0", past()),
        0,
    );
    let mut gw = s.serve();
    let calls = (0..50).map(|_| messages(&gw, "cc/claude-haiku-4-5"));
    let answers = futures::future::join_all(calls).await;
    for r in answers {
        let (status, _, text) = text_of(r).await;
        assert_eq!((status, text.as_str()), (200, "served by gina"));
    }
    assert_eq!(
        s.fake.refresh_calls(),
        1,
        "exactly one refresh for 50 concurrent requests"
    );
    // Every request used the refreshed token.
    let old = s.fake.with(|st| {
        st.bearers
            .iter()
            .filter(|b| b.ends_with("at-gina-old"))
            .count()
    });
    assert_eq!(old, 0);
    // The rotated refresh token was committed before any answer: kill -9, restart,
    // force the next refresh (the new access token is made to expire), and the
    // stored successor is what gets sent; the spent one would be refused.
    gw.signal("KILL");
    gw.wait(Duration::from_secs(10));
    let conn = rusqlite::Connection::open(s.data().join("omniroute.sqlite")).unwrap();
    let (count, inflight): (i64, Option<Vec<u8>>) = conn
        .query_row(
            "SELECT refresh_count, inflight_enc FROM oauth_credentials",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((count, inflight), (1, None));
    conn.execute("UPDATE oauth_credentials SET expires_ms = 1", [])
        .unwrap();
    drop(conn);
    let gw = s.serve();
    let (status, _, _) = text_of(messages(&gw, "cc/claude-haiku-4-5").await).await;
    assert_eq!(status, 200);
    let used = s.fake.with(|st| st.refresh_tokens_used.clone());
    assert_eq!(used.len(), 2);
    assert_eq!(used[0], "rt-gina-0");
    assert!(
        used[1].starts_with("rt-gina-") && used[1] != "rt-gina-0",
        "{used:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_failure_marks_only_that_account_and_routing_moves_on() {
    let s = Setup::new("").await;
    s.fake.seed("hal", "at-hal-1", "rt-hal-1");
    s.fake.with(|st| st.revoked.insert("rt-dead".into()));
    let dead = s.import(
        "claude",
        "dead",
        &claude_creds("at-dead-0", "rt-dead", past()),
        0,
    );
    let live = s.import(
        "claude",
        "hal",
        &claude_creds("at-hal-1", "rt-hal-1", far()),
        1,
    );
    let gw = s.serve();
    let r = messages(&gw, "cc/claude-sonnet-4-5").await;
    let failed = r.headers()["x-omniroute-failed"]
        .to_str()
        .unwrap()
        .to_string();
    let (status, account, text) = text_of(r).await;
    assert_eq!((status, text.as_str()), (200, "served by hal"));
    assert_eq!(account, live["id"].as_str().unwrap());
    assert!(
        failed.contains(dead["id"].as_str().unwrap()) && failed.contains("revoked"),
        "{failed}"
    );
    let a = s.account("dead");
    assert_eq!(a["usable"], false);
    assert!(
        a["problem"]
            .as_str()
            .unwrap()
            .starts_with("revoked: invalid_grant"),
        "{a}"
    );
    assert_eq!(a["subscription"]["status"], "revoked");
    assert_eq!(s.account("hal")["usable"], true);
    // Later requests skip it without another refresh attempt.
    let (status, _, _) = text_of(messages(&gw, "cc/claude-sonnet-4-5").await).await;
    assert_eq!(status, 200);
    assert_eq!(s.fake.refresh_calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_window_moves_to_the_next_account_and_back_after_the_reset() {
    let s = Setup::new("").await;
    s.fake.seed("ivy", "at-ivy", "rt-ivy");
    s.fake.seed("jon", "at-jon", "rt-jon");
    let ivy = s.import("claude", "ivy", &claude_creds("at-ivy", "rt-ivy", far()), 0);
    let jon = s.import("claude", "jon", &claude_creds("at-jon", "rt-jon", far()), 1);
    let (ivy, jon) = (
        ivy["id"].as_str().unwrap().to_string(),
        jon["id"].as_str().unwrap().to_string(),
    );
    let gw = s.serve();
    let n = std::sync::atomic::AtomicU32::new(0);
    let next = || {
        format!(
            "conversation {}",
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        )
    };
    let (_, account, _) = text_of(say(&gw, "cc/claude-sonnet-4-5", &next()).await).await;
    assert_eq!(account, ivy);
    // Ivy's 5-hour window runs out; it resets in 3 s (virtual hours: the reset
    // is what the provider says, the gateway only reads it).
    let reset_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 3000;
    s.fake
        .with(|st| st.exhausted_until.insert("ivy".into(), reset_ms));
    let r = say(&gw, "cc/claude-sonnet-4-5", &next()).await;
    let failed = r.headers()["x-omniroute-failed"]
        .to_str()
        .unwrap()
        .to_string();
    let (status, account, _) = text_of(r).await;
    assert_eq!((status, account.as_str()), (200, jon.as_str()));
    assert!(
        failed.contains("429") && failed.contains("plan quota exhausted"),
        "{failed}"
    );
    // Exactly that account rests: the next request does not try it.
    let r = say(&gw, "cc/claude-sonnet-4-5", &next()).await;
    let skipped = r.headers()["x-omniroute-skipped"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        skipped.contains(&ivy) && skipped.contains("account cooldown"),
        "{skipped}"
    );
    assert_eq!(text_of(r).await.1, jon);
    let served_ivy = s.fake.served("ivy");
    let q = s.json(&["quota", "--provider", "claude-code"]);
    let qa = q["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account"] == ivy.as_str())
        .unwrap()
        .clone();
    assert_eq!(qa["usable"], false);
    assert!(qa["cooldown_s"].as_f64().unwrap() <= 4.5, "{qa}");
    let w5 = qa["windows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["window"] == "5h")
        .unwrap()
        .clone();
    assert_eq!(w5["used_pct"], 100.0);
    assert!(w5["forecast"].as_str().unwrap().contains("used up"), "{w5}");
    // After the reset Ivy is first again.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, account, _) = text_of(say(&gw, "cc/claude-sonnet-4-5", &next()).await).await;
        assert_eq!(status, 200);
        if account == ivy {
            break;
        }
        assert!(Instant::now() < deadline, "ivy never came back");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(s.fake.served("ivy"), served_ivy + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overage_answer_cools_the_account_and_the_next_serves() {
    let s = Setup::new("").await;
    s.fake.seed("kim", "at-kim", "rt-kim");
    s.fake.seed("lee", "at-lee", "rt-lee");
    let kim = s.import("claude", "kim", &claude_creds("at-kim", "rt-kim", far()), 0);
    s.import("claude", "lee", &claude_creds("at-lee", "rt-lee", far()), 1);
    s.fake.with(|st| st.overage.insert("kim".into()));
    let gw = s.serve();
    let r = messages(&gw, "cc/claude-sonnet-4-5").await;
    let failed = r.headers()["x-omniroute-failed"]
        .to_str()
        .unwrap()
        .to_string();
    let (status, _, text) = text_of(r).await;
    assert_eq!((status, text.as_str()), (200, "served by lee"));
    assert!(failed.contains("extra usage"), "{failed}");
    let q = s.json(&["quota", "--provider", "claude-code"]);
    let qa = q["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account"] == kim["id"])
        .unwrap()
        .clone();
    assert!(
        qa["cooldown_reason"]
            .as_str()
            .unwrap()
            .starts_with("quota_exhausted"),
        "{qa}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_codes_own_bearer_is_passed_through_then_the_gateways_accounts() {
    let s = Setup::new("mode = \"client-credential\"").await;
    s.fake.seed("client", "sk-ant-oat01-client", "r");
    s.fake.seed("own", "at-own", "rt-own");
    let own = s.import("claude", "own", &claude_creds("at-own", "rt-own", far()), 0);
    let gw = s.serve();
    let cc = |key: &str| {
        client()
            .post(gw.url("/v1/messages?beta=true"))
            .header("authorization", "Bearer sk-ant-oat01-client")
            .header("x-omniroute-key", key)
            .header("anthropic-version", "2023-06-01")
            .header("anthropic-beta", "claude-code-20250219,oauth-2025-04-20")
            .json(&json!({"model": "cc/claude-sonnet-4-5", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    let (status, account, text) = text_of(cc(CLIENT_KEY).await.unwrap()).await;
    assert_eq!((status, text.as_str()), (200, "served by client"));
    assert_eq!(account, "client-claude-code");
    assert_eq!(
        s.fake.with(|st| st.bearers.last().cloned().unwrap()),
        "Bearer sk-ant-oat01-client"
    );
    // The client's plan runs out: the same request continues on the gateway's account.
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 3_600_000;
    s.fake
        .with(|st| st.exhausted_until.insert("client".into(), later));
    let (status, account, text) = text_of(cc(CLIENT_KEY).await.unwrap()).await;
    assert_eq!((status, text.as_str()), (200, "served by own"));
    assert_eq!(account, own["id"].as_str().unwrap());
    // The gateway key still decides who may call.
    assert_eq!(cc("sk-wrong-key").await.unwrap().status(), 401);
    // A request without the client's bearer goes to the gateway's accounts directly.
    let (status, _, text) = text_of(messages(&gw, "cc/claude-sonnet-4-5").await).await;
    assert_eq!((status, text.as_str()), (200, "served by own"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_anthropic_and_openai_sdks_on_subscription_accounts() {
    let Some(python) = support::sdk_python() else {
        return;
    };
    let s = Setup::new("").await;
    let codex_access = "eyJhbGciOiJub25lIn0.eyJleHAiOjQxMDI0NDQ4MDB9.c2ln";
    s.fake.seed("alice", "at-alice", "rt-alice");
    s.fake.seed("bob", codex_access, "rt-bob");
    s.fake.seed("carol", "at-carol", "rt-carol");
    s.import(
        "claude",
        "alice",
        &claude_creds("at-alice", "rt-alice", far()),
        0,
    );
    s.import(
        "codex",
        "bob",
        &json!({"tokens": {"access_token": codex_access, "refresh_token": "rt-bob", "account_id": "acct-bob"}}),
        0,
    );
    s.import(
        "gemini",
        "carol",
        &json!({"access_token": "at-carol", "refresh_token": "rt-carol", "expiry_date": far()}),
        0,
    );
    let gw = s.serve();
    let path = format!(
        "{}/tests/python/subscription_sdk.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = tokio::process::Command::new(python)
        .arg(&path)
        .env("OMNIROUTE_BASE", &gw.base)
        .env("OMNIROUTE_BASE_URL", gw.url("/v1"))
        .env("OMNIROUTE_KEY", CLIENT_KEY)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("all checks passed"),
        "{stdout}\n{}\n--- gateway log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_stays_on_its_account_until_that_account_runs_out() {
    let s = Setup::new("").await;
    for u in ["mia", "ned"] {
        s.fake.seed(u, &format!("at-{u}"), &format!("rt-{u}"));
    }
    let mia = s.import("claude", "mia", &claude_creds("at-mia", "rt-mia", far()), 0);
    let ned = s.import("claude", "ned", &claude_creds("at-ned", "rt-ned", far()), 1);
    let (mia, ned) = (
        mia["id"].as_str().unwrap().to_string(),
        ned["id"].as_str().unwrap().to_string(),
    );
    let gw = s.serve();
    let turn = |session: &'static str| {
        client()
            .post(gw.url("/v1/messages"))
            .header("x-api-key", CLIENT_KEY)
            .header("x-claude-code-session-id", session)
            .json(&json!({"model": "cc/claude-sonnet-4-5", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    assert_eq!(text_of(turn("s1").await.unwrap()).await.1, mia);
    // Mia runs out mid-conversation: the session moves to Ned and stays there,
    // even once Mia could serve again, while Ned has quota.
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 1000;
    s.fake
        .with(|st| st.exhausted_until.insert("mia".into(), soon));
    assert_eq!(text_of(turn("s1").await.unwrap()).await.1, ned);
    // Past Mia's reset (whole seconds in the header) and her cooldown.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    for _ in 0..3 {
        assert_eq!(text_of(turn("s1").await.unwrap()).await.1, ned);
    }
    // A new conversation starts on the first account again.
    assert_eq!(text_of(turn("s2").await.unwrap()).await.1, mia);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codexs_own_chatgpt_token_is_passed_through_then_the_gateways_account() {
    let s = Setup::with_modes("", "mode = \"client-credential\"").await;
    let jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJjbGllbnQifQ.c2ln";
    s.fake.seed("codexclient", jwt, "r");
    let own = "eyJhbGciOiJub25lIn0.eyJleHAiOjQxMDI0NDQ4MDB9.b3du";
    s.fake.seed("codexown", own, "rt-own");
    let mine = s.import(
        "codex",
        "own",
        &json!({"tokens": {"access_token": own, "refresh_token": "rt-own", "account_id": "acct-own"}}),
        0,
    );
    let gw = s.serve();
    let ask = || {
        client()
            .post(gw.url("/v1/responses"))
            .header("authorization", format!("Bearer {jwt}"))
            .header("chatgpt-account-id", "acct-client")
            .header("x-omniroute-key", CLIENT_KEY)
            .json(&json!({"model": "cx/gpt-5.5", "input": "hi"}))
            .send()
    };
    let r = ask().await.unwrap();
    assert_eq!(r.headers()["x-omniroute-account"], "client-codex");
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["output"][0]["content"][0]["text"],
        "served by codexclient"
    );
    let acct = s.fake.with(|st| {
        st.last_headers.as_ref().unwrap()["chatgpt-account-id"]
            .to_str()
            .unwrap()
            .to_string()
    });
    assert_eq!(acct, "acct-client");
    // Its plan runs out (429 usage_limit_reached): the gateway's own account answers.
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 3_600_000;
    s.fake
        .with(|st| st.exhausted_until.insert("codexclient".into(), later));
    let r = ask().await.unwrap();
    assert_eq!(
        r.headers()["x-omniroute-account"],
        mine["id"].as_str().unwrap()
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["output"][0]["content"][0]["text"], "served by codexown");
}

/// Run `omniroute login KIND ARGS`, play the browser on the URL it prints
/// (the fake's consent page redirects to the callback), wait for it to finish.
async fn code_login(s: &Setup, kind: &str, args: &[&str]) -> String {
    let mut child = Command::new(binary_path())
        .args([
            "--data-dir",
            s.data().to_str().unwrap(),
            "--config",
            &s.config,
            "login",
            kind,
        ])
        .args(args)
        .envs(s.env())
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("login printed no URL").unwrap();
        if let Some(u) = line.trim().strip_prefix("http") {
            break format!("http{u}");
        }
    };
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .unwrap();
    let page = browser
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Signed in"), "{page}");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_and_codex_code_flows_and_codex_device_code() {
    let s = Setup::new("").await;
    s.fake.with(|st| st.next_user = "gus".into());
    let url = code_login(&s, "gemini", &["--label", "g"]).await;
    assert!(
        url.contains("/o/oauth2/v2/auth?") && url.contains("access_type=offline"),
        "{url}"
    );
    assert!(
        url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"),
        "{url}"
    );
    let g = s.account("g");
    // loadCodeAssist at login: the project and tier are kept.
    assert_eq!(g["subscription"]["plan"], "free-tier");
    s.fake.with(|st| st.next_user = "hank".into());
    let url = code_login(&s, "codex", &["--label", "c", "--callback-port", "0"]).await;
    assert!(url.contains("codex_cli_simplified_flow=true"), "{url}");
    let c = s.account("c");
    assert_eq!(c["subscription"]["plan"], "pro");
    assert_eq!(c["subscription"]["email"], "hank@example.com");
    s.fake.with(|st| st.next_user = "ike".into());
    let out = run_binary_env(
        &s.data(),
        &[
            "--config", &s.config, "login", "codex", "--device", "--label", "d",
        ],
        &s.env(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("WXYZ-9876") && stdout.contains("/codex/device"),
        "{stdout}"
    );
    assert_eq!(s.account("d")["subscription"]["email"], "ike@example.com");
    let gw = s.serve();
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .json(&json!({"model": "gc/gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(text_of(r).await.2, "served by gus");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_browser_login_takes_the_pasted_code() {
    use std::io::Write;
    let s = Setup::new("").await;
    s.fake.with(|st| st.next_user = "pat".into());
    let mut child = Command::new(binary_path())
        .args([
            "--data-dir",
            s.data().to_str().unwrap(),
            "--config",
            &s.config,
        ])
        .args(["login", "claude", "--no-browser", "--label", "ssh"])
        .envs(s.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("login printed no URL").unwrap();
        if let Some(u) = line.trim().strip_prefix("http") {
            break format!("http{u}");
        }
    };
    // Anthropic's own code page is the redirect: the person copies code#state from it.
    assert!(
        url.contains("redirect_uri=") && url.contains("oauth%2Fcode%2Fcallback"),
        "{url}"
    );
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let consent = browser.get(&url).send().await.unwrap();
    let shown = url::Url::parse(consent.headers()["location"].to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<String, String> = shown.query_pairs().into_owned().collect();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}#{}", q["code"], q["state"]).unwrap();
    drop(stdin);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s.account("ssh")["subscription"]["email"], "pat@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_refresh_is_reported_when_its_token_turns_out_spent() {
    let s = Setup::new("").await;
    s.import(
        "claude",
        "cut",
        &claude_creds("at-cut", "rt-cut", past()),
        0,
    );
    // As a crash between the refresh call and storing its answer leaves it:
    // the marker set, and the provider having rotated the token already.
    let conn = rusqlite::Connection::open(s.data().join("omniroute.sqlite")).unwrap();
    conn.execute("UPDATE oauth_credentials SET inflight_enc = X'00'", [])
        .unwrap();
    drop(conn);
    s.fake.with(|st| st.spent.insert("rt-cut".into()));
    let before = s.account("cut");
    assert_eq!(before["subscription"]["refresh_interrupted"], true);
    let gw = s.serve();
    let (status, _, _) = text_of(messages(&gw, "cc/claude-sonnet-4-5").await).await;
    assert_eq!(status, 502);
    let a = s.account("cut");
    let problem = a["problem"].as_str().unwrap();
    assert!(
        problem.contains("already used") && problem.contains("interrupted"),
        "{problem}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_windows_reach_the_mcp_quota_tool_and_the_a2a_skill() {
    use std::io::Write;
    let s = Setup::new("").await;
    s.fake.seed("quinn", "at-quinn", "rt-quinn");
    s.import(
        "claude",
        "quinn",
        &claude_creds("at-quinn", "rt-quinn", far()),
        0,
    );
    let gw = s.serve();
    assert_eq!(
        text_of(messages(&gw, "cc/claude-sonnet-4-5").await).await.0,
        200
    );
    // A2A quota-management.
    let v: Value = client()
        .post(gw.url("/a2a"))
        .bearer_auth(CLIENT_KEY)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "message/send",
            "params": {"skill": "quota-management", "messages": [{"role": "user", "content": "quota summary"}]}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = v["result"]["artifacts"][0]["parts"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        text.contains("5h window 10% used") && text.contains("at this pace"),
        "{v}"
    );
    // MCP over stdio, bridged to the running gateway.
    let mut mcp = Command::new(binary_path())
        .args(["--data-dir", s.data().to_str().unwrap(), "--mcp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = mcp.stdin.take().unwrap();
    let mut lines = BufReader::new(mcp.stdout.take().unwrap()).lines();
    let answer = |id: i64, lines: &mut std::io::Lines<BufReader<std::process::ChildStdout>>| loop {
        let v: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap_or_default();
        if v["id"] == id {
            return v;
        }
    };
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    writeln!(stdin, "{init}").unwrap();
    answer(1, &mut lines);
    writeln!(
        stdin,
        "{}",
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
    )
    .unwrap();
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "omniroute_check_quota", "arguments": {"provider": "claude-code"}}});
    writeln!(stdin, "{call}").unwrap();
    let result = answer(2, &mut lines);
    drop(stdin);
    let _ = mcp.kill();
    let _ = mcp.wait();
    let w = &result["result"]["structuredContent"]["accounts"][0]["windows"];
    assert_eq!(w[0]["window"], "5h", "{result}");
    assert_eq!(w[0]["used_pct"], 10.0);
    assert!(
        w[0]["forecast"].as_str().unwrap().contains("5-hour window"),
        "{result}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headroom_orders_the_pool_by_the_reported_windows_and_a_static_token_works() {
    let combos = r#"
[[combos]]
name = "only-a"
models = [{ model = "cc/claude-sonnet-4-5", account = "a" }]

[[combos]]
name = "only-b"
models = [{ model = "cc/claude-sonnet-4-5", account = "b" }]

[[combos]]
name = "pool"
strategy = "headroom"
models = ["cc/claude-sonnet-4-5"]
"#;
    let s = Setup::new(combos).await;
    s.fake.seed("ana", "at-ana", "rt-ana");
    s.fake.seed("ben", "sk-ant-oat01-ben-long-lived", "-");
    s.import("claude", "a", &claude_creds("at-ana", "rt-ana", far()), 0);
    // A long-lived OAuth token added as a plain key is sent as the bearer too.
    s.cli(&[
        "accounts",
        "add",
        "claude-code",
        "--label",
        "b",
        "--api-key",
        "sk-ant-oat01-ben-long-lived",
        "--priority",
        "1",
    ]);
    let gw = s.serve();
    for _ in 0..3 {
        assert_eq!(
            text_of(messages(&gw, "only-a").await).await.2,
            "served by ana"
        );
    }
    assert_eq!(
        text_of(messages(&gw, "only-b").await).await.2,
        "served by ben"
    );
    // Ana's 5-hour window is at 30 %, Ben's at 10 %: headroom puts Ben first.
    let r = messages(&gw, "pool").await;
    assert_eq!(r.headers()["x-omniroute-strategy"], "headroom");
    assert_eq!(text_of(r).await.2, "served by ben");
}

/// The dashboard's way in, over the admin API: a sign-in run by the gateway
/// (its URL answered at once, the callback on localhost, the status polled)
/// and an import of the CLI's credential file from the gateway's machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_import_over_the_admin_api() {
    let s = Setup::new("").await;
    let admin = s.json(&["keys", "create", "--scope", "admin", "--label", "ops"])["key"]
        .as_str()
        .unwrap()
        .to_string();
    let gw = s.serve();
    let http = client();
    let post = |path: &str, body: Value| {
        http.post(format!("{}{path}", gw.base))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let started = post(
        "/api/subscriptions/sign-in",
        json!({"kind": "claude", "label": "web", "callback_port": 0}),
    )
    .await
    .unwrap();
    assert_eq!(started.status(), 200);
    let started: Value = started.json().await.unwrap();
    let url = started["url"].as_str().unwrap();
    assert!(url.contains("code_challenge="), "{url}");
    // The user's browser: the provider's page sends it to the gateway's localhost callback.
    let page = http.get(url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Signed in"), "{page}");
    let id = started["id"].as_str().unwrap();
    let status = |id: String| {
        let (http, base, admin) = (http.clone(), gw.base.clone(), admin.clone());
        async move {
            http.get(format!("{base}/api/subscriptions/sign-in/{id}"))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let done: Value = loop {
        let v: Value = status(id.to_string()).await.json().await.unwrap();
        if v["state"] != "pending" || Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done["state"], "signed_in", "{done}");
    assert_eq!(done["account"]["label"], "web");
    assert_eq!(done["account"]["provider"], "claude-code");
    assert_eq!(status("signin_nope".into()).await.status(), 404);
    // Import: the file Claude Code keeps on this machine.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/credentials");
    let home = s.dir.path().join("home");
    std::fs::create_dir_all(home.join(".claude")).unwrap();
    std::fs::copy(
        fixtures.join("claude.credentials.json"),
        home.join(".claude/.credentials.json"),
    )
    .unwrap();
    let imported = post(
        "/api/subscriptions/import",
        json!({"kind": "claude", "label": "cli"}),
    )
    .await
    .unwrap();
    assert_eq!(imported.status(), 200);
    let imported: Value = imported.json().await.unwrap();
    assert_eq!(imported["label"], "cli");
    let bad = post("/api/subscriptions/import", json!({"kind": "bard"}))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let text = bad.text().await.unwrap();
    assert!(text.contains("claude, codex, gemini or qwen"), "{text}");
    // Not admin: refused.
    let r = http
        .post(format!("{}/api/subscriptions/import", gw.base))
        .bearer_auth(CLIENT_KEY)
        .json(&json!({"kind": "claude"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let listed = s.json(&["accounts", "list"]);
    let labels: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["provider"] == "claude-code")
        .filter_map(|a| a["label"].as_str())
        .collect();
    assert!(
        labels.contains(&"web") && labels.contains(&"cli"),
        "{labels:?}"
    );
}
