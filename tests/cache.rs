//! The answer cache, coalescing and idempotency end to end: a real server
//! on 127.0.0.1:0 in front of the fake upstream, driven over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::fake_upstream::FakeUpstream;
use support::{client, InProcess, CLIENT_KEY};

const KEY_A: &str = "sk-cache-key-a";
const KEY_B: &str = "sk-cache-key-b";
const TEAM_1: &str = "sk-cache-team-1";
const TEAM_2: &str = "sk-cache-team-2";
const NO_CACHE: &str = "sk-cache-off-key";

fn config(base_url: &str, extra: &str) -> String {
    format!(
        r#"[server]
api_keys = [
  {{ key = "{CLIENT_KEY}", scopes = ["admin"] }},
  {{ key = "{KEY_A}", scopes = ["inference"] }},
  {{ key = "{KEY_B}", scopes = ["inference"] }},
  {{ key = "{TEAM_1}", scopes = ["inference"], cache = {{ namespace = "team" }} }},
  {{ key = "{TEAM_2}", scopes = ["inference"], cache = {{ namespace = "team" }} }},
  {{ key = "{NO_CACHE}", scopes = ["inference"], cache = {{ mode = "off" }} }},
]

[[providers]]
id = "mock"
format = "openai"
base_url = "{base_url}"
api_key = "upstream-secret"
tier = "api-key"
models = ["gpt-4o-mini", "text-embedding-fake"]

[[providers]]
id = "backup"
format = "openai"
base_url = "{base_url}"
api_key = "backup-secret"
tier = "cheap"
models = ["text-embedding-fake"]

[[combos]]
name = "faq"
models = ["mock/gpt-4o-mini"]
cache = {{ semantic = {{ embedding_model = "embed", threshold = 0.9 }} }}

[[combos]]
name = "embed"
models = ["mock/fail-500", "backup/text-embedding-fake"]

[[combos]]
name = "fresh"
models = ["mock/gpt-4o-mini"]
cache = {{ mode = "off" }}
{extra}
"#
    )
}

async fn setup(extra: &str) -> (FakeUpstream, InProcess) {
    let up = FakeUpstream::start().await;
    let gw = InProcess::start(&config(&up.base_url(), extra)).await;
    (up, gw)
}

async fn post_as(
    gw: &InProcess,
    key: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn ask(model: &str, text: &str) -> Value {
    json!({"model": model, "temperature": 0, "messages": [{"role": "user", "content": text}]})
}

fn cache_header(r: &reqwest::Response) -> String {
    r.headers()
        .get("x-omniroute-cache")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

async fn usage_rows(gw: &InProcess) -> u64 {
    gw.gw.store.flush().await.unwrap();
    gw.gw
        .store
        .read(omniroute::store::count_usage)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_repeated_deterministic_request_is_answered_from_the_cache() {
    let (up, gw) = setup("").await;
    let body = ask("mock/gpt-4o-mini", "cache me");
    let first = post_as(&gw, KEY_A, &body, &[]).await;
    assert_eq!(first.status(), 200);
    assert_eq!(cache_header(&first), "miss");
    let first_body: Value = first.json().await.unwrap();
    let second = post_as(&gw, KEY_A, &body, &[]).await;
    assert_eq!(cache_header(&second), "hit");
    let h = second.headers().clone();
    assert_eq!(h["x-omniroute-cache-kind"], "exact");
    assert_eq!(h["x-omniroute-attempts"], "0");
    assert_eq!(h["x-omniroute-provider"], "mock");
    assert!(h.contains_key("age"));
    let second_body: Value = second.json().await.unwrap();
    assert_eq!(first_body, second_body, "the same answer, byte for byte");
    assert_eq!(up.calls("gpt-4o-mini"), 1, "the hit made no upstream call");
    // The same request spelled differently (keys reordered, 0.0, a `user`) hits too.
    let respelled = json!({"messages": [{"content": "cache me", "role": "user"}],
        "user": "someone", "temperature": 0.0, "model": "mock/gpt-4o-mini"});
    assert_eq!(
        cache_header(&post_as(&gw, KEY_A, &respelled, &[]).await),
        "hit"
    );
    // Not deterministic: the cache stays out of it.
    let warm = json!({"model": "mock/gpt-4o-mini", "temperature": 0.7,
        "messages": [{"role": "user", "content": "cache me"}]});
    for _ in 0..2 {
        let r = post_as(&gw, KEY_A, &warm, &[]).await;
        assert_eq!(cache_header(&r), "bypass");
        assert!(r.headers()["x-omniroute-cache-reason"]
            .to_str()
            .unwrap()
            .contains("deterministic"));
    }
    // A seed makes it deterministic.
    let seeded = json!({"model": "mock/gpt-4o-mini", "temperature": 0.7, "seed": 7,
        "messages": [{"role": "user", "content": "cache me"}]});
    assert_eq!(
        cache_header(&post_as(&gw, KEY_A, &seeded, &[]).await),
        "miss"
    );
    assert_eq!(
        cache_header(&post_as(&gw, KEY_A, &seeded, &[]).await),
        "hit"
    );
    assert_eq!(up.calls("gpt-4o-mini"), 4);
    // A combo or a key turned off: never cached.
    for _ in 0..2 {
        assert_eq!(
            cache_header(&post_as(&gw, KEY_A, &ask("fresh", "x"), &[]).await),
            "bypass"
        );
        assert_eq!(
            cache_header(&post_as(&gw, NO_CACHE, &ask("mock/gpt-4o-mini", "y"), &[]).await),
            "bypass"
        );
    }
    assert_eq!(up.calls("gpt-4o-mini"), 8);
    // Hits write no usage row: the upstream calls did.
    assert_eq!(usage_rows(&gw).await, 8);
    // /metrics counts the lookups (bypasses are none) and what the hits saved.
    let text = client()
        .get(gw.url("/metrics"))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
    };
    assert_eq!(value("omniroute_cache_lookups_total{cache=\"exact\"}"), 5.0);
    assert_eq!(
        value("omniroute_cache_hits_by_cache_total{cache=\"exact\"}"),
        3.0
    );
    assert_eq!(value("omniroute_cache_hits_total"), 3.0);
    assert!(value("omniroute_cache_saved_tokens_total{requested=\"mock/gpt-4o-mini\"}") > 0.0);
    assert!(value("omniroute_cache_bytes_served_total{requested=\"mock/gpt-4o-mini\"}") > 0.0);
    gw.stop().await;
}

#[tokio::test]
async fn a_stream_is_replayed_event_for_event() {
    let (up, gw) = setup("").await;
    let body = json!({"model": "mock/gpt-4o-mini", "temperature": 0, "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "stream me"}]});
    let first = post_as(&gw, KEY_A, &body, &[]).await;
    assert_eq!(cache_header(&first), "miss");
    let first_text = first.text().await.unwrap();
    assert!(first_text.ends_with("data: [DONE]\n\n"), "{first_text}");
    // The entry lands once the stream's usage row is written.
    let mut second_text = String::new();
    for _ in 0..50 {
        let r = post_as(&gw, KEY_A, &body, &[]).await;
        let hit = cache_header(&r) == "hit";
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        second_text = r.text().await.unwrap();
        if hit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(second_text, first_text, "the same events, in order");
    assert_eq!(up.calls("gpt-4o-mini"), 1);
    // The non-streaming form is another request.
    let whole = json!({"model": "mock/gpt-4o-mini", "temperature": 0,
        "messages": [{"role": "user", "content": "stream me"}]});
    assert_eq!(
        cache_header(&post_as(&gw, KEY_A, &whole, &[]).await),
        "miss"
    );
    gw.stop().await;
}

#[tokio::test]
async fn no_store_and_no_cache_are_honoured() {
    let (up, gw) = setup("").await;
    let body = ask("mock/gpt-4o-mini", "private");
    let r = post_as(&gw, KEY_A, &body, &[("cache-control", "no-store")]).await;
    assert_eq!(cache_header(&r), "bypass");
    // Nothing was kept: the next one goes upstream too.
    assert_eq!(cache_header(&post_as(&gw, KEY_A, &body, &[]).await), "miss");
    assert_eq!(cache_header(&post_as(&gw, KEY_A, &body, &[]).await), "hit");
    // no-cache: a fresh answer (which refreshes the entry).
    let r = post_as(&gw, KEY_A, &body, &[("cache-control", "no-cache")]).await;
    assert_eq!(cache_header(&r), "miss");
    assert_eq!(up.calls("gpt-4o-mini"), 3);
    // max-age: only a young enough answer.
    gw.gw.cache.clock.advance(Duration::from_secs(120));
    let r = post_as(&gw, KEY_A, &body, &[("cache-control", "max-age=60")]).await;
    assert_eq!(cache_header(&r), "miss");
    let r = post_as(&gw, KEY_A, &body, &[("cache-control", "max-age=600")]).await;
    assert_eq!(cache_header(&r), "hit");
    gw.stop().await;
}

#[tokio::test]
async fn one_key_never_sees_another_keys_answers_unless_they_share_a_namespace() {
    let (up, gw) = setup("").await;
    let body = ask("mock/gpt-4o-mini", "mine");
    assert_eq!(cache_header(&post_as(&gw, KEY_A, &body, &[]).await), "miss");
    assert_eq!(cache_header(&post_as(&gw, KEY_B, &body, &[]).await), "miss");
    assert_eq!(cache_header(&post_as(&gw, KEY_A, &body, &[]).await), "hit");
    assert_eq!(cache_header(&post_as(&gw, KEY_B, &body, &[]).await), "hit");
    assert_eq!(up.calls("gpt-4o-mini"), 2);
    // Two keys an admin put in one namespace share answers.
    assert_eq!(
        cache_header(&post_as(&gw, TEAM_1, &body, &[]).await),
        "miss"
    );
    assert_eq!(cache_header(&post_as(&gw, TEAM_2, &body, &[]).await), "hit");
    assert_eq!(up.calls("gpt-4o-mini"), 3);
    // No row holds a client key or an upstream secret.
    gw.gw.store.flush().await.unwrap();
    let dump: Vec<String> = gw
        .gw
        .store
        .read(|c| {
            let mut s = c.prepare(
                "SELECT hash || namespace || label || CAST(body AS TEXT) || route FROM cache_entries",
            )?;
            let rows = s.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap();
    assert_eq!(dump.len(), 3);
    for row in dump {
        for secret in [KEY_A, KEY_B, TEAM_1, "upstream-secret", "backup-secret"] {
            assert!(!row.contains(secret), "{secret} in a cache row");
        }
    }
    gw.stop().await;
}

#[tokio::test]
async fn entries_expire_after_their_ttl_on_the_cache_clock() {
    let (up, gw) = setup("[cache]\nttl = \"10m\"\n").await;
    let body = ask("mock/gpt-4o-mini", "short-lived");
    assert_eq!(cache_header(&post_as(&gw, KEY_A, &body, &[]).await), "miss");
    gw.gw.cache.clock.advance(Duration::from_secs(599));
    assert_eq!(cache_header(&post_as(&gw, KEY_A, &body, &[]).await), "hit");
    gw.gw.cache.clock.advance(Duration::from_secs(2));
    assert_eq!(cache_header(&post_as(&gw, KEY_A, &body, &[]).await), "miss");
    assert_eq!(up.calls("gpt-4o-mini"), 2);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_identical_requests_at_once_make_one_upstream_call() {
    let (up, gw) = setup("").await;
    let body = ask("mock/slow", "all at once");
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (url, body) = (gw.url("/v1/chat/completions"), body.clone());
        tasks.push(tokio::spawn(async move {
            let r = client()
                .post(url)
                .bearer_auth(KEY_A)
                .json(&body)
                .send()
                .await
                .unwrap();
            let kind = r
                .headers()
                .get("x-omniroute-cache-kind")
                .map(|v| v.to_str().unwrap().to_string());
            (cache_header(&r), kind, r.json::<Value>().await.unwrap())
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert_eq!(up.calls("slow"), 1);
    assert_eq!(answers.iter().filter(|a| a.0 == "miss").count(), 1);
    assert!(answers
        .iter()
        .filter(|a| a.0 == "hit")
        .all(|a| a.1.is_some()));
    assert!(
        answers.iter().all(|a| a.2 == answers[0].2),
        "all got the same answer"
    );
    assert_eq!(usage_rows(&gw).await, 1);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_in_flight_are_fanned_out() {
    let (up, gw) = setup("").await;
    let body = json!({"model": "mock/slow-stream", "temperature": 0, "stream": true,
        "messages": [{"role": "user", "content": "fan out"}]});
    let mut tasks = Vec::new();
    for i in 0..3 {
        let (url, body) = (gw.url("/v1/chat/completions"), body.clone());
        tasks.push(tokio::spawn(async move {
            // The later ones join while the first is mid-stream.
            tokio::time::sleep(Duration::from_millis(200 * i)).await;
            let r = client()
                .post(url)
                .bearer_auth(KEY_A)
                .json(&body)
                .send()
                .await
                .unwrap();
            (cache_header(&r), r.text().await.unwrap())
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    assert_eq!(up.calls("slow-stream"), 1);
    assert!(
        out.iter().all(|o| o.1 == out[0].1),
        "every client got every event"
    );
    assert!(out[0].1.contains("[9]") && out[0].1.ends_with("data: [DONE]\n\n"));
    assert_eq!(out.iter().filter(|o| o.0 == "hit").count(), 2);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_retry_after_a_client_timeout_is_one_call_and_one_usage_row() {
    let (up, gw) = setup("").await;
    // Not deterministic: only the idempotency key ties the two together.
    let body = json!({"model": "mock/slow", "messages": [{"role": "user", "content": "pay once"}]});
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let timed_out = quick
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY_A)
        .header("idempotency-key", "order-42")
        .json(&body)
        .send()
        .await;
    assert!(timed_out.is_err_and(|e| e.is_timeout()));
    let retry = post_as(&gw, KEY_A, &body, &[("idempotency-key", "order-42")]).await;
    assert_eq!(retry.status(), 200);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let answer: Value = retry.json().await.unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], "echo: pay once");
    // Within the window, after it finished: the first answer again.
    let again = post_as(&gw, KEY_A, &body, &[("idempotency-key", "order-42")]).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), answer);
    assert_eq!(up.calls("slow"), 1);
    assert_eq!(usage_rows(&gw).await, 1);
    // The same key from another client key is another request.
    let other = post_as(&gw, KEY_B, &body, &[("idempotency-key", "order-42")]).await;
    assert!(other.headers().get("idempotent-replayed").is_none());
    assert_eq!(up.calls("slow"), 2);
    // Past the window (5 s by default), the key starts afresh.
    gw.gw.cache.clock.advance(Duration::from_secs(6));
    let later = post_as(&gw, KEY_A, &body, &[("idempotency-key", "order-42")]).await;
    assert!(later.headers().get("idempotent-replayed").is_none());
    assert_eq!(up.calls("slow"), 3);
    gw.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_reused_for_another_body_is_422() {
    let (up, gw) = setup("").await;
    let a = json!({"model": "mock/gpt-4o-mini", "messages": [{"role": "user", "content": "one"}]});
    let b = json!({"model": "mock/gpt-4o-mini", "messages": [{"role": "user", "content": "two"}]});
    assert_eq!(
        post_as(&gw, KEY_A, &a, &[("idempotency-key", "k-1")])
            .await
            .status(),
        200
    );
    let r = post_as(&gw, KEY_A, &b, &[("idempotency-key", "k-1")]).await;
    assert_eq!(r.status(), 422);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "idempotency_key_reused");
    assert_eq!(e["error"]["type"], "invalid_request_error");
    // An unusable key is refused.
    let r = post_as(&gw, KEY_A, &a, &[("idempotency-key", &"x".repeat(300))]).await;
    assert_eq!(r.status(), 400);
    assert_eq!(up.calls("gpt-4o-mini"), 1);
    gw.stop().await;
}

#[tokio::test]
async fn x_request_id_is_an_idempotency_key_when_configured() {
    let (up, gw) = setup("[idempotency]\nrequest_id_header = true\nwindow = \"30s\"\n").await;
    let body =
        json!({"model": "mock/gpt-4o-mini", "messages": [{"role": "user", "content": "rid"}]});
    post_as(&gw, KEY_A, &body, &[("x-request-id", "rid-1")]).await;
    let r = post_as(&gw, KEY_A, &body, &[("x-request-id", "rid-1")]).await;
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    gw.gw.cache.clock.advance(Duration::from_secs(20));
    let r = post_as(&gw, KEY_A, &body, &[("x-request-id", "rid-1")]).await;
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_eq!(up.calls("gpt-4o-mini"), 1);
    gw.stop().await;
}

#[tokio::test]
async fn semantic_hit_on_a_paraphrase_and_miss_below_the_threshold() {
    let (up, gw) = setup("").await;
    let q = |text: &str| {
        // Not deterministic: the combo's semantic cache applies anyway.
        json!({"model": "faq", "temperature": 0.8, "messages": [
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": text}]})
    };
    let first = post_as(&gw, KEY_A, &q("What is the capital of France?"), &[]).await;
    assert_eq!(cache_header(&first), "miss");
    let first_body: Value = first.json().await.unwrap();
    let para = post_as(
        &gw,
        KEY_A,
        &q("Tell me the capital city of France, please"),
        &[],
    )
    .await;
    assert_eq!(cache_header(&para), "hit");
    assert_eq!(para.headers()["x-omniroute-cache-kind"], "semantic");
    let sim: f32 = para.headers()["x-omniroute-cache-similarity"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(sim >= 0.9, "{sim}");
    assert_eq!(para.json::<Value>().await.unwrap(), first_body);
    // Similar words but another question: below the threshold.
    let other = post_as(&gw, KEY_A, &q("What is the capital of Spain?"), &[]).await;
    assert_eq!(cache_header(&other), "miss");
    // Same question, other context: never matched.
    let ctx = json!({"model": "faq", "messages": [
        {"role": "system", "content": "Answer at length."},
        {"role": "user", "content": "What is the capital of France?"}]});
    assert_eq!(cache_header(&post_as(&gw, KEY_A, &ctx, &[]).await), "miss");
    // Another key: its own namespace.
    let b = post_as(&gw, KEY_B, &q("What is the capital of France?"), &[]).await;
    assert_eq!(cache_header(&b), "miss");
    assert_eq!(up.calls("gpt-4o-mini"), 4);
    // Embeddings went through the router: the first target of the `embed`
    // combo failed (and then cooled down), its fallback answered each time.
    assert!(up.calls("fail-500") >= 1);
    assert_eq!(up.calls("text-embedding-fake"), 5);
    gw.stop().await;
}

#[tokio::test]
async fn embeddings_pass_through_the_router() {
    let (up, gw) = setup("").await;
    let r = client()
        .post(gw.url("/v1/embeddings"))
        .bearer_auth(KEY_A)
        .json(&json!({"model": "embed", "input": ["hello world", "other"], "dimensions": 8}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-omniroute-provider"], "backup");
    assert_eq!(r.headers()["x-omniroute-attempts"], "2");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 8);
    assert_eq!(v["model"], "text-embedding-fake");
    assert_eq!(up.last_auth(), "Bearer backup-secret");
    let bad = client()
        .post(gw.url("/v1/embeddings"))
        .bearer_auth(KEY_A)
        .json(&json!({"model": "embed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let e: Value = bad.json().await.unwrap();
    assert!(e["error"]["message"].as_str().unwrap().contains("input"));
    let noauth = client()
        .post(gw.url("/v1/embeddings"))
        .json(&json!({"model": "embed", "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(noauth.status(), 401);
    gw.gw.store.flush().await.unwrap();
    let rows: Vec<(String, String, i64)> = gw
        .gw
        .store
        .read(|c| {
            let mut s =
                c.prepare("SELECT endpoint, outcome, input_tokens FROM usage_events ORDER BY id")?;
            let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap();
    assert_eq!(rows[0], ("embeddings".into(), "ok".into(), 3));
    gw.stop().await;
}

#[tokio::test]
async fn flush_and_figures() {
    let (_up, gw) = setup("").await;
    let body = ask("mock/gpt-4o-mini", "count me");
    post_as(&gw, KEY_A, &body, &[]).await;
    post_as(&gw, KEY_A, &body, &[]).await;
    post_as(&gw, KEY_A, &body, &[]).await;
    post_as(
        &gw,
        KEY_A,
        &ask("faq", "What is the capital of France?"),
        &[],
    )
    .await;
    gw.gw.store.flush().await.unwrap();
    let admin = omniroute::access::Principal::operator();
    let s = omniroute::ops::cache::cache_stats(&gw.gw, Default::default(), &admin)
        .await
        .unwrap();
    assert_eq!(s.totals.hits, 2);
    assert_eq!(s.totals.misses, 2);
    assert_eq!(s.totals.hit_rate, Some(0.5));
    assert_eq!(s.totals.tokens_saved, 36, "two hits of 11 + 7 tokens");
    assert_eq!(s.entries, 2);
    let line = s
        .by_combo
        .iter()
        .find(|l| l.group == "mock/gpt-4o-mini")
        .unwrap();
    assert_eq!((line.hits, line.misses), (2, 1));
    assert!(s.by_key.iter().any(|l| l.hits == 2));
    let f = omniroute::ops::cache::cache_flush(
        &gw.gw,
        omniroute::cache::rows::FlushFilter {
            combo: Some("faq".into()),
            namespace: None,
        },
        omniroute::ops::Actor::Cli,
    )
    .await
    .unwrap();
    assert_eq!(f.entries, 1);
    assert_eq!(gw.gw.cache.size().0, 1);
    assert_eq!(cache_header(&post_as(&gw, KEY_A, &body, &[]).await), "hit");
    let r = post_as(
        &gw,
        KEY_A,
        &ask("faq", "What is the capital of France?"),
        &[],
    )
    .await;
    assert_eq!(cache_header(&r), "miss");
    // /health reports the figures to a read key.
    let h: Value = client()
        .get(gw.url("/health"))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["cache"]["enabled"], true);
    assert_eq!(h["cache"]["hits"], 3);
    assert!(h["cache"]["entries"].as_u64().unwrap() >= 1);
    gw.stop().await;
}

#[tokio::test]
async fn entries_survive_a_restart() {
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&up.base_url(), "");
    let body = ask("mock/gpt-4o-mini", "remember me");
    let gw = InProcess::start_in(dir.path(), &cfg).await;
    assert_eq!(cache_header(&post_as(&gw, KEY_A, &body, &[]).await), "miss");
    gw.stop().await;
    let gw = InProcess::start_in(dir.path(), &cfg).await;
    assert_eq!(cache_header(&post_as(&gw, KEY_A, &body, &[]).await), "hit");
    assert_eq!(up.calls("gpt-4o-mini"), 1);
    gw.stop().await;
}

#[tokio::test]
async fn a_responses_hit_gets_its_own_id_and_a_follow_up_finds_it() {
    let (up, gw) = setup("").await;
    let body = json!({"model": "mock/gpt-4o-mini", "temperature": 0, "input": "remember this"});
    let post = |body: Value| {
        client()
            .post(gw.url("/v1/responses"))
            .bearer_auth(KEY_A)
            .json(&body)
            .send()
    };
    let first = post(body.clone()).await.unwrap();
    assert_eq!(cache_header(&first), "miss");
    let first: Value = first.json().await.unwrap();
    let second = post(body.clone()).await.unwrap();
    assert_eq!(cache_header(&second), "hit");
    let second: Value = second.json().await.unwrap();
    assert_eq!(second["output"], first["output"]);
    assert_ne!(
        second["id"], first["id"],
        "each answer has its own response id"
    );
    // The hit's conversation was stored under its id: a follow-up continues it.
    let follow = json!({"model": "mock/gpt-4o-mini", "input": "and then?",
        "previous_response_id": second["id"]});
    let r = post(follow).await.unwrap();
    assert_eq!(r.status(), 200);
    let got = client()
        .get(gw.url(&format!("/v1/responses/{}", second["id"].as_str().unwrap())))
        .bearer_auth(KEY_A)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(up.calls("gpt-4o-mini"), 2);
    // Streamed: the replayed events carry the new id too.
    let sbody = json!({"model": "mock/gpt-4o-mini", "temperature": 0, "input": "stream this", "stream": true});
    let a = post(sbody.clone()).await.unwrap().text().await.unwrap();
    let mut b = String::new();
    for _ in 0..50 {
        let r = post(sbody.clone()).await.unwrap();
        let hit = cache_header(&r) == "hit";
        b = r.text().await.unwrap();
        if hit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let id_of = |t: &str| -> String {
        let line = t
            .lines()
            .find(|l| l.starts_with("data: ") && l.contains("response.created"))
            .unwrap();
        let v: Value = serde_json::from_str(&line[6..]).unwrap();
        v["response"]["id"].as_str().unwrap().to_string()
    };
    assert!(b.contains("response.completed"));
    assert_ne!(id_of(&a), id_of(&b));
    gw.stop().await;
}
