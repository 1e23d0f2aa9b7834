//! The single writer: a dedicated thread behind a bounded channel. Usage rows
//! that arrive within `USAGE_LINGER` of each other are committed in one
//! transaction.
//!
//! When writes fail (disk full, a size cap reached, the file made read-only)
//! usage rows are kept in memory (at most `MAX_PENDING`, oldest dropped and
//! counted beyond that) and retried every `RETRY_EVERY` and with each new
//! batch; the failure is logged once per episode and shown by `status()`. At
//! close, rows that still cannot be written go to `usage-spill.jsonl` beside
//! the database, loaded back at the next start.

use super::{records, StoreError, UsageEvent};
use rusqlite::Connection;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Rows kept in memory while the database refuses writes.
const MAX_PENDING: usize = 100_000;
/// How often pending rows are retried when nothing else arrives.
const RETRY_EVERY: Duration = Duration::from_secs(1);
pub const SPILL_FILE: &str = "usage-spill.jsonl";

/// The writer's state as others may read it (health, metrics).
#[derive(Debug, Default)]
pub struct WriterStatus {
    failing: AtomicBool,
    pending: AtomicUsize,
    dropped: AtomicU64,
    queued: AtomicUsize,
    last_error: Mutex<Option<String>>,
}

/// A snapshot of `WriterStatus`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WriterReport {
    /// The last write failed and has not succeeded since.
    pub failing: bool,
    /// Usage rows kept in memory, waiting to be written.
    pub pending_rows: usize,
    /// Rows dropped because too many were pending.
    pub dropped_rows: u64,
    /// Commands waiting in the writer's channel.
    pub queue_depth: usize,
    pub last_error: Option<String>,
}

impl WriterStatus {
    pub fn report(&self) -> WriterReport {
        WriterReport {
            failing: self.failing.load(Ordering::Relaxed),
            pending_rows: self.pending.load(Ordering::Relaxed),
            dropped_rows: self.dropped.load(Ordering::Relaxed),
            queue_depth: self.queued.load(Ordering::Relaxed),
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }
}

const CHANNEL_CAPACITY: usize = 8192;
const MAX_BATCH: usize = 1024;

type Job = Box<dyn FnOnce(&mut Connection, &Path) + Send>;

enum Cmd {
    Usage(Box<UsageEvent>),
    Run(Job),
    Flush(oneshot::Sender<()>),
    Close(oneshot::Sender<Result<(), StoreError>>),
}

pub struct WriterHandle {
    tx: SyncSender<Cmd>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    status: Arc<WriterStatus>,
}

pub fn spawn(conn: Connection, path: PathBuf) -> Result<WriterHandle, StoreError> {
    let (tx, rx) = sync_channel(CHANNEL_CAPACITY);
    let status = Arc::new(WriterStatus::default());
    let mut writer = Writer {
        conn,
        path,
        pending: VecDeque::new(),
        status: status.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("omniroute-store-writer".into())
        .spawn(move || writer.run(rx))
        .map_err(|e| StoreError::Invalid(format!("cannot start store writer: {e}")))?;
    Ok(WriterHandle {
        tx,
        thread: Mutex::new(Some(thread)),
        status,
    })
}

impl WriterHandle {
    /// Commands waiting for the writer thread (a gauge in /metrics).
    pub fn queue_depth(&self) -> usize {
        self.status.queued.load(Ordering::Relaxed)
    }

    pub fn status(&self) -> WriterReport {
        self.status.report()
    }

    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn: &mut Connection, path: &Path| {
            let result = (|| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let out = f(&tx)?;
                tx.commit()?;
                Ok(out)
            })();
            // A refusal by SQLite itself names the file (disk full, read-only…).
            let result = result.map_err(|e| match e {
                StoreError::Sqlite(e) => write_error(path, &e.to_string()),
                other => other,
            });
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
        let job: Job = Box::new(move |conn: &mut Connection, _: &Path| {
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
        self.status.queued.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(Cmd::Run(job)) {
            Ok(()) => {}
            Err(TrySendError::Full(cmd)) => {
                let tx = self.tx.clone();
                tokio::task::spawn_blocking(move || tx.send(cmd));
            }
            Err(TrySendError::Disconnected(_)) => {
                self.status.queued.fetch_sub(1, Ordering::Relaxed);
                tracing::warn!(what, "store closed; write dropped")
            }
        }
    }

    pub fn usage(&self, event: UsageEvent) {
        self.status.queued.fetch_add(1, Ordering::Relaxed);
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
                self.status.queued.fetch_sub(1, Ordering::Relaxed);
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
        self.status.queued.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(cmd) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(_)) => {
                self.status.queued.fetch_sub(1, Ordering::Relaxed);
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

struct Writer {
    conn: Connection,
    path: PathBuf,
    /// Rows not yet committed, oldest first (this batch and any a failing
    /// database refused before).
    pending: VecDeque<UsageEvent>,
    status: Arc<WriterStatus>,
}

impl Writer {
    fn run(&mut self, rx: Receiver<Cmd>) {
        loop {
            let first = if self.pending.is_empty() {
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                rx.recv_timeout(RETRY_EVERY)
            };
            let first = match first {
                Ok(cmd) => cmd,
                Err(RecvTimeoutError::Timeout) => {
                    self.write_usage();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if let Step::Stop = self.handle(first) {
                return;
            }
            if !self.pending.is_empty() {
                // Sleep rather than wait on the channel, so senders do not wake us per row.
                std::thread::sleep(USAGE_LINGER);
            }
            while let Ok(cmd) = rx.try_recv() {
                if let Step::Stop = self.handle(cmd) {
                    return;
                }
            }
            self.write_usage();
        }
        self.write_usage();
        // Every handle is gone without a close: spill logs what it could not keep.
        let _ = self.spill();
    }

    fn handle(&mut self, cmd: Cmd) -> Step {
        self.status.queued.fetch_sub(1, Ordering::Relaxed);
        match cmd {
            Cmd::Usage(ev) => {
                self.pending.push_back(*ev);
                if self.pending.len() >= MAX_BATCH && !self.status.failing.load(Ordering::Relaxed) {
                    self.write_usage();
                }
            }
            Cmd::Run(job) => {
                self.write_usage();
                job(&mut self.conn, &self.path);
            }
            Cmd::Flush(reply) => {
                self.write_usage();
                let _ = reply.send(());
            }
            Cmd::Close(reply) => {
                self.write_usage();
                let result = match self.spill() {
                    Err(e) => Err(e),
                    Ok(()) => self
                        .conn
                        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                        .map_err(|e| write_error(&self.path, &e.to_string())),
                };
                tracing::info!(path = %self.path.display(), ok = result.is_ok(), "store flushed and checkpointed");
                let _ = reply.send(result);
                return Step::Stop;
            }
        }
        Step::Continue
    }

    /// Commit every pending row in one transaction; on failure keep them.
    fn write_usage(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let rows = self.pending.make_contiguous();
        let result = (|| -> Result<(), StoreError> {
            let tx = self.conn.transaction()?;
            records::insert_usage(&tx, rows)?;
            tx.commit()?;
            Ok(())
        })();
        match result {
            Ok(()) => {
                let n = self.pending.len();
                self.pending.clear();
                self.status.pending.store(0, Ordering::Relaxed);
                if self.status.failing.swap(false, Ordering::Relaxed) {
                    tracing::warn!(rows = n, path = %self.path.display(), "store writes work again; pending usage rows written");
                }
            }
            Err(e) => {
                let message = write_error(&self.path, &e.to_string()).to_string();
                if !self.status.failing.swap(true, Ordering::Relaxed) {
                    // Once per episode, not once per retry.
                    tracing::error!(error = %message, rows = self.pending.len(), path = %self.path.display(),
                        "cannot write usage rows; keeping them in memory and retrying");
                }
                if let Ok(mut last) = self.status.last_error.lock() {
                    *last = Some(message);
                }
                let over = self.pending.len().saturating_sub(MAX_PENDING);
                if over > 0 {
                    self.pending.drain(..over);
                    self.status
                        .dropped
                        .fetch_add(over as u64, Ordering::Relaxed);
                    tracing::error!(
                        dropped = over,
                        "too many usage rows pending; oldest dropped"
                    );
                }
                self.status
                    .pending
                    .store(self.pending.len(), Ordering::Relaxed);
            }
        }
    }

    /// Rows the database still refuses at close go to the spill file.
    fn spill(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let file = spill_path(&self.path);
        let n = self.pending.len();
        let written = (|| -> std::io::Result<()> {
            use std::io::Write;
            let mut out = std::io::BufWriter::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&file)?,
            );
            for row in &self.pending {
                serde_json::to_writer(&mut out, row)?;
                out.write_all(b"\n")?;
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_all()
        })();
        match written {
            Ok(()) => {
                tracing::warn!(rows = n, file = %file.display(),
                    "usage rows the database refused were saved beside it; they are loaded at the next start");
                self.pending.clear();
                self.status.pending.store(0, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                tracing::error!(rows = n, file = %file.display(), error = %e, "usage rows lost: neither the database nor the spill file took them");
                Err(write_error(
                    &self.path,
                    &format!(
                        "{n} usage rows could not be written (nor saved to {}): {e}",
                        file.display()
                    ),
                ))
            }
        }
    }
}

fn spill_path(db: &Path) -> PathBuf {
    db.with_file_name(SPILL_FILE)
}

/// A write error that names the file and what to check.
pub fn write_error(path: &Path, message: &str) -> StoreError {
    StoreError::Open {
        path: path.display().to_string(),
        message: format!("write failed: {message} (is the disk full or the file read-only?)"),
    }
}

/// Load rows a previous run spilled, then remove the file. Blocking.
pub fn load_spill(conn: &mut Connection, db: &Path) -> Result<usize, StoreError> {
    let file = spill_path(db);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(write_error(&file, &e.to_string())),
    };
    let rows: Vec<UsageEvent> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| match serde_json::from_str(l) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "skipping an unreadable spilled usage row");
                None
            }
        })
        .collect();
    let tx = conn.transaction()?;
    records::insert_usage(&tx, &rows)?;
    tx.commit()?;
    std::fs::remove_file(&file).map_err(|e| write_error(&file, &e.to_string()))?;
    tracing::info!(rows = rows.len(), file = %file.display(), "loaded usage rows spilled by the last run");
    Ok(rows.len())
}
