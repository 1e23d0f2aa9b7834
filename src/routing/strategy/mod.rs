//! Strategies only order targets; breakers, cooldowns and budgets filter
//! them elsewhere. Each strategy is a small function tested on its own.

mod basic;
mod scored;

use crate::catalog::Tier;
use rand::rngs::StdRng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyKind {
    /// Fixed order.
    #[default]
    Priority,
    /// Weighted random first pick, the rest as fallback in order.
    Weighted,
    RoundRobin,
    /// Combo order, targets whose quota is used up last: fill the first, then the next.
    FillFirst,
    Random,
    /// Every target once before reshuffling.
    StrictRandom,
    /// Fewest requests in the window first.
    LeastUsed,
    /// Power of two choices on latency EWMA, error rate and breaker state.
    P2c,
    /// Cheapest for the request's estimated tokens first.
    CostOptimized,
    /// Largest context window first (too-small windows are skipped).
    ContextOptimized,
    /// Last known good target first (it stays first after a failover).
    Lkgp,
    /// Remaining quota weighed against time to its reset.
    ResetAware,
    /// Soonest quota reset first.
    ResetWindow,
    /// Most remaining quota first.
    Headroom,
    /// Scores latency, errors, cost, headroom and context fit, with a little exploration.
    Auto,
    /// Several targets in parallel; the first good answer wins (or a judge merges).
    Fusion,
    /// Priority order with session continuity when the account changes.
    ContextRelay,
}

impl StrategyKind {
    pub const ALL: [StrategyKind; 17] = [
        StrategyKind::Priority,
        StrategyKind::Weighted,
        StrategyKind::RoundRobin,
        StrategyKind::FillFirst,
        StrategyKind::Random,
        StrategyKind::StrictRandom,
        StrategyKind::LeastUsed,
        StrategyKind::P2c,
        StrategyKind::CostOptimized,
        StrategyKind::ContextOptimized,
        StrategyKind::Lkgp,
        StrategyKind::ResetAware,
        StrategyKind::ResetWindow,
        StrategyKind::Headroom,
        StrategyKind::Auto,
        StrategyKind::Fusion,
        StrategyKind::ContextRelay,
    ];

    pub fn as_str(self) -> &'static str {
        StrategyKind::ALL
            .iter()
            .position(|k| *k == self)
            .map(|i| NAMES[i])
            .unwrap_or("priority")
    }

    pub fn parse(s: &str) -> Option<StrategyKind> {
        NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| StrategyKind::ALL[i])
    }

    /// Does this strategy keep sessions on their target by itself?
    pub fn implies_sticky(self) -> bool {
        matches!(self, StrategyKind::ContextRelay)
    }
}

const NAMES: [&str; 17] = [
    "priority",
    "weighted",
    "round-robin",
    "fill-first",
    "random",
    "strict-random",
    "least-used",
    "p2c",
    "cost-optimized",
    "context-optimized",
    "lkgp",
    "reset-aware",
    "reset-window",
    "headroom",
    "auto",
    "fusion",
    "context-relay",
];

/// What a strategy may know about a target.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Stable identity (provider/account/model).
    pub key: String,
    /// Position in the combo (priority order).
    pub position: usize,
    pub weight: u32,
    pub tier: Tier,
    pub latency_ewma_ms: Option<f64>,
    /// Recent error rate, 0..1.
    pub error_rate: f64,
    pub requests_in_window: u64,
    pub half_open: bool,
    /// Estimated USD for this request at catalog prices.
    pub est_cost: Option<f64>,
    pub context: Option<u32>,
    /// Remaining share of the upstream quota, 0..1, when the upstream told us.
    pub quota_remaining: Option<f64>,
    /// Seconds until that quota resets.
    pub reset_in_s: Option<f64>,
}

impl Candidate {
    pub fn new(key: &str, position: usize) -> Candidate {
        Candidate {
            key: key.to_string(),
            position,
            weight: 1,
            tier: Tier::ApiKey,
            latency_ewma_ms: None,
            error_rate: 0.0,
            requests_in_window: 0,
            half_open: false,
            est_cost: None,
            context: None,
            quota_remaining: None,
            reset_in_s: None,
        }
    }
}

/// Per-combo memory some strategies need.
#[derive(Debug, Default)]
pub struct ComboState {
    pub round_robin: AtomicU64,
    pub bag: Mutex<Vec<String>>,
    pub last_good: Mutex<Option<String>>,
}

impl ComboState {
    /// A copy to plan with without moving the real state (explanations).
    pub fn snapshot(&self) -> ComboState {
        let copy = |m: &Mutex<Option<String>>| Mutex::new(m.lock().ok().and_then(|g| g.clone()));
        ComboState {
            round_robin: AtomicU64::new(
                self.round_robin.load(std::sync::atomic::Ordering::Relaxed),
            ),
            bag: Mutex::new(self.bag.lock().map(|b| b.clone()).unwrap_or_default()),
            last_good: copy(&self.last_good),
        }
    }
}

pub struct Ctx<'a> {
    pub rng: &'a mut StdRng,
    pub state: &'a ComboState,
}

/// Order `cands` (indices into it, best first).
pub fn order(kind: StrategyKind, cands: &[Candidate], ctx: &mut Ctx<'_>) -> Vec<usize> {
    if cands.len() <= 1 {
        return (0..cands.len()).collect();
    }
    match kind {
        StrategyKind::Priority | StrategyKind::Fusion | StrategyKind::ContextRelay => {
            basic::priority(cands)
        }
        StrategyKind::Weighted => basic::weighted(cands, ctx),
        StrategyKind::RoundRobin => basic::round_robin(cands, ctx),
        StrategyKind::FillFirst => basic::fill_first(cands, ctx),
        StrategyKind::Random => basic::random(cands, ctx),
        StrategyKind::StrictRandom => basic::strict_random(cands, ctx),
        StrategyKind::LeastUsed => basic::least_used(cands),
        StrategyKind::Lkgp => basic::lkgp(cands, ctx),
        StrategyKind::P2c => scored::p2c(cands, ctx),
        StrategyKind::CostOptimized => scored::cost_optimized(cands),
        StrategyKind::ContextOptimized => scored::context_optimized(cands),
        StrategyKind::ResetAware => scored::reset_aware(cands),
        StrategyKind::ResetWindow => scored::reset_window(cands),
        StrategyKind::Headroom => scored::headroom(cands),
        StrategyKind::Auto => scored::auto(cands, ctx),
    }
}

/// Record the target that answered, for strategies that remember.
pub fn on_success(state: &ComboState, key: &str) {
    if let Ok(mut g) = state.last_good.lock() {
        *g = Some(key.to_string());
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use rand::SeedableRng;

    pub fn cands(n: usize) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate::new(&format!("t{i}"), i))
            .collect()
    }

    pub fn run(kind: StrategyKind, c: &[Candidate], state: &ComboState, seed: u64) -> Vec<usize> {
        let mut rng = StdRng::seed_from_u64(seed);
        order(
            kind,
            c,
            &mut Ctx {
                rng: &mut rng,
                state,
            },
        )
    }

    /// Every ordering is a permutation of all candidates.
    pub fn assert_permutation(order: &[usize], n: usize) {
        let mut sorted = order.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..n).collect::<Vec<_>>());
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn names_round_trip_and_every_strategy_returns_a_permutation() {
        for k in StrategyKind::ALL {
            assert_eq!(StrategyKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::json!(k.as_str())
            );
            let state = ComboState::default();
            for seed in 0..20 {
                assert_permutation(&run(k, &cands(5), &state, seed), 5);
            }
        }
    }
}
