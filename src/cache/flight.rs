//! A request in flight that others may join: the first of several
//! identical requests (or of repeats under one idempotency key) runs it,
//! once, in a task of its own; each client subscribes and gets the same
//! answer, a whole body or the same stream event for event (late joiners
//! get the events so far, then the rest as they arrive).
//!
//! The task stops when the last subscriber goes (a client that hangs up
//! still cancels its upstream call), except for an idempotent request: its
//! answer is owed to the retry that is coming, so it runs to the end.

use crate::proxy::{ChatOutcome, ProxyError, RouteInfo, Usage};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use std::convert::Infallible;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::watch;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// An answer as the first request got it.
pub struct Answer {
    pub status: u16,
    pub route: RouteInfo,
    pub usage: Option<Usage>,
    pub body: Body,
}

pub enum Body {
    Whole(Bytes),
    Stream(Arc<Recording>),
}

#[derive(Clone)]
pub enum Phase {
    Running,
    Done(Arc<Answer>),
    Failed(ProxyError),
    /// Cancelled (every client left): a newcomer runs the request again.
    Abandoned,
}

/// How a recorded stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Open,
    Complete,
    /// Cut off before its end (cancelled); never stored, never replayed.
    Broken,
}

/// A stream's events as they arrive, kept for every subscriber.
pub struct Recording {
    chunks: Mutex<Vec<Bytes>>,
    state: watch::Sender<(usize, End)>,
}

impl Recording {
    pub fn new() -> Arc<Recording> {
        Arc::new(Recording {
            chunks: Mutex::new(Vec::new()),
            state: watch::Sender::new((0, End::Open)),
        })
    }

    /// A finished recording of `events` (a replay of stored bytes).
    pub fn complete(events: Vec<Bytes>) -> Arc<Recording> {
        let n = events.len();
        Arc::new(Recording {
            chunks: Mutex::new(events),
            state: watch::Sender::new((n, End::Complete)),
        })
    }

    pub fn push(&self, chunk: Bytes) {
        let len = match self.chunks.lock() {
            Ok(mut c) => {
                c.push(chunk);
                c.len()
            }
            Err(_) => return,
        };
        self.state.send_modify(|s| s.0 = len);
    }

    pub fn finish(&self, end: End) {
        self.state.send_modify(|s| {
            if s.1 == End::Open {
                s.1 = end;
            }
        });
    }

    pub fn end(&self) -> End {
        self.state.borrow().1
    }

    /// Everything recorded, as one buffer.
    pub fn bytes(&self) -> Bytes {
        match self.chunks.lock() {
            Ok(c) => {
                let mut out = Vec::with_capacity(c.iter().map(Bytes::len).sum());
                for b in c.iter() {
                    out.extend_from_slice(b);
                }
                Bytes::from(out)
            }
            Err(_) => Bytes::new(),
        }
    }

    /// The events from the first, then live ones until the end; `guard`
    /// keeps the subscription (and so the upstream call) alive while read.
    pub fn subscribe(
        self: &Arc<Self>,
        guard: Option<Subscriber>,
        map: Option<Box<dyn FnMut(Bytes) -> Bytes + Send>>,
    ) -> BoxStream<'static, Result<Bytes, Infallible>> {
        let rx = self.state.subscribe();
        let state = (self.clone(), 0usize, rx, guard, map);
        futures::stream::unfold(state, |(rec, i, mut rx, guard, mut map)| async move {
            loop {
                let (len, end) = *rx.borrow_and_update();
                if i < len {
                    let chunk = rec.chunks.lock().ok().and_then(|c| c.get(i).cloned());
                    let chunk = chunk.unwrap_or_default();
                    let chunk = match map.as_mut() {
                        Some(f) => f(chunk),
                        None => chunk,
                    };
                    return Some((Ok(chunk), (rec, i + 1, rx, guard, map)));
                }
                if end != End::Open {
                    return None;
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        })
        .boxed()
    }
}

struct Control {
    subscribers: usize,
    cancelled: bool,
    abort: Option<tokio::task::AbortHandle>,
}

/// One request in flight and whoever waits for it.
pub struct Flight {
    pub id: u64,
    /// The request's fingerprint, for idempotency (a different body under
    /// the same key is refused).
    pub fingerprint: [u8; 32],
    /// Runs to the end even when every client has left.
    pub persistent: bool,
    phase: watch::Sender<Phase>,
    control: Mutex<Control>,
    /// When it finished (ms, the cache's clock); 0 while running.
    pub done_ms: AtomicI64,
    /// Tokens and cost of the answer, once known (figures of joiners).
    pub figures: OnceLock<(Usage, Option<f64>)>,
    /// Joiners counted before the figures were known: (key id, label, kind).
    pub joiners: Mutex<Vec<Joiner>>,
}

#[derive(Debug, Clone)]
pub struct Joiner {
    pub key_id: Option<String>,
    pub label: String,
    pub replay: bool,
    pub bytes: u64,
}

/// One client's hold on a flight.
pub struct Subscriber(Arc<Flight>);

impl Subscriber {
    pub fn flight(&self) -> &Arc<Flight> {
        &self.0
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.0.unsubscribe();
    }
}

impl Flight {
    /// A new flight with its first subscriber (the client that starts it).
    pub fn start(fingerprint: [u8; 32], persistent: bool) -> (Arc<Flight>, Subscriber) {
        let f = Arc::new(Flight {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            fingerprint,
            persistent,
            phase: watch::Sender::new(Phase::Running),
            control: Mutex::new(Control {
                subscribers: 1,
                cancelled: false,
                abort: None,
            }),
            done_ms: AtomicI64::new(0),
            figures: OnceLock::new(),
            joiners: Mutex::new(Vec::new()),
        });
        let s = Subscriber(f.clone());
        (f, s)
    }

    /// Join, unless it was cancelled.
    pub fn subscribe(self: &Arc<Self>) -> Option<Subscriber> {
        let mut c = self.control.lock().ok()?;
        if c.cancelled {
            return None;
        }
        c.subscribers += 1;
        Some(Subscriber(self.clone()))
    }

    pub fn set_task(&self, abort: tokio::task::AbortHandle) {
        if let Ok(mut c) = self.control.lock() {
            if c.cancelled {
                abort.abort();
            } else {
                c.abort = Some(abort);
            }
        }
    }

    fn unsubscribe(&self) {
        let Ok(mut c) = self.control.lock() else {
            return;
        };
        c.subscribers = c.subscribers.saturating_sub(1);
        if c.subscribers > 0 || self.persistent || self.finished() {
            return;
        }
        c.cancelled = true;
        if let Some(a) = c.abort.take() {
            a.abort();
        }
        drop(c);
        self.phase.send_modify(|p| {
            if let Phase::Done(a) = p {
                if let Body::Stream(r) = &a.body {
                    r.finish(End::Broken);
                }
            } else if matches!(p, Phase::Running) {
                *p = Phase::Abandoned;
            }
        });
    }

    /// Has it an answer (a whole one, or a stream that ended) or an error?
    pub fn finished(&self) -> bool {
        match &*self.phase.borrow() {
            Phase::Running => false,
            Phase::Done(a) => match &a.body {
                Body::Whole(_) => true,
                Body::Stream(r) => r.end() != End::Open,
            },
            Phase::Failed(_) | Phase::Abandoned => true,
        }
    }

    pub fn publish(&self, p: Phase) {
        self.phase.send_replace(p);
    }

    pub fn phase(&self) -> Phase {
        self.phase.borrow().clone()
    }

    /// Did it end with an error or cancelled?
    pub fn failed(&self) -> bool {
        match &*self.phase.borrow() {
            Phase::Failed(_) | Phase::Abandoned => true,
            Phase::Done(a) => matches!(&a.body, Body::Stream(r) if r.end() == End::Broken),
            Phase::Running => false,
        }
    }

    /// Wait for the answer; None when the flight was cancelled (run it again).
    pub async fn wait(&self) -> Option<Result<Arc<Answer>, ProxyError>> {
        let mut rx = self.phase.subscribe();
        let phase = match rx.wait_for(|p| !matches!(p, Phase::Running)).await {
            Ok(p) => p.clone(),
            Err(_) => return None,
        };
        match phase {
            Phase::Done(a) => {
                if matches!(&a.body, Body::Stream(r) if r.end() == End::Broken) {
                    return None;
                }
                Some(Ok(a))
            }
            Phase::Failed(e) => Some(Err(e)),
            Phase::Abandoned | Phase::Running => None,
        }
    }
}

/// The client's outcome from a flight's answer; a stream keeps `sub`.
pub fn outcome(
    answer: &Answer,
    route: RouteInfo,
    sub: Option<Subscriber>,
    map: Option<Box<dyn FnMut(Bytes) -> Bytes + Send>>,
) -> ChatOutcome {
    match &answer.body {
        Body::Whole(b) => {
            let body = match map {
                Some(mut f) => f(b.clone()),
                None => b.clone(),
            };
            ChatOutcome::Complete {
                status: answer.status,
                body,
                route,
                usage: answer.usage,
            }
        }
        Body::Stream(rec) => ChatOutcome::Stream {
            status: answer.status,
            events: rec.subscribe(sub, map),
            route,
        },
    }
}

/// Split stored SSE bytes into their events (each with its blank line).
pub fn split_events(bytes: &Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut start = 0;
    let b = bytes.as_ref();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'\n' && b[i + 1] == b'\n' {
            out.push(bytes.slice(start..i + 2));
            start = i + 2;
            i += 2;
            continue;
        }
        if b[i] == b'\n' && b[i + 1] == b'\r' && b.get(i + 2) == Some(&b'\n') {
            out.push(bytes.slice(start..i + 3));
            start = i + 3;
            i += 3;
            continue;
        }
        i += 1;
    }
    if start < b.len() {
        out.push(bytes.slice(start..));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn late_subscribers_get_every_event_then_the_live_ones() {
        let rec = Recording::new();
        rec.push(Bytes::from_static(b"a"));
        let early = rec.subscribe(None, None);
        rec.push(Bytes::from_static(b"b"));
        let late = rec.subscribe(None, None);
        rec.push(Bytes::from_static(b"c"));
        rec.finish(End::Complete);
        let all = |s: BoxStream<'static, Result<Bytes, Infallible>>| async move {
            s.map(|b| b.unwrap_or_default()).collect::<Vec<_>>().await
        };
        assert_eq!(all(early).await, vec!["a", "b", "c"]);
        assert_eq!(all(late).await, vec!["a", "b", "c"]);
        assert_eq!(rec.bytes(), Bytes::from_static(b"abc"));
    }

    #[tokio::test]
    async fn the_last_subscriber_leaving_cancels_unless_persistent() {
        let (f, first) = Flight::start([0; 32], false);
        let second = f.subscribe().unwrap();
        drop(first);
        assert!(matches!(f.phase(), Phase::Running));
        drop(second);
        assert!(matches!(f.phase(), Phase::Abandoned));
        assert!(f.subscribe().is_none());
        assert!(f.wait().await.is_none());

        let (p, only) = Flight::start([0; 32], true);
        drop(only);
        assert!(matches!(p.phase(), Phase::Running));
        assert!(p.subscribe().is_some());
    }

    #[test]
    fn stored_streams_split_into_their_events() {
        let b = Bytes::from_static(b"event: a\ndata: 1\n\ndata: 2\r\n\r\ndata: [DONE]\n\n");
        let ev = split_events(&b);
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0], Bytes::from_static(b"event: a\ndata: 1\n\n"));
        assert_eq!(ev[2], Bytes::from_static(b"data: [DONE]\n\n"));
    }
}
