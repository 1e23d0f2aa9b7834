//! Micro-benchmarks of the hot pure functions: wire-format decoding and
//! encoding, translating a 50-event stream, planning a route over a
//! 20-target combo, key validation, and usage observation on stream chunks.
//! `cargo bench --bench hot_paths`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use omniroute::catalog::WireFormat;
use omniroute::formats::{self, ClientContext, StreamDecoder, StreamEncoder};
use omniroute::registry::{Inputs, Registry};
use omniroute::routing::combo::{Combo, Step};
use omniroute::routing::plan::{self, Shape};
use omniroute::routing::strategy::StrategyKind;
use omniroute::routing::Routing;
use omniroute::secret::Cipher;
use omniroute::store::{AccountRow, ClientKeyRow, ProviderRow};
use std::hint::black_box;

const OPENAI_REQUEST: &str = r#"{"model":"mock/m0","stream":true,"max_tokens":512,"temperature":0.2,
 "messages":[{"role":"system","content":"You are a careful coding assistant."},
  {"role":"user","content":"Write a function that reverses a linked list in Rust, with tests."},
  {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"read_file","arguments":"{\"path\":\"src/list.rs\"}"}}]},
  {"role":"tool","tool_call_id":"call_1","content":"pub struct Node { value: i32, next: Option<Box<Node>> }"}],
 "tools":[{"type":"function","function":{"name":"read_file","description":"Read a file","parameters":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}}}]}"#;

const ANTHROPIC_RESPONSE: &str = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"text","text":"Here is the function."},{"type":"tool_use","id":"toolu_1","name":"write_file","input":{"path":"src/list.rs","content":"fn reverse() {}"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":120,"output_tokens":40,"cache_read_input_tokens":64}}"#;

fn openai_chunks() -> Vec<String> {
    let mut v = vec![r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#.to_string()];
    for i in 0..47 {
        v.push(format!(
            r#"{{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{{"index":0,"delta":{{"content":"token{i} "}},"finish_reason":null}}]}}"#
        ));
    }
    v.push(r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#.to_string());
    v.push(r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":47,"total_tokens":57}}"#.to_string());
    v
}

fn codecs(c: &mut Criterion) {
    let body = OPENAI_REQUEST.as_bytes();
    c.bench_function("decode openai chat request", |b| {
        b.iter(|| formats::decode_request(WireFormat::Openai, black_box(body)).unwrap())
    });
    let req = formats::decode_request(WireFormat::Openai, body).unwrap();
    for fmt in [
        WireFormat::Openai,
        WireFormat::Anthropic,
        WireFormat::Gemini,
        WireFormat::OpenaiResponses,
    ] {
        c.bench_function(&format!("encode request as {}", fmt.as_str()), |b| {
            b.iter(|| formats::encode_request(fmt, black_box(&req)).unwrap())
        });
    }
    let resp =
        formats::decode_response(WireFormat::Anthropic, ANTHROPIC_RESPONSE.as_bytes()).unwrap();
    let ctx = ClientContext::for_request(&req, 1_700_000_000);
    c.bench_function("decode anthropic response", |b| {
        b.iter(|| {
            formats::decode_response(
                WireFormat::Anthropic,
                black_box(ANTHROPIC_RESPONSE.as_bytes()),
            )
            .unwrap()
        })
    });
    c.bench_function("encode response as openai chat", |b| {
        b.iter(|| formats::encode_response(WireFormat::Openai, black_box(&resp), &ctx))
    });
    let chunks = openai_chunks();
    c.bench_function("translate a 50-event stream openai -> anthropic", |b| {
        b.iter(|| {
            let mut dec = StreamDecoder::new(WireFormat::Openai);
            let mut enc = StreamEncoder::new(WireFormat::Anthropic, &ctx);
            let mut bytes = 0;
            for data in &chunks {
                for ev in dec.push(None, data) {
                    bytes += enc.push(&ev).len();
                }
            }
            for ev in dec.finish() {
                bytes += enc.push(&ev).len();
            }
            black_box(bytes)
        })
    });
    c.bench_function("observe usage on 50 openai chunks", |b| {
        b.iter(|| {
            chunks
                .iter()
                .filter_map(|d| omniroute::proxy::usage::from_openai_chunk(black_box(d.as_bytes())))
                .count()
        })
    });
}

fn registry_with_combo() -> (Registry, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cipher = Cipher::load_or_create(&dir.path().join("k")).unwrap();
    let models: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    let provider = ProviderRow {
        id: "mock".into(),
        format: Some("openai".into()),
        base_url: Some("http://127.0.0.1:9/v1".into()),
        models: Some(models.clone()),
        source: "bench".into(),
        ..Default::default()
    };
    let account = AccountRow {
        id: "acc_bench".into(),
        provider_id: "mock".into(),
        label: "bench".into(),
        secret_enc: Some(cipher.encrypt("k").unwrap()),
        secret_env: None,
        tier: None,
        enabled: true,
        priority: 0,
        source: "bench".into(),
        created_ms: 0,
    };
    let key = ClientKeyRow {
        id: "key_bench".into(),
        hint: "sk-bench…".into(),
        label: "bench".into(),
        source: "bench".into(),
        created_ms: 0,
        revoked_ms: None,
        scopes: omniroute::access::Scopes::inference(),
        hash: hex::encode(omniroute::registry::hash_key("sk-bench-key-0123456789")),
    };
    let combo = Combo {
        name: "big".into(),
        strategy: StrategyKind::Auto,
        models: models
            .iter()
            .map(|m| Step::Name(format!("mock/{m}")))
            .collect(),
        sticky: false,
        description: None,
        limits: Default::default(),
        fusion: None,
        summarizer_model: None,
        cache: None,
    };
    let catalog = omniroute::catalog::embedded();
    let env = |_: &str| None;
    let reg = Registry::build(Inputs {
        generation: 1,
        oauth: vec![],
        catalog: &catalog,
        providers: vec![provider],
        accounts: vec![account],
        keys: vec![key],
        combos: vec![combo],
        cipher: &cipher,
        env: &env,
    });
    (reg, dir)
}

fn routing(c: &mut Criterion) {
    let (reg, _dir) = registry_with_combo();
    let routing = Routing::new(Some(7));
    let shape = Shape {
        input_tokens: 2000,
        output_tokens: 1024,
        session: None,
        key_id: Some("key_bench".into()),
    };
    c.bench_function("plan a 20-target combo (auto strategy)", |b| {
        b.iter(|| {
            plan::plan(black_box(&reg), &routing, "big", &shape)
                .unwrap()
                .targets
                .len()
        })
    });
    c.bench_function("plan a single prefix/model", |b| {
        b.iter(|| {
            plan::plan(black_box(&reg), &routing, "mock/m3", &shape)
                .unwrap()
                .targets
                .len()
        })
    });
    c.bench_function("validate a client key", |b| {
        b.iter(|| {
            reg.authenticate(black_box("sk-bench-key-0123456789"))
                .is_some()
        })
    });
}

/// What the dashboard and /metrics add to each request (the usage tap), and
/// one scrape's encoding with 100 provider/model/target label sets.
fn metrics(c: &mut Criterion) {
    use omniroute::metrics::Metrics;
    use omniroute::store::UsageEvent;
    let event = |i: usize| UsageEvent {
        ts_ms: omniroute::store::now_ms(),
        provider_id: Some(format!("p{}", i % 10)),
        account_id: Some("acc_1".into()),
        model: Some(format!("m{}", (i / 10) % 10)),
        requested_model: "combo".into(),
        status: 200,
        outcome: "ok".into(),
        latency_ms: 12.0,
        upstream_ms: Some(11.8),
        overhead_ms: Some(0.12),
        input_tokens: 100,
        output_tokens: 20,
        cost_usd: Some(0.0001),
        ..UsageEvent::default()
    };
    let m = Metrics::default();
    let one = event(0);
    c.bench_function("metrics_observe_request", |b| {
        b.iter(|| m.observe_request(std::hint::black_box(&one)))
    });
    for i in 0..100 {
        m.observe_request(&event(i));
    }
    let extra = prometheus::Registry::new();
    c.bench_function("metrics_encode_100_label_sets", |b| {
        b.iter(|| m.prom.encode(std::hint::black_box(&extra)).len())
    });
    c.bench_function("overview_points_24h", |b| {
        b.iter(|| m.points(omniroute::store::now_ms(), 144, 10).len())
    });
}

/// What the cache adds in front of planning: the key of a request and an
/// exact lookup among 10 000 entries.
fn cache(c: &mut Criterion) {
    use omniroute::cache::exact::{Entry, Exact};
    use omniroute::cache::key;
    use omniroute::proxy::ChatCall;
    let call = ChatCall::openai(
        "r".into(),
        Some("key_bench".into()),
        "chat.completions",
        bytes::Bytes::from_static(OPENAI_REQUEST.as_bytes()),
        std::time::Instant::now(),
        None,
    )
    .unwrap();
    c.bench_function("cache key of a 4-message request with a tool", |b| {
        b.iter(|| key::key_for(black_box(&call), "mock/m0", "mock/m0", "key_bench").unwrap())
    });
    let exact = Exact::new(1 << 30);
    for i in 0u64..10_000 {
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&i.to_le_bytes());
        exact.insert(std::sync::Arc::new(Entry {
            hash,
            namespace: "key_bench".into(),
            label: "mock/m0".into(),
            format: WireFormat::Openai,
            stream: false,
            status: 200,
            body: bytes::Bytes::from(vec![b'x'; 600]),
            route: Default::default(),
            usage: Default::default(),
            cost_usd: None,
            created_ms: 0,
            expires_ms: i64::MAX,
            semantic: None,
        }));
    }
    let mut probe = [0u8; 32];
    probe[..8].copy_from_slice(&4242u64.to_le_bytes());
    c.bench_function("exact cache lookup among 10k entries", |b| {
        b.iter(|| exact.get(black_box(&probe), 1).0.is_some())
    });
}

criterion_group!(benches, codecs, routing, metrics, cache);
criterion_main!(benches);
