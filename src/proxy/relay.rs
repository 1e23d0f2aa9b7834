//! Relays an upstream SSE stream to the client event by event as it arrives:
//! forwarded as is when both sides speak the same format (observing usage,
//! hiding the OpenAI usage-only chunk the client did not ask for), else
//! translated event by event; sends keep-alives during silence (Anthropic
//! `ping`s, SSE comments otherwise), turns upstream failures into an
//! in-stream error event in the client's format, and records usage however
//! the stream ends.

use super::native::Conversation;
use super::Usage;
use crate::catalog::{ModelInfo, WireFormat};
use crate::formats::canonical::{ErrorInfo, ErrorKind, StreamEvent, Usage as CanonicalUsage};
use crate::formats::observe::{Observed, StreamTap};
use crate::formats::sse::SseParser;
use crate::formats::{self, ClientContext, StreamDecoder, StreamEncoder};
use crate::store::{Store, UsageEvent};
use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};
use serde_json::Value;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::time::{Duration, Instant};

pub struct RelayOptions {
    pub keep_alive: Duration,
    pub idle_timeout: Duration,
    /// Streams still open when this fires (shutdown past its grace) end
    /// with an error event in the client's format; counted while open.
    pub streams: crate::gateway::LiveStreams,
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
    /// Scrubs secrets from upstream error text before it is stored.
    redactor: crate::redact::Redactor,
    /// Time the gateway spent on the stream's chunks (added to the head's overhead).
    busy: Duration,
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
            redactor: crate::redact::Redactor::default(),
            busy: Duration::ZERO,
        }
    }

    /// Scrub these secrets from the error text the row keeps.
    pub fn redacting(mut self, redactor: crate::redact::Redactor) -> UsageGuard {
        self.redactor = redactor;
        self
    }

    /// Called once when the stream ends: (outcome, cost, tokens).
    pub fn on_end(mut self, f: impl FnOnce(&str, Option<f64>, u64) + Send + 'static) -> UsageGuard {
        self.on_end = Some(Box::new(f));
        self
    }

    fn finish(&mut self, outcome: &str, error: Option<String>) {
        if let Some(event) = self.event.as_mut() {
            event.outcome = outcome.to_string();
            event.error = error.map(|e| self.redactor.clean(&e));
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
        if let Some(o) = event.overhead_ms.as_mut() {
            *o += self.busy.as_secs_f64() * 1000.0;
        }
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

/// How events get from the upstream to the client.
// One per stream, never moved around: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Pipe {
    /// OpenAI Chat on both sides: forwarded; usage is read from the usage
    /// chunk, which is hidden when the client did not ask for it.
    OpenAi { strip_usage_only: bool },
    /// Another format on both sides: forwarded as is, watched by a tap.
    Same {
        tap: StreamTap,
        client: WireFormat,
        ctx: ClientContext,
    },
    /// Different formats: decoded and re-encoded event by event.
    Translate {
        parser: SseParser,
        decoder: StreamDecoder,
        encoder: StreamEncoder,
        finished: bool,
        failed: Option<String>,
    },
}

impl Pipe {
    pub fn same(format: WireFormat, ctx: ClientContext) -> Pipe {
        Pipe::Same {
            tap: StreamTap::new(format),
            client: format,
            ctx,
        }
    }

    pub fn translate(upstream: WireFormat, client: WireFormat, ctx: &ClientContext) -> Pipe {
        Pipe::Translate {
            parser: SseParser::new(),
            decoder: StreamDecoder::new(upstream),
            encoder: StreamEncoder::new(client, ctx),
            finished: false,
            failed: None,
        }
    }

    fn keep_alive(&self) -> Bytes {
        match self {
            Pipe::OpenAi { .. } => formats::keep_alive(WireFormat::Openai),
            Pipe::Same { client, .. } => formats::keep_alive(*client),
            Pipe::Translate { encoder, .. } => encoder.keep_alive(),
        }
    }
}

/// A Responses client's stream: the response carries the gateway's id and
/// is stored with its conversation once completed.
pub struct ResponseHook {
    pub conversation: Conversation,
    pub store: Store,
}

struct State {
    upstream: crate::upstream::BodyStream,
    buf: BytesMut,
    ready: VecDeque<Bytes>,
    opts: RelayOptions,
    guard: UsageGuard,
    pipe: Pipe,
    hook: Option<ResponseHook>,
    done_seen: bool,
    finished: bool,
    silent: Duration,
    /// When the upstream last sent something (on tokio's clock, as the timer).
    last: tokio::time::Instant,
    /// The keep-alive timer: set once and moved on only when it fires (a
    /// timer per chunk costs more than the chunk).
    quiet: Pin<Box<tokio::time::Sleep>>,
    /// Fires when the gateway stops past its grace period.
    stop: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    /// Counts this stream as open until it is dropped.
    _open: crate::gateway::OpenStream,
}

/// Relay `first` (already read, to commit to this target) and then `rest`.
pub fn relay(
    first: Bytes,
    rest: crate::upstream::BodyStream,
    pipe: Pipe,
    opts: RelayOptions,
    guard: UsageGuard,
    hook: Option<ResponseHook>,
) -> BoxStream<'static, Result<Bytes, Infallible>> {
    let open = opts.streams.open();
    let now = tokio::time::Instant::now();
    // Boxed: the unfold moves its state in and out on every chunk.
    let mut state = Box::new(State {
        _open: open,
        last: now,
        quiet: Box::pin(tokio::time::sleep_until(now + opts.keep_alive)),
        stop: Box::pin(opts.streams.stop.clone().cancelled_owned()),
        upstream: rest,
        buf: BytesMut::new(),
        ready: VecDeque::new(),
        opts,
        guard,
        pipe,
        hook,
        done_seen: false,
        finished: false,
        silent: Duration::ZERO,
    });
    state.push(first);
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(ev) = st.ready.pop_front() {
                return Some((Ok(ev), st));
            }
            if st.finished {
                return None;
            }
            let next = tokio::select! {
                biased;
                _ = st.stop.as_mut() => {
                    st.cut();
                    continue;
                }
                _ = st.quiet.as_mut() => {
                    let due = st.last + st.opts.keep_alive;
                    if tokio::time::Instant::now() < due {
                        // Chunks came since it was set: wait on from the last one.
                        st.quiet.as_mut().reset(due);
                        continue;
                    }
                    Err(())
                }
                next = st.upstream.next() => Ok(next),
            };
            match next {
                Err(()) => {
                    st.silent += st.opts.keep_alive;
                    st.last = tokio::time::Instant::now();
                    let due = st.last + st.opts.keep_alive;
                    st.quiet.as_mut().reset(due);
                    if st.silent >= st.opts.idle_timeout {
                        st.fail(format!("upstream sent nothing for {:?}", st.silent));
                    } else {
                        return Some((Ok(st.pipe.keep_alive()), st));
                    }
                }
                Ok(Some(Ok(chunk))) => {
                    st.silent = Duration::ZERO;
                    st.last = tokio::time::Instant::now();
                    let at = Instant::now();
                    st.push(chunk);
                    st.guard.busy += at.elapsed();
                }
                Ok(Some(Err(_))) => st.fail("upstream stream was interrupted".into()),
                Ok(None) => st.end(),
            }
        }
    })
    .boxed()
}

impl State {
    fn push(&mut self, chunk: Bytes) {
        if let Pipe::Translate { .. } = self.pipe {
            let events = match &mut self.pipe {
                Pipe::Translate {
                    parser, decoder, ..
                } => parser
                    .push(&chunk)
                    .into_iter()
                    .flat_map(|ev| decoder.push(ev.event.as_deref(), &ev.data))
                    .collect::<Vec<_>>(),
                _ => Vec::new(),
            };
            self.translate(events);
            return;
        }
        // The usual case: the chunk holds whole events and nothing is held
        // back. OpenAI Chat events are then only read, and the chunk goes on
        // as it came (no copy, one frame).
        if self.buf.is_empty() && ends_an_event(&chunk) {
            if let Pipe::OpenAi { strip_usage_only } = self.pipe {
                // False: the events to keep are queued already, or the one event is hidden.
                if self.observe_openai(&chunk, strip_usage_only) {
                    self.ready.push_back(chunk);
                }
                return;
            }
            let mut rest = chunk;
            while let Some(end) = event_end(&rest) {
                let event = rest.split_to(end);
                self.observe_and_queue(event);
            }
            if !rest.is_empty() {
                self.buf.extend_from_slice(&rest);
            }
            return;
        }
        self.buf.extend_from_slice(&chunk);
        while let Some(end) = event_end(&self.buf) {
            let event = self.buf.split_to(end).freeze();
            self.observe_and_queue(event);
        }
    }

    fn end(&mut self) {
        if !self.buf.is_empty() {
            let rest = self.buf.split().freeze();
            self.observe_and_queue(rest);
        }
        match &mut self.pipe {
            Pipe::OpenAi { .. } => {
                if self.done_seen {
                    self.finished = true;
                    self.guard.finish("ok", None);
                } else {
                    self.fail("upstream stream ended before completion".into());
                }
            }
            Pipe::Same { tap, .. } => {
                if !tap.done() {
                    self.fail("upstream stream ended before completion".into());
                    return;
                }
                let error = tap.error().map(|e| e.message.clone());
                self.finished = true;
                match error {
                    Some(e) => self.guard.finish("upstream_error", Some(e)),
                    None => self.guard.finish("ok", None),
                }
            }
            Pipe::Translate {
                parser, decoder, ..
            } => {
                let mut events: Vec<StreamEvent> = parser
                    .finish()
                    .into_iter()
                    .flat_map(|ev| decoder.push(ev.event.as_deref(), &ev.data))
                    .collect();
                events.extend(decoder.finish());
                self.translate(events);
                let Pipe::Translate {
                    finished, failed, ..
                } = &self.pipe
                else {
                    return;
                };
                self.finished = true;
                match (failed.clone(), finished) {
                    (Some(e), _) => self.guard.finish("upstream_error", Some(e)),
                    (None, true) => self.guard.finish("ok", None),
                    (None, false) => self.guard.finish(
                        "upstream_error",
                        Some("upstream stream ended before completion".into()),
                    ),
                }
            }
        }
    }

    /// Canonical events from the upstream, encoded for the client.
    fn translate(&mut self, events: Vec<StreamEvent>) {
        let Pipe::Translate {
            encoder,
            finished,
            failed,
            ..
        } = &mut self.pipe
        else {
            return;
        };
        let mut out = Vec::new();
        for mut ev in events {
            match &mut ev {
                StreamEvent::Start { id, usage, .. } => {
                    if *usage != CanonicalUsage::default() {
                        self.guard.usage = Usage::from(*usage);
                    }
                    if let Some(h) = &self.hook {
                        *id = h.conversation.id.clone();
                    }
                }
                StreamEvent::Usage(u) => self.guard.usage = Usage::from(*u),
                StreamEvent::Finish { .. } => *finished = true,
                StreamEvent::Error(e) => {
                    // The client sees the upstream's words without its secrets.
                    e.message = self.guard.redactor.clean(&e.message);
                    *failed = Some(e.message.clone());
                }
                _ => {}
            }
            let frames = encoder.frames(&ev);
            if let Some(h) = &self.hook {
                for f in frames
                    .iter()
                    .filter(|f| f.starts_with("event: response.completed"))
                {
                    let data = f.lines().find_map(|l| l.strip_prefix("data: "));
                    if let Some(v) = data.and_then(|d| serde_json::from_str::<Value>(d).ok()) {
                        h.conversation.save(&h.store, &v["response"]);
                    }
                }
            }
            out.extend(frames);
        }
        if !out.is_empty() {
            self.ready.push_back(formats::sse::to_bytes(out));
        }
    }

    fn observe_and_queue(&mut self, event: Bytes) {
        match &mut self.pipe {
            Pipe::OpenAi { strip_usage_only } => {
                let strip = *strip_usage_only;
                if self.observe_openai(&event, strip) {
                    self.ready.push_back(event);
                }
            }
            Pipe::Same { tap, .. } => {
                let seen = tap.observe(&event);
                self.guard.usage = Usage::from(tap.usage());
                match (seen, &self.hook) {
                    (Observed::Lifecycle { kind, event: mut v }, Some(h)) => {
                        // The gateway's id, so a follow-up finds this conversation.
                        if let Some(r) = v.get_mut("response").filter(|r| r.is_object()) {
                            r["id"] = Value::String(h.conversation.id.clone());
                        }
                        if kind == "response.completed" {
                            h.conversation.save(&h.store, &v["response"]);
                        }
                        self.ready
                            .push_back(Bytes::from(formats::sse::named(&kind, &v)));
                    }
                    _ => self.ready.push_back(event),
                }
            }
            Pipe::Translate { .. } => {}
        }
    }

    /// Read OpenAI Chat events' data lines (`[DONE]`, usage): true when
    /// `events` go on as they are; false when one is the usage-only chunk the
    /// client did not ask for (the others, if any, are then queued here).
    fn observe_openai(&mut self, events: &[u8], strip: bool) -> bool {
        let mut forward = true;
        let mut data_lines = 0;
        for line in lines(events) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            data_lines += 1;
            let data = data.strip_prefix(b" ").unwrap_or(data);
            if data == b"[DONE]" {
                self.done_seen = true;
            } else if let Some(found) = super::usage::from_openai_chunk(data) {
                self.guard.usage = found.usage;
                if found.usage_only && strip {
                    forward = false;
                }
            }
        }
        // Several events with one to hide: undo and let the caller split them.
        if !forward && data_lines > 1 && event_end(events).is_some_and(|e| e < events.len()) {
            self.done_seen = false;
            return self.observe_split(events, strip);
        }
        forward
    }

    /// The slow path of `observe_openai`: event by event, the hidden one left out.
    fn observe_split(&mut self, events: &[u8], strip: bool) -> bool {
        let mut rest = events;
        while let Some(end) = event_end(rest) {
            let (event, tail) = rest.split_at(end);
            if self.observe_openai(event, strip) {
                self.ready.push_back(Bytes::copy_from_slice(event));
            }
            rest = tail;
        }
        if !rest.is_empty() && self.observe_openai(rest, strip) {
            self.ready.push_back(Bytes::copy_from_slice(rest));
        }
        false
    }

    fn fail(&mut self, message: String) {
        self.end_with_error("upstream_error", message);
    }

    /// The gateway is stopping and this stream outlasted the grace period.
    fn cut(&mut self) {
        self.opts
            .streams
            .cut
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.end_with_error(
            "cut",
            "the gateway is shutting down and this stream outlasted its grace period; send the request again".into(),
        );
    }

    fn end_with_error(&mut self, outcome: &str, message: String) {
        match &mut self.pipe {
            Pipe::OpenAi { .. } => {
                let body = serde_json::json!({
                    "error": {"message": message, "type": "upstream_error", "code": "stream_interrupted"}
                });
                self.ready
                    .push_back(Bytes::from(format!("data: {body}\n\n")));
            }
            Pipe::Same {
                tap, client, ctx, ..
            } => {
                if !tap.done() {
                    let e = ErrorInfo::new(ErrorKind::Upstream, 502, message.clone());
                    self.ready
                        .push_back(formats::stream_error_frame(*client, ctx, &e));
                }
            }
            Pipe::Translate { encoder, .. } => {
                if !encoder.is_done() {
                    let e = ErrorInfo::new(ErrorKind::Upstream, 502, message.clone());
                    let frames = encoder.push(&StreamEvent::Error(e));
                    self.ready.push_back(frames);
                }
            }
        }
        self.finished = true;
        self.guard.finish(outcome, Some(message));
    }
}

/// End offset (after the blank line) of the first complete SSE event.
fn event_end(buf: &[u8]) -> Option<usize> {
    for i in memchr::memchr_iter(b'\n', buf) {
        match buf.get(i + 1) {
            Some(b'\n') => return Some(i + 2),
            Some(b'\r') if buf.get(i + 2) == Some(&b'\n') => return Some(i + 3),
            _ => {}
        }
    }
    None
}

/// Does `chunk` end where an event ends (a blank line)?
fn ends_an_event(chunk: &[u8]) -> bool {
    chunk.ends_with(b"\n\n") || chunk.ends_with(b"\n\r\n")
}

/// The lines of `buf`, split at `\n` (found by memchr).
fn lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut ends = memchr::memchr_iter(b'\n', buf);
    std::iter::from_fn(move || {
        if start > buf.len() {
            return None;
        }
        match ends.next() {
            Some(i) => {
                let line = &buf[start..i];
                start = i + 1;
                Some(line)
            }
            None => {
                let line = &buf[start..];
                start = buf.len() + 1;
                Some(line)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{event_end, lines};

    #[test]
    fn splits_lines_like_split() {
        for text in [&b"a\nb\n\nc"[..], b"", b"\n", b"data: x\n\n", b"one"] {
            let ours: Vec<&[u8]> = lines(text).collect();
            let std: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
            assert_eq!(ours, std, "{:?}", String::from_utf8_lossy(text));
        }
    }

    /// Chunks holding several events, one of them the usage-only chunk the
    /// gateway asked for: the client gets the others, byte for byte and in
    /// order, and the usage is read.
    #[tokio::test]
    async fn a_hidden_usage_chunk_among_others_is_left_out() {
        use futures::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let content = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n";
        let usage =
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n";
        let done = "data: [DONE]\n\n";
        for strip in [true, false] {
            let first = bytes::Bytes::from(format!("{content}{content}"));
            let rest = futures::stream::iter(vec![Ok(bytes::Bytes::from(format!(
                "{content}{usage}{done}"
            )))])
            .boxed();
            let guard = super::UsageGuard::new(
                store.clone(),
                crate::store::UsageEvent::default(),
                None,
                1.0,
                0.1,
            );
            let out: Vec<bytes::Bytes> = super::relay(
                first,
                rest,
                super::Pipe::OpenAi {
                    strip_usage_only: strip,
                },
                super::RelayOptions {
                    keep_alive: std::time::Duration::from_secs(15),
                    idle_timeout: std::time::Duration::from_secs(60),
                    streams: Default::default(),
                },
                guard,
                None,
            )
            .map(|r| r.unwrap())
            .collect()
            .await;
            let text: String = out
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect();
            let want = if strip {
                format!("{content}{content}{content}{done}")
            } else {
                format!("{content}{content}{content}{usage}{done}")
            };
            assert_eq!(text, want, "strip = {strip}");
        }
        store.flush().await.unwrap();
        let rows: Vec<(String, i64, i64)> = store
            .read(|c| {
                let mut s = c.prepare(
                    "SELECT outcome, input_tokens, output_tokens FROM usage_events ORDER BY id",
                )?;
                let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(
            rows,
            vec![("ok".to_string(), 3, 4), ("ok".to_string(), 3, 4)]
        );
    }

    /// Upstream chunks `gaps_ms` apart (then silence), relayed with a 50 ms
    /// keep-alive and a 200 ms idle limit, on the paused test clock.
    async fn relayed_with_gaps(gaps_ms: Vec<u64>) -> Vec<String> {
        use futures::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let chunk = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n";
        let rest = futures::stream::unfold(gaps_ms.into_iter(), move |mut gaps| async move {
            match gaps.next() {
                Some(ms) => {
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                    Some((Ok(bytes::Bytes::from_static(chunk.as_bytes())), gaps))
                }
                None => futures::future::pending().await,
            }
        })
        .boxed();
        let guard =
            super::UsageGuard::new(store, crate::store::UsageEvent::default(), None, 1.0, 0.1);
        super::relay(
            bytes::Bytes::from_static(chunk.as_bytes()),
            rest,
            super::Pipe::OpenAi {
                strip_usage_only: true,
            },
            super::RelayOptions {
                keep_alive: std::time::Duration::from_millis(50),
                idle_timeout: std::time::Duration::from_millis(200),
                streams: Default::default(),
            },
            guard,
            None,
        )
        .map(|r| {
            let b = r.unwrap();
            if b.starts_with(b":") {
                "ping".to_string()
            } else if b.windows(5).any(|w| w == b"error") {
                "error".to_string()
            } else {
                "chunk".to_string()
            }
        })
        .collect()
        .await
    }

    #[tokio::test(start_paused = true)]
    async fn keep_alives_only_when_the_upstream_is_quiet() {
        // Chunks 30 ms apart keep the stream busy: no keep-alive between them;
        // then 200 ms of silence: keep-alives every 50 ms, and the idle limit ends it.
        let seen = relayed_with_gaps(vec![30, 30, 30, 30]).await;
        assert_eq!(
            seen,
            ["chunk", "chunk", "chunk", "chunk", "chunk", "ping", "ping", "ping", "error"]
        );
        // A 120 ms gap: two keep-alives in it, then the chunk.
        let seen = relayed_with_gaps(vec![120]).await;
        assert_eq!(&seen[..4], ["chunk", "ping", "ping", "chunk"]);
    }

    #[test]
    fn finds_event_boundaries() {
        assert_eq!(event_end(b"data: a\n\ndata: b"), Some(9));
        assert_eq!(event_end(b"data: a\r\n\r\n"), Some(11));
        assert_eq!(event_end(b"data: a\n"), None);
    }
}
