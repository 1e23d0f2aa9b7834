//! Live figures kept in memory: the gateway's own overhead per request
//! (request time minus upstream time) as a lock-free log-bucket histogram;
//! Prometheus counters and histograms per provider, model and target
//! (`prom`); and per-minute figures for the dashboard's charts (`series`).
//! Every usage row the store records passes through `observe_request`.

pub mod prom;
pub mod series;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const BUCKETS: usize = 96;
/// Bucket i holds values below `BASE_US * GROWTH^i` microseconds.
const BASE_US: f64 = 1.0;
const GROWTH: f64 = 1.25;

pub struct Histogram {
    counts: [AtomicU64; BUCKETS],
    total: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            total: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn record_ms(&self, ms: f64) {
        let us = (ms * 1000.0).max(0.0);
        let idx = if us <= BASE_US {
            0
        } else {
            ((us / BASE_US).ln() / GROWTH.ln()).ceil() as usize
        };
        self.counts[idx.min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Upper bound of the bucket holding quantile `q` (0..=1), in ms.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c.load(Ordering::Relaxed);
            if seen >= rank {
                return Some(BASE_US * GROWTH.powi(i as i32) / 1000.0);
            }
        }
        None
    }
}

#[derive(Default)]
pub struct Metrics {
    pub overhead: Histogram,
    pub prom: prom::Families,
    series: Mutex<series::Series>,
    spend: Mutex<Option<SpendTotals>>,
}

/// Spend totals read from the store, kept for a short while.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpendTotals {
    pub at_ms: i64,
    pub today_usd: f64,
    pub today_requests: u64,
    pub month_usd: f64,
}

impl Metrics {
    pub fn observe_overhead(&self, ms: f64) {
        self.overhead.record_ms(ms);
    }

    /// One finished request, as its usage row says (called by the store tap).
    pub fn observe_request(&self, e: &crate::store::UsageEvent) {
        self.prom.observe(e);
        self.record_series(e);
    }

    /// Count a finished request in the charts only (backfill from the store at start).
    pub fn record_series(&self, e: &crate::store::UsageEvent) {
        let sample = series::Sample {
            ts_ms: e.ts_ms,
            error: e.outcome != "ok",
            cost_usd: e.cost_usd.unwrap_or(0.0),
            latency_ms: e.latency_ms,
            overhead_ms: e.overhead_ms,
        };
        if let Ok(mut s) = self.series.lock() {
            s.record(sample);
        }
    }

    /// A cache lookup (`cache`: "exact", "semantic", "coalesced", "idempotency").
    pub fn observe_cache(&self, cache: &str, hit: bool) {
        self.prom.observe_cache(cache, hit);
        if hit {
            if let Ok(mut s) = self.series.lock() {
                s.record_cache_hit(crate::store::now_ms());
            }
        }
    }

    /// What one cache answer saved (tokens, USD at catalog prices, bytes).
    pub fn observe_cache_saving(&self, requested: &str, tokens: u64, usd: f64, bytes: u64) {
        self.prom
            .observe_cache_saving(requested, tokens, usd, bytes);
    }

    /// The last spend totals, if read within `ttl_ms` of `now_ms` (and the same UTC day).
    pub fn spend_totals(&self, now_ms: i64, ttl_ms: i64) -> Option<SpendTotals> {
        let s = (*self.spend.lock().ok()?)?;
        let same_day = s.at_ms.div_euclid(86_400_000) == now_ms.div_euclid(86_400_000);
        (now_ms - s.at_ms < ttl_ms && now_ms >= s.at_ms && same_day).then_some(s)
    }

    pub fn remember_spend(&self, s: SpendTotals) {
        if let Ok(mut g) = self.spend.lock() {
            *g = Some(s);
        }
    }

    /// `points` chart intervals of `step_min` minutes up to now.
    pub fn points(&self, now_ms: i64, points: usize, step_min: usize) -> Vec<series::Point> {
        self.series
            .lock()
            .map(|s| s.points(now_ms, points, step_min))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_bucket() {
        let h = Histogram::default();
        assert_eq!(h.quantile_ms(0.5), None);
        for i in 1..=1000 {
            h.record_ms(i as f64 / 1000.0); // 1 µs .. 1 ms
        }
        let p50 = h.quantile_ms(0.5).unwrap();
        assert!((0.5..0.63).contains(&p50), "{p50}");
        let p99 = h.quantile_ms(0.99).unwrap();
        assert!((0.99..1.25).contains(&p99), "{p99}");
    }
}
