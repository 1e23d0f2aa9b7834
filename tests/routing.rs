//! The routing core end to end: combos, fallback with cooldowns, half-open
//! probing, commit-after-first-chunk streams, budgets, rollback, explain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use omniroute::ops::{self, Actor};
use omniroute::routing::combo::{Combo, Step};
use omniroute::routing::strategy::StrategyKind;
use serde_json::{json, Value};
use support::fake_upstream::FakeUpstream;
use support::{client, example_config, InProcess, CLIENT_KEY};

fn with_combos(base: &str, extra: &str) -> String {
    format!("{}\n{extra}", example_config(base))
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

fn account_of(gw: &InProcess, provider: &str) -> String {
    gw.gw.registry().accounts(provider)[0].id.clone()
}

#[tokio::test]
async fn a_rate_limited_first_target_falls_back_and_stays_in_cooldown() {
    let up = FakeUpstream::start().await;
    let cfg = with_combos(
        &up.base_url(),
        "[[combos]]\nname = \"coding\"\nstrategy = \"priority\"\nmodels = [\"mock/fail-429\", \"mock/gpt-4o-mini\"]\n",
    );
    let gw = InProcess::start(&cfg).await;
    let r = post(&gw, chat("coding")).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["x-omniroute-model"], "gpt-4o-mini");
    assert_eq!(h["x-omniroute-attempts"], "2");
    assert_eq!(h["x-omniroute-combo"], "coding");
    assert_eq!(h["x-omniroute-strategy"], "priority");
    assert_eq!(h["x-omniroute-tier"], "api-key");
    assert!(h["x-omniroute-failed"]
        .to_str()
        .unwrap()
        .contains("HTTP 429"));
    assert_eq!((up.calls("fail-429"), up.calls("gpt-4o-mini")), (1, 1));
    // the first target is cooling down: the next request does not touch it
    let r = post(&gw, chat("coding")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-omniroute-attempts"], "1");
    assert!(r.headers()["x-omniroute-skipped"]
        .to_str()
        .unwrap()
        .contains("cooldown"));
    assert_eq!((up.calls("fail-429"), up.calls("gpt-4o-mini")), (1, 2));
    let plan = ops::explain::explain_route(
        &gw.gw,
        ops::explain::ExplainInput {
            model: "coding".into(),
            input_tokens: None,
            max_tokens: None,
            key_id: None,
            session: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(plan.targets.len(), 1);
    assert!(
        plan.skipped[0].reason.starts_with("cooldown for 6.")
            || plan.skipped[0].reason.starts_with("cooldown for 7"),
        "{:?}",
        plan.skipped
    );
    // combos are listed as models
    let models: Value = client()
        .get(gw.url("/v1/models"))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"coding") && ids.contains(&"auto"), "{ids:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_breaker_lets_exactly_one_probe_through() {
    let up = FakeUpstream::start().await;
    let cfg = with_combos(
        &up.base_url(),
        "[[combos]]\nname = \"probe\"\nmodels = [\"mock/slow\", \"mock/gpt-4o-mini\"]\n",
    );
    let gw = InProcess::start(&cfg).await;
    let key = format!("mock/{}/slow", account_of(&gw, "mock"));
    // open, with its cool-off already over: half-open
    gw.gw.routing.health.trip(&key, tokio::time::Instant::now());
    let mut all = Vec::new();
    for _ in 0..50 {
        let url = gw.url("/v1/chat/completions");
        all.push(tokio::spawn(async move {
            client()
                .post(url)
                .bearer_auth(CLIENT_KEY)
                .json(&chat("probe"))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for h in all {
        assert_eq!(h.await.unwrap(), 200);
    }
    assert_eq!(up.calls("slow"), 1, "exactly one probe");
    assert_eq!(up.calls("gpt-4o-mini"), 49);
    // the probe succeeded: the breaker is closed and the target is first again
    let r = post(&gw, chat("probe")).await;
    assert_eq!(r.headers()["x-omniroute-model"], "slow");
    gw.stop().await;
}

#[tokio::test]
async fn streams_fall_back_before_the_first_chunk_but_not_after() {
    let up = FakeUpstream::start().await;
    let cfg = with_combos(
        &up.base_url(),
        "[[combos]]\nname = \"early\"\nmodels = [\"mock/dead-stream\", \"mock/gpt-4o-mini\"]\n\
         [[combos]]\nname = \"late\"\nmodels = [\"mock/cut-stream\", \"mock/gpt-4o-mini\"]\n",
    );
    let gw = InProcess::start(&cfg).await;
    let mut body = chat("early");
    body["stream"] = json!(true);
    let r = post(&gw, body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-omniroute-attempts"], "2");
    let text = r.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(up.calls("dead-stream"), 1);

    let mut body = chat("late");
    body["stream"] = json!(true);
    let r = post(&gw, body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-omniroute-model"], "cut-stream");
    let text = r.text().await.unwrap();
    assert!(text.contains("\"content\":\"echo: hi[0]\""), "{text}");
    let last = text.split("\n\n").filter(|e| !e.is_empty()).last().unwrap();
    assert!(last.contains("\"error\""), "{text}");
    assert_eq!(
        up.calls("gpt-4o-mini"),
        1,
        "no fallback once the client has bytes"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_tiny_key_budget_skips_paid_tiers() {
    let up = FakeUpstream::start().await;
    // openai from the catalog (priced), pointed at the fake; and a free custom provider
    let cfg = format!(
        "{}\n[[providers]]\nid = \"openai\"\nbase_url = \"{u}\"\napi_key = \"k\"\n\
         [[providers]]\nid = \"freebie\"\nformat = \"openai\"\nbase_url = \"{u}\"\napi_key = \"k\"\ntier = \"free\"\nmodels = [\"gpt-4o-mini\"]\n\
         [[combos]]\nname = \"tiers\"\nmodels = [\"freebie/gpt-4o-mini\", \"openai/gpt-4o-mini\"]\n",
        example_config(&up.base_url()),
        u = up.base_url()
    );
    let gw = InProcess::start(&cfg).await;
    // tiers are walked in order: the paid api-key tier comes before free
    let r = post(&gw, chat("tiers")).await;
    assert_eq!(r.headers()["x-omniroute-provider"], "openai");
    let cost: f64 = r.headers()["x-omniroute-cost-usd"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(cost > 0.0);
    let key_id = ops::keys::list_keys(&gw.gw)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.source == "config")
        .unwrap()
        .id;
    ops::quota::set_budget(
        &gw.gw,
        ops::quota::SetBudgetInput {
            scope: omniroute::routing::budget::BudgetScope::Key,
            scope_id: Some(key_id.clone()),
            period: omniroute::routing::budget::Period::Day,
            limit_usd: Some(0.0001),
            limit_tokens: None,
        },
        Actor::Cli,
    )
    .await
    .unwrap();
    let r = post(&gw, chat("tiers")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-omniroute-provider"], "freebie");
    assert_eq!(r.headers()["x-omniroute-tier"], "free");
    assert!(
        r.headers()["x-omniroute-skipped"]
            .to_str()
            .unwrap()
            .contains("budget key:"),
        "{:?}",
        r.headers()
    );
    // a paid model alone is refused with a budget error
    let r = post(&gw, chat("openai/gpt-4o-mini")).await;
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "budget_exhausted");
    let q = ops::quota::check_quota(
        &gw.gw,
        Default::default(),
        &omniroute::access::Principal::operator(),
    )
    .await
    .unwrap();
    let b = q
        .budgets
        .iter()
        .find(|b| b.rule.scope_id == key_id)
        .unwrap();
    assert_eq!(b.rule.limit_usd, Some(0.0001));
    assert!(b.remaining_usd.unwrap() <= 0.0001);
    gw.stop().await;
}

#[tokio::test]
async fn upsert_validates_diffs_and_rollback_restores_exactly() {
    let up = FakeUpstream::start().await;
    let gw = InProcess::start(&example_config(&up.base_url())).await;
    let v1 = Combo {
        name: "coding".into(),
        strategy: StrategyKind::Weighted,
        models: vec![Step::Name("mock/a".into()), Step::Name("mock/b".into())],
        sticky: true,
        description: Some("first".into()),
        limits: Default::default(),
        fusion: None,
        summarizer_model: None,
        cache: None,
    };
    let up1 = |c: Combo, dry| {
        ops::combos::upsert_combo(
            &gw.gw,
            ops::combos::UpsertComboInput {
                combo: c,
                dry_run: dry,
            },
            Actor::Mcp,
        )
    };
    let r = up1(v1.clone(), false).await.unwrap();
    assert!(r.saved && r.created && r.version == 1);
    let mut v2 = v1.clone();
    v2.strategy = StrategyKind::P2c;
    v2.models.push(Step::Name("mock/c".into()));
    let dry = up1(v2.clone(), true).await.unwrap();
    assert!(!dry.saved);
    assert!(
        dry.diff
            .iter()
            .any(|d| d.starts_with("strategy: \"weighted\" -> \"p2c\"")),
        "{:?}",
        dry.diff
    );
    assert_eq!(
        ops::combos::get_combo(&gw.gw, "coding")
            .await
            .unwrap()
            .combo,
        v1,
        "dry run saved nothing"
    );
    up1(v2.clone(), false).await.unwrap();
    assert_eq!(
        ops::combos::get_combo(&gw.gw, "coding")
            .await
            .unwrap()
            .combo,
        v2
    );
    let back = ops::combos::rollback_combo(&gw.gw, "coding", Actor::Cli)
        .await
        .unwrap();
    assert_eq!(back.restored.as_ref(), Some(&v1));
    assert_eq!(
        ops::combos::get_combo(&gw.gw, "coding")
            .await
            .unwrap()
            .combo,
        v1
    );
    // bad combos are refused and leave nothing behind
    let mut cyc = v1.clone();
    cyc.name = "loop".into();
    cyc.models = vec![Step::Name("loop".into())];
    assert!(up1(cyc, false).await.is_err());
    let mut unknown = v1.clone();
    unknown.name = "ghost".into();
    unknown.models = vec![Step::Name("nosuch/model".into())];
    let err = up1(unknown, false).await.unwrap_err().to_string();
    assert!(err.contains("nosuch"), "{err}");
    assert!(ops::combos::get_combo(&gw.gw, "ghost").await.is_err());
    let audit = ops::audit::audit_log(
        &gw.gw,
        ops::audit::AuditQuery {
            entity: Some("combo".into()),
            limit: None,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(audit.len(), 3, "create, update, rollback");
    assert_eq!(audit[0].action, "rollback");
    gw.stop().await;
}

#[tokio::test]
async fn sticky_sessions_stay_on_their_target() {
    let up = FakeUpstream::start().await;
    let cfg = with_combos(
        &up.base_url(),
        "[[combos]]\nname = \"rr\"\nstrategy = \"round-robin\"\nsticky = true\nmodels = [\"mock/m1\", \"mock/m2\", \"mock/m3\"]\n",
    );
    let gw = InProcess::start(&cfg).await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let r = client()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(CLIENT_KEY)
            .header("x-session-id", "s-1")
            .json(&chat("rr"))
            .send()
            .await
            .unwrap();
        seen.push(
            r.headers()["x-omniroute-model"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    assert!(seen.iter().all(|m| m == &seen[0]), "{seen:?}");
    // without a session, round-robin moves on
    let mut other = std::collections::HashSet::new();
    for i in 0..3 {
        let r = post(
            &gw,
            json!({"model": "rr", "messages": [{"role": "user", "content": format!("q{i}")}]}),
        )
        .await;
        other.insert(
            r.headers()["x-omniroute-model"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(other.len(), 3, "{other:?}");
    gw.stop().await;
}

#[tokio::test]
async fn fusion_returns_the_first_good_answer() {
    let up = FakeUpstream::start().await;
    let cfg = with_combos(
        &up.base_url(),
        "[[combos]]\nname = \"fuse\"\nstrategy = \"fusion\"\nmodels = [\"mock/slow\", \"mock/gpt-4o-mini\"]\n",
    );
    let gw = InProcess::start(&cfg).await;
    let started = std::time::Instant::now();
    let r = post(&gw, chat("fuse")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-omniroute-model"], "gpt-4o-mini");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(290),
        "did not wait for the slow target"
    );
    assert_eq!(up.calls("slow"), 1, "both were asked in parallel");
    gw.stop().await;
}

#[tokio::test]
async fn breaker_state_survives_a_restart() {
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let settings = || {
        let mut s = omniroute::gateway::Settings::with_data_dir(dir.path().to_path_buf());
        s.port = 0;
        s
    };
    let gw = omniroute::gateway::Gateway::open(settings()).await.unwrap();
    let cfg = omniroute::config::FileConfig::parse(&example_config(&up.base_url())).unwrap();
    ops::apply::apply_config(&gw, &cfg).await.unwrap();
    let req = ops::route::RouteRequest {
        model: "mock/fail-500".into(),
        messages: vec![ops::route::ChatMessage {
            role: "user".into(),
            content: "x".into(),
        }],
        max_tokens: None,
        temperature: None,
    };
    assert!(ops::route::route_chat(&gw, req, None).await.is_err());
    let status = ops::explain::routing_status(&gw);
    let before = status
        .targets
        .iter()
        .find(|t| t.target.ends_with("/fail-500"))
        .unwrap();
    assert!(before.cooldown_s.is_some());
    assert_eq!(status.providers[0].provider, "mock");
    gw.store.close().await.unwrap();
    drop(gw);
    let again = omniroute::gateway::Gateway::open(settings()).await.unwrap();
    let after = ops::explain::routing_status(&again);
    let t = after
        .targets
        .iter()
        .find(|t| t.target.ends_with("/fail-500"))
        .expect("restored");
    assert!(t.cooldown_s.is_some(), "{t:?}");
    assert!(
        t.cooldown_reason
            .as_deref()
            .unwrap()
            .starts_with("transient"),
        "{t:?}"
    );
    again.store.close().await.unwrap();
}

#[tokio::test]
async fn context_relay_summarises_for_a_target_whose_window_is_too_small() {
    let up = FakeUpstream::start().await;
    // featherless (catalog) serves Llama-3.3-70B with a 32,768-token window.
    let cfg = format!(
        "{}\n[[providers]]\nid = \"featherless\"\nbase_url = \"{}\"\napi_key = \"f\"\n\n\
         [[combos]]\nname = \"relay\"\nstrategy = \"context-relay\"\nsummarizer_model = \"mock/gpt-4o-mini\"\n\
         models = [\"mock/fail-500\", \"featherless/meta-llama/Llama-3.3-70B-Instruct\"]\n",
        example_config(&up.base_url()),
        up.base_url()
    );
    let gw = InProcess::start(&cfg).await;
    let mut messages = vec![json!({"role": "system", "content": "You are a coding agent."})];
    for i in 0..6 {
        messages.push(json!({"role": "user", "content": format!("turn {i}: {}", "lorem ipsum ".repeat(2500))}));
        messages.push(json!({"role": "assistant", "content": format!("done with turn {i}")}));
    }
    messages.push(json!({"role": "user", "content": "latest question"}));
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .json(&json!({"model": "relay", "messages": messages}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let relay = r.headers()["x-omniroute-context-relay"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        relay.contains("summarised") && relay.contains("mock/gpt-4o-mini"),
        "{relay}"
    );
    assert_eq!(r.headers()["x-omniroute-provider"], "featherless");
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "echo: latest question"
    );
    // The summariser was asked, and the small target got summary + recent turns.
    assert_eq!(up.calls("gpt-4o-mini"), 1);
    let bodies = up.seen.bodies.lock().unwrap().clone();
    let sent = bodies
        .iter()
        .find(|b| b["model"] == "meta-llama/Llama-3.3-70B-Instruct")
        .unwrap();
    let sent_msgs = sent["messages"].as_array().unwrap();
    assert!(sent_msgs.len() < 14, "{}", sent_msgs.len());
    assert_eq!(sent_msgs[0]["content"], "You are a coding agent.");
    assert!(sent_msgs[1]["content"]
        .as_str()
        .unwrap()
        .starts_with("[Summary of the earlier conversation"));
    assert_eq!(sent_msgs.last().unwrap()["content"], "latest question");
    gw.stop().await;
}

async fn explain(gw: &InProcess, model: &str) -> ops::explain::RouteExplanation {
    ops::explain::explain_route(
        &gw.gw,
        ops::explain::ExplainInput {
            model: model.into(),
            input_tokens: None,
            max_tokens: None,
            key_id: None,
            session: None,
        },
    )
    .await
    .unwrap()
}

/// Anthropic upstreams say how much is left and when it resets in
/// `anthropic-ratelimit-*` headers with RFC 3339 times: 0 remaining rests
/// the account until that time, and the reset-aware strategies order by it.
#[tokio::test]
async fn anthropic_rate_limit_resets_rest_the_account_and_order_reset_strategies() {
    let up = FakeUpstream::start().await;
    let native = up.native_base_url();
    let provider = |id: &str, model: &str| {
        format!(
            "\n[[providers]]\nid = \"{id}\"\nformat = \"anthropic\"\nbase_url = \"{native}\"\napi_key = \"{id}-secret\"\ntier = \"api-key\"\nmodels = [\"{model}\"]\n"
        )
    };
    let combo = |name: &str, strategy: &str, models: &str| {
        format!("\n[[combos]]\nname = \"{name}\"\nstrategy = \"{strategy}\"\nmodels = [{models}]\n")
    };
    // a: 40 of 50 left for an hour; b: 10 of 50 left, reset in a minute.
    let pair = r#""claude-a/ratelimit-40-3600", "claude-b/ratelimit-10-60""#;
    let extra = [
        provider("claude-a", "ratelimit-40-3600"),
        provider("claude-b", "ratelimit-10-60"),
        provider("claude-c", "ratelimit-0-30"),
        combo("soonest", "reset-window", pair),
        combo("spend", "reset-aware", pair),
        combo("roomiest", "headroom", pair),
        combo(
            "rest",
            "priority",
            r#""claude-c/ratelimit-0-30", "mock/gpt-4o-mini""#,
        ),
    ]
    .concat();
    let gw = InProcess::start(&with_combos(&up.base_url(), &extra)).await;
    for model in [
        "claude-a/ratelimit-40-3600",
        "claude-b/ratelimit-10-60",
        "claude-c/ratelimit-0-30",
    ] {
        let r = post(&gw, chat(model)).await;
        assert_eq!(r.status(), 200, "{model}");
    }
    let first = |e: &ops::explain::RouteExplanation| e.targets[0].provider.clone();
    // The one that resets in a minute goes first, though listed second...
    assert_eq!(first(&explain(&gw, "soonest").await), "claude-b");
    // ...and 20 % for a minute is worth spending before 80 % for an hour...
    assert_eq!(first(&explain(&gw, "spend").await), "claude-b");
    // ...while headroom alone prefers the most left.
    assert_eq!(first(&explain(&gw, "roomiest").await), "claude-a");
    let accounts = gw.gw.routing.health.account_reports();
    let b = accounts
        .iter()
        .find(|a| a.account == account_of(&gw, "claude-b"))
        .unwrap();
    let reset = b.quota_reset_s.unwrap();
    assert!(reset > 50.0 && reset <= 60.0, "{reset}");

    // 0 remaining until a reset 30 s away: the account rests until then.
    let plan = explain(&gw, "rest").await;
    assert_eq!(plan.targets.len(), 1, "{:?}", plan.targets);
    assert_eq!(plan.targets[0].provider, "mock");
    let why = &plan.skipped[0];
    assert!(why.target.starts_with("claude-c/"), "{why:?}");
    assert!(why.reason.contains("0 remaining"), "{why:?}");
    let wait = why.wait_s.unwrap();
    assert!(wait > 25.0 && wait <= 30.0, "{wait}");
    let r = post(&gw, chat("rest")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-omniroute-provider"], "mock");
    assert_eq!(r.headers()["x-omniroute-attempts"], "1");
    assert_eq!(up.calls("ratelimit-0-30"), 1);
    gw.stop().await;
}
