//! A fast fake OpenAI- and Anthropic-compatible provider for benchmarks.
//!
//! `cargo run --release --example mock_upstream -- --port 9100 [--latency-ms 0]
//!  [--chunks 200] [--chunk-interval-us 0]`
//!
//! Model `fail-429` answers 429 with `Retry-After: 0` (so a gateway tries it on
//! every request and the cost of falling back shows in each one); any other
//! model answers at once (after the fixed latency). Responses are prebuilt, so it never becomes the bottleneck.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use std::sync::Arc;
use std::time::Duration;

struct Opts {
    latency: Duration,
    chunks: usize,
    interval: Duration,
    completion: Bytes,
    chunk: Bytes,
    anthropic: Bytes,
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let port = arg("--port", 9100);
    let opts = Arc::new(Opts {
        latency: Duration::from_millis(arg("--latency-ms", 0)),
        chunks: arg("--chunks", 200) as usize,
        interval: Duration::from_micros(arg("--chunk-interval-us", 0)),
        completion: Bytes::from_static(br#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! This is a benchmark answer of a typical short length."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":14,"total_tokens":26}}"#),
        chunk: Bytes::from_static(b"data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok \"},\"finish_reason\":null}]}\n\n"),
        anthropic: Bytes::from_static(br#"{"id":"msg_bench","type":"message","role":"assistant","model":"bench","content":[{"type":"text","text":"Hello from the bench."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":6}}"#),
    });
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/messages", post(messages))
        .with_state(opts);
    // The gateway's accept queue (4096), so a burst is not dropped on either side.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("reuseaddr");
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], port as u16)))
        .expect("bind");
    let listener = socket.listen(4096).expect("listen");
    println!(
        "mock upstream on http://{}",
        listener.local_addr().expect("addr")
    );
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.expect("serve");
}

async fn chat(State(o): State<Arc<Opts>>, body: Bytes) -> Response {
    // A byte search is enough for a benchmark double and costs nothing.
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    if has(b"\"fail-429\"") {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            r#"{"error":{"message":"Rate limit reached","type":"rate_limit_exceeded"}}"#,
        )
            .into_response();
    }
    if !o.latency.is_zero() {
        tokio::time::sleep(o.latency).await;
    }
    if has(b"\"stream\":true") {
        let o2 = o.clone();
        let s = futures::stream::unfold(0usize, move |i| {
            let o = o2.clone();
            async move {
                if i > o.chunks + 1 {
                    return None;
                }
                if i > 0 && !o.interval.is_zero() {
                    tokio::time::sleep(o.interval).await;
                }
                let b = if i < o.chunks {
                    o.chunk.clone()
                } else if i == o.chunks {
                    Bytes::from_static(b"data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":200,\"total_tokens\":212}}\n\n")
                } else {
                    Bytes::from_static(b"data: [DONE]\n\n")
                };
                Some((Ok::<_, std::io::Error>(b), i + 1))
            }
        });
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(s))
            .unwrap();
    }
    ([("content-type", "application/json")], o.completion.clone()).into_response()
}

async fn messages(State(o): State<Arc<Opts>>, body: Bytes) -> Response {
    if !o.latency.is_zero() {
        tokio::time::sleep(o.latency).await;
    }
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    if has(b"\"stream\":true") {
        // Anthropic's event grammar: message_start, one text block of
        // `chunks` deltas, message_delta with the usage, message_stop.
        let o2 = o.clone();
        let s = futures::stream::unfold(0usize, move |i| {
            let o = o2.clone();
            async move {
                let n = o.chunks;
                if i > n + 3 {
                    return None;
                }
                if i > 1 && i <= n + 1 && !o.interval.is_zero() {
                    tokio::time::sleep(o.interval).await;
                }
                let b: Bytes = match i {
                    0 => Bytes::from_static(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"bench\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"),
                    i if i <= n => Bytes::from_static(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"tok \"}}\n\n"),
                    i if i == n + 1 => Bytes::from_static(b"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"),
                    i if i == n + 2 => Bytes::from_static(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":200}}\n\n"),
                    _ => Bytes::from_static(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
                };
                Some((Ok::<_, std::io::Error>(b), i + 1))
            }
        });
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(s))
            .unwrap();
    }
    ([("content-type", "application/json")], o.anthropic.clone()).into_response()
}
