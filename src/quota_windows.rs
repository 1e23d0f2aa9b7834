//! Plan quota windows as subscription providers report them on each answer,
//! and the burn-rate forecast built on them. Pure functions over headers and
//! numbers; the store keeps the windows per account.
//!
//! - Anthropic (Claude subscriptions): `anthropic-ratelimit-unified-{5h,7d}-utilization`
//!   (0..1), `-reset` (Unix seconds; RFC 3339 accepted too, as the documented
//!   `anthropic-ratelimit-*-reset` headers use it), `-status` (allowed,
//!   allowed_warning, rejected), and `anthropic-ratelimit-unified-status`,
//!   `-reset`, `-representative-claim`, `-overage-status`. Sources in
//!   docs/subscriptions.md.
//! - Codex (ChatGPT plans): `x-codex-{primary,secondary}-used-percent` (0..100),
//!   `-window-minutes`, `-reset-after-seconds`, `-reset-at` (Unix seconds).

use chrono::DateTime;
use reqwest::header::HeaderMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One plan window at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// `5h`, `7d`, `primary`, `secondary`.
    pub name: String,
    /// 0..100 (may exceed 100 when the provider says so).
    pub used_pct: f64,
    /// When the window resets, ms since the epoch.
    pub resets_ms: Option<i64>,
    pub window_minutes: Option<i64>,
    /// The provider's word for it (allowed, allowed_warning, rejected).
    pub status: Option<String>,
}

impl Window {
    pub fn exhausted(&self) -> bool {
        self.used_pct >= 100.0 || self.status.as_deref() == Some("rejected")
    }
}

/// What one answer said about the account's plan.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    pub windows: Vec<Window>,
    /// The provider refuses plan requests until `reset_ms` (unified status rejected).
    pub rejected: bool,
    /// The answer was served from overage (extra usage), not the plan.
    pub overage: bool,
    /// The reset the provider names for the limit in force, ms since the epoch.
    pub reset_ms: Option<i64>,
}

impl Report {
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty() && !self.rejected && self.reset_ms.is_none()
    }

    /// The window that binds: the most used one.
    pub fn binding(&self) -> Option<&Window> {
        self.windows
            .iter()
            .max_by(|a, b| a.used_pct.total_cmp(&b.used_pct))
    }

    /// When the account can be used again, if the answer says it cannot now.
    pub fn exhausted_until(&self) -> Option<i64> {
        let exhausted: Vec<&Window> = self.windows.iter().filter(|w| w.exhausted()).collect();
        if !self.rejected && exhausted.is_empty() {
            return None;
        }
        // The latest reset among exhausted windows: all of them must have reset.
        exhausted
            .iter()
            .filter_map(|w| w.resets_ms)
            .max()
            .or(self.reset_ms)
    }
}

fn text<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn num(h: &HeaderMap, name: &str) -> Option<f64> {
    text(h, name)?.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A reset time: Unix seconds (or ms when it is that large), or RFC 3339.
pub fn parse_reset(value: &str) -> Option<i64> {
    let v = value.trim();
    if let Ok(n) = v.parse::<f64>() {
        if !n.is_finite() || n <= 0.0 {
            return None;
        }
        return Some(if n > 1e11 {
            n as i64
        } else {
            (n * 1000.0) as i64
        });
    }
    DateTime::parse_from_rfc3339(v)
        .ok()
        .map(|d| d.timestamp_millis())
}

/// Anthropic's unified rate-limit headers (subscription accounts).
pub fn from_anthropic(h: &HeaderMap) -> Report {
    let mut r = Report::default();
    for (name, minutes) in [("5h", 300), ("7d", 10_080)] {
        let p = |field: &str| format!("anthropic-ratelimit-unified-{name}-{field}");
        let Some(util) = num(h, &p("utilization")) else {
            continue;
        };
        r.windows.push(Window {
            name: name.to_string(),
            // 0.1 × 100 is 10.000000000000002 in binary; keep two decimals.
            used_pct: (util * 10_000.0).round() / 100.0,
            resets_ms: text(h, &p("reset")).and_then(parse_reset),
            window_minutes: Some(minutes),
            status: text(h, &p("status")).map(str::to_string),
        });
    }
    let status = text(h, "anthropic-ratelimit-unified-status");
    r.rejected = status == Some("rejected");
    r.reset_ms = text(h, "anthropic-ratelimit-unified-reset").and_then(parse_reset);
    let claim = text(h, "anthropic-ratelimit-unified-representative-claim");
    let overage_status = text(h, "anthropic-ratelimit-unified-overage-status");
    // Plan windows rejected yet the request served: it went to extra usage.
    r.overage = claim == Some("overage")
        || (r.rejected && matches!(overage_status, Some("allowed" | "allowed_warning")));
    if r.overage {
        r.rejected = true;
    }
    r
}

/// Codex's primary/secondary usage headers (ChatGPT plans).
pub fn from_codex(h: &HeaderMap, now_ms: i64) -> Report {
    let mut r = Report::default();
    for name in ["primary", "secondary"] {
        let p = |field: &str| format!("x-codex-{name}-{field}");
        let Some(used) = num(h, &p("used-percent")) else {
            continue;
        };
        let resets_ms = text(h, &p("reset-at")).and_then(parse_reset).or_else(|| {
            num(h, &p("reset-after-seconds")).map(|s| now_ms + (s.max(0.0) * 1000.0) as i64)
        });
        r.windows.push(Window {
            name: name.to_string(),
            used_pct: used,
            resets_ms,
            window_minutes: num(h, &p("window-minutes")).map(|m| m as i64),
            status: None,
        });
    }
    r
}

/// A window for reports: used share, reset, and where the current pace leads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WindowReport {
    /// `5h`, `7d`, `primary`, `secondary`.
    pub window: String,
    pub used_pct: f64,
    /// RFC 3339, UTC.
    pub resets_at: Option<String>,
    pub resets_in_s: Option<f64>,
    pub window_minutes: Option<i64>,
    pub status: Option<String>,
    /// Percentage points per hour at the pace seen in this window.
    pub burn_pct_per_hour: Option<f64>,
    /// Seconds until 100 % at that pace, when it comes before the reset.
    pub exhausted_in_s: Option<f64>,
    /// One line for people: "at this pace the 5-hour window is gone in 38 min".
    pub forecast: String,
    /// When this was last reported by the provider (RFC 3339).
    pub observed_at: String,
}

/// A stored window sample with the first sample of the same window instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub used_pct: f64,
    pub observed_ms: i64,
    pub first_pct: f64,
    pub first_ms: i64,
    pub resets_ms: Option<i64>,
    pub window_minutes: Option<i64>,
}

/// Percentage points per hour: from the first sample of this window when
/// they are a minute apart, else from the window's start (it begins at 0 %).
pub fn burn_rate(s: &Sample) -> Option<f64> {
    let hour = 3_600_000.0;
    let span = (s.observed_ms - s.first_ms) as f64;
    if span >= 60_000.0 && s.used_pct >= s.first_pct {
        return Some((s.used_pct - s.first_pct) / span * hour);
    }
    let (reset, minutes) = (s.resets_ms?, s.window_minutes?);
    let start = reset - minutes * 60_000;
    let elapsed = (s.observed_ms - start) as f64;
    (elapsed >= 60_000.0).then(|| s.used_pct / elapsed * hour)
}

fn label(name: &str, minutes: Option<i64>) -> String {
    match (name, minutes) {
        ("5h", _) | (_, Some(300)) => "5-hour window".into(),
        ("7d", _) | (_, Some(10_080)) => "weekly window".into(),
        (_, Some(m)) if m % 60 == 0 => format!("{}-hour {name} window", m / 60),
        (_, Some(m)) => format!("{m}-minute {name} window"),
        _ => format!("{name} window"),
    }
}

fn human(secs: f64) -> String {
    let m = (secs / 60.0).round() as i64;
    if m < 1 {
        format!("{}s", secs.round().max(0.0) as i64)
    } else if m < 120 {
        format!("{m} min")
    } else if m < 48 * 60 {
        format!("{:.1} h", secs / 3600.0)
    } else {
        format!("{:.1} days", secs / 86_400.0)
    }
}

/// The report of one window at `now_ms`.
pub fn report(name: &str, status: Option<&str>, s: &Sample, now_ms: i64) -> WindowReport {
    let rfc = |ms: i64| {
        DateTime::from_timestamp_millis(ms)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    // A window whose reset has passed is fresh again.
    let reset_passed = s.resets_ms.is_some_and(|r| r <= now_ms);
    let used = if reset_passed { 0.0 } else { s.used_pct };
    let resets_in_s = s
        .resets_ms
        .filter(|_| !reset_passed)
        .map(|r| (r - now_ms) as f64 / 1000.0);
    let rate = if reset_passed { None } else { burn_rate(s) };
    let what = label(name, s.window_minutes);
    let exhausted_in_s = match rate {
        _ if used >= 100.0 => Some(0.0),
        Some(r) if r > 0.0 => {
            let secs = (100.0 - used) / r * 3600.0 - (now_ms - s.observed_ms) as f64 / 1000.0;
            let secs = secs.max(0.0);
            resets_in_s.is_none_or(|left| secs < left).then_some(secs)
        }
        _ => None,
    };
    let forecast = if used >= 100.0 {
        match resets_in_s {
            Some(left) => format!("the {what} is used up; it resets in {}", human(left)),
            None => format!("the {what} is used up"),
        }
    } else {
        match (exhausted_in_s, resets_in_s, rate) {
            (Some(secs), _, _) => format!("at this pace the {what} is gone in {}", human(secs)),
            (None, Some(left), Some(r)) if r > 0.0 => format!(
                "at this pace the {what} lasts until its reset in {} ({used:.0}% used)",
                human(left)
            ),
            (None, Some(left), _) => {
                format!(
                    "{used:.0}% of the {what} used; it resets in {}",
                    human(left)
                )
            }
            _ => format!("{used:.0}% of the {what} used"),
        }
    };
    WindowReport {
        window: name.to_string(),
        used_pct: used,
        resets_at: s.resets_ms.and_then(rfc),
        resets_in_s,
        window_minutes: s.window_minutes,
        status: if reset_passed {
            None
        } else {
            status.map(str::to_string)
        },
        burn_pct_per_hour: rate,
        exhausted_in_s,
        forecast,
        observed_at: rfc(s.observed_ms).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn anthropic_unified_headers_with_epoch_and_rfc3339_resets() {
        let h = headers(&[
            ("anthropic-ratelimit-unified-5h-utilization", "0.42"),
            ("anthropic-ratelimit-unified-5h-reset", "1782129600"),
            ("anthropic-ratelimit-unified-5h-status", "allowed"),
            ("anthropic-ratelimit-unified-7d-utilization", "0.05"),
            (
                "anthropic-ratelimit-unified-7d-reset",
                "2026-06-24T12:00:00Z",
            ),
            ("anthropic-ratelimit-unified-status", "allowed"),
        ]);
        let r = from_anthropic(&h);
        assert_eq!(r.windows.len(), 2);
        assert!((r.windows[0].used_pct - 42.0).abs() < 1e-9);
        assert_eq!(r.windows[0].resets_ms, Some(1_782_129_600_000));
        assert_eq!(r.windows[1].resets_ms, Some(1_782_302_400_000));
        assert!(!r.rejected && !r.overage);
        assert_eq!(r.exhausted_until(), None);
        assert_eq!(r.binding().unwrap().name, "5h");
    }

    #[test]
    fn anthropic_rejected_window_names_its_reset() {
        let h = headers(&[
            ("anthropic-ratelimit-unified-5h-utilization", "1.0"),
            ("anthropic-ratelimit-unified-5h-reset", "1782129600"),
            ("anthropic-ratelimit-unified-5h-status", "rejected"),
            ("anthropic-ratelimit-unified-status", "rejected"),
            ("anthropic-ratelimit-unified-reset", "1782129600"),
        ]);
        let r = from_anthropic(&h);
        assert!(r.rejected);
        assert_eq!(r.exhausted_until(), Some(1_782_129_600_000));
        let served_from_overage = headers(&[
            ("anthropic-ratelimit-unified-status", "rejected"),
            ("anthropic-ratelimit-unified-overage-status", "allowed"),
            ("anthropic-ratelimit-unified-reset", "1782129600"),
        ]);
        let r = from_anthropic(&served_from_overage);
        assert!(r.overage && r.rejected);
        assert_eq!(r.exhausted_until(), Some(1_782_129_600_000));
    }

    #[test]
    fn codex_primary_and_secondary() {
        let h = headers(&[
            ("x-codex-primary-used-percent", "12.5"),
            ("x-codex-primary-window-minutes", "300"),
            ("x-codex-primary-reset-after-seconds", "600"),
            ("x-codex-secondary-used-percent", "100"),
            ("x-codex-secondary-window-minutes", "10080"),
            ("x-codex-secondary-reset-at", "1704069000"),
        ]);
        let r = from_codex(&h, 1_000_000);
        assert_eq!(r.windows.len(), 2);
        assert_eq!(r.windows[0].resets_ms, Some(1_600_000));
        assert_eq!(r.windows[0].window_minutes, Some(300));
        assert!(r.windows[1].exhausted());
        assert_eq!(r.exhausted_until(), Some(1_704_069_000_000));
    }

    #[test]
    fn resets_in_every_form() {
        assert_eq!(parse_reset("1704069000"), Some(1_704_069_000_000));
        assert_eq!(parse_reset("1704069000123"), Some(1_704_069_000_123));
        assert_eq!(
            parse_reset("2024-01-01T00:30:00+00:00"),
            Some(1_704_069_000_000)
        );
        assert_eq!(parse_reset("soon"), None);
        assert_eq!(parse_reset("-5"), None);
    }

    #[test]
    fn forecast_from_the_pace_in_the_window() {
        let now = 10 * 3_600_000;
        // 20 % used in the first hour: 100 % in 4 more hours, but the reset
        // comes a minute sooner -> it lasts until the reset.
        let s = Sample {
            used_pct: 20.0,
            observed_ms: now,
            first_pct: 0.0,
            first_ms: now - 3_600_000,
            resets_ms: Some(now + 4 * 3_600_000 - 60_000),
            window_minutes: Some(300),
        };
        let r = report("5h", None, &s, now);
        assert!((r.burn_pct_per_hour.unwrap() - 20.0).abs() < 1e-9);
        assert!(
            r.forecast.contains("lasts until its reset"),
            "{}",
            r.forecast
        );
        // 80 % used in the first hour: gone in 15 min at 80 %/h.
        let fast = Sample {
            used_pct: 80.0,
            ..s.clone()
        };
        let r = report("5h", None, &fast, now);
        assert_eq!(r.exhausted_in_s, Some(900.0));
        assert_eq!(
            r.forecast,
            "at this pace the 5-hour window is gone in 15 min"
        );
        // One sample only: the pace since the window's start (reset - 5 h).
        let single = Sample {
            used_pct: 50.0,
            observed_ms: now,
            first_pct: 50.0,
            first_ms: now,
            resets_ms: Some(now + 3 * 3_600_000),
            window_minutes: Some(300),
        };
        let r = report("5h", None, &single, now);
        assert!((r.burn_pct_per_hour.unwrap() - 25.0).abs() < 1e-9);
        assert_eq!(r.exhausted_in_s, Some(7200.0));
        // After the reset the window reads as fresh.
        let r = report("5h", Some("rejected"), &single, now + 4 * 3_600_000);
        assert_eq!(r.used_pct, 0.0);
        assert_eq!(r.status, None);
    }
}
