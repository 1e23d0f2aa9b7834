//! Versioned migrations kept as SQL files; `PRAGMA user_version` holds the
//! version, and a database from a newer omniroute is refused.

use super::StoreError;
use rusqlite::Connection;
use std::path::Path;

/// A step in Rust run after a migration's SQL, in the same transaction.
type DataStep = fn(&rusqlite::Transaction<'_>) -> Result<(), StoreError>;

const MIGRATIONS: &[(i64, &str, Option<DataStep>)] = &[
    (1, include_str!("migrations/0001_init.sql"), None),
    (2, include_str!("migrations/0002_routing.sql"), None),
    (3, include_str!("migrations/0003_a2a_tasks.sql"), None),
    (4, include_str!("migrations/0004_responses.sql"), None),
    (5, include_str!("migrations/0005_key_scopes.sql"), None),
    (6, include_str!("migrations/0006_subscriptions.sql"), None),
    (7, include_str!("migrations/0007_request_routes.sql"), None),
    (
        9,
        include_str!("migrations/0009_response_links.sql"),
        Some(super::responses::link_stored_conversations),
    ),
    (10, include_str!("migrations/0010_cache.sql"), None),
];

pub const LATEST: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

pub fn run(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    run_until(conn, path, LATEST)
}

/// Apply the migrations up to version `last` (tests start from an older schema).
pub(super) fn run_until(conn: &mut Connection, path: &Path, last: i64) -> Result<(), StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > LATEST {
        return Err(StoreError::SchemaTooNew {
            path: path.display().to_string(),
            found,
            supported: LATEST,
        });
    }
    let failed = |version: &i64, e: String| StoreError::Open {
        path: path.display().to_string(),
        message: format!("migration {version} failed: {e}"),
    };
    for (version, sql, data) in MIGRATIONS
        .iter()
        .filter(|(v, _, _)| *v > found && *v <= last)
    {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now >= *version {
            continue;
        }
        tx.execute_batch(sql)
            .map_err(|e| failed(version, e.to_string()))?;
        if let Some(step) = data {
            step(&tx).map_err(|e| failed(version, e.to_string()))?;
        }
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(version, "applied store migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_schema_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut conn = Connection::open(&path).unwrap();
        run(&mut conn, &path).unwrap();
        run(&mut conn, &path).unwrap(); // idempotent
        conn.pragma_update(None, "user_version", LATEST + 1)
            .unwrap();
        let err = run(&mut conn, &path).unwrap_err().to_string();
        assert!(err.contains("newer"), "{err}");
        assert!(err.contains("db.sqlite"), "{err}");
    }
}
