//! Serving: bind, run until cancelled, then drain in-flight requests within
//! the grace period, flush the usage writer and checkpoint the WAL.

use crate::gateway::Gateway;
use crate::http::{router_for, AppState, Serves};
use axum::serve::ListenerExt;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const RUNTIME_FILE: &str = "gateway.json";

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

pub async fn bind(host: &str, port: u16) -> Result<TcpListener, ServeError> {
    let addr = format!("{}:{port}", host_for_bind(host));
    TcpListener::bind(&addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

fn host_for_bind(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Is `host` a loopback address (where running without client keys is allowed)?
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Serve until `shutdown` is cancelled; then drain and close the store.
pub async fn run(
    gw: Arc<Gateway>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    run_with(AppState::new(gw), listener, None, shutdown).await
}

/// Serve the API (and the dashboard, unless `dashboard` is given: then the
/// dashboard, admin API and `/metrics` are served there and only there).
pub async fn run_with(
    state: AppState,
    listener: TcpListener,
    dashboard: Option<TcpListener>,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let gw = state.gw.clone();
    let addr: SocketAddr = listener.local_addr()?;
    let dashboard_addr = dashboard.as_ref().map(|l| l.local_addr()).transpose()?;
    let state = state.with_shutdown(shutdown.clone());
    write_runtime_file(&gw, addr, dashboard_addr, state.local_token()).await;
    let watcher = gw.spawn_watcher(shutdown.child_token());
    let backfill = {
        let gw = gw.clone();
        let serving_since = crate::store::now_ms();
        tokio::spawn(async move {
            match gw.backfill_series(serving_since).await {
                Ok(n) => tracing::debug!(rows = n, "dashboard charts filled from the store"),
                Err(e) => tracing::warn!(error = %e, "dashboard charts not filled from the store"),
            }
        })
    };
    let api_serves = if dashboard.is_some() {
        Serves::Api
    } else {
        Serves::Both
    };
    let api = serve_one(listener, router_for(state.clone(), api_serves), &shutdown);
    let dash = async {
        match dashboard {
            Some(l) => serve_one(l, router_for(state.clone(), Serves::Dashboard), &shutdown).await,
            None => Ok(()),
        }
    };
    let serve = async { tokio::try_join!(api, dash).map(|_| ()) };
    tokio::pin!(serve);
    let grace = gw.settings.shutdown_grace;
    tokio::select! {
        r = &mut serve => r?,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(?grace, "in-flight requests did not finish within the grace period; closing them");
        }
    }
    backfill.abort();
    watcher.abort();
    let h = &gw.metrics.overhead;
    tracing::info!(
        requests = h.count(),
        overhead_p50_ms = h.quantile_ms(0.5),
        overhead_p99_ms = h.quantile_ms(0.99),
        "gateway overhead at shutdown"
    );
    let _ = tokio::fs::remove_file(gw.settings.data_dir.join(RUNTIME_FILE)).await;
    gw.store.close().await?;
    if let Some(t) = gw.telemetry.clone() {
        // Sends the last batch over a blocking client: off the async threads.
        let _ = tokio::task::spawn_blocking(move || t.shutdown()).await;
    }
    Ok(())
}

/// `<data_dir>/gateway.json`: where a running gateway can be found by other
/// processes on this data dir (the CLI, `omniroute --mcp`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RuntimeInfo {
    pub pid: u32,
    pub url: String,
    pub started_ms: i64,
    /// A random token accepted by `/mcp` for local bridges; the file is 0600.
    #[serde(default)]
    pub mcp_token: Option<String>,
    /// Where the dashboard is, in split-port mode.
    #[serde(default)]
    pub dashboard_url: Option<String>,
}

async fn write_runtime_file(
    gw: &Gateway,
    addr: SocketAddr,
    dashboard: Option<SocketAddr>,
    token: &str,
) {
    let info = RuntimeInfo {
        pid: std::process::id(),
        url: format!("http://{addr}"),
        dashboard_url: dashboard.map(|d| format!("http://{d}")),
        started_ms: crate::store::now_ms(),
        mcp_token: Some(token.to_string()),
    };
    let path = gw.settings.data_dir.join(RUNTIME_FILE);
    let text = serde_json::to_string(&info).unwrap_or_default();
    let written = tokio::task::spawn_blocking(move || write_private(&path, text.as_bytes())).await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot write runtime file"),
        Err(e) => tracing::warn!(error = %e, "cannot write runtime file"),
    }
}

/// Write a file readable by its owner only (via a temp file and a rename, so
/// readers never see half of it).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Cancel `token` on SIGINT or SIGTERM.
async fn serve_one(
    listener: TcpListener,
    app: axum::Router,
    shutdown: &CancellationToken,
) -> std::io::Result<()> {
    // Small SSE chunks must leave at once: Nagle plus delayed ACKs would hold
    // each partial write for up to 40 ms.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    axum::serve(listener, app.into_make_service())
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future()
        .await
}

pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot listen for SIGTERM");
                        let _ = ctrl_c.await;
                        token.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested: draining in-flight requests");
        token.cancel();
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_hosts() {
        assert!(super::is_loopback("127.0.0.1"));
        assert!(super::is_loopback("::1"));
        assert!(super::is_loopback("localhost"));
        assert!(!super::is_loopback("0.0.0.0"));
        assert!(!super::is_loopback("192.168.1.2"));
    }
}
