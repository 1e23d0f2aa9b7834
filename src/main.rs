//! The `omniroute` binary: CLI parsing and wiring; all logic lives in the library.
#![allow(clippy::print_stdout)]

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use omniroute::access::{Principal, Scopes};
use omniroute::catalog::{Tier, WireFormat};
use omniroute::config::{self, FileConfig, ProviderEntry};
use omniroute::gateway::{Gateway, Settings};
use omniroute::ops::{self, Actor};
use omniroute::store::UsageGroup;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

// mimalloc: per-thread free lists make the many small allocations of a proxied
// request cheaper than glibc malloc (measured with bench/run.sh).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "omniroute",
    version,
    about = "AI gateway: one local endpoint, many providers, tiered fallback"
)]
struct Cli {
    /// Address to bind.
    #[arg(long, env = "HOST", global = true)]
    host: Option<String>,
    /// Port to listen on (default 20128).
    #[arg(long, env = "PORT", global = true)]
    port: Option<u16>,
    /// Serve the dashboard, admin API and /metrics on this port instead (split-port mode).
    #[arg(long, env = "DASHBOARD_PORT", global = true)]
    dashboard_port: Option<u16>,
    /// Open the dashboard in the default browser once the gateway listens.
    #[arg(long)]
    open: bool,
    /// Data directory (default ~/.omniroute).
    #[arg(long, env = "DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Config file (TOML) applied into the store at startup.
    #[arg(long, env = "OMNIROUTE_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Log level or filter (error, warn, info, debug, trace, or a tracing filter).
    #[arg(long, env = "LOG_LEVEL", default_value = "info", global = true)]
    log_level: String,
    /// Accept requests without a client key (only when bound to loopback).
    #[arg(long, global = true)]
    no_auth: bool,
    /// Print results as JSON.
    #[arg(long, global = true)]
    json: bool,
    /// Speak MCP over stdio (for Claude Code, Cursor, Codex...). Bridges to the
    /// gateway running on the same data dir when there is one.
    #[arg(long)]
    mcp: bool,
    /// Add the fixtures the official conformance suites drive (the A2A TCK's
    /// `tck-*` scenarios, the MCP suite's `test_*` tools, resources and
    /// prompts). For running those suites only; never in production.
    #[arg(
        long,
        global = true,
        hide = true,
        env = "OMNIROUTE_CONFORMANCE_FIXTURES"
    )]
    conformance_fixtures: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the gateway (the default).
    Serve,
    /// Client API keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Providers: the catalog and custom ones.
    #[command(subcommand)]
    Providers(ProvidersCmd),
    /// Accounts: credentials for providers (several per provider allowed).
    #[command(subcommand)]
    Accounts(AccountsCmd),
    /// Combos: named routing plans clients use as a model.
    #[command(subcommand)]
    Combos(CombosCmd),
    /// Explain how a model or combo would be routed now.
    #[command(subcommand)]
    Route(RouteCmd),
    /// Budgets in USD/tokens per key, account, tier, combo or globally.
    #[command(subcommand)]
    Budgets(BudgetsCmd),
    /// Sign a subscription account in (claude, codex, gemini, qwen) with the
    /// provider's own OAuth flow, or import its CLI's stored credential.
    Login(LoginArgs),
    /// Quota and budget per account and tier: used, limit, remaining, reset, cooldown.
    Quota {
        #[arg(long)]
        provider: Option<String>,
    },
    /// The key that encrypts stored secrets (`secret.key`).
    #[command(subcommand)]
    Secrets(SecretsCmd),
    /// The answer cache: figures, flushes, per-key policies.
    #[command(subcommand)]
    Cache(CacheCmd),
    /// Usage summary for a period.
    Usage {
        /// Period to cover, e.g. 24h, 7d, 30d.
        #[arg(long, default_value = "24h")]
        since: String,
        /// Group rows by.
        #[arg(long, value_enum, default_value = "provider")]
        by: GroupBy,
    },
}

#[derive(Args, Debug)]
struct LoginArgs {
    /// claude | codex | gemini | qwen
    kind: String,
    /// Name of this account (several per provider); default: its email, else "default".
    #[arg(long)]
    label: Option<String>,
    /// Take the credential the provider's own CLI stored on this machine.
    #[arg(long)]
    import: bool,
    /// With --import: the credential file (default: where that CLI keeps it).
    #[arg(long)]
    from: Option<PathBuf>,
    /// Print the URL instead of opening a browser; paste back the code or the
    /// URL the browser ends on (for SSH sessions).
    #[arg(long)]
    no_browser: bool,
    /// Sign in with a device code where the provider offers one (codex; qwen always does).
    #[arg(long)]
    device: bool,
    /// Port of the localhost callback (default: the provider's registered one, else any free port).
    #[arg(long)]
    callback_port: Option<u16>,
    /// Accept answers billed as extra usage (default: plan limits only).
    #[arg(long)]
    allow_overage: bool,
    /// Lower is tried first among this provider's accounts.
    #[arg(long)]
    priority: Option<i64>,
}

#[derive(Subcommand, Debug)]
enum CacheCmd {
    /// Hits, misses, bytes, hit rate, tokens and cost saved, by combo and key.
    Stats {
        /// Period to cover, e.g. 24h, 7d, 30d, or a date.
        #[arg(long, default_value = "30d")]
        since: String,
        /// Only this model or combo.
        #[arg(long)]
        combo: Option<String>,
    },
    /// Remove stored answers: all, or one model or combo's, or one namespace's.
    Flush {
        #[arg(long)]
        combo: Option<String>,
        /// A key id, or a namespace keys share.
        #[arg(long)]
        namespace: Option<String>,
    },
    /// Set a client key's cache mode or shared namespace (by id or hint).
    Key {
        id: String,
        /// auto (deterministic requests only), always or off; omit for the default.
        #[arg(long, value_parser = parse_cache_mode)]
        mode: Option<omniroute::cache::CacheMode>,
        /// Share answers with the other keys in this namespace; omit for the key's own.
        #[arg(long)]
        namespace: Option<String>,
    },
}

fn parse_cache_mode(s: &str) -> std::result::Result<omniroute::cache::CacheMode, String> {
    omniroute::cache::CacheMode::parse(s)
        .ok_or_else(|| format!("unknown cache mode {s:?}: auto, always or off"))
}

#[derive(Subcommand, Debug)]
enum SecretsCmd {
    /// After secret.key was lost or replaced: set it aside, make a new one and
    /// drop the stored secrets it can no longer decrypt (accounts stay, without keys).
    Reset {
        /// Confirm: the dropped secrets cannot be recovered without the old key.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand, Debug)]
enum CombosCmd {
    List,
    Show {
        name: String,
    },
    /// Create or replace a combo.
    Set {
        name: String,
        /// Steps: prefix/model or combo names, comma-separated.
        #[arg(long, value_delimiter = ',')]
        models: Option<Vec<String>>,
        #[arg(long)]
        strategy: Option<String>,
        /// Keep sessions on their target while it is healthy.
        #[arg(long)]
        sticky: bool,
        /// Daily USD cap for this combo.
        #[arg(long)]
        budget_usd: Option<f64>,
        /// The whole combo as JSON (instead of the flags).
        #[arg(long)]
        definition: Option<String>,
        /// Validate and print the diff without saving.
        #[arg(long)]
        dry_run: bool,
    },
    Delete {
        name: String,
    },
    /// Undo the last change to a combo.
    Rollback {
        name: String,
    },
    /// Send a tiny prompt through every target of a combo.
    Test {
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum RouteCmd {
    /// The ordered plan with reasons, and what is skipped and why.
    Explain {
        model: String,
        /// Estimated prompt tokens.
        #[arg(long)]
        tokens: Option<u64>,
        /// Client key id whose budgets apply.
        #[arg(long)]
        key: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum BudgetsCmd {
    List,
    /// Set a budget (omit both limits to remove it).
    Set {
        /// key | account | tier | combo | global
        scope: String,
        /// Key id, account id, tier or combo name (not for global).
        id: Option<String>,
        #[arg(long, default_value = "day")]
        period: String,
        #[arg(long)]
        usd: Option<f64>,
        #[arg(long)]
        tokens: Option<u64>,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCmd {
    /// Create a key (printed once); with --key, store that value instead.
    Create {
        #[arg(long)]
        label: Option<String>,
        /// Use this key value instead of generating one.
        #[arg(long)]
        key: Option<String>,
        /// What the key may do: inference (default), read, admin; comma-separated.
        #[arg(long, default_value = "inference", value_parser = parse_scopes)]
        scope: Scopes,
    },
    List,
    /// Replace a key's scopes (by id or hint).
    Scope {
        id: String,
        /// inference, read, admin; comma-separated.
        #[arg(long, value_parser = parse_scopes)]
        scope: Scopes,
    },
    /// Revoke a key by id or hint.
    Revoke {
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum ProvidersCmd {
    /// List the catalog and custom providers, with which are usable.
    List {
        /// Only usable providers.
        #[arg(long)]
        usable: bool,
    },
    /// Add a custom provider or adjust a catalog one (same keys as `[[providers]]`).
    Add(ProviderArgs),
}

#[derive(Args, Debug)]
struct ProviderArgs {
    /// Provider id, also the model prefix.
    id: String,
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    #[arg(long)]
    base_url: Option<String>,
    #[arg(long)]
    name: Option<String>,
    /// Upstream key (stored encrypted as the provider's "config" account).
    #[arg(long)]
    api_key: Option<String>,
    /// Env variable holding the upstream key.
    #[arg(long)]
    api_key_env: Option<String>,
    #[arg(long, value_enum)]
    tier: Option<TierArg>,
    /// Comma-separated model names.
    #[arg(long, value_delimiter = ',')]
    models: Option<Vec<String>>,
}

#[derive(Subcommand, Debug)]
enum AccountsCmd {
    /// Add a credential for a provider.
    Add {
        provider: String,
        #[arg(long)]
        label: Option<String>,
        /// The upstream key (stored encrypted). Prefer --api-key-env or --api-key-stdin.
        #[arg(long)]
        api_key: Option<String>,
        /// Name of an env variable that holds the key (read at startup, never stored).
        #[arg(long)]
        api_key_env: Option<String>,
        /// Read the key from standard input.
        #[arg(long)]
        api_key_stdin: bool,
        #[arg(long, value_enum)]
        tier: Option<TierArg>,
        /// Lower is tried first.
        #[arg(long)]
        priority: Option<i64>,
    },
    List {
        #[arg(long)]
        provider: Option<String>,
    },
    Remove {
        id: String,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum TierArg {
    Subscription,
    ApiKey,
    Cheap,
    Free,
}

impl From<TierArg> for Tier {
    fn from(t: TierArg) -> Tier {
        match t {
            TierArg::Subscription => Tier::Subscription,
            TierArg::ApiKey => Tier::ApiKey,
            TierArg::Cheap => Tier::Cheap,
            TierArg::Free => Tier::Free,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum FormatArg {
    Openai,
    Anthropic,
    Gemini,
    OpenaiResponses,
}

impl From<FormatArg> for WireFormat {
    fn from(f: FormatArg) -> WireFormat {
        match f {
            FormatArg::Openai => WireFormat::Openai,
            FormatArg::Anthropic => WireFormat::Anthropic,
            FormatArg::Gemini => WireFormat::Gemini,
            FormatArg::OpenaiResponses => WireFormat::OpenaiResponses,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum GroupBy {
    Provider,
    Model,
    Key,
    Day,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("omniroute: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("omniroute: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn default_data_dir() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set; pass --data-dir")?;
    Ok(PathBuf::from(home).join(".omniroute"))
}

async fn run(cli: Cli) -> Result<()> {
    let file = match &cli.config {
        Some(path) => Some(FileConfig::load(path)?),
        None => None,
    };
    let settings = settings(&cli, file.as_ref())?;
    if cli.mcp && cli.command.is_some() {
        bail!("--mcp takes no subcommand");
    }
    if let Some(Command::Secrets(SecretsCmd::Reset { yes })) = &cli.command {
        if !yes {
            bail!("this drops every stored upstream key that secret.key encrypted; run again with --yes to do it");
        }
        let _lock = omniroute::server::DataDirLock::acquire(&settings.data_dir)?;
        let dir = settings.data_dir.clone();
        let n =
            tokio::task::spawn_blocking(move || omniroute::store::Store::reset_secret_key(&dir))
                .await??;
        println!("new secret.key made; {n} stored secret(s) dropped: add those accounts' keys again (`omniroute accounts add`)");
        return Ok(());
    }
    // A serving gateway owns its data dir: taken before anything can collide
    // (spilled rows, the port, gateway.json). The CLI and --mcp share it.
    let serving = !cli.mcp && matches!(cli.command, None | Some(Command::Serve));
    let _lock = serving
        .then(|| omniroute::server::DataDirLock::acquire(&settings.data_dir))
        .transpose()?;
    let gw = Gateway::open(settings).await?;
    if let Some(file) = &file {
        let report = ops::apply::apply_config(&gw, file).await.with_context(|| {
            format!(
                "applying {}",
                cli.config
                    .as_deref()
                    .unwrap_or_else(|| "".as_ref())
                    .display()
            )
        })?;
        if !report.is_empty() {
            tracing::info!(?report, "config applied");
        }
    }
    if cli.mcp {
        return mcp_stdio(gw).await;
    }
    match cli.command {
        None | Some(Command::Serve) => serve(gw, cli.open).await,
        Some(Command::Keys(cmd)) => keys(&gw, cmd, cli.json).await,
        Some(Command::Providers(cmd)) => providers(&gw, cmd, cli.json).await,
        Some(Command::Accounts(cmd)) => accounts(&gw, cmd, cli.json).await,
        Some(Command::Usage { since, by }) => usage(&gw, since, by, cli.json).await,
        Some(Command::Cache(cmd)) => cache(&gw, cmd, cli.json).await,
        Some(Command::Combos(cmd)) => combos(&gw, cmd, cli.json).await,
        Some(Command::Route(RouteCmd::Explain { model, tokens, key })) => {
            let e = ops::explain::explain_route(
                &gw,
                ops::explain::ExplainInput {
                    model,
                    input_tokens: tokens,
                    max_tokens: None,
                    key_id: key,
                    session: None,
                },
            )
            .await?;
            if cli.json {
                return print_json(&e);
            }
            println!(
                "{} (combo: {}, strategy: {})",
                e.model,
                e.combo.as_deref().unwrap_or("-"),
                e.strategy
            );
            for t in &e.targets {
                let cost = t
                    .est_cost_usd
                    .map(|c| format!("${c:.6}"))
                    .unwrap_or_else(|| "-".into());
                println!(
                    "  {:>2}. {:<50} {:<13} {:>11}  {}",
                    t.position,
                    t.target,
                    t.tier.as_str(),
                    cost,
                    t.reason
                );
            }
            for s in &e.skipped {
                println!("  skip {:<48} {}", s.target, s.reason);
            }
            Ok(())
        }
        Some(Command::Budgets(cmd)) => budgets(&gw, cmd, cli.json).await,
        Some(Command::Secrets(_)) => Ok(()),
        Some(Command::Login(args)) => login(&gw, args, cli.json).await,
        Some(Command::Quota { provider }) => {
            let q = ops::quota::check_quota(
                &gw,
                ops::quota::QuotaQuery { provider },
                &Principal::operator(),
            )
            .await?;
            if cli.json {
                return print_json(&q);
            }
            println!(
                "{:<20} {:<14} {:<13} {:<7} {:>10} {:>8}  COOLDOWN",
                "ACCOUNT", "PROVIDER", "TIER", "USABLE", "TODAY USD", "REQS"
            );
            for a in &q.accounts {
                println!(
                    "{:<20} {:<14} {:<13} {:<7} {:>10.6} {:>8}  {}",
                    a.account,
                    a.provider,
                    a.tier.as_str(),
                    if a.usable { "yes" } else { "no" },
                    a.spent_today_usd,
                    a.requests_today,
                    a.cooldown_s
                        .map(|s| format!(
                            "{s:.0}s {}",
                            a.cooldown_reason.clone().unwrap_or_default()
                        ))
                        .unwrap_or_default()
                );
            }
            for a in q.accounts.iter().filter(|a| !a.windows.is_empty()) {
                println!("{} ({} {}):", a.account, a.provider, a.label);
                for w in &a.windows {
                    println!(
                        "  {:<10} {:>6.1}% used  resets {}  {}",
                        w.window,
                        w.used_pct,
                        w.resets_at.as_deref().unwrap_or("-"),
                        w.forecast
                    );
                }
            }
            for b in &q.budgets {
                println!(
                    "budget {}:{} per {}: spent ${:.6} of {}, resets at {}",
                    b.rule.scope.as_str(),
                    b.rule.scope_id,
                    b.rule.period.as_str(),
                    b.spent_usd,
                    b.rule
                        .limit_usd
                        .map(|l| format!("${l}"))
                        .unwrap_or_else(|| "-".into()),
                    b.resets_at_ms
                );
            }
            Ok(())
        }
    }
}

fn settings(cli: &Cli, file: Option<&FileConfig>) -> Result<Settings> {
    let data_dir = match &cli.data_dir {
        Some(d) => d.clone(),
        None => default_data_dir()?,
    };
    let mut s = Settings::with_data_dir(data_dir);
    let server = file.map(|f| f.server.clone()).unwrap_or_default();
    s.host = cli.host.clone().or(server.host).unwrap_or(s.host);
    s.port = cli.port.or(server.port).unwrap_or(s.port);
    s.dashboard_port = cli.dashboard_port.or(server.dashboard_port);
    s.telemetry = file.and_then(|f| f.telemetry.clone());
    s.require_api_key = !cli.no_auth && server.require_api_key.unwrap_or(true);
    s.conformance_fixtures = cli.conformance_fixtures;
    if let Some(n) = server.max_body_bytes {
        s.max_body_bytes = n;
    }
    if let Some(f) = file {
        s.model_map = f.model_map.clone();
    }
    s.allowed_hosts = server.allowed_hosts.clone();
    s.allowed_upstreams = server.allowed_upstreams.clone();
    if let Some(f) = file {
        s.store.max_db_bytes = f.store.max_db_bytes;
        s.store.retention = f.store.retention.resolve().map_err(anyhow::Error::msg)?;
        s.cache = omniroute::cache::CacheSettings::from_sections(&f.cache, &f.idempotency);
    }
    s.allowed_origins = server.allowed_origins.clone();
    let dur = |key: &str, v: &Option<String>| -> Result<Option<std::time::Duration>> {
        v.as_deref()
            .map(|v| config::parse_duration(key, v).map_err(anyhow::Error::msg))
            .transpose()
    };
    if let Some(d) = dur("server.shutdown_grace", &server.shutdown_grace)? {
        s.shutdown_grace = d;
    }
    if let Some(d) = dur("server.upstream_timeout", &server.upstream_timeout)? {
        s.upstream_timeout = d;
    }
    if let Some(d) = dur("server.connect_timeout", &server.connect_timeout)? {
        s.connect_timeout = d;
    }
    if let Some(d) = dur("server.keep_alive", &server.keep_alive)? {
        s.keep_alive = d;
    }
    if !s.require_api_key && !omniroute::server::is_loopback(&s.host) {
        bail!(
            "client keys can only be turned off when bound to loopback, but host is {}",
            s.host
        );
    }
    Ok(s)
}

async fn serve(gw: Arc<Gateway>, open: bool) -> Result<()> {
    let listener = omniroute::server::bind(&gw.settings.host, gw.settings.port).await?;
    let addr = listener.local_addr()?;
    let dashboard = match gw.settings.dashboard_port {
        Some(port) => Some(omniroute::server::bind(&gw.settings.host, port).await?),
        None => None,
    };
    let base = format!("http://{addr}");
    let dashboard_base = match &dashboard {
        Some(l) => format!("http://{}", l.local_addr()?),
        None => base.clone(),
    };
    if let Some(created) = ops::keys::ensure_bootstrap_key(&gw).await? {
        println!("omniroute: first start, created a client API key (shown once, store it now):");
        println!("  API key:  {}", created.key);
        println!("  Base URL: {base}/v1");
        println!("  It is also the admin key: it logs in to the dashboard and the admin API.");
    }
    if !gw.settings.require_api_key {
        tracing::warn!("client keys are not required (--no-auth); loopback only");
    }
    let registry = gw.registry();
    let usable = registry
        .providers()
        .iter()
        .filter(|p| registry.is_usable(&p.spec.id))
        .count();
    // Signals are handled from before the gateway says it is listening.
    let shutdown = CancellationToken::new();
    omniroute::server::cancel_on_signals(shutdown.clone());
    println!("omniroute {} listening on {base} (OpenAI base URL {base}/v1; {usable} usable providers; data in {})",
        env!("CARGO_PKG_VERSION"), gw.settings.data_dir.display());
    let state = omniroute::http::AppState::new(gw.clone());
    println!("  Dashboard: {dashboard_base}/");
    let link = state
        .admin
        .issue_login_link()
        .map(|t| format!("{dashboard_base}/api/login/link?token={t}"));
    if let Some(link) = &link {
        println!("  Login link (works once, for 15 minutes): {link}");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    if open {
        let url = link.unwrap_or_else(|| format!("{dashboard_base}/"));
        if let Err(e) = open::that_detached(&url) {
            tracing::warn!(error = %e, "cannot open a browser; open the dashboard URL by hand");
        }
    }
    omniroute::server::run_with(state, listener, dashboard, shutdown).await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// `--mcp`: relay to the gateway running on this data dir, or else serve the
/// MCP server on the store in this process.
async fn mcp_stdio(gw: Arc<Gateway>) -> Result<()> {
    if let Some(running) = omniroute::mcp::stdio::find_running_gateway(&gw.settings.data_dir).await
    {
        gw.store.close().await?;
        let (stdin, stdout) = (tokio::io::stdin(), tokio::io::stdout());
        omniroute::mcp::stdio::run_bridge(running, stdin, stdout).await?;
        return Ok(());
    }
    let stop = CancellationToken::new();
    let watcher = gw.spawn_watcher(stop.clone());
    let served = omniroute::mcp::stdio::run_in_process(gw.clone()).await;
    stop.cancel();
    let _ = watcher.await;
    gw.store.close().await?;
    Ok(served?)
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn parse_scopes(s: &str) -> std::result::Result<Scopes, String> {
    Scopes::parse(s)
}

async fn keys(gw: &Gateway, cmd: KeysCmd, json: bool) -> Result<()> {
    match cmd {
        KeysCmd::Create {
            label,
            key: Some(value),
            scope,
        } => {
            if value.trim().len() < 8 {
                bail!("--key must be at least 8 characters");
            }
            let cfg = FileConfig {
                server: config::ServerSection {
                    api_keys: vec![config::KeyEntry::Scoped {
                        key: value,
                        scopes: scope.list(),
                        label,
                        cache: None,
                    }],
                    ..Default::default()
                },
                ..Default::default()
            };
            let report = ops::apply::apply_config(gw, &cfg).await?;
            println!(
                "{}",
                if report.keys_added == 1 {
                    format!("key stored with scopes {}", scope.to_text())
                } else if report.keys_changed == 1 {
                    format!(
                        "key was already stored; its scopes are now {}",
                        scope.to_text()
                    )
                } else {
                    "key was already stored".to_string()
                }
            );
        }
        KeysCmd::Create {
            label,
            key: None,
            scope,
        } => {
            let created = ops::keys::create_key(
                gw,
                ops::keys::CreateKeyInput {
                    label,
                    scopes: Some(scope),
                },
                Actor::Cli,
            )
            .await?;
            if json {
                print_json(&created)?;
            } else {
                println!(
                    "created key {} (label {}, scopes {}); shown once:\n{}",
                    created.id,
                    created.label,
                    created.scopes.to_text(),
                    created.key
                );
            }
        }
        KeysCmd::Scope { id, scope } => {
            let row = ops::keys::set_key_scopes(gw, &id, scope, Actor::Cli).await?;
            println!(
                "key {} ({}) now has scopes {}",
                row.id,
                row.hint,
                row.scopes.to_text()
            );
        }
        KeysCmd::List => {
            let rows = ops::keys::list_keys(gw).await?;
            if json {
                return print_json(&rows);
            }
            println!(
                "{:<18} {:<16} {:<14} {:<10} {:<16} STATUS",
                "ID", "HINT", "LABEL", "SOURCE", "SCOPES"
            );
            for r in rows {
                let status = if r.revoked_ms.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:<18} {:<16} {:<14} {:<10} {:<16} {status}",
                    r.id,
                    r.hint,
                    r.label,
                    r.source,
                    r.scopes.to_text()
                );
            }
        }
        KeysCmd::Revoke { id } => {
            let row = ops::keys::revoke_key(gw, &id, Actor::Cli).await?;
            println!("revoked {} ({})", row.id, row.hint);
        }
    }
    Ok(())
}

async fn providers(gw: &Gateway, cmd: ProvidersCmd, json: bool) -> Result<()> {
    match cmd {
        ProvidersCmd::List { usable } => {
            let list = ops::providers::list_providers(
                gw,
                ops::providers::ListProvidersInput {
                    usable_only: usable,
                },
            )
            .await?;
            if json {
                return print_json(&list);
            }
            println!(
                "{:<16} {:<18} {:<10} {:<13} {:<8} {:<7} ENV",
                "ID", "FORMAT", "ORIGIN", "TIER", "USABLE", "MODELS"
            );
            for p in list {
                println!(
                    "{:<16} {:<18} {:<10} {:<13} {:<8} {:<7} {}",
                    p.id,
                    p.format.as_str(),
                    p.origin,
                    p.tier.as_str(),
                    if p.usable { "yes" } else { "no" },
                    p.models.len(),
                    p.env.join(",")
                );
            }
        }
        ProvidersCmd::Add(a) => {
            let entry = ProviderEntry {
                id: a.id,
                name: a.name,
                format: a.format.map(Into::into),
                base_url: a.base_url,
                api_key: a.api_key,
                api_key_env: a.api_key_env,
                auth: None,
                tier: a.tier.map(Into::into),
                models: a.models,
                mode: None,
            };
            let cfg = FileConfig {
                providers: vec![entry],
                ..Default::default()
            };
            cfg.validate().map_err(anyhow::Error::msg)?;
            let report = ops::apply::apply_config(gw, &cfg).await?;
            if json {
                return print_json(&report);
            }
            println!(
                "providers changed: {:?}; accounts changed: {:?}",
                report.providers_changed, report.accounts_changed
            );
        }
    }
    Ok(())
}

async fn accounts(gw: &Gateway, cmd: AccountsCmd, json: bool) -> Result<()> {
    match cmd {
        AccountsCmd::Add {
            provider,
            label,
            api_key,
            api_key_env,
            api_key_stdin,
            tier,
            priority,
        } => {
            let api_key = if api_key_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                Some(line.trim().to_string())
            } else {
                api_key
            };
            let view = ops::accounts::add_account(
                gw,
                ops::accounts::AddAccountInput {
                    provider,
                    label,
                    api_key,
                    api_key_env,
                    tier: tier.map(Into::into),
                    priority,
                },
                Actor::Cli,
            )
            .await?;
            if json {
                return print_json(&view);
            }
            println!(
                "added account {} for {} (usable: {})",
                view.id, view.provider, view.usable
            );
        }
        AccountsCmd::List { provider } => {
            let list = ops::accounts::list_accounts(gw, provider.as_deref()).await?;
            if json {
                return print_json(&list);
            }
            println!(
                "{:<22} {:<16} {:<18} {:<11} {:<13} USABLE",
                "ID", "PROVIDER", "LABEL", "ORIGIN", "TIER"
            );
            for a in list {
                println!(
                    "{:<22} {:<16} {:<18} {:<11} {:<13} {}",
                    a.id,
                    a.provider,
                    a.label,
                    a.origin,
                    a.tier.as_str(),
                    match (&a.usable, &a.problem) {
                        (true, _) => "yes".to_string(),
                        (false, Some(p)) => format!("no: {p}"),
                        (false, None) => "no".to_string(),
                    }
                );
                if let Some(sub) = &a.subscription {
                    println!(
                        "    {} plan {}, {}, token expires {}",
                        sub.kind,
                        sub.plan.as_deref().unwrap_or("unknown"),
                        sub.email.as_deref().unwrap_or("no email"),
                        sub.token_expires_at.as_deref().unwrap_or("never")
                    );
                    for w in &sub.windows {
                        println!(
                            "    {:<10} {:>6.1}% used, resets {}",
                            w.window,
                            w.used_pct,
                            w.resets_at.as_deref().unwrap_or("-")
                        );
                    }
                }
            }
        }
        AccountsCmd::Remove { id } => {
            let removed = ops::accounts::remove_account(gw, &id, Actor::Cli).await?;
            println!("removed account {removed}");
        }
    }
    Ok(())
}

async fn login(gw: &Gateway, a: LoginArgs, json: bool) -> Result<()> {
    use omniroute::catalog::SubscriptionKind;
    use omniroute::subscription::login;
    let kind = SubscriptionKind::parse(&a.kind)
        .with_context(|| format!("unknown kind {:?}: claude, codex, gemini or qwen", a.kind))?;
    let view = if a.import {
        let input = ops::sign_in::ImportInput {
            kind: a.kind.clone(),
            label: a.label,
            allow_overage: a.allow_overage,
            priority: a.priority,
        };
        ops::sign_in::import_account(gw, input, a.from.clone(), Actor::Cli).await?
    } else {
        let base = gw
            .registry()
            .provider(kind.provider_id())
            .map(|p| p.spec.base_url.clone())
            .unwrap_or_default();
        let opts = login::LoginOptions {
            no_browser: a.no_browser,
            device: a.device,
            port: a.callback_port,
            timeout: std::time::Duration::from_secs(15 * 60),
            code_assist_base: base,
            read_stdin: true,
        };
        let mut show = |p: login::Prompt| match p {
            login::Prompt::Open { url, open } => {
                println!("Open this URL to sign in:\n  {url}");
                if open {
                    open_browser(&url);
                }
                println!("Waiting for the sign-in (or paste the URL the browser ends on here)...");
            }
            login::Prompt::Paste { url } => {
                println!("Open this URL in any browser, sign in, then paste the code it shows here:\n  {url}");
            }
            login::Prompt::Device { url, code } => {
                println!("Open {url} and enter the code {code}\nWaiting for approval...");
            }
        };
        let signed = login::login(gw.upstream.client(), kind, &opts, &mut show).await?;
        ops::subscriptions::save_sign_in(
            gw,
            signed,
            ops::subscriptions::SaveSignIn {
                label: a.label,
                allow_overage: a.allow_overage,
                priority: a.priority,
                how: "login",
            },
            Actor::Cli,
        )
        .await?
    };
    if json {
        return print_json(&view);
    }
    let sub = view.subscription.as_ref();
    println!(
        "signed in: account {} ({} {}), plan {}, token expires {}",
        view.id,
        view.provider,
        view.label,
        sub.and_then(|s| s.plan.as_deref()).unwrap_or("unknown"),
        sub.and_then(|s| s.token_expires_at.as_deref())
            .unwrap_or("never")
    );
    Ok(())
}

/// Start the desktop's browser on `url`, when there is one; never fatal.
fn open_browser(url: &str) {
    let cmd = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    let has_display = cfg!(any(target_os = "macos", windows))
        || std::env::var_os("DISPLAY").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if has_display {
        let _ = std::process::Command::new(cmd)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}

async fn combos(gw: &Gateway, cmd: CombosCmd, json: bool) -> Result<()> {
    use omniroute::routing::combo::{Combo, Step};
    use omniroute::routing::strategy::StrategyKind;
    match cmd {
        CombosCmd::List => {
            let list = ops::combos::list_combos(gw).await?;
            if json {
                return print_json(&list);
            }
            for c in list {
                println!(
                    "{:<20} {:<17} v{:<3} {}{}",
                    c.combo.name,
                    c.combo.strategy.as_str(),
                    c.version,
                    c.targets.join(", "),
                    if c.builtin { " (built-in)" } else { "" }
                );
            }
        }
        CombosCmd::Show { name } => print_json(&ops::combos::get_combo(gw, &name).await?)?,
        CombosCmd::Set {
            name,
            models,
            strategy,
            sticky,
            budget_usd,
            definition: raw,
            dry_run,
        } => {
            let combo: Combo = match raw {
                Some(raw) => {
                    serde_json::from_str(&raw).context("--definition is not a valid combo")?
                }
                None => {
                    let existing = ops::combos::get_combo(gw, &name)
                        .await
                        .ok()
                        .filter(|c| !c.builtin);
                    let mut combo = match existing {
                        Some(v) => v.combo,
                        None => Combo {
                            name: name.clone(),
                            strategy: StrategyKind::Priority,
                            models: Vec::new(),
                            sticky: false,
                            description: None,
                            limits: Default::default(),
                            fusion: None,
                            summarizer_model: None,
                            cache: None,
                        },
                    };
                    if let Some(models) = models {
                        combo.models = models.into_iter().map(Step::Name).collect();
                    }
                    if let Some(s) = strategy {
                        combo.strategy = StrategyKind::parse(&s).with_context(|| {
                            let names: Vec<&str> =
                                StrategyKind::ALL.iter().map(|k| k.as_str()).collect();
                            format!("unknown strategy {s:?}; one of {}", names.join(", "))
                        })?;
                    }
                    combo.sticky |= sticky;
                    if budget_usd.is_some() {
                        combo.limits.budget_usd = budget_usd;
                    }
                    combo
                }
            };
            let r = ops::combos::upsert_combo(
                gw,
                ops::combos::UpsertComboInput { combo, dry_run },
                Actor::Cli,
            )
            .await?;
            if json {
                return print_json(&r);
            }
            for d in &r.diff {
                println!("  {d}");
            }
            for w in &r.warnings {
                println!("  warning: {w}");
            }
            println!(
                "{} {} (version {})",
                if r.saved {
                    "saved"
                } else if dry_run {
                    "dry run, not saved:"
                } else {
                    "unchanged:"
                },
                r.name,
                r.version
            );
        }
        CombosCmd::Delete { name } => {
            ops::combos::delete_combo(gw, &name, Actor::Cli).await?;
            println!("deleted {name}");
        }
        CombosCmd::Rollback { name } => {
            let r = ops::combos::rollback_combo(gw, &name, Actor::Cli).await?;
            if json {
                return print_json(&r);
            }
            match r.restored {
                Some(c) => println!(
                    "rolled back {name} to its previous version: {}",
                    serde_json::to_string(&c)?
                ),
                None => println!("rolled back {name}: it did not exist before, so it is removed"),
            }
        }
        CombosCmd::Test { name } => {
            let t = ops::combos::test_combo(gw, &name).await?;
            if json {
                return print_json(&t);
            }
            for r in &t.results {
                println!(
                    "{:<50} {:<4} {:>8.1} ms {}",
                    r.target,
                    if r.ok { "ok" } else { "FAIL" },
                    r.latency_ms,
                    r.error.clone().unwrap_or_default()
                );
            }
            println!("{} ok, {} failed", t.ok, t.failed);
        }
    }
    Ok(())
}

async fn budgets(gw: &Gateway, cmd: BudgetsCmd, json: bool) -> Result<()> {
    use omniroute::routing::budget::{BudgetScope, Period};
    match cmd {
        BudgetsCmd::List => {
            let q = ops::quota::check_quota(gw, Default::default(), &Principal::operator()).await?;
            if json {
                return print_json(&q.budgets);
            }
            for b in q.budgets {
                println!(
                    "{}:{} per {}: ${:.6} spent, limit {}, {} tokens",
                    b.rule.scope.as_str(),
                    b.rule.scope_id,
                    b.rule.period.as_str(),
                    b.spent_usd,
                    b.rule
                        .limit_usd
                        .map(|l| format!("${l}"))
                        .unwrap_or_else(|| "-".into()),
                    b.spent_tokens
                );
            }
        }
        BudgetsCmd::Set {
            scope,
            id,
            period,
            usd,
            tokens,
        } => {
            let scope = BudgetScope::parse(&scope)
                .context("scope must be key, account, tier, combo or global")?;
            let period = Period::parse(&period).context("period must be day or month")?;
            let rule = ops::quota::set_budget(
                gw,
                ops::quota::SetBudgetInput {
                    scope,
                    scope_id: id,
                    period,
                    limit_usd: usd,
                    limit_tokens: tokens,
                },
                Actor::Cli,
            )
            .await?;
            println!(
                "budget {}:{} per {} set",
                rule.scope.as_str(),
                rule.scope_id,
                rule.period.as_str()
            );
        }
    }
    Ok(())
}

async fn usage(gw: &Gateway, since: String, by: GroupBy, json: bool) -> Result<()> {
    let group_by = match by {
        GroupBy::Provider => UsageGroup::Provider,
        GroupBy::Model => UsageGroup::Model,
        GroupBy::Key => UsageGroup::Key,
        GroupBy::Day => UsageGroup::Day,
    };
    let report = ops::usage::usage_summary(
        gw,
        ops::usage::UsageQuery { since, group_by },
        &Principal::operator(),
    )
    .await?;
    if json {
        return print_json(&report);
    }
    println!(
        "usage since {} ({} requests, ${:.6})",
        report.since, report.total_requests, report.total_cost_usd
    );
    println!(
        "{:<36} {:>8} {:>7} {:>10} {:>10} {:>12} {:>10}",
        "GROUP", "REQS", "ERRORS", "IN TOK", "OUT TOK", "COST USD", "AVG MS"
    );
    for l in report.lines {
        println!(
            "{:<36} {:>8} {:>7} {:>10} {:>10} {:>12.6} {:>10.1}",
            l.group,
            l.requests,
            l.errors,
            l.input_tokens,
            l.output_tokens,
            l.cost_usd,
            l.avg_latency_ms
        );
    }
    println!();
    print_cache_lines(
        "answered by the cache (no upstream call, no usage row)",
        &report.cache,
    );
    Ok(())
}

fn print_cache_lines(title: &str, f: &ops::cache::CacheFigures) {
    let t = &f.totals;
    println!(
        "{title}: {} hits ({} semantic, {} coalesced), {} misses, hit rate {}, {} idempotent replays, {} tokens and ${:.6} saved",
        t.hits,
        t.semantic_hits,
        t.coalesced,
        t.misses,
        t.hit_rate
            .map(|r| format!("{:.1}%", r * 100.0))
            .unwrap_or_else(|| "-".into()),
        t.idempotent_replays,
        t.tokens_saved,
        t.cost_saved_usd
    );
    for (what, lines) in [("COMBO/MODEL", &f.by_combo), ("KEY", &f.by_key)] {
        if lines.is_empty() {
            continue;
        }
        println!(
            "{:<36} {:>7} {:>7} {:>8} {:>8} {:>12} {:>10} {:>12}",
            what, "HITS", "MISSES", "RATE", "REPLAYS", "BYTES OUT", "TOK SAVED", "USD SAVED"
        );
        for l in lines {
            println!(
                "{:<36} {:>7} {:>7} {:>8} {:>8} {:>12} {:>10} {:>12.6}",
                l.group,
                l.hits,
                l.misses,
                l.hit_rate
                    .map(|r| format!("{:.1}%", r * 100.0))
                    .unwrap_or_else(|| "-".into()),
                l.idempotent_replays,
                l.bytes_served,
                l.tokens_saved,
                l.cost_saved_usd
            );
        }
    }
}

async fn cache(gw: &Gateway, cmd: CacheCmd, json: bool) -> Result<()> {
    match cmd {
        CacheCmd::Stats { since, combo } => {
            let r = ops::cache::cache_stats(
                gw,
                ops::cache::CacheStatsQuery {
                    since: Some(since),
                    combo,
                },
                &Principal::operator(),
            )
            .await?;
            if json {
                return print_json(&r);
            }
            println!(
                "cache {} (mode {}, ttl {}s, bound {} bytes): {} answers stored, {} bytes",
                if r.enabled { "on" } else { "off" },
                r.mode.as_str(),
                r.ttl_s,
                r.max_bytes,
                r.entries,
                r.stored_bytes
            );
            let f = ops::cache::CacheFigures {
                totals: r.totals,
                by_combo: r.by_combo,
                by_key: r.by_key,
            };
            print_cache_lines(&format!("since {}", r.since_day), &f);
        }
        CacheCmd::Flush { combo, namespace } => {
            let r = ops::cache::cache_flush(
                gw,
                omniroute::cache::rows::FlushFilter { combo, namespace },
                Actor::Cli,
            )
            .await?;
            if json {
                return print_json(&r);
            }
            println!("flushed {} answers ({} bytes)", r.entries, r.bytes);
        }
        CacheCmd::Key {
            id,
            mode,
            namespace,
        } => {
            let (id, p) = ops::cache::set_key_cache(
                gw,
                &id,
                omniroute::cache::KeyCachePolicy { mode, namespace },
                Actor::Cli,
            )
            .await?;
            if json {
                return print_json(&p);
            }
            println!(
                "key {id}: cache mode {}, namespace {}",
                p.mode.map(|m| m.as_str()).unwrap_or("as configured"),
                p.namespace.as_deref().unwrap_or("its own")
            );
        }
    }
    Ok(())
}
