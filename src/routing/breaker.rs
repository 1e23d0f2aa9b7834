//! A circuit breaker per target as an explicit state machine: closed → open
//! after N consecutive failures or an error ratio over a window → half-open
//! after a cool-off that doubles on each failed probe → closed after a
//! successful probe. In half-open exactly one request probes.

use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    pub consecutive_failures: u32,
    /// Open when at least `min_requests` in the window failed at this ratio.
    pub error_ratio: f64,
    pub min_requests: u32,
    pub window: Duration,
    pub cool_off: Duration,
    pub max_cool_off: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            consecutive_failures: 5,
            error_ratio: 0.5,
            min_requests: 10,
            window: Duration::from_secs(30),
            cool_off: Duration::from_secs(5),
            max_cool_off: Duration::from_secs(300),
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// What the breaker lets a request do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead (closed).
    Allowed,
    /// Go ahead as the single probe (half-open).
    Probe,
    /// Skip this target.
    Rejected,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    cfg: BreakerConfig,
    state: BreakerState,
    consecutive: u32,
    window_start: Instant,
    window_requests: u32,
    window_failures: u32,
    open_until: Instant,
    cool_off: Duration,
    probe_in_flight: bool,
}

impl Breaker {
    pub fn new(cfg: BreakerConfig) -> Breaker {
        let now = Instant::now();
        Breaker {
            cfg,
            state: BreakerState::Closed,
            consecutive: 0,
            window_start: now,
            window_requests: 0,
            window_failures: 0,
            open_until: now,
            cool_off: cfg.cool_off,
            probe_in_flight: false,
        }
    }

    /// A breaker restored from the store: open until `open_until`.
    pub fn restored_open(cfg: BreakerConfig, open_until: Instant, cool_off: Duration) -> Breaker {
        let mut b = Breaker::new(cfg);
        b.state = BreakerState::Open;
        b.open_until = open_until;
        b.cool_off = cool_off.clamp(cfg.cool_off, cfg.max_cool_off);
        b
    }

    /// The state as seen now (an expired open breaker reads as half-open).
    pub fn state(&self) -> BreakerState {
        if self.state == BreakerState::Open && Instant::now() >= self.open_until {
            BreakerState::HalfOpen
        } else {
            self.state
        }
    }

    pub fn open_until(&self) -> Option<Instant> {
        (self.state == BreakerState::Open).then_some(self.open_until)
    }

    pub fn cool_off(&self) -> Duration {
        self.cool_off
    }

    /// Would a request be admitted now? (No side effects: for planning.)
    pub fn peek(&self) -> Admission {
        match self.state() {
            BreakerState::Closed => Admission::Allowed,
            BreakerState::Open => Admission::Rejected,
            BreakerState::HalfOpen if self.probe_in_flight => Admission::Rejected,
            BreakerState::HalfOpen => Admission::Probe,
        }
    }

    /// Admit a request; a probe must be followed by `on_success` or `on_failure`.
    pub fn admit(&mut self) -> Admission {
        let a = self.peek();
        if a == Admission::Probe {
            self.state = BreakerState::HalfOpen;
            self.probe_in_flight = true;
        }
        a
    }

    /// A probe that ended without an outcome (client gone) frees the slot.
    pub fn release_probe(&mut self) {
        self.probe_in_flight = false;
    }

    /// Returns true when the state changed.
    pub fn on_success(&mut self) -> bool {
        self.roll_window();
        self.window_requests += 1;
        self.consecutive = 0;
        self.probe_in_flight = false;
        if self.state != BreakerState::Closed {
            self.state = BreakerState::Closed;
            self.cool_off = self.cfg.cool_off;
            self.window_requests = 0;
            self.window_failures = 0;
            return true;
        }
        false
    }

    /// Returns true when the state changed.
    pub fn on_failure(&mut self) -> bool {
        self.roll_window();
        self.window_requests += 1;
        self.window_failures += 1;
        self.consecutive += 1;
        let now = Instant::now();
        match self.state {
            BreakerState::HalfOpen => {
                // a failed probe: open again, for longer
                self.probe_in_flight = false;
                self.cool_off = (self.cool_off * 2).min(self.cfg.max_cool_off);
                self.state = BreakerState::Open;
                self.open_until = now + self.cool_off;
                true
            }
            BreakerState::Open => false,
            BreakerState::Closed => {
                let ratio_trip = self.window_requests >= self.cfg.min_requests
                    && f64::from(self.window_failures) / f64::from(self.window_requests)
                        >= self.cfg.error_ratio;
                if self.consecutive >= self.cfg.consecutive_failures || ratio_trip {
                    self.state = BreakerState::Open;
                    self.open_until = now + self.cool_off;
                    true
                } else {
                    false
                }
            }
        }
    }

    fn roll_window(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.window_start) >= self.cfg.window {
            self.window_start = now;
            self.window_requests = 0;
            self.window_failures = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: 3,
            ..BreakerConfig::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_and_probes_once() {
        let mut b = Breaker::new(cfg());
        assert!(!b.on_failure());
        assert!(!b.on_failure());
        assert!(b.on_failure());
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.admit(), Admission::Rejected);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.admit(), Admission::Probe);
        // everyone else skips while the probe is out
        for _ in 0..50 {
            assert_eq!(b.admit(), Admission::Rejected);
        }
        assert!(b.on_success());
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.admit(), Admission::Allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probes_double_the_cool_off_up_to_the_cap() {
        let mut b = Breaker::new(cfg());
        for _ in 0..3 {
            b.on_failure();
        }
        let mut expected = Duration::from_secs(5);
        for _ in 0..10 {
            tokio::time::advance(expected).await;
            assert_eq!(b.admit(), Admission::Probe);
            assert!(b.on_failure());
            expected = (expected * 2).min(Duration::from_secs(300));
            assert_eq!(b.cool_off(), expected);
            tokio::time::advance(expected - Duration::from_millis(1)).await;
            assert_eq!(b.admit(), Admission::Rejected);
            tokio::time::advance(Duration::from_millis(1)).await;
            assert_eq!(b.peek(), Admission::Probe);
        }
        assert_eq!(b.cool_off(), Duration::from_secs(300));
    }

    #[tokio::test(start_paused = true)]
    async fn opens_on_error_ratio_and_the_window_rolls() {
        let mut b = Breaker::new(BreakerConfig {
            consecutive_failures: 100,
            ..BreakerConfig::default()
        });
        for i in 0..9 {
            if i % 2 == 0 {
                b.on_failure();
            } else {
                b.on_success();
            }
        }
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.on_failure()); // 10th request, 6 of 10 failed
        assert_eq!(b.state(), BreakerState::Open);
        let mut c = Breaker::new(BreakerConfig {
            consecutive_failures: 100,
            ..BreakerConfig::default()
        });
        for _ in 0..4 {
            c.on_failure();
            c.on_success();
        }
        tokio::time::advance(Duration::from_secs(31)).await;
        c.on_failure();
        assert_eq!(c.state(), BreakerState::Closed, "old window forgotten");
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_probe_frees_the_slot() {
        let mut b = Breaker::new(cfg());
        for _ in 0..3 {
            b.on_failure();
        }
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(b.admit(), Admission::Probe);
        b.release_probe();
        assert_eq!(b.admit(), Admission::Probe);
    }
}
