//! Versioned migrations kept as SQL files; `PRAGMA user_version` holds the
//! version, and a database from a newer omniroute is refused.

use super::StoreError;
use rusqlite::Connection;
use std::path::Path;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_routing.sql")),
    (3, include_str!("migrations/0003_a2a_tasks.sql")),
    (4, include_str!("migrations/0004_responses.sql")),
    (5, include_str!("migrations/0005_key_scopes.sql")),
    // 6 and 7 belong to other branches; their SQL lands with them.
    (8, include_str!("migrations/0008_cache.sql")),
];

pub const LATEST: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

pub fn run(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > LATEST {
        return Err(StoreError::SchemaTooNew {
            path: path.display().to_string(),
            found,
            supported: LATEST,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now >= *version {
            continue;
        }
        tx.execute_batch(sql).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            message: format!("migration {version} failed: {e}"),
        })?;
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
