//! Per-minute figures for the last day (requests, errors, spend, cache hits,
//! latency and overhead distributions), for the dashboard's live charts.
//! A minute holds two small log-bucket histograms, allocated when it first
//! sees traffic: a busy day costs about 600 KB.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Minutes kept: one day.
pub const MINUTES: usize = 24 * 60;
const HIST_BUCKETS: usize = 48;
/// Bucket i holds values up to `HIST_BASE_US * HIST_GROWTH^i` µs (10 µs .. ~30 min).
const HIST_BASE_US: f64 = 10.0;
const HIST_GROWTH: f64 = 1.5;

#[derive(Clone)]
struct SmallHist {
    counts: [u32; HIST_BUCKETS],
}

impl Default for SmallHist {
    fn default() -> Self {
        SmallHist {
            counts: [0; HIST_BUCKETS],
        }
    }
}

impl SmallHist {
    fn record_ms(&mut self, ms: f64) {
        let us = (ms * 1000.0).max(0.0);
        let idx = if us <= HIST_BASE_US {
            0
        } else {
            ((us / HIST_BASE_US).ln() / HIST_GROWTH.ln()).ceil() as usize
        };
        let c = &mut self.counts[idx.min(HIST_BUCKETS - 1)];
        *c = c.saturating_add(1);
    }

    fn merge(&mut self, other: &SmallHist) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    /// Upper bound of the bucket holding quantile `q`, in ms.
    fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total: u64 = self.counts.iter().map(|&c| u64::from(c)).sum();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return Some(HIST_BASE_US * HIST_GROWTH.powi(i as i32) / 1000.0);
            }
        }
        None
    }
}

#[derive(Clone, Default)]
struct Minute {
    /// Minutes since the epoch this slot holds.
    minute: i64,
    requests: u32,
    errors: u32,
    cache_hits: u32,
    cost_usd: f64,
    latency: SmallHist,
    overhead: SmallHist,
}

/// One request as the series counts it.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub ts_ms: i64,
    pub error: bool,
    pub cost_usd: f64,
    pub latency_ms: f64,
    pub overhead_ms: Option<f64>,
}

pub struct Series {
    slots: Vec<Option<Box<Minute>>>,
}

impl Default for Series {
    fn default() -> Self {
        Series {
            slots: vec![None; MINUTES],
        }
    }
}

/// One point of a chart: `step_s` seconds starting at `ts_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Point {
    /// Start of the interval (ms since epoch, UTC).
    pub ts_ms: i64,
    pub requests: u64,
    /// Requests per minute over the interval.
    pub requests_per_min: f64,
    pub errors: u64,
    /// errors / requests; null without traffic.
    pub error_rate: Option<f64>,
    pub cache_hits: u64,
    /// cache hits / requests; null without traffic.
    pub cache_hit_rate: Option<f64>,
    pub cost_usd: f64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub overhead_p50_ms: Option<f64>,
    pub overhead_p95_ms: Option<f64>,
    pub overhead_p99_ms: Option<f64>,
}

impl Series {
    /// The slot for `minute`; None when it holds a newer minute (the sample is over a day old).
    fn slot(&mut self, minute: i64) -> Option<&mut Minute> {
        let i = minute.rem_euclid(MINUTES as i64) as usize;
        let slot = self.slots[i].get_or_insert_with(Box::default);
        if slot.minute > minute {
            return None;
        }
        if slot.minute != minute {
            **slot = Minute {
                minute,
                ..Minute::default()
            };
        }
        Some(slot)
    }

    pub fn record(&mut self, s: Sample) {
        let Some(m) = self.slot(s.ts_ms.div_euclid(60_000)) else {
            return;
        };
        m.requests = m.requests.saturating_add(1);
        if s.error {
            m.errors = m.errors.saturating_add(1);
        }
        m.cost_usd += s.cost_usd;
        m.latency.record_ms(s.latency_ms);
        if let Some(o) = s.overhead_ms {
            m.overhead.record_ms(o);
        }
    }

    pub fn record_cache_hit(&mut self, ts_ms: i64) {
        let Some(m) = self.slot(ts_ms.div_euclid(60_000)) else {
            return;
        };
        m.cache_hits = m.cache_hits.saturating_add(1);
    }

    /// `points` intervals of `step_min` minutes ending with the minute of `now_ms`.
    pub fn points(&self, now_ms: i64, points: usize, step_min: usize) -> Vec<Point> {
        let step_min = step_min.max(1);
        let now_min = now_ms.div_euclid(60_000);
        let span = (points * step_min).min(MINUTES) as i64;
        let first = now_min - span + 1;
        let mut out = Vec::with_capacity(points);
        let mut start = first;
        while start <= now_min {
            let end = (start + step_min as i64).min(now_min + 1);
            let mut acc = Minute::default();
            for minute in start..end {
                let i = minute.rem_euclid(MINUTES as i64) as usize;
                if let Some(m) = self.slots[i].as_deref().filter(|m| m.minute == minute) {
                    acc.requests = acc.requests.saturating_add(m.requests);
                    acc.errors = acc.errors.saturating_add(m.errors);
                    acc.cache_hits = acc.cache_hits.saturating_add(m.cache_hits);
                    acc.cost_usd += m.cost_usd;
                    acc.latency.merge(&m.latency);
                    acc.overhead.merge(&m.overhead);
                }
            }
            let requests = u64::from(acc.requests);
            let rate = |n: u32| (requests > 0).then(|| f64::from(n) / requests as f64);
            out.push(Point {
                ts_ms: start * 60_000,
                requests,
                requests_per_min: requests as f64 / (end - start) as f64,
                errors: u64::from(acc.errors),
                error_rate: rate(acc.errors),
                cache_hits: u64::from(acc.cache_hits),
                cache_hit_rate: rate(acc.cache_hits),
                cost_usd: acc.cost_usd,
                latency_p50_ms: acc.latency.quantile_ms(0.50),
                latency_p95_ms: acc.latency.quantile_ms(0.95),
                latency_p99_ms: acc.latency.quantile_ms(0.99),
                overhead_p50_ms: acc.overhead.quantile_ms(0.50),
                overhead_p95_ms: acc.overhead.quantile_ms(0.95),
                overhead_p99_ms: acc.overhead.quantile_ms(0.99),
            });
            start = end;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ts_ms: i64, latency_ms: f64, error: bool) -> Sample {
        Sample {
            ts_ms,
            error,
            cost_usd: 0.001,
            latency_ms,
            overhead_ms: Some(latency_ms / 10.0),
        }
    }

    #[test]
    fn points_sum_minutes_and_drop_old_ones() {
        let mut s = Series::default();
        let now = 1_000 * 60_000 + 30_000;
        for i in 0..100 {
            s.record(sample(now, 10.0 + i as f64, i % 10 == 0));
        }
        s.record(sample(now - 60_000, 5.0, false));
        // a day ago: the same slot, overwritten by the newer minute
        s.record(sample(now - (MINUTES as i64) * 60_000, 1.0, true));
        s.record_cache_hit(now);
        let p = s.points(now, 60, 1);
        assert_eq!(p.len(), 60);
        let last = p.last().unwrap();
        assert_eq!(last.ts_ms, 1_000 * 60_000);
        assert_eq!((last.requests, last.errors, last.cache_hits), (100, 10, 1));
        assert_eq!(last.error_rate, Some(0.1));
        let p50 = last.latency_p50_ms.unwrap();
        assert!((59.0..=90.0).contains(&p50), "{p50}");
        assert!(last.latency_p99_ms.unwrap() >= 109.0);
        assert_eq!(p[58].requests, 1);
        assert_eq!(p.iter().map(|p| p.requests).sum::<u64>(), 101);
        let coarse = s.points(now, 6, 10);
        assert_eq!(coarse.len(), 6);
        assert_eq!(coarse.iter().map(|p| p.requests).sum::<u64>(), 101);
        assert!((coarse[5].requests_per_min - 10.1).abs() < 1e-9);
    }
}
