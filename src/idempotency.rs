//! Idempotency keys, scoped to the client key that sent them: a repeat
//! while the first request runs joins it; a repeat within the window after
//! it answered gets that answer again; the same key with a different body
//! is refused. A first request that failed leaves nothing behind: its
//! repeat runs afresh. The answer itself lives in the request's flight.

use crate::cache::flight::{Flight, Subscriber};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// Sweep finished records when the table grows past this.
const SWEEP_AT: usize = 1024;

/// (client key id or "", idempotency key)
pub type Scope = (String, String);

#[derive(Default)]
pub struct Idempotency {
    flights: Mutex<HashMap<Scope, Arc<Flight>>>,
}

pub enum Begin {
    /// First under this key: run it (the flight is registered).
    Lead(Arc<Flight>, Subscriber),
    /// The same request is running or answered within the window.
    Join(Subscriber),
    /// The key was used for a different request.
    Mismatch,
}

impl Idempotency {
    /// Look `scope` up at `now_ms` for a request with `fingerprint`;
    /// `window_ms` is how long a finished answer is kept.
    pub fn begin(&self, scope: Scope, fingerprint: [u8; 32], now_ms: i64, window_ms: i64) -> Begin {
        let Ok(mut map) = self.flights.lock() else {
            let (f, s) = Flight::start(fingerprint, true);
            return Begin::Lead(f, s);
        };
        let expired = |f: &Flight| {
            let done = f.done_ms.load(Ordering::Acquire);
            f.failed() || (done > 0 && now_ms > done + window_ms)
        };
        if map.len() > SWEEP_AT {
            map.retain(|_, f| !expired(f));
        }
        if let Some(f) = map.get(&scope) {
            if !expired(f) {
                if f.fingerprint != fingerprint {
                    return Begin::Mismatch;
                }
                if let Some(s) = f.subscribe() {
                    return Begin::Join(s);
                }
            }
        }
        let (f, s) = Flight::start(fingerprint, true);
        map.insert(scope, f.clone());
        Begin::Lead(f, s)
    }

    /// Forget `scope` if it still holds flight `id` (a failed first request).
    pub fn forget(&self, scope: &Scope, id: u64) {
        if let Ok(mut map) = self.flights.lock() {
            if map.get(scope).is_some_and(|f| f.id == id) {
                map.remove(scope);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::flight::Phase;

    fn scope(k: &str) -> Scope {
        ("key_a".into(), k.into())
    }

    #[test]
    fn repeats_join_other_bodies_are_refused_and_the_window_ends() {
        let idem = Idempotency::default();
        let Begin::Lead(f, _first) = idem.begin(scope("k"), [1; 32], 0, 5000) else {
            panic!("first is the lead");
        };
        assert!(matches!(
            idem.begin(scope("k"), [1; 32], 10, 5000),
            Begin::Join(_)
        ));
        assert!(matches!(
            idem.begin(scope("k"), [2; 32], 10, 5000),
            Begin::Mismatch
        ));
        // Another client key's same idempotency key is its own.
        assert!(matches!(
            idem.begin(("key_b".into(), "k".into()), [2; 32], 10, 5000),
            Begin::Lead(..)
        ));
        f.publish(Phase::Done(std::sync::Arc::new(
            crate::cache::flight::Answer {
                status: 200,
                route: Default::default(),
                usage: None,
                body: crate::cache::flight::Body::Whole(bytes::Bytes::from_static(b"{}")),
            },
        )));
        f.done_ms.store(100, Ordering::Release);
        assert!(matches!(
            idem.begin(scope("k"), [1; 32], 5100, 5000),
            Begin::Join(_)
        ));
        assert!(matches!(
            idem.begin(scope("k"), [2; 32], 5101, 5000),
            Begin::Lead(..)
        ));
    }

    #[test]
    fn a_failed_first_request_leaves_nothing() {
        let idem = Idempotency::default();
        let Begin::Lead(f, _s) = idem.begin(scope("k"), [1; 32], 0, 5000) else {
            panic!("lead");
        };
        f.publish(Phase::Failed(crate::proxy::ProxyError::BadRequest(
            "x".into(),
        )));
        assert!(matches!(
            idem.begin(scope("k"), [1; 32], 1, 5000),
            Begin::Lead(..)
        ));
        idem.forget(&scope("k"), f.id);
    }
}
