//! Relays an upstream SSE stream to the client event by event as it arrives:
//! observes usage, hides the usage-only chunk the client did not ask for,
//! sends keep-alive comments during silence, turns upstream failures into an
//! in-stream error event, and records usage however the stream ends.

use crate::catalog::ModelInfo;
use crate::store::{Store, UsageEvent};
use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::{Duration, Instant};

pub struct RelayOptions {
    pub strip_usage_only: bool,
    pub keep_alive: Duration,
    pub idle_timeout: Duration,
}

/// Called once when a stream ends: (outcome, cost in USD, tokens).
type OnEnd = Box<dyn FnOnce(&str, Option<f64>, u64) + Send>;

/// Records the stream's usage exactly once: on completion, or on drop when
/// the client went away first.
pub struct UsageGuard {
    store: Store,
    event: Option<UsageEvent>,
    model: Option<ModelInfo>,
    started: Instant,
    usage: super::Usage,
    /// Settles the budget reservation and reports mid-stream failures to routing.
    on_end: Option<OnEnd>,
}

impl UsageGuard {
    pub fn new(
        store: Store,
        mut event: UsageEvent,
        model: Option<ModelInfo>,
        upstream_ms: f64,
        overhead_ms: f64,
    ) -> UsageGuard {
        event.upstream_ms = Some(upstream_ms);
        event.overhead_ms = Some(overhead_ms);
        event.outcome = "client_gone".into();
        UsageGuard {
            store,
            event: Some(event),
            model,
            started: Instant::now(),
            usage: super::Usage::default(),
            on_end: None,
        }
    }

    /// Called once when the stream ends: (outcome, cost, tokens).
    pub fn on_end(mut self, f: impl FnOnce(&str, Option<f64>, u64) + Send + 'static) -> UsageGuard {
        self.on_end = Some(Box::new(f));
        self
    }

    fn finish(&mut self, outcome: &str, error: Option<String>) {
        if let Some(event) = self.event.as_mut() {
            event.outcome = outcome.to_string();
            event.error = error;
        }
        self.record();
    }

    fn record(&mut self) {
        let Some(mut event) = self.event.take() else {
            return;
        };
        let u = self.usage;
        event.input_tokens = u.input_tokens;
        event.output_tokens = u.output_tokens;
        event.cached_tokens = u.cached_tokens;
        event.reasoning_tokens = u.reasoning_tokens;
        event.cost_usd = self
            .model
            .as_ref()
            .and_then(|m| m.cost(u.input_tokens, u.cached_tokens, u.output_tokens));
        event.latency_ms += self.started.elapsed().as_secs_f64() * 1000.0;
        if let Some(f) = self.on_end.take() {
            f(
                &event.outcome,
                event.cost_usd,
                u.input_tokens + u.output_tokens,
            );
        }
        self.store.record_usage(event);
    }
}

impl Drop for UsageGuard {
    fn drop(&mut self) {
        self.record();
    }
}

struct State {
    upstream: BoxStream<'static, reqwest::Result<Bytes>>,
    buf: BytesMut,
    ready: VecDeque<Bytes>,
    opts: RelayOptions,
    guard: UsageGuard,
    done_seen: bool,
    finished: bool,
    silent: Duration,
}

/// Relay `first` (already read, to commit to this target) and then `rest`.
pub fn relay(
    first: Bytes,
    rest: BoxStream<'static, reqwest::Result<Bytes>>,
    opts: RelayOptions,
    guard: UsageGuard,
) -> BoxStream<'static, Result<Bytes, Infallible>> {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&first);
    let mut state = State {
        upstream: rest,
        buf,
        ready: VecDeque::new(),
        opts,
        guard,
        done_seen: false,
        finished: false,
        silent: Duration::ZERO,
    };
    state.split_events();
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(ev) = st.ready.pop_front() {
                return Some((Ok(ev), st));
            }
            if st.finished {
                return None;
            }
            match tokio::time::timeout(st.opts.keep_alive, st.upstream.next()).await {
                Err(_) => {
                    st.silent += st.opts.keep_alive;
                    if st.silent >= st.opts.idle_timeout {
                        st.fail(format!("upstream sent nothing for {:?}", st.silent));
                    } else {
                        return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), st));
                    }
                }
                Ok(Some(Ok(chunk))) => {
                    st.silent = Duration::ZERO;
                    st.buf.extend_from_slice(&chunk);
                    st.split_events();
                }
                Ok(Some(Err(_))) => st.fail("upstream stream was interrupted".into()),
                Ok(None) => {
                    if !st.buf.is_empty() {
                        let rest = st.buf.split().freeze();
                        st.observe_and_queue(rest);
                    }
                    if st.done_seen {
                        st.finished = true;
                        st.guard.finish("ok", None);
                    } else {
                        st.fail("upstream stream ended before completion".into());
                    }
                }
            }
        }
    })
    .boxed()
}

impl State {
    fn split_events(&mut self) {
        while let Some(end) = event_end(&self.buf) {
            let event = self.buf.split_to(end).freeze();
            self.observe_and_queue(event);
        }
    }

    fn observe_and_queue(&mut self, event: Bytes) {
        let mut forward = true;
        for line in event.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let data = data.strip_prefix(b" ").unwrap_or(data);
            if data == b"[DONE]" {
                self.done_seen = true;
            } else if let Some(found) = super::usage::from_openai_chunk(data) {
                self.guard.usage = found.usage;
                if found.usage_only && self.opts.strip_usage_only {
                    forward = false;
                }
            }
        }
        if forward {
            self.ready.push_back(event);
        }
    }

    fn fail(&mut self, message: String) {
        let body = serde_json::json!({
            "error": {"message": message, "type": "upstream_error", "code": "stream_interrupted"}
        });
        self.ready
            .push_back(Bytes::from(format!("data: {body}\n\n")));
        self.finished = true;
        self.guard.finish("upstream_error", Some(message));
    }
}

/// End offset (after the blank line) of the first complete SSE event.
fn event_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' {
            if buf[i + 1] == b'\n' {
                return Some(i + 2);
            }
            if buf[i + 1] == b'\r' && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::event_end;

    #[test]
    fn finds_event_boundaries() {
        assert_eq!(event_end(b"data: a\n\ndata: b"), Some(9));
        assert_eq!(event_end(b"data: a\r\n\r\n"), Some(11));
        assert_eq!(event_end(b"data: a\n"), None);
    }
}
