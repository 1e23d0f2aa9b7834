//! Cache figures: counted in memory as requests are served and written to
//! the store in batches (at most one write queued at a time, which takes
//! everything counted until it runs), so `omniroute usage` and `cache stats`
//! in another process see them; this process's totals since it started are
//! kept beside them for `/health`.

use super::rows::{self, Delta, StatKey};
use crate::store::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Stats {
    pending: Mutex<HashMap<StatKey, Delta>>,
    queued: AtomicBool,
    totals: Mutex<Delta>,
}

/// `YYYY-MM-DD` (UTC) of a time in ms since the epoch.
pub fn day_of(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()[..10].to_string()
}

impl Stats {
    /// Count `d` for `key_id` (None: no key) and `label` (model or combo).
    pub fn record(
        self: &Arc<Self>,
        store: &Store,
        now_ms: i64,
        key_id: Option<&str>,
        label: &str,
        d: Delta,
    ) {
        if let Ok(mut t) = self.totals.lock() {
            t.add(&d);
        }
        let k = (
            day_of(now_ms),
            key_id.unwrap_or("").to_string(),
            label.to_string(),
        );
        if let Ok(mut p) = self.pending.lock() {
            p.entry(k).or_default().add(&d);
        }
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        store.write_detached("cache figures", move |tx| {
            // Cleared first: what is counted from here on queues a new write.
            me.queued.store(false, Ordering::Release);
            let rows: Vec<(StatKey, Delta)> = match me.pending.lock() {
                Ok(mut p) => p.drain().collect(),
                Err(_) => Vec::new(),
            };
            rows::add_stats(tx, &rows)
        });
    }

    /// Everything this process counted since it started.
    pub fn totals(&self) -> Delta {
        self.totals.lock().map(|t| *t).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn days_are_utc_dates() {
        assert_eq!(super::day_of(0), "1970-01-01");
        assert_eq!(super::day_of(1_748_736_010_000), "2025-06-01");
    }
}
