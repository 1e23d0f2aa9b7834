//! The routing core: combos, strategies, tiered planning, circuit breakers,
//! cooldowns, budgets and session stickiness. Pure Rust; no HTTP types.

pub mod breaker;
pub mod budget;
pub mod classify;
pub mod combo;
pub mod health;
pub mod plan;
pub mod strategy;

use breaker::BreakerConfig;
use budget::Budgets;
use health::HealthBook;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strategy::ComboState;

const SESSION_TTL: Duration = Duration::from_secs(3600);
const MAX_SESSIONS: usize = 10_000;

/// Live routing state shared by every request.
pub struct Routing {
    pub health: HealthBook,
    pub budgets: Budgets,
    combo_state: Mutex<HashMap<String, Arc<ComboState>>>,
    sessions: Mutex<HashMap<String, (String, Instant)>>,
    rng: Mutex<StdRng>,
}

impl Routing {
    pub fn new(seed: Option<u64>) -> Routing {
        let rng = match seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        Routing {
            health: HealthBook::new(BreakerConfig::default()),
            budgets: Budgets::default(),
            combo_state: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            rng: Mutex::new(rng),
        }
    }

    pub fn combo_state(&self, name: &str) -> Arc<ComboState> {
        match self.combo_state.lock() {
            Ok(mut m) => m.entry(name.to_string()).or_default().clone(),
            Err(_) => Arc::new(ComboState::default()),
        }
    }

    /// A fresh RNG for one planning pass, drawn from the shared (maybe seeded) one.
    pub fn rng(&self) -> StdRng {
        match self.rng.lock() {
            Ok(mut r) => StdRng::from_rng(&mut *r),
            Err(_) => StdRng::from_os_rng(),
        }
    }

    pub fn session_target(&self, session: &str) -> Option<String> {
        let s = self.sessions.lock().ok()?;
        s.get(session)
            .filter(|(_, at)| at.elapsed() < SESSION_TTL)
            .map(|(t, _)| t.clone())
    }

    pub fn remember_session(&self, session: &str, target: &str) {
        if let Ok(mut s) = self.sessions.lock() {
            if s.len() >= MAX_SESSIONS {
                s.retain(|_, (_, at)| at.elapsed() < SESSION_TTL);
                if s.len() >= MAX_SESSIONS {
                    s.clear();
                }
            }
            s.insert(session.to_string(), (target.to_string(), Instant::now()));
        }
    }
}
