//! Retention (`[store.retention]`): stored responses, usage rows, audit
//! entries and A2A tasks older than their limit are deleted by a background
//! task. The deletes run on the store's writer thread in batches of
//! [`BATCH`] rows per transaction, so other writes interleave and no async
//! thread waits on SQLite.
//!
//! - Responses go a whole conversation at a time, once its newest turn is
//!   older than the limit (a kept turn needs every earlier one to rebuild
//!   its history).
//! - The newest audit entry of each entity is kept whatever its age, so
//!   `combos rollback` still finds the change to undo.
//! - Tasks go by their last update.

use super::{Store, StoreError};
use rusqlite::{params, Transaction};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Rows (or conversations, for responses) deleted per transaction.
pub const BATCH: i64 = 2_000;

const DAY: Duration = Duration::from_secs(86_400);

/// How long each kind of row is kept; `None` keeps it forever.
#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    pub responses: Option<Duration>,
    pub usage: Option<Duration>,
    pub audit: Option<Duration>,
    pub tasks: Option<Duration>,
    /// How often old rows are looked for.
    pub sweep_every: Duration,
}

impl Default for Retention {
    /// Responses 30 days (as OpenAI keeps stored responses), usage rows 400
    /// days (a year of reports, with monthly budgets well inside), audit
    /// entries a year, A2A tasks 30 days; a sweep every hour.
    fn default() -> Retention {
        Retention {
            responses: Some(DAY * 30),
            usage: Some(DAY * 400),
            audit: Some(DAY * 365),
            tasks: Some(DAY * 30),
            sweep_every: Duration::from_secs(3600),
        }
    }
}

/// What one sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub responses: u64,
    pub usage: u64,
    pub audit: u64,
    pub tasks: u64,
}

impl Swept {
    pub fn total(&self) -> u64 {
        self.responses + self.usage + self.audit + self.tasks
    }
}

type Delete = fn(&Transaction<'_>, i64) -> Result<usize, StoreError>;

fn responses(tx: &Transaction<'_>, cutoff: i64) -> Result<usize, StoreError> {
    Ok(tx.execute(
        "DELETE FROM responses WHERE root_id IN (
             SELECT DISTINCT r.root_id FROM responses r
             WHERE r.created_ms < ?1 AND NOT EXISTS (
                 SELECT 1 FROM responses n WHERE n.root_id = r.root_id AND n.created_ms >= ?1)
             LIMIT ?2)",
        params![cutoff, BATCH],
    )?)
}

fn usage(tx: &Transaction<'_>, cutoff: i64) -> Result<usize, StoreError> {
    Ok(tx.execute(
        "DELETE FROM usage_events WHERE id IN (
             SELECT id FROM usage_events WHERE ts_ms < ?1 LIMIT ?2)",
        params![cutoff, BATCH],
    )?)
}

fn audit(tx: &Transaction<'_>, cutoff: i64) -> Result<usize, StoreError> {
    Ok(tx.execute(
        "DELETE FROM audit_log WHERE id IN (
             SELECT id FROM audit_log WHERE ts_ms < ?1
             AND id NOT IN (SELECT MAX(id) FROM audit_log GROUP BY entity, entity_id)
             LIMIT ?2)",
        params![cutoff, BATCH],
    )?)
}

fn tasks(tx: &Transaction<'_>, cutoff: i64) -> Result<usize, StoreError> {
    Ok(tx.execute(
        "DELETE FROM a2a_tasks WHERE id IN (
             SELECT id FROM a2a_tasks WHERE updated_ms < ?1 LIMIT ?2)",
        params![cutoff, BATCH],
    )?)
}

/// Delete what is older than the limits as of `now_ms`.
pub async fn sweep(store: &Store, r: &Retention, now_ms: i64) -> Result<Swept, StoreError> {
    let mut swept = Swept::default();
    let kinds: [(Option<Duration>, Delete, &mut u64); 4] = [
        (r.responses, responses, &mut swept.responses),
        (r.usage, usage, &mut swept.usage),
        (r.audit, audit, &mut swept.audit),
        (r.tasks, tasks, &mut swept.tasks),
    ];
    for (limit, delete, count) in kinds {
        let Some(limit) = limit else { continue };
        let cutoff = now_ms.saturating_sub(i64::try_from(limit.as_millis()).unwrap_or(i64::MAX));
        loop {
            let n = store.write(move |tx| delete(tx, cutoff)).await?;
            *count += n as u64;
            if n == 0 {
                break;
            }
        }
    }
    Ok(swept)
}

/// Sweep now and then every `sweep_every` until `cancel`.
pub fn spawn(store: Store, r: Retention, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if r.usage.is_some_and(|u| u < DAY * 31) {
            tracing::warn!(
                "usage rows are kept for less than a month: monthly budgets and cost reports only see what is kept"
            );
        }
        let mut tick = tokio::time::interval(r.sweep_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            match sweep(&store, &r, super::now_ms()).await {
                Ok(s) if s.total() > 0 => tracing::info!(
                    responses = s.responses,
                    usage_rows = s.usage,
                    audit_entries = s.audit,
                    tasks = s.tasks,
                    "retention: deleted rows past their limit"
                ),
                Ok(_) => {}
                Err(StoreError::Closed) => return,
                Err(e) => tracing::warn!(error = %e, "retention sweep failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 10_000_000_000;
    const OLD: i64 = NOW - 100_000;
    const NEW: i64 = NOW - 10;

    async fn seeded() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|tx| {
                let response = |id: &str, prev: Option<&str>, root: &str, ms: i64| {
                    tx.execute(
                        "INSERT INTO responses (id, owner, items, response, created_ms, previous_id, root_id)
                         VALUES (?1, '', '[]', '{}', ?2, ?3, ?4)",
                        params![id, ms, prev, root],
                    )
                };
                // a: started long ago, continued just now (kept whole); b: all old.
                response("a1", None, "a1", OLD)?;
                response("a2", Some("a1"), "a1", NEW)?;
                response("b1", None, "b1", OLD)?;
                response("b2", Some("b1"), "b1", OLD)?;
                // More old usage rows than one batch.
                for i in 0..(BATCH + 5) {
                    tx.execute(
                        "INSERT INTO usage_events (ts_ms, request_id, endpoint, requested_model, stream, status, outcome, latency_ms)
                         VALUES (?1, ?2, 'chat.completions', 'm', 0, 200, 'ok', 1.0)",
                        params![OLD, format!("req_{i}")],
                    )?;
                }
                tx.execute(
                    "INSERT INTO usage_events (ts_ms, request_id, endpoint, requested_model, stream, status, outcome, latency_ms)
                     VALUES (?1, 'req_new', 'chat.completions', 'm', 0, 200, 'ok', 1.0)",
                    params![NEW],
                )?;
                let audit = |entity_id: &str, ms: i64| {
                    tx.execute(
                        "INSERT INTO audit_log (ts_ms, actor, action, entity, entity_id) VALUES (?1, 'cli', 'set', 'combo', ?2)",
                        params![ms, entity_id],
                    )
                };
                // x: two old changes (the newer kept); y: one old change (kept).
                audit("x", OLD)?;
                audit("x", OLD + 1)?;
                audit("y", OLD)?;
                let task = |id: &str, ms: i64| {
                    tx.execute(
                        "INSERT INTO a2a_tasks (id, owner, context_id, skill, state, body, created_ms, updated_ms)
                         VALUES (?1, '', 'c', 'health', 'completed', '{}', ?2, ?2)",
                        params![id, ms],
                    )
                };
                task("t-old", OLD)?;
                task("t-new", NEW)?;
                Ok(())
            })
            .await
            .unwrap();
        (dir, store)
    }

    fn ids(store: &Store, sql: &'static str) -> Vec<String> {
        store
            .read_blocking(|c| {
                let mut stmt = c.prepare(sql)?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .unwrap()
    }

    #[tokio::test]
    async fn a_sweep_deletes_what_is_past_each_limit() {
        let (_dir, store) = seeded().await;
        let limit = Some(Duration::from_secs(60));
        let r = Retention {
            responses: limit,
            usage: limit,
            audit: limit,
            tasks: limit,
            sweep_every: Duration::from_secs(1),
        };
        let swept = sweep(&store, &r, NOW).await.unwrap();
        assert_eq!(
            swept,
            Swept {
                responses: 2,
                usage: BATCH as u64 + 5,
                audit: 1,
                tasks: 1
            }
        );
        assert_eq!(
            ids(&store, "SELECT id FROM responses ORDER BY id"),
            ["a1", "a2"]
        );
        assert_eq!(
            ids(&store, "SELECT request_id FROM usage_events"),
            ["req_new"]
        );
        assert_eq!(
            ids(
                &store,
                "SELECT entity_id || '@' || ts_ms FROM audit_log ORDER BY id"
            ),
            [format!("x@{}", OLD + 1), format!("y@{OLD}")]
        );
        assert_eq!(ids(&store, "SELECT id FROM a2a_tasks"), ["t-new"]);
        // Nothing more to do; "forever" keeps everything.
        assert_eq!(sweep(&store, &r, NOW).await.unwrap(), Swept::default());
        let forever = Retention {
            responses: None,
            usage: None,
            audit: None,
            tasks: None,
            sweep_every: Duration::from_secs(1),
        };
        assert_eq!(
            sweep(&store, &forever, NOW + 1_000_000_000).await.unwrap(),
            Swept::default()
        );
        store.close().await.unwrap();
    }
}
