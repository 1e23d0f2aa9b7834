//! Shared test support: the fake upstream and ways to start the gateway,
//! in-process or as the real binary, on 127.0.0.1:0.
#![allow(dead_code)]

pub mod fake_subscriptions;
pub mod fake_upstream;
pub mod schema_check;
pub mod tls;

use omniroute::config::FileConfig;
use omniroute::gateway::{Gateway, Settings};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const CLIENT_KEY: &str = "sk-test-123";

/// The issue's example config, pointed at `base_url`.
pub fn example_config(base_url: &str) -> String {
    format!(
        r#"[server]
port = 20128
api_keys = [{{ key = "sk-test-123", scopes = ["admin"] }}]   # a client key that may manage the gateway

[[providers]]
id = "mock"                         # also the model prefix: clients ask for "mock/gpt-4o-mini"
format = "openai"                   # wire format of the upstream
base_url = "{base_url}"
api_key = "upstream-secret"         # or api_key_env = "MOCK_API_KEY"
tier = "api-key"                    # subscription | api-key | cheap | free
models = ["gpt-4o-mini"]
"#
    )
}

/// A gateway running in this process.
pub struct InProcess {
    pub gw: Arc<Gateway>,
    pub base: String,
    pub cancel: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
    pub dir: tempfile::TempDir,
}

impl InProcess {
    pub async fn start(config_toml: &str) -> InProcess {
        Self::start_with(config_toml, |_| {}).await
    }

    pub async fn start_with(config_toml: &str, tweak: impl FnOnce(&mut Settings)) -> InProcess {
        Self::start_at(None, config_toml, tweak).await
    }

    /// A gateway on an existing data dir (a restart), its config file applied.
    pub async fn start_in(data_dir: &Path, config_toml: &str) -> InProcess {
        Self::start_at(Some(data_dir), config_toml, |_| {}).await
    }

    async fn start_at(
        data_dir: Option<&Path>,
        config_toml: &str,
        tweak: impl FnOnce(&mut Settings),
    ) -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let path = data_dir.unwrap_or(dir.path()).to_path_buf();
        let mut settings = Settings::with_data_dir(path);
        settings.port = 0;
        let cfg = FileConfig::parse(config_toml).unwrap();
        cfg.validate().unwrap();
        // As the binary does: the file's cache and idempotency sections.
        settings.cache =
            omniroute::cache::CacheSettings::from_sections(&cfg.cache, &cfg.idempotency);
        tweak(&mut settings);
        let gw = Gateway::open(settings).await.unwrap();
        omniroute::ops::apply::apply_config(&gw, &cfg)
            .await
            .unwrap();
        let listener = omniroute::server::bind("127.0.0.1", 0).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let cancel = CancellationToken::new();
        let task = tokio::spawn({
            let gw = gw.clone();
            let cancel = cancel.clone();
            async move {
                omniroute::server::run(gw, listener, cancel).await.unwrap();
            }
        });
        InProcess {
            gw,
            base,
            cancel,
            task,
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn stop(self) {
        self.cancel.cancel();
        self.task.await.unwrap();
    }
}

/// A client for the gateway on loopback. Tests speak plain HTTP only, so the
/// TLS root store (about 30 ms to load per client in a debug build) is skipped.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([])
        .build()
        .unwrap()
}

/// The real binary, started with `args`, with its printed URL and first-start key.
pub struct Binary {
    pub child: Child,
    pub base: String,
    pub first_key: Option<String>,
    pub stderr_path: PathBuf,
    /// Every line printed to stdout so far.
    pub stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

pub fn binary_path() -> &'static str {
    env!("CARGO_BIN_EXE_omniroute")
}

pub fn run_binary(data_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(binary_path())
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("PORT")
        .env_remove("DATA_DIR")
        .output()
        .unwrap()
}

/// `run_binary` with extra environment variables.
pub fn run_binary_env(
    data_dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut cmd = Command::new(binary_path());
    cmd.arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("PORT")
        .env_remove("DATA_DIR")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

impl Binary {
    /// Start `omniroute --data-dir DIR --port 0 ARGS` and wait for its URL.
    pub fn start(data_dir: &Path, args: &[&str]) -> Binary {
        Self::start_env(data_dir, args, &[])
    }

    /// `start` with extra environment variables.
    pub fn start_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Binary {
        let stderr_path = data_dir.with_extension("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let level: &[&str] = if args.contains(&"--log-level") {
            &[]
        } else {
            &["--log-level", "info"]
        };
        let mut child = Command::new(binary_path())
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--port", "0"])
            .args(level)
            .args(args)
            .envs(env.iter().copied())
            .env_remove("PORT")
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = lines.clone();
        std::thread::spawn(move || {
            let mut key = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                seen.lock().unwrap().push(line.clone());
                if let Some(k) = line.trim().strip_prefix("API key:") {
                    key = Some(k.trim().to_string());
                }
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send((url, key.clone()));
                }
            }
        });
        let (base, first_key) = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(v) => v,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "gateway did not start: {}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
        };
        Binary {
            child,
            base,
            first_key,
            stderr_path,
            stdout: lines,
        }
    }

    /// The rest of the first stdout line that starts with `prefix` (trimmed), waiting up to 10 s.
    pub fn printed(&self, prefix: &str) -> String {
        let start = std::time::Instant::now();
        loop {
            if let Some(l) = self
                .stdout
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_string()))
            {
                return l;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the gateway never printed {prefix:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait for exit (up to `limit`), returning the exit status.
    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!("gateway did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python with the official SDKs (set by scripts/test.sh); None skips an
/// SDK test, unless OMNIROUTE_REQUIRE_SDK is set.
pub fn sdk_python() -> Option<String> {
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
