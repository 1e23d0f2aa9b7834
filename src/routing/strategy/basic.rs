//! Order-only strategies that need no live figures beyond request counts.

use super::{Candidate, Ctx};
use rand::seq::SliceRandom;
use rand::Rng;
use std::sync::atomic::Ordering;

fn by_position(c: &[Candidate]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..c.len()).collect();
    idx.sort_by_key(|&i| c[i].position);
    idx
}

/// Move the candidate at `first` to the front, keep the rest in priority order.
fn front(c: &[Candidate], first: usize) -> Vec<usize> {
    let mut out = vec![first];
    out.extend(by_position(c).into_iter().filter(|&i| i != first));
    out
}

pub fn priority(c: &[Candidate]) -> Vec<usize> {
    by_position(c)
}

pub fn weighted(c: &[Candidate], ctx: &mut Ctx<'_>) -> Vec<usize> {
    let total: u64 = c.iter().map(|x| u64::from(x.weight.max(1))).sum();
    let mut pick = ctx.rng.random_range(0..total);
    let mut first = 0;
    for (i, x) in c.iter().enumerate() {
        let w = u64::from(x.weight.max(1));
        if pick < w {
            first = i;
            break;
        }
        pick -= w;
    }
    front(c, first)
}

pub fn round_robin(c: &[Candidate], ctx: &mut Ctx<'_>) -> Vec<usize> {
    let base = by_position(c);
    let n = ctx.state.round_robin.fetch_add(1, Ordering::Relaxed) as usize % base.len();
    base[n..].iter().chain(base[..n].iter()).copied().collect()
}

/// Fill the first target before touching the next: combo order, with the
/// targets whose upstream reports their quota used up (0 remaining) moved to
/// the end. Nothing is remembered: once the first target's quota is back it
/// is used again (unlike `lkgp`, which stays where the last answer came from).
pub fn fill_first(c: &[Candidate], _ctx: &mut Ctx<'_>) -> Vec<usize> {
    let used_up = |x: &Candidate| x.quota_remaining.is_some_and(|r| r <= 0.0);
    let mut idx = by_position(c);
    // Stable: each group keeps its combo order.
    idx.sort_by_key(|&i| used_up(&c[i]));
    idx
}

pub fn random(c: &[Candidate], ctx: &mut Ctx<'_>) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..c.len()).collect();
    idx.shuffle(ctx.rng);
    idx
}

pub fn strict_random(c: &[Candidate], ctx: &mut Ctx<'_>) -> Vec<usize> {
    let Ok(mut bag) = ctx.state.bag.lock() else {
        return by_position(c);
    };
    bag.retain(|k| c.iter().any(|x| &x.key == k));
    if bag.is_empty() {
        let mut keys: Vec<String> = c.iter().map(|x| x.key.clone()).collect();
        keys.shuffle(ctx.rng);
        *bag = keys;
    }
    let key = bag.pop().unwrap_or_default();
    let first = c.iter().position(|x| x.key == key).unwrap_or(0);
    front(c, first)
}

pub fn least_used(c: &[Candidate]) -> Vec<usize> {
    let mut idx = by_position(c);
    idx.sort_by_key(|&i| c[i].requests_in_window);
    idx
}

/// Last known good provider: the target that answered last in this combo
/// goes first, and stays first after a failover even when the earlier
/// targets recover; the rest follow in combo order.
pub fn lkgp(c: &[Candidate], ctx: &mut Ctx<'_>) -> Vec<usize> {
    let good = ctx.state.last_good.lock().ok().and_then(|g| g.clone());
    match good.and_then(|k| c.iter().position(|x| x.key == k)) {
        Some(i) => front(c, i),
        None => by_position(c),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{on_success, ComboState, StrategyKind};
    use std::collections::HashMap;

    #[test]
    fn priority_keeps_combo_order() {
        let mut c = cands(4);
        c.reverse();
        assert_eq!(
            run(StrategyKind::Priority, &c, &ComboState::default(), 1),
            vec![3, 2, 1, 0]
        );
    }

    #[test]
    fn weighted_first_pick_follows_weights() {
        let mut c = cands(3);
        c[0].weight = 1;
        c[1].weight = 3;
        c[2].weight = 6;
        let state = ComboState::default();
        let mut firsts: HashMap<usize, u32> = HashMap::new();
        for seed in 0..2000 {
            let o = run(StrategyKind::Weighted, &c, &state, seed);
            *firsts.entry(o[0]).or_default() += 1;
            // the rest stay in priority order
            let rest: Vec<usize> = o[1..].to_vec();
            let mut sorted = rest.clone();
            sorted.sort();
            assert_eq!(rest, sorted);
        }
        let share = |i| f64::from(firsts[&i]) / 2000.0;
        assert!((share(0) - 0.1).abs() < 0.03, "{firsts:?}");
        assert!((share(1) - 0.3).abs() < 0.04, "{firsts:?}");
        assert!((share(2) - 0.6).abs() < 0.04, "{firsts:?}");
    }

    #[test]
    fn round_robin_rotates() {
        let c = cands(3);
        let state = ComboState::default();
        let firsts: Vec<usize> = (0..6)
            .map(|_| run(StrategyKind::RoundRobin, &c, &state, 0)[0])
            .collect();
        assert_eq!(firsts, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn fill_first_fills_the_first_target_until_its_quota_is_used_up() {
        let mut c = cands(3);
        let state = ComboState::default();
        assert_eq!(run(StrategyKind::FillFirst, &c, &state, 0), vec![0, 1, 2]);
        // Half used: still the first.
        c[0].quota_remaining = Some(0.5);
        assert_eq!(run(StrategyKind::FillFirst, &c, &state, 0), vec![0, 1, 2]);
        // Used up: the next one, the used-up one last.
        c[0].quota_remaining = Some(0.0);
        assert_eq!(run(StrategyKind::FillFirst, &c, &state, 0), vec![1, 2, 0]);
        c[1].quota_remaining = Some(0.0);
        assert_eq!(run(StrategyKind::FillFirst, &c, &state, 0), vec![2, 0, 1]);
    }

    /// The two strategies that look alike: after t0 ran out and t1 answered,
    /// fill-first goes back to t0 as soon as its quota is back, lkgp stays on t1.
    #[test]
    fn fill_first_and_lkgp_tell_apart() {
        let mut c = cands(3);
        let state = ComboState::default();
        c[0].quota_remaining = Some(0.0);
        assert_eq!(run(StrategyKind::FillFirst, &c, &state, 0), vec![1, 2, 0]);
        assert_eq!(run(StrategyKind::Lkgp, &c, &state, 0), vec![0, 1, 2]);
        on_success(&state, "t1");
        c[0].quota_remaining = Some(1.0);
        assert_eq!(run(StrategyKind::FillFirst, &c, &state, 0), vec![0, 1, 2]);
        assert_eq!(run(StrategyKind::Lkgp, &c, &state, 0), vec![1, 0, 2]);
        // lkgp follows the last answer wherever it came from.
        on_success(&state, "t2");
        assert_eq!(run(StrategyKind::Lkgp, &c, &state, 0), vec![2, 0, 1]);
        assert_eq!(run(StrategyKind::FillFirst, &c, &state, 0), vec![0, 1, 2]);
    }

    #[test]
    fn random_is_seeded_and_covers_all() {
        let c = cands(4);
        let state = ComboState::default();
        assert_eq!(
            run(StrategyKind::Random, &c, &state, 7),
            run(StrategyKind::Random, &c, &state, 7)
        );
        let firsts: std::collections::HashSet<usize> = (0..100)
            .map(|s| run(StrategyKind::Random, &c, &state, s)[0])
            .collect();
        assert_eq!(firsts.len(), 4);
    }

    #[test]
    fn strict_random_uses_every_target_once_per_round() {
        let c = cands(5);
        let state = ComboState::default();
        for round in 0..3 {
            let mut firsts: Vec<usize> = (0..5)
                .map(|i| run(StrategyKind::StrictRandom, &c, &state, round * 10 + i)[0])
                .collect();
            firsts.sort();
            assert_eq!(firsts, vec![0, 1, 2, 3, 4], "round {round}");
        }
    }

    #[test]
    fn least_used_prefers_idle_targets() {
        let mut c = cands(3);
        c[0].requests_in_window = 10;
        c[1].requests_in_window = 2;
        c[2].requests_in_window = 5;
        assert_eq!(
            run(StrategyKind::LeastUsed, &c, &ComboState::default(), 0),
            vec![1, 2, 0]
        );
    }

    #[test]
    fn lkgp_puts_the_last_good_target_first() {
        let c = cands(3);
        let state = ComboState::default();
        assert_eq!(run(StrategyKind::Lkgp, &c, &state, 0)[0], 0);
        on_success(&state, "t2");
        assert_eq!(run(StrategyKind::Lkgp, &c, &state, 0), vec![2, 0, 1]);
    }
}
