//! Budgets in USD and tokens per client key, account, tier, combo or the
//! whole gateway, per day or month (UTC). A request reserves its estimate
//! before it is sent and settles with the real usage afterwards.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BudgetScope {
    Key,
    Account,
    Tier,
    Combo,
    Global,
}

impl BudgetScope {
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetScope::Key => "key",
            BudgetScope::Account => "account",
            BudgetScope::Tier => "tier",
            BudgetScope::Combo => "combo",
            BudgetScope::Global => "global",
        }
    }
    pub fn parse(s: &str) -> Option<BudgetScope> {
        [
            BudgetScope::Key,
            BudgetScope::Account,
            BudgetScope::Tier,
            BudgetScope::Combo,
            BudgetScope::Global,
        ]
        .into_iter()
        .find(|b| b.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Month,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
        }
    }
    pub fn parse(s: &str) -> Option<Period> {
        match s {
            "day" => Some(Period::Day),
            "month" => Some(Period::Month),
            _ => None,
        }
    }

    /// Start and end (ms) of the period containing `now_ms`, in UTC.
    pub fn bounds(self, now_ms: i64) -> (i64, i64) {
        const DAY: i64 = 86_400_000;
        let day = now_ms.div_euclid(DAY);
        match self {
            Period::Day => (day * DAY, (day + 1) * DAY),
            Period::Month => {
                let (y, m, _) = civil_from_days(day);
                let start = days_from_civil(y, m, 1);
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (start * DAY, days_from_civil(ny, nm, 1) * DAY)
            }
        }
    }
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A limit on spend for one subject and period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BudgetRule {
    pub scope: BudgetScope,
    /// Key id, account id, tier name, combo name; "*" for global.
    pub scope_id: String,
    pub period: Period,
    pub limit_usd: Option<f64>,
    pub limit_tokens: Option<u64>,
}

/// Spend so far against a rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Spend {
    pub usd: f64,
    pub tokens: u64,
    pub reserved_usd: f64,
    pub reserved_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, JsonSchema)]
#[error("{} budget {}:{} exhausted ({}: spent ${:.6} of ${:.6}, {} of {} tokens)", .rule.period.as_str(), .rule.scope.as_str(), .rule.scope_id, .rule.period.as_str(), .spend.usd + .spend.reserved_usd, .rule.limit_usd.unwrap_or(f64::INFINITY), .spend.tokens + .spend.reserved_tokens, .rule.limit_tokens.map(|t| t.to_string()).unwrap_or("∞".into()))]
pub struct Exhausted {
    pub rule: BudgetRule,
    pub spend: Spend,
}

/// The subjects one attempt is charged to.
#[derive(Debug, Clone, Default)]
pub struct Subjects {
    pub key: Option<String>,
    pub account: String,
    pub tier: String,
    pub combo: Option<String>,
    /// Free tiers are never stopped by USD limits.
    pub free: bool,
}

impl Subjects {
    fn matches(&self, rule: &BudgetRule) -> bool {
        match rule.scope {
            BudgetScope::Key => self.key.as_deref() == Some(rule.scope_id.as_str()),
            BudgetScope::Account => self.account == rule.scope_id,
            BudgetScope::Tier => self.tier == rule.scope_id,
            BudgetScope::Combo => self.combo.as_deref() == Some(rule.scope_id.as_str()),
            BudgetScope::Global => true,
        }
    }
}

/// A reservation to settle once the real usage is known.
#[derive(Debug, Clone, Default)]
pub struct Reservation {
    entries: Vec<(usize, f64, u64)>,
    generation: u64,
}

#[derive(Debug, Default)]
struct Inner {
    rules: Vec<BudgetRule>,
    spend: Vec<(i64, Spend)>, // (period start, spend) per rule
    generation: u64,
}

#[derive(Debug, Default)]
pub struct Budgets {
    inner: Mutex<Inner>,
}

impl Budgets {
    /// Replace the rules; `spent` gives each rule's spend so far in its current period.
    pub fn load(&self, rules: Vec<(BudgetRule, Spend)>, now_ms: i64) {
        if let Ok(mut g) = self.inner.lock() {
            g.spend = rules
                .iter()
                .map(|(r, s)| (r.period.bounds(now_ms).0, *s))
                .collect();
            g.rules = rules.into_iter().map(|(r, _)| r).collect();
            g.generation += 1;
        }
    }

    pub fn rules(&self) -> Vec<(BudgetRule, Spend)> {
        match self.inner.lock() {
            Ok(g) => g
                .rules
                .iter()
                .cloned()
                .zip(g.spend.iter().map(|(_, s)| *s))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Would this estimate fit every matching budget? (No reservation.)
    pub fn check(
        &self,
        s: &Subjects,
        est_usd: f64,
        est_tokens: u64,
        now_ms: i64,
    ) -> Result<(), Exhausted> {
        let Ok(mut g) = self.inner.lock() else {
            return Ok(());
        };
        roll(&mut g, now_ms);
        for (i, rule) in g.rules.iter().enumerate() {
            if s.matches(rule) {
                fits(rule, &g.spend[i].1, s.free, est_usd, est_tokens)?;
            }
        }
        Ok(())
    }

    /// Reserve the estimate against every matching budget, or say which is exhausted.
    pub fn reserve(
        &self,
        s: &Subjects,
        est_usd: f64,
        est_tokens: u64,
        now_ms: i64,
    ) -> Result<Reservation, Exhausted> {
        let Ok(mut g) = self.inner.lock() else {
            return Ok(Reservation::default());
        };
        roll(&mut g, now_ms);
        let mut entries = Vec::new();
        for (i, rule) in g.rules.iter().enumerate() {
            if s.matches(rule) {
                fits(rule, &g.spend[i].1, s.free, est_usd, est_tokens)?;
                entries.push((i, est_usd, est_tokens));
            }
        }
        for &(i, usd, tokens) in &entries {
            let sp = &mut g.spend[i].1;
            sp.reserved_usd += usd;
            sp.reserved_tokens += tokens;
        }
        Ok(Reservation {
            entries,
            generation: g.generation,
        })
    }

    /// Replace the reservation by what was really spent.
    pub fn settle(&self, r: Reservation, usd: f64, tokens: u64) {
        let Ok(mut g) = self.inner.lock() else { return };
        if r.generation != g.generation {
            // rules reloaded meanwhile (their spend was recounted from the store)
            return;
        }
        for (i, est_usd, est_tokens) in r.entries {
            if let Some((_, sp)) = g.spend.get_mut(i) {
                sp.reserved_usd = (sp.reserved_usd - est_usd).max(0.0);
                sp.reserved_tokens = sp.reserved_tokens.saturating_sub(est_tokens);
                sp.usd += usd;
                sp.tokens += tokens;
            }
        }
    }
}

fn fits(
    rule: &BudgetRule,
    sp: &Spend,
    free: bool,
    est_usd: f64,
    est_tokens: u64,
) -> Result<(), Exhausted> {
    let over_usd = !free
        && rule.limit_usd.is_some_and(|l| {
            sp.usd + sp.reserved_usd + est_usd > l || sp.usd + sp.reserved_usd >= l
        });
    let over_tokens = rule
        .limit_tokens
        .is_some_and(|l| sp.tokens + sp.reserved_tokens + est_tokens > l);
    if over_usd || over_tokens {
        return Err(Exhausted {
            rule: rule.clone(),
            spend: *sp,
        });
    }
    Ok(())
}

fn roll(g: &mut Inner, now_ms: i64) {
    for (i, rule) in g.rules.iter().enumerate() {
        let start = rule.period.bounds(now_ms).0;
        if g.spend[i].0 != start {
            g.spend[i] = (start, Spend::default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(scope: BudgetScope, id: &str, usd: f64) -> BudgetRule {
        BudgetRule {
            scope,
            scope_id: id.into(),
            period: Period::Day,
            limit_usd: Some(usd),
            limit_tokens: None,
        }
    }

    fn subj(key: &str, free: bool) -> Subjects {
        Subjects {
            key: Some(key.into()),
            account: "acc".into(),
            tier: if free { "free" } else { "api-key" }.into(),
            combo: None,
            free,
        }
    }

    #[test]
    fn reserve_then_settle() {
        let b = Budgets::default();
        let now = 1_700_000_000_000;
        b.load(
            vec![(rule(BudgetScope::Key, "k1", 1.0), Spend::default())],
            now,
        );
        let r1 = b.reserve(&subj("k1", false), 0.6, 100, now).unwrap();
        // a second estimate that would cross the limit is refused while the first is open
        assert!(b.reserve(&subj("k1", false), 0.6, 100, now).is_err());
        // another key is not affected
        assert!(b.reserve(&subj("k2", false), 0.6, 100, now).is_ok());
        b.settle(r1, 0.2, 50);
        let r2 = b.reserve(&subj("k1", false), 0.6, 100, now).unwrap();
        b.settle(r2, 0.5, 10);
        let (_, spend) = b.rules()[0];
        assert!((spend.usd - 0.7).abs() < 1e-9 && spend.reserved_usd.abs() < 1e-9);
        assert_eq!(spend.tokens, 60);
    }

    #[test]
    fn a_tiny_key_budget_blocks_paid_but_not_free_targets() {
        let b = Budgets::default();
        let now = 1_700_000_000_000;
        b.load(
            vec![(rule(BudgetScope::Key, "k", 0.0001), Spend::default())],
            now,
        );
        let err = b.check(&subj("k", false), 0.0002, 10, now).unwrap_err();
        assert!(err.to_string().contains("key:k exhausted"), "{err}");
        assert!(b.check(&subj("k", true), 0.0002, 10, now).is_ok());
    }

    #[test]
    fn spend_resets_with_the_period() {
        let b = Budgets::default();
        let day = 86_400_000;
        let now = 20_000 * day + 5;
        b.load(
            vec![(
                rule(BudgetScope::Global, "*", 1.0),
                Spend {
                    usd: 1.0,
                    ..Spend::default()
                },
            )],
            now,
        );
        assert!(b.check(&subj("k", false), 0.01, 1, now).is_err());
        assert!(b.check(&subj("k", false), 0.01, 1, now + day).is_ok());
    }

    #[test]
    fn month_bounds_are_utc_calendar_months() {
        // 2026-11-25T12:00:00Z
        let now = 1_795_608_000_000;
        let (s, e) = Period::Month.bounds(now);
        assert_eq!(s, 1_793_491_200_000); // 2026-11-01
        assert_eq!(e, 1_796_083_200_000); // 2026-12-01
        let (s, e) = Period::Day.bounds(now);
        assert_eq!(e - s, 86_400_000);
        assert!(s <= now && now < e);
    }
}
