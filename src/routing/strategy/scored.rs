//! Strategies that order by live figures: latency, errors, cost, context,
//! and upstream quota headroom and reset times.

use super::{Candidate, Ctx};
use rand::Rng;
use std::cmp::Ordering;

/// Sort indices by a key (lower first), ties and unknowns (None last) by position.
fn sort_by(c: &[Candidate], key: impl Fn(&Candidate) -> Option<f64>) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..c.len()).collect();
    idx.sort_by(|&a, &b| match (key(&c[a]), key(&c[b])) {
        (Some(x), Some(y)) => x.total_cmp(&y).then(c[a].position.cmp(&c[b].position)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => c[a].position.cmp(&c[b].position),
    });
    idx
}

/// Lower is better: latency inflated by errors; half-open targets are a last resort.
fn health_score(x: &Candidate) -> f64 {
    let latency = x.latency_ewma_ms.unwrap_or(500.0);
    let penalty = if x.half_open { 10.0 } else { 1.0 };
    latency * (1.0 + 4.0 * x.error_rate) * penalty
}

pub fn p2c(c: &[Candidate], ctx: &mut Ctx<'_>) -> Vec<usize> {
    let a = ctx.rng.random_range(0..c.len());
    let mut b = ctx.rng.random_range(0..c.len() - 1);
    if b >= a {
        b += 1;
    }
    let first = if health_score(&c[a]) <= health_score(&c[b]) {
        a
    } else {
        b
    };
    let mut rest: Vec<usize> = sort_by(c, |x| Some(health_score(x)));
    rest.retain(|&i| i != first);
    std::iter::once(first).chain(rest).collect()
}

pub fn cost_optimized(c: &[Candidate]) -> Vec<usize> {
    sort_by(c, |x| x.est_cost)
}

pub fn context_optimized(c: &[Candidate]) -> Vec<usize> {
    sort_by(c, |x| x.context.map(|w| -f64::from(w)))
}

pub fn headroom(c: &[Candidate]) -> Vec<usize> {
    sort_by(c, |x| x.quota_remaining.map(|r| -r))
}

pub fn reset_window(c: &[Candidate]) -> Vec<usize> {
    sort_by(c, |x| x.reset_in_s)
}

/// Spend what resets soon first: remaining share per hour until the reset, highest first.
pub fn reset_aware(c: &[Candidate]) -> Vec<usize> {
    sort_by(c, |x| match (x.quota_remaining, x.reset_in_s) {
        (Some(r), Some(s)) => Some(-(r / (s / 3600.0).max(1.0 / 60.0))),
        (Some(r), None) => Some(-r / 24.0),
        _ => None,
    })
}

/// Share of picks that explore a random target instead of the best score.
pub const EXPLORATION: f64 = 0.05;

pub fn auto_score(x: &Candidate, c: &[Candidate]) -> f64 {
    let max_latency = c
        .iter()
        .filter_map(|y| y.latency_ewma_ms)
        .fold(1.0, f64::max);
    let max_cost = c
        .iter()
        .filter_map(|y| y.est_cost)
        .fold(f64::MIN_POSITIVE, f64::max);
    let latency = x.latency_ewma_ms.map(|l| l / max_latency).unwrap_or(0.5);
    let cost = x.est_cost.map(|v| v / max_cost).unwrap_or(0.5);
    let headroom = x.quota_remaining.unwrap_or(0.5);
    let context = match x.context {
        Some(w) if w >= 128_000 => 0.0,
        Some(_) => 0.5,
        None => 0.25,
    };
    let breaker = if x.half_open { 1.0 } else { 0.0 };
    0.30 * latency
        + 0.25 * x.error_rate
        + 0.20 * cost
        + 0.15 * (1.0 - headroom)
        + 0.05 * context
        + 0.05 * breaker
}

pub fn auto(c: &[Candidate], ctx: &mut Ctx<'_>) -> Vec<usize> {
    let mut order = sort_by(c, |x| Some(auto_score(x, c)));
    if ctx.rng.random_bool(EXPLORATION) {
        let pick = ctx.rng.random_range(0..order.len());
        let chosen = order.remove(pick);
        order.insert(0, chosen);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{ComboState, StrategyKind};

    #[test]
    fn p2c_prefers_the_healthier_of_two() {
        let mut c = cands(2);
        c[0].latency_ewma_ms = Some(900.0);
        c[1].latency_ewma_ms = Some(100.0);
        let state = ComboState::default();
        for seed in 0..50 {
            assert_eq!(run(StrategyKind::P2c, &c, &state, seed)[0], 1);
        }
        // with many targets the worst is never picked first
        let mut c = cands(6);
        for (i, x) in c.iter_mut().enumerate() {
            x.latency_ewma_ms = Some(100.0 * (i + 1) as f64);
        }
        c[0].error_rate = 1.0;
        c[0].latency_ewma_ms = Some(5000.0);
        for seed in 0..200 {
            assert_ne!(run(StrategyKind::P2c, &c, &state, seed)[0], 0);
        }
    }

    #[test]
    fn cost_context_headroom_and_reset_orders() {
        let mut c = cands(3);
        c[0].est_cost = Some(0.03);
        c[1].est_cost = None;
        c[2].est_cost = Some(0.001);
        let s = ComboState::default();
        assert_eq!(run(StrategyKind::CostOptimized, &c, &s, 0), vec![2, 0, 1]);
        c[0].context = Some(32_000);
        c[1].context = Some(1_000_000);
        c[2].context = Some(200_000);
        assert_eq!(
            run(StrategyKind::ContextOptimized, &c, &s, 0),
            vec![1, 2, 0]
        );
        c[0].quota_remaining = Some(0.9);
        c[1].quota_remaining = Some(0.1);
        c[2].quota_remaining = None;
        assert_eq!(run(StrategyKind::Headroom, &c, &s, 0), vec![0, 1, 2]);
        c[0].reset_in_s = Some(86_400.0);
        c[1].reset_in_s = Some(60.0);
        assert_eq!(run(StrategyKind::ResetWindow, &c, &s, 0), vec![1, 0, 2]);
        // 10% left that resets in a minute beats 90% that lasts a day
        assert_eq!(run(StrategyKind::ResetAware, &c, &s, 0)[0], 1);
    }

    #[test]
    fn auto_is_deterministic_under_a_seed_and_mostly_picks_the_best() {
        let mut c = cands(4);
        for (i, x) in c.iter_mut().enumerate() {
            x.latency_ewma_ms = Some(100.0 + 200.0 * i as f64);
            x.est_cost = Some(0.001 * (i + 1) as f64);
        }
        let s = ComboState::default();
        assert_eq!(
            run(StrategyKind::Auto, &c, &s, 42),
            run(StrategyKind::Auto, &c, &s, 42)
        );
        let best = (0..1000)
            .filter(|&seed| run(StrategyKind::Auto, &c, &s, seed)[0] == 0)
            .count();
        assert!((930..=1000).contains(&best), "{best}");
        assert!(best < 1000, "exploration happens");
    }
}
