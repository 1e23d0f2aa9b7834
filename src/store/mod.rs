//! Embedded SQLite store: WAL, versioned migrations, one writer thread that
//! batches usage rows, and a small pool of read connections. Every call from
//! async code goes through `spawn_blocking` or the writer thread.

mod migrate;
pub mod records;
pub mod responses;
pub mod retention;
pub mod routing_records;
pub mod secret_check;
pub mod subscriptions;
pub mod tasks;
mod usage_stats;
pub mod writer;

pub use records::*;
pub use routing_records::*;
pub use usage_stats::*;

use crate::secret::{Cipher, CipherError};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub const DB_FILE: &str = "omniroute.sqlite";
pub const KEY_FILE: &str = "secret.key";
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_IDLE_READERS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {message}")]
    Open { path: String, message: String },
    #[error(
        "database {path} has schema version {found}, newer than this omniroute understands ({supported}); upgrade omniroute or point --data-dir elsewhere"
    )]
    SchemaTooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Cipher(#[from] CipherError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("the store is closed")]
    Closed,
    #[error("store task failed: {0}")]
    Join(String),
    #[error("{0}")]
    SecretKey(String),
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    writer: writer::WriterHandle,
    cipher: Cipher,
    tap: OnceLock<UsageTap>,
}

/// Sees every usage row as it is recorded (live metrics), on the caller's thread.
pub type UsageTap = Arc<dyn Fn(&UsageEvent) + Send + Sync>;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// How the store is opened and what it keeps.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Largest size the database may grow to, in bytes (`[store] max_db_bytes`);
    /// past it writes fail as on a full disk.
    pub max_db_bytes: Option<u64>,
    /// How long rows are kept (`[store.retention]`), applied by the gateway.
    pub retention: retention::Retention,
}

impl Store {
    /// Open (creating when absent) the store in `data_dir`. Blocking: call it
    /// before serving or from `spawn_blocking`.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(data_dir, &StoreOptions::default())
    }

    pub fn open_with(data_dir: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        let open_err = |message: String| StoreError::Open {
            path: data_dir.display().to_string(),
            message,
        };
        std::fs::create_dir_all(data_dir)
            .map_err(|e| open_err(format!("cannot create data dir: {e}")))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700));
        }
        let path = data_dir.join(DB_FILE);
        let mut conn = open_connection(&path)?;
        migrate::run(&mut conn, &path)?;
        let cipher = secret_check::cipher_for(&conn, &data_dir.join(KEY_FILE), &path)?;
        if let Some(max) = options.max_db_bytes {
            let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let pages = (max as i64 / page.max(512)).max(1);
            conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
        }
        if let Err(e) = writer::load_spill(&mut conn, &path) {
            // Kept for the next start; the rows are not lost.
            tracing::error!(error = %e, "could not load the usage rows the last run spilled");
        }
        let writer = writer::spawn(conn, path.clone())?;
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                readers: Mutex::new(Vec::new()),
                writer,
                cipher,
                tap: OnceLock::new(),
            }),
        })
    }

    /// Recover from a lost or replaced `secret.key`: set it aside, make a
    /// new one and drop the secrets the old one encrypted (how many).
    pub fn reset_secret_key(data_dir: &Path) -> Result<usize, StoreError> {
        let path = data_dir.join(DB_FILE);
        let mut conn = open_connection(&path)?;
        migrate::run(&mut conn, &path)?;
        secret_check::reset(&conn, &data_dir.join(KEY_FILE))
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn cipher(&self) -> &Cipher {
        &self.inner.cipher
    }

    /// Is the writer keeping up: failing writes, pending rows, queue depth.
    pub fn writer_status(&self) -> writer::WriterReport {
        self.inner.writer.status()
    }

    /// Run a read on a pooled connection, off the async threads.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_blocking(f))
            .await
            .map_err(|e| StoreError::Join(e.to_string()))?
    }

    /// Same as `read`, for code already on a blocking thread.
    pub fn read_blocking<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.inner.readers.lock().ok().and_then(|mut v| v.pop());
        let conn = match pooled {
            Some(c) => c,
            None => open_connection(&self.inner.path)?,
        };
        let out = f(&conn);
        if let Ok(mut v) = self.inner.readers.lock() {
            if v.len() < MAX_IDLE_READERS {
                v.push(conn);
            }
        }
        out
    }

    /// Run `f` in one write transaction on the writer thread.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.inner.writer.run(f).await
    }

    /// Queue a write without waiting for it (routing state, counters).
    pub fn write_detached<F>(&self, what: &'static str, f: F)
    where
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        self.inner.writer.detached(what, f);
    }

    /// Queue a usage row; batched with others into one transaction. Never blocks.
    pub fn record_usage(&self, event: UsageEvent) {
        if let Some(tap) = self.inner.tap.get() {
            tap(&event);
        }
        self.inner.writer.usage(event);
    }

    /// Set the one tap that sees every usage row (the gateway's metrics); later calls are ignored.
    pub fn tap_usage(&self, tap: UsageTap) {
        let _ = self.inner.tap.set(tap);
    }

    /// Commands waiting for the writer thread.
    pub fn writer_queue_depth(&self) -> usize {
        self.inner.writer.queue_depth()
    }

    /// Wait until everything queued so far is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.inner.writer.flush().await
    }

    /// Flush, checkpoint the WAL into the main file and stop the writer.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.inner.writer.close().await
    }
}

pub(crate) fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |message: String| StoreError::Open {
        path: path.display().to_string(),
        message,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| open_err(e.to_string()))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| open_err(e.to_string()))?;
    // The first statement that touches the file tells a non-database apart.
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(|e| open_err(format!("{e} (is this an omniroute database?)")))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(open_err(format!(
            "could not enable WAL (journal_mode={mode})"
        )));
    }
    conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
        .map_err(|e| open_err(e.to_string()))?;
    Ok(conn)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
