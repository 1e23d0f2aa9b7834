//! The single writer: a dedicated thread behind a bounded channel. Usage rows
//! that arrive within `USAGE_LINGER` of each other are committed in one
//! transaction.

use super::{records, StoreError, UsageEvent};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

const CHANNEL_CAPACITY: usize = 8192;
const MAX_BATCH: usize = 1024;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

enum Cmd {
    Usage(Box<UsageEvent>),
    Run(Job),
    Flush(oneshot::Sender<()>),
    Close(oneshot::Sender<Result<(), StoreError>>),
}

pub struct WriterHandle {
    tx: SyncSender<Cmd>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Commands sent and not yet taken by the writer (a gauge in /metrics).
    depth: Arc<AtomicUsize>,
}

pub fn spawn(conn: Connection, path: PathBuf) -> Result<WriterHandle, StoreError> {
    let (tx, rx) = sync_channel(CHANNEL_CAPACITY);
    let depth = Arc::new(AtomicUsize::new(0));
    let seen = depth.clone();
    let thread = std::thread::Builder::new()
        .name("omniroute-store-writer".into())
        .spawn(move || writer_loop(conn, rx, path, &seen))
        .map_err(|e| StoreError::Invalid(format!("cannot start store writer: {e}")))?;
    Ok(WriterHandle {
        tx,
        thread: Mutex::new(Some(thread)),
        depth,
    })
}

impl WriterHandle {
    /// Commands waiting for the writer thread.
    pub fn queue_depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn: &mut Connection| {
            let result = (|| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let out = f(&tx)?;
                tx.commit()?;
                Ok(out)
            })();
            let _ = reply.send(result);
        });
        self.send(Cmd::Run(job)).await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Queue a write transaction without waiting for it; failures are logged.
    pub fn detached<F>(&self, what: &'static str, f: F)
    where
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        let job: Job = Box::new(move |conn: &mut Connection| {
            let result = (|| {
                let tx = conn.transaction()?;
                f(&tx)?;
                tx.commit()?;
                Ok::<_, StoreError>(())
            })();
            if let Err(e) = result {
                tracing::warn!(error = %e, what, "background store write failed");
            }
        });
        self.depth.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(Cmd::Run(job)) {
            Ok(()) => {}
            Err(TrySendError::Full(cmd)) => {
                let tx = self.tx.clone();
                tokio::task::spawn_blocking(move || tx.send(cmd));
            }
            Err(TrySendError::Disconnected(_)) => {
                self.depth.fetch_sub(1, Ordering::Relaxed);
                tracing::warn!(what, "store closed; write dropped")
            }
        }
    }

    pub fn usage(&self, event: UsageEvent) {
        self.depth.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(Cmd::Usage(Box::new(event))) {
            Ok(()) => {}
            Err(TrySendError::Full(cmd)) => {
                // Back-pressure: hand the wait to a blocking thread, never the caller.
                let tx = self.tx.clone();
                tokio::task::spawn_blocking(move || {
                    if tx.send(cmd).is_err() {
                        tracing::warn!("usage row dropped: store closed");
                    }
                });
            }
            Err(TrySendError::Disconnected(_)) => {
                self.depth.fetch_sub(1, Ordering::Relaxed);
                tracing::warn!("usage row dropped: store closed");
            }
        }
    }

    pub async fn flush(&self) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Cmd::Flush(reply)).await?;
        rx.await.map_err(|_| StoreError::Closed)
    }

    pub async fn close(&self) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Cmd::Close(reply)).await?;
        let result = rx.await.map_err(|_| StoreError::Closed)?;
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        result
    }

    async fn send(&self, cmd: Cmd) -> Result<(), StoreError> {
        self.depth.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(cmd) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(_)) => {
                self.depth.fetch_sub(1, Ordering::Relaxed);
                Err(StoreError::Closed)
            }
            Err(TrySendError::Full(cmd)) => {
                let tx = self.tx.clone();
                tokio::task::spawn_blocking(move || tx.send(cmd).map_err(|_| StoreError::Closed))
                    .await
                    .map_err(|e| StoreError::Join(e.to_string()))?
            }
        }
    }
}

/// How long usage rows wait for company before they are committed. Under
/// load this turns one transaction (and one thread wake-up) per request into
/// one per interval; idle, a lone row waits this long. Other writes never wait
/// longer than this behind usage rows.
const USAGE_LINGER: Duration = Duration::from_millis(10);

enum Step {
    Continue,
    Stop,
}

fn writer_loop(mut conn: Connection, rx: Receiver<Cmd>, path: PathBuf, depth: &AtomicUsize) {
    let mut batch: Vec<UsageEvent> = Vec::new();
    while let Ok(first) = rx.recv() {
        depth.fetch_sub(1, Ordering::Relaxed);
        if let Step::Stop = handle(&mut conn, &mut batch, first, &path) {
            return;
        }
        if !batch.is_empty() {
            // Sleep rather than wait on the channel, so senders do not wake us per row.
            std::thread::sleep(USAGE_LINGER);
        }
        while let Ok(cmd) = rx.try_recv() {
            depth.fetch_sub(1, Ordering::Relaxed);
            if let Step::Stop = handle(&mut conn, &mut batch, cmd, &path) {
                return;
            }
        }
        write_usage(&mut conn, &mut batch);
    }
    write_usage(&mut conn, &mut batch);
}

fn handle(conn: &mut Connection, batch: &mut Vec<UsageEvent>, cmd: Cmd, path: &Path) -> Step {
    match cmd {
        Cmd::Usage(ev) => {
            batch.push(*ev);
            if batch.len() >= MAX_BATCH {
                write_usage(conn, batch);
            }
        }
        Cmd::Run(job) => {
            write_usage(conn, batch);
            job(conn);
        }
        Cmd::Flush(reply) => {
            write_usage(conn, batch);
            let _ = reply.send(());
        }
        Cmd::Close(reply) => {
            write_usage(conn, batch);
            let result = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(StoreError::from);
            tracing::info!(path = %path.display(), ok = result.is_ok(), "store flushed and checkpointed");
            let _ = reply.send(result);
            return Step::Stop;
        }
    }
    Step::Continue
}

fn write_usage(conn: &mut Connection, batch: &mut Vec<UsageEvent>) {
    if batch.is_empty() {
        return;
    }
    let result = (|| -> Result<(), StoreError> {
        let tx = conn.transaction()?;
        records::insert_usage(&tx, batch)?;
        tx.commit()?;
        Ok(())
    })();
    if let Err(e) = result {
        tracing::error!(error = %e, rows = batch.len(), "failed to write usage rows");
    }
    batch.clear();
}
