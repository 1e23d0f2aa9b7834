//! The OpenAI-compatible proxy end to end: a real server on 127.0.0.1:0 in
//! front of the fake upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use futures::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;
use support::fake_upstream::FakeUpstream;
use support::{client, example_config, InProcess, CLIENT_KEY};

async fn setup() -> (FakeUpstream, InProcess) {
    let up = FakeUpstream::start().await;
    let gw = InProcess::start(&example_config(&up.base_url())).await;
    (up, gw)
}

async fn post(gw: &InProcess, body: Value) -> reqwest::Response {
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

async fn usage_rows(gw: &InProcess) -> Vec<(String, String, i64, i64, Option<f64>)> {
    gw.gw.store.flush().await.unwrap();
    gw.gw
        .store
        .read(|c| {
            let mut s = c.prepare(
                "SELECT outcome, COALESCE(model, ''), input_tokens, output_tokens, overhead_ms FROM usage_events ORDER BY id",
            )?;
            let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn non_streaming_completion_with_usage_and_route_headers() {
    let (up, gw) = setup().await;
    let resp = post(&gw, chat("mock/gpt-4o-mini")).await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["x-omniroute-provider"], "mock");
    assert_eq!(h["x-omniroute-model"], "gpt-4o-mini");
    assert_eq!(h["x-omniroute-attempts"], "1");
    assert!(h["x-omniroute-account"]
        .to_str()
        .unwrap()
        .starts_with("acc_"));
    let overhead: f64 = h["x-omniroute-overhead-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(overhead >= 0.0);
    assert!(h.contains_key("x-omniroute-upstream-ms"));
    assert!(h.contains_key("x-request-id"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "echo: hi");
    assert_eq!(body["usage"]["prompt_tokens"], 11);
    // the upstream got the bare model name and the upstream key, never the client key
    assert_eq!(up.last_body()["model"], "gpt-4o-mini");
    assert_eq!(up.last_auth(), "Bearer upstream-secret");
    let rows = usage_rows(&gw).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "ok");
    assert_eq!((rows[0].2, rows[0].3), (11, 7));
    assert!(rows[0].4.is_some());
    gw.stop().await;
}

#[tokio::test]
async fn streaming_relays_chunks_and_records_usage() {
    let (up, gw) = setup().await;
    let mut body = chat("mock/gpt-4o-mini");
    body["stream"] = json!(true);
    let resp = post(&gw, body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.unwrap();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    // role chunk, 5 content chunks, finish chunk, [DONE]; the usage-only chunk we asked for is hidden
    assert_eq!(events.len(), 8, "{text}");
    assert_eq!(*events.last().unwrap(), "data: [DONE]");
    assert!(!text.contains("\"usage\""), "{text}");
    // but the gateway asked the upstream for usage and recorded it
    assert_eq!(up.last_body()["stream_options"]["include_usage"], true);
    let rows = usage_rows(&gw).await;
    assert_eq!(rows[0].0, "ok");
    assert_eq!((rows[0].2, rows[0].3), (11, 5));
    gw.stop().await;
}

#[tokio::test]
async fn streaming_keeps_usage_chunk_when_client_asked() {
    let (_up, gw) = setup().await;
    let mut body = chat("mock/gpt-4o-mini");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let text = post(&gw, body).await.text().await.unwrap();
    assert!(text.contains("\"usage\""), "{text}");
    gw.stop().await;
}

#[tokio::test]
async fn auth_is_required_and_errors_are_openai_shaped() {
    let (_up, gw) = setup().await;
    let c = client();
    let none = c
        .post(gw.url("/v1/chat/completions"))
        .json(&chat("mock/gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    let body: Value = none.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("missing API key"));
    let wrong = c
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-wrong-key")
        .json(&chat("mock/gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let models = c.get(gw.url("/v1/models")).send().await.unwrap();
    assert_eq!(models.status(), 401);
    // x-api-key works as well as bearer
    let ok = c
        .post(gw.url("/v1/chat/completions"))
        .header("x-api-key", CLIENT_KEY)
        .json(&chat("mock/gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // health needs no key, and then tells the status only
    let health: Value = c
        .get(gw.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["store_ok"], true);
    assert!(health["version"].is_string());
    assert!(health.get("providers").is_none(), "{health}");
    // a key with the read scope sees the full report
    let health: Value = c
        .get(gw.url("/health"))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["store"]["ok"], true);
    assert!(health["providers"].is_array(), "{health}");
    gw.stop().await;
}

#[tokio::test]
async fn models_lists_usable_prefixed_models() {
    let (_up, gw) = setup().await;
    let body: Value = client()
        .get(gw.url("/v1/models"))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"mock/gpt-4o-mini"), "{ids:?}");
    gw.stop().await;
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let (up, gw) = setup().await;
    let c = client();
    let malformed = c
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .header("content-type", "application/json")
        .body("{\"model\": \"mock/gpt-4o-mini\",\n \"messages\": [}")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 2"),
        "{body}"
    );

    let unknown = post(&gw, chat("gpt-4o-mni")).await;
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_found");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mock/gpt-4o-mini"),
        "{body}"
    );

    let no_model = post(&gw, json!({"messages": []})).await;
    assert_eq!(no_model.status(), 400);

    let rejected = post(&gw, chat("mock/fail-400")).await;
    assert_eq!(rejected.status(), 400);
    let body: Value = rejected.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("messages must not be empty"));
    assert_eq!(up.calls("fail-400"), 1);
    gw.stop().await;
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let up = FakeUpstream::start().await;
    let gw =
        InProcess::start_with(&example_config(&up.base_url()), |s| s.max_body_bytes = 1024).await;
    let big = "x".repeat(4096);
    let resp = post(
        &gw,
        json!({"model": "mock/gpt-4o-mini", "messages": [{"role": "user", "content": big}]}),
    )
    .await;
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "request_too_large");
    assert_eq!(up.calls("gpt-4o-mini"), 0);
    gw.stop().await;
}

#[tokio::test]
async fn upstream_failures_become_502_429_and_504() {
    let up = FakeUpstream::start().await;
    let gw = InProcess::start_with(&example_config(&up.base_url()), |s| {
        s.upstream_timeout = Duration::from_millis(500)
    })
    .await;
    let r = post(&gw, chat("mock/hang")).await;
    assert_eq!(r.status(), 504);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_timeout");

    let r = post(&gw, chat("mock/fail-500")).await;
    assert_eq!(r.status(), 502);
    let body: Value = r.json().await.unwrap();
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("HTTP 500") && msg.contains("upstream exploded"),
        "{msg}"
    );
    assert_eq!(body["error"]["code"], "upstream_500");

    let r = post(&gw, chat("mock/fail-429")).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Rate limit"));
    // a rate limit cools only that target: the account's other models still answer
    assert_eq!(post(&gw, chat("mock/gpt-4o-mini")).await.status(), 200);

    let r = post(&gw, chat("mock/fail-quota")).await;
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("quota"));
    // an exhausted quota cools the whole account down until the Retry-After
    let r = post(&gw, chat("mock/gpt-4o-mini")).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "30");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_target_available");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("account cooldown"),
        "{body}"
    );
    assert_eq!(up.calls("gpt-4o-mini"), 1);

    let dead = "http://127.0.0.1:9/v1";
    drop(gw);
    let gw = InProcess::start(&example_config(dead)).await;
    let r = post(&gw, chat("mock/gpt-4o-mini")).await;
    assert_eq!(r.status(), 502);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_unreachable");
    gw.stop().await;
}

#[tokio::test]
async fn a_cut_stream_ends_with_an_error_event() {
    let (_up, gw) = setup().await;
    let mut body = chat("mock/cut-stream");
    body["stream"] = json!(true);
    let text = post(&gw, body).await.text().await.unwrap();
    let last = text
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .last()
        .unwrap()
        .to_string();
    assert!(last.starts_with("data: {\"error\""), "{text}");
    assert!(!text.contains("[DONE]"));
    let rows = usage_rows(&gw).await;
    assert_eq!(rows[0].0, "upstream_error");
    gw.stop().await;
}

#[tokio::test]
async fn client_disconnect_drops_upstream_and_records_usage() {
    let (up, gw) = setup().await;
    let mut body = chat("mock/slow-stream");
    body["stream"] = json!(true);
    let mut resp = post(&gw, body).await;
    // read the first event, then hang up
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    drop(resp);
    let mut waited = 0;
    while up
        .seen
        .streams_dropped
        .load(std::sync::atomic::Ordering::SeqCst)
        == 0
        && waited < 100
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    assert_eq!(
        up.seen
            .streams_dropped
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(
        up.seen
            .streams_finished
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    let rows = usage_rows(&gw).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "client_gone");
    gw.stop().await;
}

#[tokio::test]
async fn a_failing_account_falls_back_to_the_next_one() {
    let up = FakeUpstream::start().await;
    let gw = InProcess::start(&example_config(&up.base_url())).await;
    // a second, better-priority account whose key the upstream rejects
    omniroute::ops::accounts::add_account(
        &gw.gw,
        omniroute::ops::accounts::AddAccountInput {
            provider: "mock".into(),
            label: Some("broken".into()),
            api_key: Some("bad-key".into()),
            priority: Some(-1),
            ..Default::default()
        },
        omniroute::ops::Actor::Cli,
    )
    .await
    .unwrap();
    let r = post(&gw, chat("mock/gpt-4o-mini")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-omniroute-attempts"], "2");
    assert!(r.headers()["x-omniroute-failed"]
        .to_str()
        .unwrap()
        .contains("HTTP 401"));
    assert_eq!(up.calls("gpt-4o-mini"), 2);
    gw.stop().await;
}

#[tokio::test]
async fn config_is_applied_idempotently_and_secrets_are_encrypted() {
    let up = FakeUpstream::start().await;
    let cfg = example_config(&up.base_url());
    let gw = InProcess::start(&cfg).await;
    let parsed = omniroute::config::FileConfig::parse(&cfg).unwrap();
    let again = omniroute::ops::apply::apply_config(&gw.gw, &parsed)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    let (audit, raw): (i64, Vec<u8>) = gw
        .gw
        .store
        .read(|c| {
            let n = c.query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))?;
            let blob = c.query_row("SELECT secret_enc FROM accounts", [], |r| r.get(0))?;
            Ok((n, blob))
        })
        .await
        .unwrap();
    assert_eq!(audit, 3, "provider, account and client key, once each");
    assert!(!raw.windows(15).any(|w| w == b"upstream-secret"));
    let db = std::fs::read(gw.gw.store.path()).unwrap_or_default();
    assert!(!db.windows(15).any(|w| w == b"upstream-secret"));
    gw.stop().await;
}

/// `x-omniroute-overhead-ms` counts from the request's first bytes: a body
/// the client uploads slowly is gateway time (the upstream was not yet
/// asked), and overhead plus upstream time never exceeds what the client saw.
#[tokio::test]
async fn overhead_counts_from_the_first_byte_received() {
    let (_up, gw) = setup().await;
    let body = serde_json::to_vec(&chat("mock/gpt-4o-mini")).unwrap();
    let (head, tail) = body.split_at(10);
    let (head, tail) = (head.to_vec(), tail.to_vec());
    let chunks =
        futures::stream::iter([Ok::<_, std::io::Error>(head), Ok(tail)]).then(|c| async move {
            tokio::time::sleep(Duration::from_millis(60)).await;
            c
        });
    let t0 = std::time::Instant::now();
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    let seen_ms = t0.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(resp.status(), 200);
    let num = |n: &str| -> f64 { resp.headers()[n].to_str().unwrap().parse().unwrap() };
    let (overhead, upstream) = (
        num("x-omniroute-overhead-ms"),
        num("x-omniroute-upstream-ms"),
    );
    assert!(
        overhead >= 55.0,
        "the slow upload is counted: {overhead} ms"
    );
    assert!(
        overhead + upstream <= seen_ms,
        "{overhead} + {upstream} > {seen_ms}"
    );
    gw.stop().await;
}
