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
/// How long streams cut at shutdown get to send their last event.
const CUT_FLUSH: std::time::Duration = std::time::Duration::from_secs(3);
pub const LOCK_FILE: &str = "gateway.lock";

/// An exclusive lock on a data dir held for as long as the gateway serves:
/// a second gateway on the same dir is refused (and could otherwise delete
/// the first one's `gateway.json` when it stops). The OS drops the lock when
/// the process ends, however it ends.
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
}

impl DataDirLock {
    pub fn acquire(data_dir: &std::path::Path) -> Result<DataDirLock, ServeError> {
        use std::io::{Read, Seek, Write};
        let path = data_dir.join(LOCK_FILE);
        let io = |e: std::io::Error| ServeError::Lock {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(ServeError::Locked {
                    path: data_dir.display().to_string(),
                    pid: if holder.is_empty() {
                        "unknown".into()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(DataDirLock { _file: file })
    }
}

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
    #[error("another omniroute gateway (pid {pid}) is serving data dir {path}; stop it first, or give this one its own --data-dir")]
    Locked { path: String, pid: String },
    #[error("cannot lock {path}: {message}")]
    Lock { path: String, message: String },
}

/// Connections the kernel queues before they are accepted (clamped to
/// `net.core.somaxconn`). The usual 128 overflows when a few hundred agents
/// connect at once, and each dropped SYN costs its client a 1 s retransmit.
const ACCEPT_BACKLOG: u32 = 4096;

pub async fn bind(host: &str, port: u16) -> Result<TcpListener, ServeError> {
    let addr = format!("{}:{port}", host_for_bind(host));
    let failed = |source| ServeError::Bind {
        addr: addr.clone(),
        source,
    };
    let mut last = None;
    for sock_addr in tokio::net::lookup_host(&addr).await.map_err(failed)? {
        match listen_on(sock_addr) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(failed(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no address to bind")
    })))
}

fn listen_on(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
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
    match gw.cache.load(&gw.store).await {
        Ok(n) if n > 0 => tracing::info!(entries = n, "cache loaded"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cached answers could not be loaded; starting empty"),
    }
    let dashboard_addr = dashboard.as_ref().map(|l| l.local_addr()).transpose()?;
    let state = state.with_shutdown(shutdown.clone());
    write_runtime_file(&gw, addr, dashboard_addr, state.local_token()).await;
    let watcher = gw.spawn_watcher(shutdown.child_token());
    let retention = crate::store::retention::spawn(
        gw.store.clone(),
        gw.settings.store.retention.clone(),
        shutdown.child_token(),
    );
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
            let open = gw.streams.count();
            tracing::warn!(?grace, open_streams = open, "in-flight requests did not finish within the grace period; ending them");
            // Each open stream ends with an error event in its client's
            // format and records its usage as cut; give them a moment to.
            gw.streams.stop.cancel();
            let deadline = tokio::time::Instant::now() + CUT_FLUSH;
            while gw.streams.count() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            // The connections write the last bytes and the chunked terminator.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let cut = gw.streams.cut.load(std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(streams_cut = cut, still_open = gw.streams.count(), "streams cut at shutdown (their usage is recorded as cut)");
        }
    }
    backfill.abort();
    watcher.abort();
    retention.abort();
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

/// Cancel `token` on SIGINT or SIGTERM. The handlers are in place when
/// this returns, so a signal sent right after can not kill the process.
pub fn cancel_on_signals(token: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (term, int) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        );
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::spawn(async move {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                    tracing::info!("shutdown requested: draining in-flight requests");
                    token.cancel();
                });
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM/SIGINT");
            }
        }
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
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

    /// 300 clients connecting at once, before any is accepted, all get in
    /// (a 128-deep queue drops the rest's SYNs: a 1 s stall each).
    #[tokio::test]
    async fn a_burst_of_connections_is_queued_not_dropped() {
        let listener = super::bind("127.0.0.1", 0).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut connects = tokio::task::JoinSet::new();
        for _ in 0..300 {
            connects.spawn(async move {
                tokio::time::timeout(
                    std::time::Duration::from_millis(700),
                    tokio::net::TcpStream::connect(addr),
                )
                .await
            });
        }
        let mut held = Vec::new();
        while let Some(r) = connects.join_next().await {
            let stream = r.unwrap().expect("connect waited on a dropped SYN");
            held.push(stream.unwrap());
        }
        assert_eq!(held.len(), 300);
        drop(listener);
    }
}
