//! Live figures kept in memory: the gateway's own overhead per request
//! (request time minus upstream time) as a lock-free log-bucket histogram.

use std::sync::atomic::{AtomicU64, Ordering};

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
}

impl Metrics {
    pub fn observe_overhead(&self, ms: f64) {
        self.overhead.record_ms(ms);
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
