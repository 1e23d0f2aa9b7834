//! The admin API and /metrics over real sockets: the auth matrix (every
//! route in the route table refuses callers without an admin session or
//! key, and changes made with a session need its CSRF token and this
//! origin), sessions, a few routes end to end, and /metrics parsed by the
//! official Prometheus parser and checked against the traffic sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use omniroute::http::admin::routes;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::fake_upstream::FakeUpstream;
use support::{client, example_config, sdk_python, InProcess, CLIENT_KEY};

async fn start() -> (InProcess, FakeUpstream, String) {
    let up = FakeUpstream::start().await;
    // Here CLIENT_KEY is a plain client key (scope inference): the admin is the first-start key.
    let cfg = example_config(&up.base_url())
        .replace(
            r#"models = ["gpt-4o-mini"]"#,
            r#"models = ["gpt-4o-mini", "fail-500"]"#,
        )
        .replace(
            r#"api_keys = [{ key = "sk-test-123", scopes = ["admin"] }]"#,
            r#"api_keys = ["sk-test-123"]"#,
        );
    let gw = InProcess::start(&cfg).await;
    let admin = omniroute::ops::keys::ensure_bootstrap_key(&gw.gw)
        .await
        .unwrap()
        .unwrap()
        .key;
    (gw, up, admin)
}

/// `{param}` segments filled in, so every route can be called.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "nosuch" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

async fn login(gw: &InProcess, key: &str) -> (String, String) {
    let resp = client()
        .post(gw.url("/api/login"))
        .json(&json!({"key": key}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    (session, body["csrf_token"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn no_admin_route_answers_without_an_admin_and_changes_need_csrf() {
    let (gw, _up, admin) = start().await;
    let (session, csrf) = login(&gw, &admin).await;
    let http = client();
    let mut checked = 0;
    for r in routes() {
        let url = gw.url(&concrete(r.path));
        let method = Method::from_bytes(r.method.as_str().as_bytes()).unwrap();
        let changes = method_changes(&r.method);
        let send = |req: reqwest::RequestBuilder| async move {
            let req = if changes { req.json(&json!({})) } else { req };
            req.send().await.unwrap()
        };
        let what = format!("{} {}", r.method, r.path);
        // nobody
        let resp = send(http.request(method.clone(), &url)).await;
        assert_eq!(resp.status(), 401, "{what} without auth");
        let body: Value = resp.json().await.unwrap_or_default();
        assert!(body["error"]["message"].is_string(), "{what}: {body}");
        // a client key that is not the admin key
        let resp = send(http.request(method.clone(), &url).bearer_auth(CLIENT_KEY)).await;
        let expect = if r.path == "/api/session" { 401 } else { 403 };
        assert_eq!(resp.status(), expect, "{what} with a non-admin key");
        // a wrong key, a forged cookie
        let resp = send(
            http.request(method.clone(), &url)
                .bearer_auth("sk-omni-nope"),
        )
        .await;
        assert_eq!(resp.status(), 401, "{what} with a wrong key");
        let resp = send(
            http.request(method.clone(), &url)
                .header("cookie", "omniroute_session=forged"),
        )
        .await;
        assert_eq!(resp.status(), 401, "{what} with a forged session");
        if changes {
            let resp = send(
                http.request(method.clone(), &url)
                    .header("cookie", &session),
            )
            .await;
            assert_eq!(
                resp.status(),
                403,
                "{what} with a session but no CSRF token"
            );
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"]["code"], "csrf_token_invalid", "{what}");
            let resp = send(
                http.request(method.clone(), &url)
                    .header("cookie", &session)
                    .header("x-csrf-token", "0".repeat(64)),
            )
            .await;
            assert_eq!(resp.status(), 403, "{what} with a wrong CSRF token");
            let resp = send(
                http.request(method.clone(), &url)
                    .header("cookie", &session)
                    .header("x-csrf-token", &csrf)
                    .header("origin", "http://evil.example"),
            )
            .await;
            assert_eq!(resp.status(), 403, "{what} from another origin");
        }
        // the admin, by key and by session (+ CSRF): past the auth layer
        if r.path != "/api/session" {
            let resp = send(http.request(method.clone(), &url).bearer_auth(&admin)).await;
            assert!(
                ![401, 403].contains(&resp.status().as_u16()),
                "{what} as admin: {}",
                resp.status()
            );
        }
        checked += 1;
        if r.path == "/api/logout" {
            continue;
        }
        let resp = send(
            http.request(method.clone(), &url)
                .header("cookie", &session)
                .header("x-csrf-token", &csrf),
        )
        .await;
        assert!(
            ![401, 403].contains(&resp.status().as_u16()),
            "{what} with a session: {}",
            resp.status()
        );
    }
    // logging out ends the session
    let resp = http
        .post(gw.url("/api/logout"))
        .header("cookie", &session)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let again = http
        .get(gw.url("/api/overview"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401, "a logged-out session is refused");
    finish(gw, checked, &admin).await;
}

fn method_changes(m: &axum::http::Method) -> bool {
    !matches!(*m, axum::http::Method::GET | axum::http::Method::HEAD)
}

async fn finish(gw: InProcess, checked: usize, admin: &str) {
    assert_eq!(checked, routes().len());
    // logins: a wrong key, a client key, another origin
    let http = client();
    let post = |body: Value| http.post(gw.url("/api/login")).json(&body).send();
    assert_eq!(
        post(json!({"key": "sk-omni-nope"})).await.unwrap().status(),
        401
    );
    assert_eq!(
        post(json!({"key": CLIENT_KEY})).await.unwrap().status(),
        403
    );
    let resp = http
        .post(gw.url("/api/login"))
        .header("origin", "http://evil.example")
        .json(&json!({"key": admin}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // revoking the admin key ends its sessions
    let (session, csrf) = login(&gw, admin).await;
    let keys: Value = http
        .get(gw.url("/api/keys"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == "first-start")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = http
        .delete(gw.url(&format!("/api/keys/{id}")))
        .header("cookie", &session)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http
        .get(gw.url("/api/overview"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    gw.stop().await;
}

#[tokio::test]
async fn admin_routes_call_ops_end_to_end() {
    let (gw, up, admin) = start().await;
    let http = client();
    let call = |m: Method, path: &str, body: Option<Value>| {
        let mut req = http.request(m, gw.url(path)).bearer_auth(&admin);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap_or_default())
        }
    };
    // a combo: dry run, save, reorder, roll back, history
    let combo = |models: Value| json!({"combo": {"name": "team", "strategy": "priority", "models": models}, "dry_run": false});
    let (s, dry) = call(
        Method::PUT,
        "/api/combos/team",
        Some(json!({"combo": {"name": "team", "strategy": "priority", "models": ["mock/gpt-4o-mini"]}, "dry_run": true})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(dry["saved"], false);
    assert!(dry["diff"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d.as_str().unwrap().starts_with("models:")));
    let (s, _) = call(
        Method::PUT,
        "/api/combos/team",
        Some(combo(json!(["mock/fail-500", "mock/gpt-4o-mini"]))),
    )
    .await;
    assert_eq!(s, 200);
    let (s, saved) = call(
        Method::PUT,
        "/api/combos/team",
        Some(combo(json!(["mock/gpt-4o-mini", "mock/fail-500"]))),
    )
    .await;
    assert_eq!((s, saved["version"].as_i64()), (StatusCode::OK, Some(2)));
    let (s, wrong) = call(
        Method::PUT,
        "/api/combos/other",
        Some(combo(json!(["mock/gpt-4o-mini"]))),
    )
    .await;
    assert_eq!(s, 400, "{wrong}");
    let (_, history) = call(Method::GET, "/api/audit?entity=combo&entity_id=team", None).await;
    assert_eq!(history.as_array().unwrap().len(), 2);
    let (s, rolled) = call(Method::POST, "/api/combos/team/rollback", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        rolled["restored"]["models"],
        json!(["mock/fail-500", "mock/gpt-4o-mini"])
    );
    let models: Value = http
        .get(gw.url("/v1/models"))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(models["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == "team"));
    // traffic through the combo: the first target fails, the second answers
    let resp = http
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .json(&json!({"model": "team", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(up.calls("fail-500"), 1);
    gw.gw.store.flush().await.unwrap();
    let (s, page) = call(Method::GET, "/api/requests?model=team&status=ok", None).await;
    assert_eq!(s, 200);
    let r = &page["requests"][0];
    assert_eq!(r["requested_model"], "team");
    assert_eq!(r["route"]["combo"], "team");
    assert_eq!(r["route"]["attempts"], 2);
    assert!(
        r["route"]["failed"][0]
            .as_str()
            .unwrap()
            .contains("HTTP 500"),
        "{r}"
    );
    let (_, none) = call(Method::GET, "/api/requests?status=5xx&model=team", None).await;
    assert_eq!(none["requests"].as_array().unwrap().len(), 0);
    let (s, bad) = call(Method::GET, "/api/requests?status=teapot", None).await;
    assert_eq!(s, 400);
    assert!(bad["error"]["message"].as_str().unwrap().contains("5xx"));
    let (s, bad) = call(Method::GET, "/api/requests?limit=many", None).await;
    assert_eq!(s, 400, "{bad}");
    // keys: create (shown once), list without values, revoke
    let (s, created) = call(Method::POST, "/api/keys", Some(json!({"label": "ci"}))).await;
    assert_eq!(s, 200);
    let key = created["key"].as_str().unwrap().to_string();
    let (_, list) = call(Method::GET, "/api/keys", None).await;
    assert!(
        !list.to_string().contains(&key),
        "a key's value is never listed"
    );
    let (s, _) = call(
        Method::POST,
        "/api/keys",
        Some(json!({"label": "first-start"})),
    )
    .await;
    assert_eq!(s, 400, "the admin key's label is reserved");
    // accounts: a key added for a provider, then removed
    let (s, acc) = call(
        Method::POST,
        "/api/accounts",
        Some(json!({"provider": "mock", "label": "second", "api_key": "upstream-secret-2"})),
    )
    .await;
    assert_eq!(s, 200, "{acc}");
    assert!(!acc.to_string().contains("upstream-secret-2"));
    let (s, _) = call(
        Method::DELETE,
        &format!("/api/accounts/{}", acc["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        Method::POST,
        "/api/accounts",
        Some(json!({"provider": "mock", "bogus": 1})),
    )
    .await;
    assert_eq!(s, 400);
    // overview counts the request
    let (s, o) = call(Method::GET, "/api/overview?window=24h", None).await;
    assert_eq!(s, 200);
    assert_eq!(o["points"].as_array().unwrap().len(), 144);
    assert_eq!(o["totals"]["requests"], 1);
    let (s, _) = call(Method::GET, "/api/overview?window=1y", None).await;
    assert_eq!(s, 400);
    // the OpenAPI document served is the checked-in one
    let (_, doc) = call(Method::GET, "/api/openapi.json", None).await;
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(doc, file);
    // the dashboard page for browsers, the JSON line for everyone else
    let page = http
        .get(gw.url("/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    assert!(page.text().await.unwrap().contains("/assets/app.js"));
    let root: Value = http
        .get(gw.url("/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(root["name"], "omniroute");
    gw.stop().await;
}

fn parse_metrics(python: &str, text: &str) -> Vec<Value> {
    use std::io::Write;
    let mut child = std::process::Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/parse_metrics.py"
        ))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn value(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .filter(|s| s["name"] == name)
        .find(|s| labels.iter().all(|(k, v)| s["labels"][k] == *v))
        .and_then(|s| s["value"].as_f64())
}

#[tokio::test]
async fn metrics_match_the_traffic_sent() {
    let Some(python) = sdk_python() else { return };
    let (gw, _up, admin) = start().await;
    let http = client();
    let chat = |model: &str| {
        http.post(gw.url("/v1/chat/completions"))
            .bearer_auth(CLIENT_KEY)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    for _ in 0..7 {
        assert_eq!(chat("mock/gpt-4o-mini").await.unwrap().status(), 200);
    }
    let first = chat("mock/fail-500").await.unwrap().status();
    assert_eq!(first, 502);
    // 503 while the failed target cools down (a fraction of a second), else 502 again
    let second = chat("mock/fail-500").await.unwrap().status().as_u16();
    assert!([502, 503].contains(&second));
    let resp = http
        .put(gw.url("/api/budgets"))
        .bearer_auth(&admin)
        .json(&json!({"scope": "global", "period": "day", "limit_usd": 5.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        http.get(gw.url("/metrics")).send().await.unwrap().status(),
        401,
        "metrics need the admin"
    );
    let resp = http
        .get(gw.url("/metrics"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = resp.text().await.unwrap();
    let s = parse_metrics(&python, &text);
    let ok = [
        ("provider", "mock"),
        ("model", "gpt-4o-mini"),
        ("status", "200"),
        ("outcome", "ok"),
    ];
    assert_eq!(
        value(&s, "omniroute_requests_total", &ok),
        Some(7.0),
        "{text}"
    );
    let pm = [("provider", "mock"), ("model", "gpt-4o-mini")];
    for h in [
        "omniroute_request_duration_seconds_count",
        "omniroute_upstream_duration_seconds_count",
        "omniroute_overhead_duration_seconds_count",
    ] {
        assert_eq!(value(&s, h, &pm), Some(7.0), "{h}");
    }
    let inf = value(
        &s,
        "omniroute_request_duration_seconds_bucket",
        &[pm[0], pm[1], ("le", "+Inf")],
    );
    assert_eq!(inf, Some(7.0));
    let failed = [
        ("provider", "mock"),
        ("model", "fail-500"),
        ("status", "502"),
    ];
    let errors: f64 = s
        .iter()
        .filter(|x| x["name"] == "omniroute_request_errors_total")
        .filter(|x| x["labels"]["model"].as_str().unwrap().ends_with("fail-500"))
        .map(|x| x["value"].as_f64().unwrap())
        .sum();
    assert_eq!(errors, 2.0, "{text}");
    if second == 503 {
        // refused while cooling: it never reached a target
        assert_eq!(
            value(&s, "omniroute_request_errors_total", &failed),
            Some(1.0)
        );
        let refused = [
            ("provider", "none"),
            ("model", "mock/fail-500"),
            ("status", "503"),
        ];
        assert_eq!(
            value(&s, "omniroute_request_errors_total", &refused),
            Some(1.0)
        );
    }
    let tokens = value(
        &s,
        "omniroute_tokens_total",
        &[pm[0], pm[1], ("kind", "input")],
    )
    .unwrap();
    assert!(tokens > 0.0);
    assert_eq!(value(&s, "omniroute_cache_hits_total", &[]), Some(0.0));
    assert!(value(&s, "omniroute_store_writer_queue_depth", &[]).is_some());
    let breaker = s
        .iter()
        .find(|x| {
            x["name"] == "omniroute_breaker_state"
                && x["labels"]["target"]
                    .as_str()
                    .unwrap()
                    .ends_with("/fail-500")
                && x["value"] == 1.0
        })
        .unwrap();
    assert_eq!(
        breaker["labels"]["state"], "closed",
        "one failure does not open it"
    );
    assert!(s
        .iter()
        .any(|x| x["name"] == "omniroute_target_cooldown_seconds"
            && x["labels"]["target"]
                .as_str()
                .unwrap()
                .ends_with("/fail-500")));
    let budget = [("scope", "global"), ("scope_id", "*"), ("period", "day")];
    assert_eq!(value(&s, "omniroute_budget_limit_usd", &budget), Some(5.0));
    assert!(value(&s, "omniroute_budget_spend_usd", &budget).is_some());
    gw.stop().await;
}

#[test]
fn the_dashboard_knows_every_strategy() {
    let ts = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboard/src/strategies.ts"
    ))
    .unwrap();
    for k in omniroute::routing::strategy::StrategyKind::ALL {
        assert!(
            ts.contains(&format!("\"{}\"", k.as_str())),
            "{}",
            k.as_str()
        );
    }
}

/// A restarted gateway's charts start with the last day's traffic from the store.
#[tokio::test]
async fn charts_are_refilled_from_the_store_at_start() {
    use omniroute::gateway::{Gateway, Settings};
    let dir = tempfile::tempdir().unwrap();
    let now = omniroute::store::now_ms();
    let first = Gateway::open(Settings::with_data_dir(dir.path().to_path_buf()))
        .await
        .unwrap();
    for (i, outcome) in ["ok", "ok", "upstream_error"].iter().enumerate() {
        first.store.record_usage(omniroute::store::UsageEvent {
            ts_ms: now - 3 * 60_000 + i as i64,
            request_id: format!("r{i}"),
            endpoint: "chat.completions".into(),
            requested_model: "m".into(),
            status: 200,
            outcome: outcome.to_string(),
            latency_ms: 20.0,
            overhead_ms: Some(0.5),
            cost_usd: Some(0.25),
            ..Default::default()
        });
    }
    first.store.close().await.unwrap();
    let second = Gateway::open(Settings::with_data_dir(dir.path().to_path_buf()))
        .await
        .unwrap();
    assert_eq!(
        second
            .metrics
            .points(now, 60, 1)
            .iter()
            .map(|p| p.requests)
            .sum::<u64>(),
        0
    );
    assert_eq!(second.backfill_series(now).await.unwrap(), 3);
    let total = second.metrics.points(now, 1, 60).pop().unwrap();
    assert_eq!((total.requests, total.errors), (3, 1));
    assert!((total.cost_usd - 0.75).abs() < 1e-9);
    assert!(total.overhead_p50_ms.unwrap() >= 0.5);
    second.store.close().await.unwrap();
}
