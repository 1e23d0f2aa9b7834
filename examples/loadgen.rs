//! A closed-loop load generator: C workers send N requests in total and the
//! latency distribution is printed as one JSON line.
//!
//! `cargo run --release --example loadgen -- --url http://127.0.0.1:20128/v1/chat/completions
//!  --key KEY --model mock/bench --concurrency 16 --requests 20000 [--stream]`
//!
//! Non-streaming: latency is request start to full body. Streaming: `ttfb` is
//! request start to the first body chunk, `total` to the end of the stream,
//! and `gap` each pause between two chunks of a stream.
//!
//! `--body-file F` sends that JSON body (its `model` and `stream` set from
//! the flags) instead of the one-line prompt, e.g. an agent-sized request
//! made by `bench/agent_body.py`; `--header 'name: value'` adds a header.
//!
//! `--rate R` paces the requests at R per second in total: request i is sent
//! at start + i/R (or as soon as a worker is free after that), and its latency
//! counts from when it was sent. The timer's 1 ms granularity would otherwise be
//! charged to the server; keep R well below saturation so workers are free.
//!
//! `--temperature T` adds `temperature` to the body (`0` makes the request
//! deterministic, so the gateway's cache answers every one after the first);
//! the output counts the answers marked `x-omniroute-cache: hit`.
//!
//! `--first-response-since-ns T0` instead polls (every 1 ms) until one request
//! succeeds and prints the time from T0 (ns since the epoch, e.g. `date +%s%N`
//! taken just before the gateway was started) to that first success.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[(((sorted.len() - 1) as f64) * q).round() as usize]
}

#[tokio::main]
async fn main() {
    let url = arg("--url").expect("--url");
    let key = arg("--key").unwrap_or_default();
    let model = arg("--model").unwrap_or_else(|| "mock/bench".into());
    let concurrency: usize = arg("--concurrency")
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let total: usize = arg("--requests")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let stream = std::env::args().any(|a| a == "--stream");
    let rate: Option<f64> = arg("--rate")
        .and_then(|v| v.parse().ok())
        .filter(|r| *r > 0.0);
    if let Some(t0) = arg("--first-response-since-ns").and_then(|v| v.parse::<u128>().ok()) {
        first_response(&url, &key, &model, t0).await;
        return;
    }
    let body = match arg("--body-file") {
        Some(path) => {
            let text = std::fs::read_to_string(&path).expect("--body-file");
            let mut v: serde_json::Value = serde_json::from_str(&text).expect("JSON body");
            v["model"] = serde_json::Value::String(model.clone());
            v["stream"] = serde_json::Value::Bool(stream);
            v
        }
        None => serde_json::json!({
            "model": model,
            "messages": [{"role": "user", "content": "Say hello in one short sentence."}],
            "stream": stream,
        }),
    };
    let mut body = body;
    // Ask for the usage chunk, as agents do: the gateway then forwards the
    // upstream's chunks one for one (asked for by the gateway itself, it is
    // hidden, and the client would see one gap fewer than the direct side).
    if stream && url.ends_with("/chat/completions") {
        body["stream_options"] = serde_json::json!({"include_usage": true});
    }
    if let Some(t) = arg("--temperature").and_then(|v| v.parse::<f64>().ok()) {
        body["temperature"] = serde_json::json!(t);
    }
    let body = body.to_string();
    let hits = Arc::new(AtomicUsize::new(0));
    let extra: Vec<(String, String)> = std::env::args()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "--header")
        .filter_map(|w| {
            let (k, v) = w[1].split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency * 2)
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, url, key, body, next, errors, extra, hits) = (
            client.clone(),
            url.clone(),
            key.clone(),
            body.clone(),
            next.clone(),
            errors.clone(),
            extra.clone(),
            hits.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut ttfb = Vec::new();
            let mut gaps = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                if let Some(r) = rate {
                    let due = started + std::time::Duration::from_secs_f64(i as f64 / r);
                    tokio::time::sleep_until(due.into()).await;
                }
                let t0 = Instant::now();
                let mut req = client
                    .post(&url)
                    .bearer_auth(&key)
                    .header("content-type", "application/json");
                for (k, v) in &extra {
                    req = req.header(k, v);
                }
                let resp = req.body(body.clone()).send().await;
                let Ok(mut resp) = resp else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                if !resp.status().is_success() {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                if resp
                    .headers()
                    .get("x-omniroute-cache")
                    .is_some_and(|v| v == "hit")
                {
                    hits.fetch_add(1, Ordering::Relaxed);
                }
                let mut first = None;
                let mut last: Option<Instant> = None;
                while let Ok(Some(_)) = resp.chunk().await {
                    let now = Instant::now();
                    first.get_or_insert_with(|| t0.elapsed().as_secs_f64() * 1000.0);
                    if let Some(l) = last {
                        gaps.push((now - l).as_secs_f64() * 1000.0);
                    }
                    last = Some(now);
                }
                lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                ttfb.push(first.unwrap_or(f64::NAN));
            }
            (lat, ttfb, gaps)
        }));
    }
    let mut lat = Vec::new();
    let mut ttfb = Vec::new();
    let mut gaps = Vec::new();
    for w in workers {
        let (l, t, g) = w.await.unwrap();
        lat.extend(l);
        ttfb.extend(t);
        gaps.extend(g);
    }
    gaps.sort_by(f64::total_cmp);
    let secs = started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    ttfb.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "requests": lat.len(),
            "errors": errors.load(Ordering::Relaxed),
            "cache_hits": hits.load(Ordering::Relaxed),
            "rps": lat.len() as f64 / secs,
            "p50_ms": pct(&lat, 0.50), "p90_ms": pct(&lat, 0.90), "p99_ms": pct(&lat, 0.99),
            "ttfb_p50_ms": pct(&ttfb, 0.50), "ttfb_p99_ms": pct(&ttfb, 0.99),
            "gap_p50_ms": pct(&gaps, 0.50), "gap_p99_ms": pct(&gaps, 0.99),
            "gap_max_ms": gaps.last().copied().unwrap_or(f64::NAN),
            "body_bytes": body.len(),
        })
    );
}

/// Poll until the first successful completion; print ms from `t0_ns` (epoch).
async fn first_response(url: &str, key: &str, model: &str, t0_ns: u128) {
    let body = serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
    })
    .to_string();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let ok = client
            .post(url)
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        if ok {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let ms = now.saturating_sub(t0_ns) as f64 / 1e6;
            println!("{}", serde_json::json!({ "first_response_ms": ms }));
            return;
        }
        if Instant::now() > deadline {
            println!("{}", serde_json::json!({ "first_response_ms": null }));
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}
