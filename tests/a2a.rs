//! The A2A surface over HTTP: the card, every method in both protocol
//! versions, every error code, streaming order and termination, key
//! isolation, and tasks surviving a restart of the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::fake_upstream::FakeUpstream;
use support::{client, example_config, Binary, InProcess, CLIENT_KEY};

const OTHER_KEY: &str = "sk-other-456";

fn config(base_url: &str) -> String {
    example_config(base_url).replace(
        r#"api_keys = [{ key = "sk-test-123", scopes = ["admin"] }]"#,
        r#"api_keys = [{ key = "sk-test-123", scopes = ["admin"] }, { key = "sk-other-456", scopes = ["admin"] }]"#,
    )
}

async fn setup() -> (FakeUpstream, InProcess) {
    let up = FakeUpstream::start().await;
    let gw = InProcess::start(&config(&up.base_url())).await;
    (up, gw)
}

async fn rpc_as(base: &str, key: &str, version: Option<&str>, body: Value) -> Value {
    let mut req = client()
        .post(format!("{base}/a2a"))
        .bearer_auth(key)
        .json(&body);
    if let Some(v) = version {
        req = req.header("A2A-Version", v);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn rpc(gw: &InProcess, method: &str, params: Value) -> Value {
    let version = if method.contains('/') { "0.3" } else { "1.0" };
    rpc_as(
        &gw.base,
        CLIENT_KEY,
        Some(version),
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
    )
    .await
}

fn code(v: &Value) -> i64 {
    v["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected an error: {v}"))
}

/// The SSE `data:` payloads of a finished stream.
async fn stream_as(base: &str, key: &str, method: &str, params: Value) -> Vec<Value> {
    let version = if method.contains('/') { "0.3" } else { "1.0" };
    let resp = client()
        .post(format!("{base}/a2a"))
        .bearer_auth(key)
        .header("A2A-Version", version)
        .json(&json!({"jsonrpc": "2.0", "id": "s", "method": method, "params": params}))
        .send()
        .await
        .unwrap();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    let text = tokio::time::timeout(Duration::from_secs(20), resp.text())
        .await
        .expect("the stream did not end")
        .unwrap();
    if !ct.starts_with("text/event-stream") {
        return vec![serde_json::from_str(&text).unwrap()];
    }
    text.split("\n\n")
        .filter_map(|frame| {
            let data: String = frame
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            (!data.is_empty()).then(|| serde_json::from_str(&data).unwrap())
        })
        .collect()
}

fn v1_message(text: &str, skill: Option<&str>, extra_parts: Vec<Value>) -> Value {
    let mut parts = vec![json!({"text": text})];
    parts.extend(extra_parts);
    let mut m = json!({"messageId": uuid(), "role": "ROLE_USER", "parts": parts});
    if let Some(s) = skill {
        m["metadata"] = json!({"skill": s});
    }
    m
}

fn uuid() -> String {
    omniroute::ops::tasks::new_id()
}

#[tokio::test]
async fn the_card_is_public_at_both_paths_and_serves_both_versions() {
    let (_up, gw) = setup().await;
    for path in ["/.well-known/agent-card.json", "/.well-known/agent.json"] {
        let resp = client().get(gw.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert!(resp.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age"));
        assert!(resp.headers().contains_key("etag"));
        let card: Value = resp.json().await.unwrap();
        let url = gw.url("/a2a");
        if path.ends_with("agent.json") {
            // 0.3 clients' path: the 0.3 card.
            assert_eq!(card["url"], url.as_str());
            assert_eq!(card["protocolVersion"], "0.3.0");
            assert!(card.get("supportedInterfaces").is_none());
        } else {
            assert!(card.get("url").is_none() && card.get("protocolVersion").is_none());
            assert_eq!(card["supportedInterfaces"][0]["url"], url.as_str());
            assert_eq!(card["supportedInterfaces"][0]["protocolVersion"], "1.0");
            assert_eq!(card["supportedInterfaces"][1]["protocolVersion"], "0.3");
        }
        assert_eq!(card["capabilities"]["streaming"], true);
        let ids: Vec<&str> = card["skills"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "quota-management",
                "combo-management",
                "health",
                "smart-routing",
                "cost-analysis"
            ]
        );
    }
    // The RPC endpoint itself needs the key.
    let resp = client()
        .post(gw.url("/a2a"))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn the_readme_quick_start_request_works_verbatim() {
    let (_up, gw) = setup().await;
    // Exactly the README's body, no A2A-Version header.
    let body = r#"{"jsonrpc":"2.0","id":"quickstart","method":"message/send","params":{"skill":"quota-management","messages":[{"role":"user","content":"Give me a short quota summary."}]}}"#;
    let resp = client()
        .post(gw.url("/a2a"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {CLIENT_KEY}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["id"], "quickstart");
    let task = &v["result"];
    assert_eq!(task["kind"], "task", "{v}");
    assert_eq!(task["status"]["state"], "completed");
    let art = &task["artifacts"][0];
    assert_eq!(art["name"], "quota-summary");
    let text = art["parts"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("Quota summary by tier"), "{text}");
    assert!(
        text.contains("api-key: 1/1 accounts available, $0.0000 spent today"),
        "{text}"
    );
    assert!(text.contains("(mock config, api-key): available"), "{text}");
    assert_eq!(art["parts"][1]["kind"], "data");
    assert_eq!(art["parts"][1]["data"]["accounts"][0]["provider"], "mock");
    // The user's message is in the history, in 0.3 shape.
    assert_eq!(task["history"][0]["role"], "user");
    assert_eq!(task["history"][0]["parts"][0]["kind"], "text");
}

#[tokio::test]
async fn v1_send_get_with_history_length_and_list() {
    let (_up, gw) = setup().await;
    let ctx = uuid();
    let mut msg = v1_message("Is the gateway healthy?", None, vec![]);
    msg["contextId"] = json!(ctx);
    let v = rpc(&gw, "SendMessage", json!({"message": msg})).await;
    let task = &v["result"]["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{v}");
    assert_eq!(task["contextId"], ctx.as_str());
    assert_eq!(task["metadata"]["skill"], "health");
    assert_eq!(task["artifacts"][0]["parts"][1]["data"]["status"], "ok");
    // The router's live state travels with it (breakers, cooldowns per target).
    assert!(task["artifacts"][0]["parts"][1]["data"]["routing"]["targets"].is_array());
    assert_eq!(task["history"][1]["role"], "ROLE_AGENT");
    let id = task["id"].as_str().unwrap().to_string();

    let g = rpc(&gw, "GetTask", json!({"id": id, "historyLength": 1})).await;
    assert_eq!(g["result"]["history"].as_array().unwrap().len(), 1);
    assert_eq!(g["result"]["history"][0]["role"], "ROLE_AGENT");
    let g = rpc(&gw, "GetTask", json!({"id": id, "historyLength": 0})).await;
    assert!(g["result"].get("history").is_none(), "{g}");
    let g = rpc(&gw, "tasks/get", json!({"id": id})).await;
    assert_eq!(g["result"]["kind"], "task");
    assert_eq!(g["result"]["status"]["state"], "completed");
    assert_eq!(g["result"]["history"].as_array().unwrap().len(), 2);

    // A second task in the same context, one in another.
    let mut msg = v1_message("health", Some("health"), vec![]);
    msg["contextId"] = json!(ctx);
    rpc(&gw, "SendMessage", json!({"message": msg})).await;
    rpc(
        &gw,
        "SendMessage",
        json!({"message": v1_message("health", Some("health"), vec![])}),
    )
    .await;
    let l = rpc(&gw, "ListTasks", json!({"contextId": ctx, "pageSize": 1})).await;
    let r = &l["result"];
    assert_eq!(r["totalSize"], 2, "{l}");
    assert_eq!(r["pageSize"], 1);
    assert_eq!(r["tasks"].as_array().unwrap().len(), 1);
    assert!(r["tasks"][0].get("artifacts").is_none());
    let token = r["nextPageToken"].as_str().unwrap();
    assert!(!token.is_empty());
    let l2 = rpc(
        &gw,
        "ListTasks",
        json!({"contextId": ctx, "pageSize": 1, "pageToken": token, "includeArtifacts": true}),
    )
    .await;
    assert_eq!(l2["result"]["nextPageToken"], "");
    assert_eq!(l2["result"]["tasks"][0]["id"], id.as_str());
    assert!(l2["result"]["tasks"][0]["artifacts"].is_array());
    let all = rpc(&gw, "ListTasks", json!({"status": "TASK_STATE_COMPLETED"})).await;
    assert_eq!(all["result"]["totalSize"], 3);
    // The extended card is the card.
    let c = rpc(&gw, "GetExtendedAgentCard", json!({})).await;
    assert_eq!(c["result"]["name"], "omniroute");
    let c = rpc(&gw, "agent/getAuthenticatedExtendedCard", json!({})).await;
    assert_eq!(c["result"]["skills"].as_array().unwrap().len(), 5);
}

fn kinds_v1(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let r = &e["result"];
            if r.get("task").is_some() {
                "task".into()
            } else if let Some(s) = r.get("statusUpdate") {
                format!("status:{}", s["status"]["state"].as_str().unwrap())
            } else if let Some(a) = r.get("artifactUpdate") {
                format!("artifact:append={}:last={}", a["append"], a["lastChunk"])
            } else {
                panic!("unexpected event {e}")
            }
        })
        .collect()
}

#[tokio::test]
async fn streaming_send_orders_events_and_ends_after_the_final_status() {
    let (_up, gw) = setup().await;
    let msg = v1_message(
        "count to ten",
        Some("smart-routing"),
        vec![json!({
        "data": {"model": "mock/slow-stream"}, "mediaType": "application/json"})],
    );
    let events = stream_as(
        &gw.base,
        CLIENT_KEY,
        "SendStreamingMessage",
        json!({"message": msg}),
    )
    .await;
    let kinds = kinds_v1(&events);
    assert_eq!(kinds[0], "task");
    assert_eq!(kinds[1], "status:TASK_STATE_WORKING");
    assert_eq!(kinds[2], "artifact:append=false:last=false");
    assert_eq!(kinds.last().unwrap(), "status:TASK_STATE_COMPLETED");
    let chunks: Vec<_> = kinds.iter().filter(|k| k.starts_with("artifact")).collect();
    assert!(chunks.len() >= 3, "{kinds:?}");
    assert_eq!(
        chunks.last().unwrap().as_str(),
        "artifact:append=true:last=true"
    );
    assert!(chunks[1..chunks.len() - 1]
        .iter()
        .all(|k| k.as_str() == "artifact:append=true:last=false"));
    // Every event carries the request id and one task id.
    let id = events[0]["result"]["task"]["id"].as_str().unwrap();
    assert!(events.iter().all(|e| e["id"] == "s"));
    assert!(events[1..].iter().all(|e| {
        let r = e["result"].as_object().unwrap().values().next().unwrap();
        r["taskId"] == id
    }));
    // The stored task has the whole text in one part and the route.
    let t = rpc(&gw, "GetTask", json!({"id": id})).await;
    let parts = &t["result"]["artifacts"][0]["parts"];
    let streamed: String = events
        .iter()
        .filter_map(|e| e["result"]["artifactUpdate"]["artifact"]["parts"][0]["text"].as_str())
        .collect();
    assert_eq!(parts[0]["text"].as_str().unwrap(), streamed);
    assert!(!streamed.is_empty());
    assert_eq!(parts[1]["data"]["route"]["provider"], "mock");

    // 0.3: kinds on every object, `final` only on the last status update.
    let msg03 = json!({"kind": "message", "messageId": uuid(), "role": "user",
        "parts": [{"kind": "text", "text": "hi"}], "metadata": {"skill": "smart-routing", "model": "mock/slow-stream"}});
    let events = stream_as(
        &gw.base,
        CLIENT_KEY,
        "message/stream",
        json!({"message": msg03}),
    )
    .await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["result"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[0], "task");
    assert_eq!(kinds[1], "status-update");
    assert_eq!(*kinds.last().unwrap(), "status-update");
    assert!(kinds.contains(&"artifact-update"));
    let last = &events.last().unwrap()["result"];
    assert_eq!(last["final"], true);
    assert_eq!(last["status"]["state"], "completed");
    assert_eq!(events[1]["result"]["final"], false);
}

#[tokio::test]
async fn cancel_subscribe_and_their_errors() {
    let (_up, gw) = setup().await;
    // A task that would hang on its upstream, sent without waiting.
    let msg = v1_message(
        "wait forever",
        Some("smart-routing"),
        vec![json!({"data": {"model": "mock/hang"}})],
    );
    let v = rpc(
        &gw,
        "SendMessage",
        json!({"message": msg, "configuration": {"returnImmediately": true}}),
    )
    .await;
    let task = &v["result"]["task"];
    let state = task["status"]["state"].as_str().unwrap();
    assert!(
        ["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING"].contains(&state),
        "{v}"
    );
    let id = task["id"].as_str().unwrap().to_string();

    // Subscribing sees the task, then the cancellation ends the stream.
    let sub = tokio::spawn({
        let base = gw.base.clone();
        let id = id.clone();
        async move { stream_as(&base, CLIENT_KEY, "SubscribeToTask", json!({"id": id})).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let c = rpc(&gw, "CancelTask", json!({"id": id})).await;
    assert_eq!(c["result"]["status"]["state"], "TASK_STATE_CANCELED", "{c}");
    let events = sub.await.unwrap();
    assert!(events[0]["result"]["task"].is_object(), "{events:?}");
    assert_eq!(
        events.last().unwrap()["result"]["statusUpdate"]["status"]["state"],
        "TASK_STATE_CANCELED"
    );

    assert_eq!(
        code(&rpc(&gw, "CancelTask", json!({"id": id})).await),
        -32002
    );
    assert_eq!(
        code(&rpc(&gw, "tasks/cancel", json!({"id": id})).await),
        -32002
    );
    assert_eq!(
        code(&rpc(&gw, "SubscribeToTask", json!({"id": id})).await),
        -32004
    );
    assert_eq!(
        code(&rpc(&gw, "tasks/resubscribe", json!({"id": id})).await),
        -32004
    );
    assert_eq!(
        code(&rpc(&gw, "tasks/cancel", json!({"id": "nope"})).await),
        -32001
    );
    // A message to a finished task is refused.
    let mut m = v1_message("again", None, vec![]);
    m["taskId"] = json!(id);
    assert_eq!(
        code(&rpc(&gw, "SendMessage", json!({"message": m})).await),
        -32004
    );
    let mut m = v1_message("again", None, vec![]);
    m["taskId"] = json!("no-such-task");
    assert_eq!(
        code(&rpc(&gw, "SendMessage", json!({"message": m})).await),
        -32001
    );

    // 0.3: resubscribe to a running task; the cancel ends it with final: true.
    let msg = json!({"messageId": uuid(), "role": "user", "parts": [{"kind": "text", "text": "go"}],
        "metadata": {"skill": "smart-routing", "model": "mock/hang"}});
    let v = rpc(
        &gw,
        "message/send",
        json!({"message": msg, "configuration": {"blocking": false}}),
    )
    .await;
    let id = v["result"]["id"].as_str().unwrap().to_string();
    let sub = tokio::spawn({
        let base = gw.base.clone();
        let id = id.clone();
        async move { stream_as(&base, CLIENT_KEY, "tasks/resubscribe", json!({"id": id})).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let c = rpc(&gw, "tasks/cancel", json!({"id": id})).await;
    assert_eq!(c["result"]["status"]["state"], "canceled", "{c}");
    let events = sub.await.unwrap();
    assert_eq!(events[0]["result"]["kind"], "task", "{events:?}");
    let last = &events.last().unwrap()["result"];
    assert_eq!(
        (last["kind"].as_str(), last["final"].as_bool()),
        (Some("status-update"), Some(true))
    );
    assert_eq!(last["status"]["state"], "canceled");
}

#[tokio::test]
async fn every_error_code() {
    let (_up, gw) = setup().await;
    let raw = |body: &'static str, version: Option<&'static str>| {
        let base = gw.base.clone();
        async move {
            let mut r = client()
                .post(format!("{base}/a2a"))
                .bearer_auth(CLIENT_KEY)
                .header("content-type", "application/json")
                .body(body);
            if let Some(v) = version {
                r = r.header("A2A-Version", v);
            }
            let resp = r.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()
        }
    };
    assert_eq!(code(&raw("{not json", None).await), -32700);
    assert_eq!(code(&raw("[]", None).await), -32600);
    // Without an id nothing runs; the most specific error is given.
    assert_eq!(
        code(
            &raw(
                r#"{"jsonrpc":"2.0","method":"GetTask","params":{"id":"t"}}"#,
                None
            )
            .await
        ),
        -32600
    );
    assert_eq!(
        code(&raw(r#"{"jsonrpc":"2.0","method":"GetTask"}"#, None).await),
        -32602
    );
    assert_eq!(
        code(&raw(r#"{"jsonrpc":"2.0","method":"Nope"}"#, None).await),
        -32601
    );
    let v = raw(r#"{"jsonrpc":"2.0","id":3,"method":"tasks/list"}"#, None).await;
    assert_eq!((code(&v), v["id"].clone()), (-32601, json!(3)));
    let v = raw(
        r#"{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"x"}}"#,
        Some("2.0"),
    )
    .await;
    assert_eq!(code(&v), -32009);
    assert_eq!(v["error"]["data"][0]["reason"], "VERSION_NOT_SUPPORTED");

    // Invalid params: no message, unknown skill (listing the skills), bad data part.
    assert_eq!(code(&rpc(&gw, "SendMessage", json!({})).await), -32602);
    let v = rpc(
        &gw,
        "SendMessage",
        json!({"message": v1_message("hi", Some("nope"), vec![])}),
    )
    .await;
    assert_eq!(code(&v), -32602);
    let msg = v["error"]["message"].as_str().unwrap();
    for s in [
        "quota-management",
        "combo-management",
        "health",
        "smart-routing",
        "cost-analysis",
    ] {
        assert!(msg.contains(s), "{msg}");
    }
    let bad = v1_message(
        "x",
        Some("combo-management"),
        vec![json!({"data": {"action": "explode"}})],
    );
    assert_eq!(
        code(&rpc(&gw, "SendMessage", json!({"message": bad})).await),
        -32602
    );
    assert_eq!(
        code(&rpc(&gw, "ListTasks", json!({"pageSize": 1000})).await),
        -32602
    );
    assert_eq!(code(&rpc(&gw, "GetTask", json!({})).await), -32602);

    assert_eq!(
        code(&rpc(&gw, "GetTask", json!({"id": "missing"})).await),
        -32001
    );
    for m in [
        "CreateTaskPushNotificationConfig",
        "GetTaskPushNotificationConfig",
        "ListTaskPushNotificationConfigs",
        "DeleteTaskPushNotificationConfig",
        "tasks/pushNotificationConfig/set",
        "tasks/pushNotificationConfig/get",
        "tasks/pushNotificationConfig/list",
        "tasks/pushNotificationConfig/delete",
    ] {
        assert_eq!(
            code(&rpc(&gw, m, json!({"taskId": "t"})).await),
            -32003,
            "{m}"
        );
    }
    let file = json!({"message": {"messageId": "m", "role": "ROLE_USER",
        "parts": [{"url": "https://example.com/a.png", "mediaType": "image/png"}]}});
    assert_eq!(code(&rpc(&gw, "SendMessage", file).await), -32005);
    let modes = json!({"message": v1_message("health", None, vec![]),
        "configuration": {"acceptedOutputModes": ["audio/wav"]}});
    assert_eq!(code(&rpc(&gw, "SendMessage", modes).await), -32005);

    // Bodies are bounded.
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{{"pad":"{}"}}}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let resp = client()
        .post(gw.url("/a2a"))
        .bearer_auth(CLIENT_KEY)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(code(&v), -32600);
}

#[tokio::test]
async fn a_task_belongs_to_the_key_that_created_it() {
    let (_up, gw) = setup().await;
    let v = rpc(
        &gw,
        "SendMessage",
        json!({"message": v1_message("health", Some("health"), vec![])}),
    )
    .await;
    let id = v["result"]["task"]["id"].as_str().unwrap().to_string();
    let as_other = |method: &'static str, params: Value| {
        let base = gw.base.clone();
        async move {
            rpc_as(
                &base,
                OTHER_KEY,
                Some("1.0"),
                json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
            )
            .await
        }
    };
    assert_eq!(code(&as_other("GetTask", json!({"id": id})).await), -32001);
    assert_eq!(
        code(&as_other("CancelTask", json!({"id": id})).await),
        -32001
    );
    assert_eq!(
        code(&as_other("SubscribeToTask", json!({"id": id})).await),
        -32001
    );
    let mut m = v1_message("more", None, vec![]);
    m["taskId"] = json!(id);
    assert_eq!(
        code(&as_other("SendMessage", json!({"message": m})).await),
        -32001
    );
    assert_eq!(
        as_other("ListTasks", json!({})).await["result"]["totalSize"],
        0
    );
    assert_eq!(
        rpc(&gw, "ListTasks", json!({})).await["result"]["totalSize"],
        1
    );
}

#[tokio::test]
async fn skills_answer_through_the_operations_layer() {
    let (_up, gw) = setup().await;
    // Spend something first, through the proxy; the same deterministic
    // request again is answered by the cache.
    for _ in 0..2 {
        let resp = client()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(CLIENT_KEY)
            .json(&json!({"model": "mock/gpt-4o-mini", "temperature": 0,
                "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    gw.gw.store.flush().await.unwrap();

    // cost-analysis from plain text.
    let v = rpc(
        &gw,
        "SendMessage",
        json!({"message": v1_message("How much did we spend in the last 7 days?", None, vec![])}),
    )
    .await;
    let t = &v["result"]["task"];
    assert_eq!(t["metadata"]["skill"], "cost-analysis", "{v}");
    assert_eq!(t["status"]["state"], "TASK_STATE_COMPLETED");
    let data = &t["artifacts"][0]["parts"][1]["data"];
    assert_eq!(data["since"], "7d");
    assert_eq!(data["total_requests"], 1);
    assert_eq!(data["by_provider"][0]["group"], "mock");
    assert_eq!(data["by_key"].as_array().unwrap().len(), 1);
    assert_eq!(data["cache"]["totals"]["hits"], 1, "{data}");
    assert_eq!(data["cache"]["totals"]["misses"], 1);
    assert_eq!(data["cache"]["totals"]["tokens_saved"], 18);
    let text = t["artifacts"][0]["parts"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("The cache answered 1 of 2"), "{text}");

    // smart-routing, blocking: the answer, the route and its cost.
    let msg = v1_message(
        "say hi",
        Some("smart-routing"),
        vec![json!({"data": {"model": "mock/gpt-4o-mini"}})],
    );
    let v = rpc(&gw, "SendMessage", json!({"message": msg})).await;
    let t = &v["result"]["task"];
    assert_eq!(t["status"]["state"], "TASK_STATE_COMPLETED", "{v}");
    let parts = &t["artifacts"][0]["parts"];
    assert!(!parts[0]["text"].as_str().unwrap().is_empty());
    assert_eq!(parts[1]["data"]["route"]["model"], "gpt-4o-mini");
    assert!(parts[1]["data"].get("cost_usd").is_some());

    // A failing upstream fails the task, not the request.
    let msg = v1_message(
        "x",
        Some("smart-routing"),
        vec![json!({"data": {"model": "mock/fail-400"}})],
    );
    let v = rpc(&gw, "SendMessage", json!({"message": msg})).await;
    assert_eq!(
        v["result"]["task"]["status"]["state"], "TASK_STATE_FAILED",
        "{v}"
    );

    // combo-management: plain text edits a combo through the ops layer.
    let create = json!({"message": {"messageId": "c0", "role": "user", "parts": [{"kind": "data", "data":
        {"skill": "combo-management", "action": "create", "name": "coding", "strategy": "priority", "targets": ["mock/a", "mock/b"]}}]}});
    let v = rpc(&gw, "message/send", create).await;
    assert_eq!(v["result"]["status"]["state"], "completed", "{v}");
    let v = rpc(
        &gw,
        "message/send",
        json!({"message": {"messageId": "c1", "role": "user",
        "parts": [{"kind": "text", "text": "use p2c for coding"}]}}),
    )
    .await;
    let t = &v["result"];
    assert_eq!(t["status"]["state"], "completed", "{v}");
    let text = t["artifacts"][0]["parts"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("coding now uses p2c (was priority)"),
        "{text}"
    );
    let stored = omniroute::ops::combos::get_combo(&gw.gw, "coding")
        .await
        .unwrap();
    assert_eq!(stored.combo.strategy.as_str(), "p2c");
    let v = rpc(
        &gw,
        "message/send",
        json!({"message": {"messageId": "c2", "role": "user", "metadata": {"skill": "combo-management"},
        "parts": [{"kind": "text", "text": "roll back coding"}]}}),
    )
    .await;
    assert_eq!(v["result"]["status"]["state"], "completed", "{v}");
    assert_eq!(
        omniroute::ops::combos::get_combo(&gw.gw, "coding")
            .await
            .unwrap()
            .combo
            .strategy
            .as_str(),
        "priority"
    );

    // quota-management: a provider budget is one budget per account of it.
    let msg = json!({"messageId": "q1", "role": "ROLE_USER", "parts": [{"data":
        {"skill": "quota-management", "action": "set-budget", "budget_usd": 20, "provider": "mock"}}]});
    let v = rpc(&gw, "SendMessage", json!({"message": msg})).await;
    assert_eq!(
        v["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED",
        "{v}"
    );
    let q = omniroute::ops::quota::check_quota(
        &gw.gw,
        Default::default(),
        &omniroute::access::Principal::operator(),
    )
    .await
    .unwrap();
    assert_eq!(q.budgets.len(), 1);
    assert_eq!(q.budgets[0].rule.limit_usd, Some(20.0));
    assert_eq!(v["result"]["task"]["metadata"]["skill"], "quota-management");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_survive_a_restart_of_the_real_binary() {
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gateway.toml");
    std::fs::write(&cfg, config(&up.base_url())).unwrap();
    let data = dir.path().join("data");
    let args = ["--config", cfg.to_str().unwrap()];
    let send = |base: String, msg: Value, conf: Value| async move {
        rpc_as(&base, CLIENT_KEY, Some("1.0"),
            json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": msg, "configuration": conf}})).await
    };
    let (done_id, stuck_id) = {
        let mut gw = Binary::start(&data, &args);
        let v = send(
            gw.base.clone(),
            v1_message("health", Some("health"), vec![]),
            json!({}),
        )
        .await;
        let done = v["result"]["task"]["id"].as_str().unwrap().to_string();
        let hang = v1_message(
            "hang",
            Some("smart-routing"),
            vec![json!({"data": {"model": "mock/hang"}})],
        );
        let v = send(gw.base.clone(), hang, json!({"returnImmediately": true})).await;
        let stuck = v["result"]["task"]["id"].as_str().unwrap().to_string();
        tokio::time::sleep(Duration::from_millis(200)).await;
        gw.signal("KILL");
        gw.wait(Duration::from_secs(10));
        (done, stuck)
    };
    let gw = Binary::start(&data, &args);
    let get = |id: String| {
        let base = gw.base.clone();
        async move {
            rpc_as(
                &base,
                CLIENT_KEY,
                Some("1.0"),
                json!({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": id}}),
            )
            .await
        }
    };
    let t = get(done_id.clone()).await;
    assert_eq!(
        t["result"]["status"]["state"], "TASK_STATE_COMPLETED",
        "{t}"
    );
    assert_eq!(t["result"]["history"].as_array().unwrap().len(), 2);
    assert_eq!(t["result"]["artifacts"][0]["name"], "health");
    // The task the killed process was running is reported failed, not working forever.
    let t = get(stuck_id).await;
    assert_eq!(t["result"]["status"]["state"], "TASK_STATE_FAILED", "{t}");
    let note = t["result"]["status"]["message"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert!(note.contains("interrupted"), "{note}");
}

/// Ids come back exactly as sent (numbers beyond 64 bits included), on
/// answers, errors and stream events.
#[tokio::test]
async fn ids_are_echoed_exactly() {
    let (_up, gw) = setup().await;
    for id in ["123456789012345678901234567890", "-7", "1.50", "\"é-id\""] {
        for method in ["GetTask", "tasks/get"] {
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{{"id":"missing"}}}}"#
            );
            let text = client()
                .post(gw.url("/a2a"))
                .bearer_auth(CLIENT_KEY)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(text.contains(&format!(r#""id":{id}"#)), "{text}");
            assert!(text.contains("-32001"), "{text}");
        }
    }
    let body = r#"{"jsonrpc":"2.0","id":98765432109876543210987654321,"method":"SendStreamingMessage","params":{"message":{"messageId":"m","role":"ROLE_USER","parts":[{"text":"health"}],"metadata":{"skill":"health"}}}}"#;
    let text = client()
        .post(gw.url("/a2a"))
        .bearer_auth(CLIENT_KEY)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let frames = text.matches("data:").count();
    assert!(frames >= 3, "{text}");
    assert_eq!(
        text.matches(r#""id":98765432109876543210987654321"#)
            .count(),
        frames,
        "{text}"
    );
}

/// A2A §9: JSON-RPC requests are application/json; others get HTTP 415
/// with a ContentTypeNotSupported JSON-RPC error. `/a2a/` works as `/a2a`;
/// an over-limit body gets a JSON-RPC error, not a reset.
#[tokio::test]
async fn content_type_trailing_slash_and_body_limit() {
    let (_up, gw) = setup().await;
    let ok_body = r#"{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"none"}}"#;
    for ct in ["text/plain", "application/x-www-form-urlencoded", ""] {
        let mut r = client()
            .post(gw.url("/a2a"))
            .bearer_auth(CLIENT_KEY)
            .body(ok_body);
        if !ct.is_empty() {
            r = r.header("content-type", ct);
        }
        let resp = r.send().await.unwrap();
        assert_eq!(resp.status(), 415, "{ct}");
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let v: Value = resp.json().await.unwrap();
        assert_eq!(
            (v["jsonrpc"].as_str(), code(&v)),
            (Some("2.0"), -32005),
            "{v}"
        );
    }
    for path in ["/a2a", "/a2a/"] {
        let v: Value = client()
            .post(gw.url(path))
            .bearer_auth(CLIENT_KEY)
            .header("content-type", "application/json; charset=utf-8")
            .body(ok_body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(code(&v), -32001, "{path}: {v}");
    }
    // 2 MiB of padding: over the 1 MiB /a2a limit.
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{{"pad":"{}"}}}}"#,
        "x".repeat(2 << 20)
    );
    let resp = client()
        .post(gw.url("/a2a"))
        .bearer_auth(CLIENT_KEY)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("an answer, not a reset");
    assert_eq!(resp.status(), 413);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(code(&v), -32600, "{v}");
}

/// A message naming no skill goes to the skill its text is about, or to
/// smart routing; the task's metadata says which and why; metadata.skill
/// still overrides.
#[tokio::test]
async fn plain_messages_get_a_default_skill() {
    let (_up, gw) = setup().await;
    let send = |text: &str, skill: Option<&str>| {
        rpc(
            &gw,
            "SendMessage",
            json!({"message": v1_message(text, skill, vec![])}),
        )
    };
    let v = send("Is the gateway healthy? Show the breakers.", None).await;
    let task = &v["result"]["task"];
    assert_eq!(task["metadata"]["skill"], "health", "{v}");
    assert_eq!(task["metadata"]["skillSelection"]["by"], "classifier");
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED");

    let v = send("Write one line about the sea.", None).await;
    let task = &v["result"]["task"];
    assert_eq!(task["metadata"]["skill"], "smart-routing", "{v}");
    assert_eq!(task["metadata"]["skillSelection"]["by"], "default");
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{v}");

    let v = send("Is the gateway healthy?", Some("cost-analysis")).await;
    let task = &v["result"]["task"];
    assert_eq!(task["metadata"]["skill"], "cost-analysis", "{v}");
    assert_eq!(task["metadata"]["skillSelection"]["by"], "explicit");
}

/// A task waiting for input (A2A 1.0 §3.1.6: subscribable, it is not
/// terminal): every stream subscribed to it starts with the task, waits, then
/// carries the run the next message starts, the same events in the same
/// order, and ends at the terminal state. Input-required tasks come from the
/// TCK's scenario (only with the conformance fixtures on).
#[tokio::test]
async fn subscribing_to_a_task_waiting_for_input() {
    let up = FakeUpstream::start().await;
    let gw =
        InProcess::start_with(&config(&up.base_url()), |s| s.conformance_fixtures = true).await;
    let paused = |id: &str| {
        json!({"message": {"messageId": format!("tck-input-required-{id}"), "role": "ROLE_USER",
                            "parts": [{"text": "needs input"}]}})
    };
    let v = rpc(&gw, "SendMessage", paused("a")).await;
    let task = &v["result"]["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_INPUT_REQUIRED", "{v}");
    let id = task["id"].as_str().unwrap().to_string();

    let subs: Vec<_> = (0..2)
        .map(|_| {
            let (base, id) = (gw.base.clone(), id.clone());
            tokio::spawn(async move {
                stream_as(&base, CLIENT_KEY, "SubscribeToTask", json!({"id": id})).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The message that resumes it (the TCK's default scenario completes).
    let resume = json!({"message": {"messageId": "tck-complete-task-b", "role": "ROLE_USER",
                                    "taskId": id, "parts": [{"text": "Complete"}]}});
    let v = rpc(&gw, "SendMessage", resume).await;
    assert_eq!(
        v["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED",
        "{v}"
    );
    let mut streams = Vec::new();
    for s in subs {
        streams.push(s.await.unwrap());
    }
    let states = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| {
                let r = &e["result"];
                r["task"]["status"]["state"]
                    .as_str()
                    .or(r["statusUpdate"]["status"]["state"].as_str())
                    .unwrap_or("artifact")
                    .to_string()
            })
            .collect()
    };
    assert_eq!(
        states(&streams[0]),
        [
            "TASK_STATE_INPUT_REQUIRED",
            "TASK_STATE_WORKING",
            "TASK_STATE_COMPLETED"
        ],
        "{:?}",
        streams[0]
    );
    let strip =
        |events: &[Value]| -> Vec<Value> { events.iter().map(|e| e["result"].clone()).collect() };
    assert_eq!(
        strip(&streams[0]),
        strip(&streams[1]),
        "both streams saw the same events"
    );
    // Now terminal: nothing left to subscribe to.
    assert_eq!(
        code(&rpc(&gw, "SubscribeToTask", json!({"id": id})).await),
        -32004
    );

    // 0.3: a resubscribe to a waiting task ends with the cancel that ends it.
    let v = rpc(&gw, "SendMessage", paused("c")).await;
    let id = v["result"]["task"]["id"].as_str().unwrap().to_string();
    let sub = tokio::spawn({
        let (base, id) = (gw.base.clone(), id.clone());
        async move { stream_as(&base, CLIENT_KEY, "tasks/resubscribe", json!({"id": id})).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = rpc(&gw, "tasks/cancel", json!({"id": id})).await;
    assert_eq!(c["result"]["status"]["state"], "canceled", "{c}");
    let events = sub.await.unwrap();
    assert_eq!(events[0]["result"]["kind"], "task", "{events:?}");
    assert_eq!(events[0]["result"]["status"]["state"], "input-required");
    let last = &events.last().unwrap()["result"];
    assert_eq!(
        (last["kind"].as_str(), last["final"].as_bool()),
        (Some("status-update"), Some(true))
    );
    assert_eq!(last["status"]["state"], "canceled");
    gw.stop().await;
}
