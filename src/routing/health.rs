//! Live health of targets and accounts: breakers, cooldowns, latency and
//! error figures, and the quota the upstream last reported. In memory on the
//! hot path; breaker and cooldown changes are persisted so they survive a restart.

use super::breaker::{Admission, Breaker, BreakerConfig, BreakerState};
use super::classify::FailureClass;
use rand::Rng;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(60);
const LATENCY_SAMPLES: usize = 256;

/// A persisted breaker or cooldown, in wall-clock milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthRow {
    pub key: String,
    /// "target" or "account"
    pub kind: String,
    pub breaker: String,
    pub open_until_ms: Option<i64>,
    pub cool_off_ms: i64,
    pub cooldown_until_ms: Option<i64>,
    pub reason: Option<String>,
}

#[derive(Debug)]
struct TargetHealth {
    breaker: Breaker,
    cooldown_until: Option<Instant>,
    cooldown_reason: Option<String>,
    backoff: u32,
    latency_ewma: Option<f64>,
    error_ewma: f64,
    recent: WindowCount,
    latencies: VecDeque<f64>,
    requests: u64,
    errors: u64,
}

impl TargetHealth {
    fn new(cfg: BreakerConfig) -> TargetHealth {
        TargetHealth {
            breaker: Breaker::new(cfg),
            cooldown_until: None,
            cooldown_reason: None,
            backoff: 0,
            latency_ewma: None,
            error_ewma: 0.0,
            recent: WindowCount::new(Instant::now()),
            latencies: VecDeque::new(),
            requests: 0,
            errors: 0,
        }
    }

    fn touch(&mut self, now: Instant) {
        self.recent.add(now);
        self.requests += 1;
    }
}

/// Requests in the last `WINDOW`, counted in one-second buckets: constant
/// memory and O(1) per request whatever the rate (a list of timestamps grew
/// to the request rate times the window and was scanned on every plan).
#[derive(Debug)]
struct WindowCount {
    origin: Instant,
    /// Second (since `origin`) of the newest bucket written.
    head: u64,
    buckets: [u32; BUCKETS],
}

const BUCKETS: usize = WINDOW.as_secs() as usize;

impl WindowCount {
    fn new(origin: Instant) -> WindowCount {
        WindowCount {
            origin,
            head: 0,
            buckets: [0; BUCKETS],
        }
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs()
    }

    /// Move the head to `sec`, clearing the buckets that fell out of the window.
    fn advance(&mut self, sec: u64) {
        if sec <= self.head {
            return;
        }
        let steps = (sec - self.head).min(BUCKETS as u64);
        for i in 1..=steps {
            self.buckets[((self.head + i) % BUCKETS as u64) as usize] = 0;
        }
        self.head = sec;
    }

    fn add(&mut self, now: Instant) {
        let sec = self.second(now);
        self.advance(sec);
        let slot = &mut self.buckets[(self.head % BUCKETS as u64) as usize];
        *slot = slot.saturating_add(1);
    }

    /// Requests in the window ending at `now`.
    fn count(&self, now: Instant) -> u64 {
        let sec = self.second(now);
        let age = sec.saturating_sub(self.head);
        if age >= BUCKETS as u64 {
            return 0;
        }
        // Buckets older than the window as seen from `now` are not counted.
        (0..BUCKETS as u64 - age)
            .map(|i| {
                let s = self.head.wrapping_sub(i);
                if i > self.head {
                    0
                } else {
                    u64::from(self.buckets[(s % BUCKETS as u64) as usize])
                }
            })
            .sum()
    }
}

#[derive(Debug, Default, Clone)]
struct AccountHealth {
    cooldown_until: Option<Instant>,
    reason: Option<String>,
    backoff: u32,
    quota: Option<QuotaObservation>,
}

/// What an upstream said about remaining quota on its last answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaObservation {
    pub remaining: f64,
    pub limit: f64,
    pub reset_at: Option<Instant>,
}

/// What planning needs to know about one target now.
#[derive(Debug, Clone, Default)]
pub struct TargetView {
    pub breaker: Option<BreakerState>,
    pub admission: Option<Admission>,
    pub cooldown: Option<(Duration, String)>,
    pub account_cooldown: Option<(Duration, String)>,
    pub latency_ewma_ms: Option<f64>,
    pub error_rate: f64,
    pub requests_in_window: u64,
    pub quota_remaining: Option<f64>,
    pub reset_in_s: Option<f64>,
}

/// A target's figures for reports.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct TargetReport {
    /// provider/account/model
    pub target: String,
    pub breaker: BreakerState,
    pub cooldown_s: Option<f64>,
    pub cooldown_reason: Option<String>,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
}

/// An account's cooldown and last quota figures.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct AccountReport {
    pub account: String,
    pub cooldown_s: Option<f64>,
    pub reason: Option<String>,
    pub quota_remaining: Option<f64>,
    pub quota_limit: Option<f64>,
    pub quota_reset_s: Option<f64>,
}

pub struct HealthBook {
    cfg: BreakerConfig,
    targets: Mutex<HashMap<String, TargetHealth>>,
    accounts: Mutex<HashMap<String, AccountHealth>>,
}

fn remaining(until: Option<Instant>, now: Instant) -> Option<Duration> {
    until
        .and_then(|u| u.checked_duration_since(now))
        .filter(|d| !d.is_zero())
}

fn jitter(d: Duration) -> Duration {
    let f = rand::rng().random_range(0.8..1.2);
    d.mul_f64(f)
}

impl HealthBook {
    pub fn new(cfg: BreakerConfig) -> HealthBook {
        HealthBook {
            cfg,
            targets: Mutex::new(HashMap::new()),
            accounts: Mutex::new(HashMap::new()),
        }
    }

    /// Restore persisted breakers and cooldowns.
    pub fn restore(&self, rows: &[HealthRow], now_ms: i64) {
        let now = Instant::now();
        let at = |ms: i64| now + Duration::from_millis((ms - now_ms).max(0) as u64);
        for r in rows {
            if r.kind == "account" {
                if let (Some(until), Ok(mut a)) = (r.cooldown_until_ms, self.accounts.lock()) {
                    if until > now_ms {
                        let e = a.entry(r.key.clone()).or_default();
                        e.cooldown_until = Some(at(until));
                        e.reason = r.reason.clone();
                    }
                }
                continue;
            }
            let Ok(mut t) = self.targets.lock() else {
                continue;
            };
            let e = t
                .entry(r.key.clone())
                .or_insert_with(|| TargetHealth::new(self.cfg));
            if r.breaker != "closed" {
                let until = r.open_until_ms.map(at).unwrap_or(now);
                e.breaker = Breaker::restored_open(
                    self.cfg,
                    until,
                    Duration::from_millis(r.cool_off_ms.max(0) as u64),
                );
            }
            if let Some(until) = r.cooldown_until_ms.filter(|u| *u > now_ms) {
                e.cooldown_until = Some(at(until));
                e.cooldown_reason = r.reason.clone();
            }
        }
    }

    pub fn view(&self, target: &str, account: &str) -> TargetView {
        let now = Instant::now();
        let mut v = TargetView::default();
        if let Ok(t) = self.targets.lock() {
            if let Some(h) = t.get(target) {
                v.breaker = Some(h.breaker.state());
                v.admission = Some(h.breaker.peek());
                v.cooldown = remaining(h.cooldown_until, now)
                    .map(|d| (d, h.cooldown_reason.clone().unwrap_or_default()));
                v.latency_ewma_ms = h.latency_ewma;
                v.error_rate = h.error_ewma;
                v.requests_in_window = h.recent.count(now);
            }
        }
        if let Ok(a) = self.accounts.lock() {
            if let Some(h) = a.get(account) {
                v.account_cooldown = remaining(h.cooldown_until, now)
                    .map(|d| (d, h.reason.clone().unwrap_or_default()));
                if let Some(q) = h.quota {
                    if q.limit > 0.0 {
                        v.quota_remaining = Some((q.remaining / q.limit).clamp(0.0, 1.0));
                    }
                    v.reset_in_s = q
                        .reset_at
                        .map(|r| r.saturating_duration_since(now).as_secs_f64());
                }
            }
        }
        v
    }

    /// Ask the target's breaker for admission (a half-open breaker admits one probe).
    pub fn admit(&self, target: &str) -> Admission {
        match self.targets.lock() {
            Ok(mut t) => t
                .entry(target.to_string())
                .or_insert_with(|| TargetHealth::new(self.cfg))
                .breaker
                .admit(),
            Err(_) => Admission::Allowed,
        }
    }

    /// A probe that ended without an outcome.
    pub fn release(&self, target: &str) {
        if let Ok(mut t) = self.targets.lock() {
            if let Some(h) = t.get_mut(target) {
                h.breaker.release_probe();
            }
        }
    }

    /// Returns a row to persist when the breaker changed state.
    pub fn record_success(
        &self,
        target: &str,
        account: &str,
        latency_ms: f64,
        quota: Option<QuotaObservation>,
    ) -> Option<HealthRow> {
        let now = Instant::now();
        let mut row = None;
        if let Ok(mut t) = self.targets.lock() {
            let h = t
                .entry(target.to_string())
                .or_insert_with(|| TargetHealth::new(self.cfg));
            h.touch(now);
            h.latency_ewma = Some(match h.latency_ewma {
                Some(e) => 0.8 * e + 0.2 * latency_ms,
                None => latency_ms,
            });
            h.error_ewma *= 0.9;
            h.latencies.push_back(latency_ms);
            if h.latencies.len() > LATENCY_SAMPLES {
                h.latencies.pop_front();
            }
            let had_cooldown = h.cooldown_until.take().is_some();
            h.cooldown_reason = None;
            h.backoff = 0;
            if h.breaker.on_success() || had_cooldown {
                row = Some(self.row(target, h));
            }
        }
        if let Ok(mut a) = self.accounts.lock() {
            let e = a.entry(account.to_string()).or_default();
            if quota.is_some() {
                e.quota = quota;
            }
            if e.cooldown_until.is_some() {
                e.cooldown_until = None;
                e.reason = None;
                e.backoff = 0;
            }
            // The upstream says this was the last request before its reset: rest until then.
            if let Some(QuotaObservation {
                remaining,
                reset_at: Some(reset),
                ..
            }) = quota
            {
                if remaining <= 0.0 && reset > now {
                    e.cooldown_until = Some(reset);
                    e.reason = Some(
                        "quota_exhausted: upstream reports 0 remaining until its reset".into(),
                    );
                }
            }
        }
        row
    }

    /// What an upstream last said about an account's quota, without a request
    /// to count (windows restored at startup).
    pub fn set_quota(&self, account: &str, quota: QuotaObservation) {
        if let Ok(mut a) = self.accounts.lock() {
            a.entry(account.to_string()).or_default().quota = Some(quota);
        }
    }

    /// Cool the target or its account down as the failure class says; rows to persist.
    pub fn record_failure(
        &self,
        target: &str,
        account: &str,
        class: FailureClass,
        retry_after: Option<Duration>,
        detail: &str,
    ) -> Vec<HealthRow> {
        let now = Instant::now();
        let mut rows = Vec::new();
        let reason = format!(
            "{}: {}",
            class.as_str(),
            detail.chars().take(120).collect::<String>()
        );
        if let Ok(mut t) = self.targets.lock() {
            let h = t
                .entry(target.to_string())
                .or_insert_with(|| TargetHealth::new(self.cfg));
            h.touch(now);
            h.errors += 1;
            h.error_ewma = 0.9 * h.error_ewma + 0.1;
            let mut changed = class.trips_breaker() && h.breaker.on_failure();
            if !class.trips_breaker() {
                h.breaker.release_probe();
            }
            let cooldown = match class {
                FailureClass::Transient => Some(backoff(
                    &mut h.backoff,
                    Duration::from_secs(1),
                    Duration::from_secs(60),
                )),
                FailureClass::RateLimited => Some(retry_after.unwrap_or_else(|| {
                    backoff(
                        &mut h.backoff,
                        Duration::from_secs(2),
                        Duration::from_secs(300),
                    )
                })),
                FailureClass::ModelUnavailable => Some(Duration::from_secs(600)),
                _ => None,
            };
            if let Some(d) = cooldown {
                h.cooldown_until = Some(now + d);
                h.cooldown_reason = Some(reason.clone());
                changed = true;
            }
            if changed {
                rows.push(self.row(target, h));
            }
        }
        let account_cooldown = match class {
            FailureClass::QuotaExhausted => {
                Some((Duration::from_secs(60), Duration::from_secs(3600)))
            }
            FailureClass::AccountRejected => {
                Some((Duration::from_secs(300), Duration::from_secs(3600)))
            }
            _ => None,
        };
        if let (Some((base, cap)), Ok(mut a)) = (account_cooldown, self.accounts.lock()) {
            let e = a.entry(account.to_string()).or_default();
            let d = retry_after.unwrap_or_else(|| backoff(&mut e.backoff, base, cap));
            e.cooldown_until = Some(now + d);
            e.reason = Some(reason);
            rows.push(HealthRow {
                key: account.to_string(),
                kind: "account".into(),
                breaker: "closed".into(),
                open_until_ms: None,
                cool_off_ms: 0,
                cooldown_until_ms: Some(crate::store::now_ms() + d.as_millis() as i64),
                reason: e.reason.clone(),
            });
        }
        rows
    }

    fn row(&self, key: &str, h: &TargetHealth) -> HealthRow {
        let now = Instant::now();
        let ms = |i: Option<Instant>| {
            i.map(|u| crate::store::now_ms() + u.saturating_duration_since(now).as_millis() as i64)
        };
        HealthRow {
            key: key.to_string(),
            kind: "target".into(),
            breaker: h.breaker.state().as_str().into(),
            open_until_ms: ms(h.breaker.open_until()),
            cool_off_ms: h.breaker.cool_off().as_millis() as i64,
            cooldown_until_ms: ms(h.cooldown_until),
            reason: h.cooldown_reason.clone(),
        }
    }

    /// Force a breaker open (tests, operators).
    pub fn trip(&self, target: &str, until: Instant) {
        if let Ok(mut t) = self.targets.lock() {
            let h = t
                .entry(target.to_string())
                .or_insert_with(|| TargetHealth::new(self.cfg));
            h.breaker = Breaker::restored_open(self.cfg, until, self.cfg.cool_off);
        }
    }

    pub fn target_reports(&self) -> Vec<TargetReport> {
        let now = Instant::now();
        let Ok(t) = self.targets.lock() else {
            return Vec::new();
        };
        let mut out: Vec<TargetReport> = t
            .iter()
            .map(|(k, h)| {
                let mut sorted: Vec<f64> = h.latencies.iter().copied().collect();
                sorted.sort_by(f64::total_cmp);
                let pct = |q: f64| {
                    (!sorted.is_empty())
                        .then(|| sorted[((sorted.len() as f64 - 1.0) * q).round() as usize])
                };
                TargetReport {
                    target: k.clone(),
                    breaker: h.breaker.state(),
                    cooldown_s: remaining(h.cooldown_until, now).map(|d| d.as_secs_f64()),
                    cooldown_reason: remaining(h.cooldown_until, now)
                        .and(h.cooldown_reason.clone()),
                    requests: h.requests,
                    errors: h.errors,
                    error_rate: if h.requests == 0 {
                        0.0
                    } else {
                        h.errors as f64 / h.requests as f64
                    },
                    latency_p50_ms: pct(0.5),
                    latency_p95_ms: pct(0.95),
                    latency_p99_ms: pct(0.99),
                }
            })
            .collect();
        out.sort_by(|a, b| a.target.cmp(&b.target));
        out
    }

    pub fn account_reports(&self) -> Vec<AccountReport> {
        let now = Instant::now();
        let Ok(a) = self.accounts.lock() else {
            return Vec::new();
        };
        let mut out: Vec<AccountReport> = a
            .iter()
            .map(|(k, h)| AccountReport {
                account: k.clone(),
                cooldown_s: remaining(h.cooldown_until, now).map(|d| d.as_secs_f64()),
                reason: remaining(h.cooldown_until, now).and(h.reason.clone()),
                quota_remaining: h.quota.map(|q| q.remaining),
                quota_limit: h.quota.map(|q| q.limit),
                quota_reset_s: h
                    .quota
                    .and_then(|q| q.reset_at)
                    .map(|r| r.saturating_duration_since(now).as_secs_f64()),
            })
            .collect();
        out.sort_by(|a, b| a.account.cmp(&b.account));
        out
    }
}

fn backoff(level: &mut u32, base: Duration, cap: Duration) -> Duration {
    let d = base.saturating_mul(1u32 << (*level).min(16)).min(cap);
    *level = level.saturating_add(1);
    jitter(d).min(cap)
}

/// The rate-limit header families upstreams send on every answer, as
/// (remaining, limit, reset) names.
///
/// - OpenAI (platform.openai.com/docs/guides/rate-limits, "Rate limits in
///   headers"): `x-ratelimit-{remaining,limit,reset}-{requests,tokens}`; the
///   reset is a duration from now ("6m0s", "20ms").
/// - Anthropic (docs.anthropic.com/en/api/rate-limits, "Response headers"):
///   `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{remaining,limit,reset}`;
///   the reset is an RFC 3339 time ("2025-01-15T14:24:00Z"), and `tokens` is
///   the most restrictive token limit currently in effect.
const RATE_LIMIT_FAMILIES: [(&str, &str, &str); 6] = [
    (
        "x-ratelimit-remaining-requests",
        "x-ratelimit-limit-requests",
        "x-ratelimit-reset-requests",
    ),
    (
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-reset-tokens",
    ),
    (
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-limit",
        "anthropic-ratelimit-requests-reset",
    ),
    (
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-limit",
        "anthropic-ratelimit-tokens-reset",
    ),
    (
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-limit",
        "anthropic-ratelimit-input-tokens-reset",
    ),
    (
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-limit",
        "anthropic-ratelimit-output-tokens-reset",
    ),
];

/// Parse upstream rate-limit headers (see [`RATE_LIMIT_FAMILIES`]) into one
/// quota observation: the most constrained window reported (the lowest
/// remaining share; among equals, the one that resets last, since the
/// account can only be used again once all of them allow it).
pub fn quota_from_headers(h: &reqwest::header::HeaderMap) -> Option<QuotaObservation> {
    use reqwest::header::HeaderName;
    // Most answers carry none: one look at the names instead of 12 lookups.
    if !h.keys().any(|k| k.as_str().contains("ratelimit")) {
        return None;
    }
    static NAMES: std::sync::LazyLock<Vec<[HeaderName; 3]>> = std::sync::LazyLock::new(|| {
        RATE_LIMIT_FAMILIES
            .iter()
            .map(|(a, b, c)| [a, b, c].map(|n| HeaderName::from_static(n)))
            .collect()
    });
    let text = |name: &HeaderName| h.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let num = |name: &HeaderName| text(name).and_then(|v| v.parse::<f64>().ok());
    let now = Instant::now();
    let now_ms = crate::store::now_ms();
    let share = |q: &QuotaObservation| {
        if q.limit > 0.0 {
            q.remaining / q.limit
        } else {
            0.0
        }
    };
    let mut tightest: Option<QuotaObservation> = None;
    for [rem, lim, reset] in NAMES.iter() {
        let (Some(remaining), Some(limit)) = (num(rem), num(lim)) else {
            continue;
        };
        let q = QuotaObservation {
            remaining,
            limit,
            reset_at: text(reset).and_then(|r| reset_at(r, now, now_ms)),
        };
        let tighter = match &tightest {
            None => true,
            Some(t) => match share(&q).total_cmp(&share(t)) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Greater => false,
                std::cmp::Ordering::Equal => q.reset_at > t.reset_at,
            },
        };
        if tighter {
            tightest = Some(q);
        }
    }
    tightest
}

/// A reset as sent: a duration from now (OpenAI) or an RFC 3339 time
/// (Anthropic); one already past is now.
fn reset_at(value: &str, now: Instant, now_ms: i64) -> Option<Instant> {
    if let Some(d) = parse_reset(value) {
        return Some(now + d);
    }
    let at = chrono::DateTime::parse_from_rfc3339(value).ok()?;
    let ahead = at.timestamp_millis().saturating_sub(now_ms).max(0);
    Some(now + Duration::from_millis(ahead as u64))
}

/// "6m0s", "1s", "20ms", "1h2m3.5s" or plain seconds.
fn parse_reset(s: &str) -> Option<Duration> {
    if let Ok(secs) = s.parse::<f64>() {
        return Some(Duration::from_secs_f64(secs.max(0.0)));
    }
    let mut total = 0.0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        total += match c {
            'h' => n * 3600.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                n / 1000.0
            }
            'm' => n * 60.0,
            's' => n,
            _ => return None,
        };
    }
    num.is_empty().then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_count_forgets_what_left_the_window() {
        let t0 = Instant::now();
        let mut w = WindowCount::new(t0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        for _ in 0..3 {
            w.add(at(0));
        }
        w.add(at(10));
        w.add(at(59));
        assert_eq!(w.count(at(59)), 5);
        // Second 0 leaves the window at 60; second 10 at 70.
        assert_eq!(w.count(at(60)), 2);
        assert_eq!(w.count(at(70)), 1);
        w.add(at(75));
        assert_eq!(w.count(at(75)), 2);
        assert_eq!(w.count(at(119)), 1);
        assert_eq!(w.count(at(200)), 0);
        // A long pause clears every bucket, not only the ones it passes.
        w.add(at(500));
        assert_eq!(w.count(at(500)), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_cool_down_targets_and_accounts() {
        let book = HealthBook::new(BreakerConfig::default());
        let rows = book.record_failure(
            "p/a/m",
            "a",
            FailureClass::RateLimited,
            Some(Duration::from_secs(7)),
            "slow down",
        );
        assert_eq!(rows.len(), 1);
        let v = book.view("p/a/m", "a");
        assert_eq!(v.cooldown.as_ref().unwrap().0, Duration::from_secs(7));
        assert!(v.account_cooldown.is_none());
        book.record_failure("p/a/m", "a", FailureClass::QuotaExhausted, None, "quota");
        let v = book.view("p/a/other", "a");
        assert!(v.account_cooldown.unwrap().0 >= Duration::from_secs(48));
        tokio::time::advance(Duration::from_secs(8)).await;
        assert!(book.view("p/a/m", "a").cooldown.is_none());
        book.record_success("p/a/m", "a", 120.0, None);
        assert!(book.view("p/a/m", "a").account_cooldown.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn transient_backoff_grows_and_is_capped() {
        let book = HealthBook::new(BreakerConfig {
            consecutive_failures: 1000,
            ..BreakerConfig::default()
        });
        let mut last = Duration::ZERO;
        for _ in 0..12 {
            book.record_failure("t", "a", FailureClass::Transient, None, "500");
            let d = book.view("t", "a").cooldown.unwrap().0;
            assert!(d <= Duration::from_secs(60));
            last = d;
        }
        assert!(last >= Duration::from_secs(48));
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_state_round_trips_through_rows() {
        let book = HealthBook::new(BreakerConfig::default());
        let mut rows = Vec::new();
        for _ in 0..5 {
            rows.extend(book.record_failure("t", "a", FailureClass::Transient, None, "boom"));
        }
        let last = rows.iter().rev().find(|r| r.key == "t").unwrap().clone();
        assert_eq!(last.breaker, "open");
        let fresh = HealthBook::new(BreakerConfig::default());
        fresh.restore(&[last], crate::store::now_ms());
        assert_eq!(fresh.view("t", "a").breaker, Some(BreakerState::Open));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_remaining_cools_the_account_until_the_reset() {
        let book = HealthBook::new(BreakerConfig::default());
        let quota = QuotaObservation {
            remaining: 0.0,
            limit: 100.0,
            reset_at: Some(Instant::now() + Duration::from_secs(40)),
        };
        book.record_success("t", "a", 10.0, Some(quota));
        let (d, why) = book.view("t2", "a").account_cooldown.unwrap();
        assert_eq!(d, Duration::from_secs(40));
        assert!(why.contains("0 remaining"));
        assert_eq!(book.view("t2", "a").quota_remaining, Some(0.0));
    }

    #[test]
    fn reads_rate_limit_headers() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("x-ratelimit-remaining-requests", "25".parse().unwrap());
        h.insert("x-ratelimit-limit-requests", "100".parse().unwrap());
        h.insert("x-ratelimit-reset-requests", "6m0s".parse().unwrap());
        let q = quota_from_headers(&h).unwrap();
        assert_eq!((q.remaining, q.limit), (25.0, 100.0));
        assert_eq!(
            parse_reset("1h2m3.5s"),
            Some(Duration::from_secs_f64(3723.5))
        );
        assert_eq!(parse_reset("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(parse_reset("bogus"), None);
    }

    /// Anthropic's resets are RFC 3339 times; the tightest family wins.
    #[test]
    fn reads_anthropic_rate_limit_headers() {
        let at = |secs: i64| {
            (chrono::Utc::now() + chrono::Duration::seconds(secs))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        let mut h = reqwest::header::HeaderMap::new();
        let mut set = |k: &'static str, v: String| {
            h.insert(k, v.parse().unwrap());
        };
        set("anthropic-ratelimit-requests-limit", "50".into());
        set("anthropic-ratelimit-requests-remaining", "0".into());
        set("anthropic-ratelimit-requests-reset", at(40));
        set("anthropic-ratelimit-tokens-limit", "40000".into());
        set("anthropic-ratelimit-tokens-remaining", "39000".into());
        set("anthropic-ratelimit-tokens-reset", at(2));
        let q = quota_from_headers(&h).unwrap();
        assert_eq!((q.remaining, q.limit), (0.0, 50.0));
        let wait = q.reset_at.unwrap() - Instant::now();
        assert!(
            wait > Duration::from_secs(37) && wait <= Duration::from_secs(40),
            "{wait:?}"
        );
        // Requests plentiful, tokens nearly gone: the token window is the one.
        h.insert(
            "anthropic-ratelimit-requests-remaining",
            "49".parse().unwrap(),
        );
        h.insert(
            "anthropic-ratelimit-tokens-remaining",
            "100".parse().unwrap(),
        );
        let q = quota_from_headers(&h).unwrap();
        assert_eq!((q.remaining, q.limit), (100.0, 40000.0));
        // A reset in the past is now, not an error.
        h.insert(
            "anthropic-ratelimit-tokens-reset",
            "2020-01-01T00:00:00Z".parse().unwrap(),
        );
        let q = quota_from_headers(&h).unwrap();
        assert!(q.reset_at.unwrap() <= Instant::now());
        assert!(quota_from_headers(&reqwest::header::HeaderMap::new()).is_none());
    }
}
