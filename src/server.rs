//! Serving: bind, run until cancelled, then drain in-flight requests within
//! the grace period, flush the usage writer and checkpoint the WAL.

use crate::gateway::Gateway;
use crate::http::{router, AppState};
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
    let addr: SocketAddr = listener.local_addr()?;
    write_runtime_file(&gw, addr).await;
    let watcher = gw.spawn_watcher(shutdown.child_token());
    let app = router(AppState::new(gw.clone()));
    let serve = axum::serve(listener, app.into_make_service())
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future();
    tokio::pin!(serve);
    let grace = gw.settings.shutdown_grace;
    tokio::select! {
        r = &mut serve => r?,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(?grace, "in-flight requests did not finish within the grace period; closing them");
        }
    }
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
    Ok(())
}

/// Where a running gateway can be found by other processes on this data dir.
async fn write_runtime_file(gw: &Gateway, addr: SocketAddr) {
    let info = serde_json::json!({
        "pid": std::process::id(),
        "url": format!("http://{addr}"),
        "started_ms": crate::store::now_ms(),
    });
    if let Err(e) =
        tokio::fs::write(gw.settings.data_dir.join(RUNTIME_FILE), info.to_string()).await
    {
        tracing::warn!(error = %e, "cannot write runtime file");
    }
}

/// Cancel `token` on SIGINT or SIGTERM.
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
