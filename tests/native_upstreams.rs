//! Upstreams that speak Anthropic Messages or Gemini: an OpenAI client's
//! request is translated for them and their answers and streams come back
//! as OpenAI Chat, with usage recorded; a 429 in their own shape falls back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use support::fake_upstream::FakeUpstream;
use support::{client, example_config, InProcess, CLIENT_KEY};

async fn gateway() -> (FakeUpstream, InProcess) {
    let up = FakeUpstream::start().await;
    let native = up.native_base_url();
    let cfg = format!(
        r#"{}
[[providers]]
id = "claude"
format = "anthropic"
base_url = "{native}"
api_key = "anthropic-secret"
models = ["claude-fake", "fail-429"]

[[providers]]
id = "gem"
format = "gemini"
base_url = "{native}"
api_key = "gemini-secret"
models = ["gemini-fake", "fail-429"]

[[combos]]
name = "native"
models = ["claude/fail-429", "gem/fail-429", "gem/gemini-fake"]
"#,
        example_config(&up.base_url())
    );
    (up, InProcess::start(&cfg).await)
}

async fn chat(gw: &InProcess, model: &str, stream: bool) -> reqwest::Response {
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .json(&json!({"model": model, "stream": stream, "max_tokens": 64,
                      "stream_options": {"include_usage": true},
                      "messages": [{"role": "system", "content": "Be brief."},
                                   {"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
}

fn stream_text(body: &str) -> (String, Vec<Value>) {
    let chunks: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let text = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    (text, chunks)
}

#[tokio::test]
async fn anthropic_upstream_answers_openai_clients() {
    let (up, gw) = gateway().await;
    let r = chat(&gw, "claude/claude-fake", false).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hi");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // Anthropic's 9 uncached + 2 cache reads = 11 prompt tokens, 2 of them cached.
    assert_eq!(v["usage"]["prompt_tokens"], 11);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 2);
    assert_eq!(v["usage"]["completion_tokens"], 4);
    // The upstream got Anthropic's shape and key header.
    let sent = up.seen.bodies.lock().unwrap().last().cloned().unwrap();
    assert_eq!(sent["model"], "claude-fake");
    assert_eq!(sent["max_tokens"], 64);
    assert!(sent["system"].to_string().contains("Be brief."), "{sent}");
    assert_eq!(sent["messages"][0]["role"], "user");
    assert_eq!(
        up.seen.auth.lock().unwrap().last().unwrap(),
        "x-api-key anthropic-secret"
    );

    let r = chat(&gw, "claude/claude-fake", true).await;
    assert_eq!(r.status(), 200);
    let (text, chunks) = stream_text(&r.text().await.unwrap());
    assert_eq!(text, "echo: hi[0][1]");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop"));
    let usage = chunks
        .iter()
        .find(|c| !c["usage"].is_null())
        .expect("a usage chunk");
    assert_eq!(usage["usage"]["completion_tokens"], 3);
    gw.stop().await;
}

#[tokio::test]
async fn gemini_upstream_answers_openai_clients() {
    let (up, gw) = gateway().await;
    let r = chat(&gw, "gem/gemini-fake", false).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hi");
    assert_eq!(v["usage"]["prompt_tokens"], 9);
    assert_eq!(v["usage"]["completion_tokens"], 4);
    let sent = up.seen.bodies.lock().unwrap().last().cloned().unwrap();
    assert_eq!(sent["contents"][0]["role"], "user");
    assert_eq!(sent["generationConfig"]["maxOutputTokens"], 64);
    assert_eq!(
        up.seen.auth.lock().unwrap().last().unwrap(),
        "x-goog-api-key gemini-secret"
    );

    let r = chat(&gw, "gem/gemini-fake", true).await;
    assert_eq!(r.status(), 200);
    let (text, chunks) = stream_text(&r.text().await.unwrap());
    assert_eq!(text, "echo: hi[0][1]");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop"));
    gw.stop().await;
}

#[tokio::test]
async fn native_rate_limits_fall_back_and_claude_code_reaches_anthropic_upstreams() {
    let (up, gw) = gateway().await;
    let r = chat(&gw, "native", false).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-omniroute-attempts"], "3");
    assert_eq!(r.headers()["x-omniroute-provider"], "gem");
    let failed = r.headers()["x-omniroute-failed"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(failed.contains("429"), "{failed}");
    assert_eq!(up.calls("fail-429"), 2);

    // Anthropic in, Anthropic upstream: the answer keeps its shape.
    let r = client()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", CLIENT_KEY)
        .json(
            &json!({"model": "claude/claude-fake", "max_tokens": 32, "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.starts_with("event: message_start"), "{body}");
    assert!(body.contains("\"text\":\"echo: hi\""), "{body}");
    assert!(
        body.trim_end()
            .ends_with("data: {\"type\":\"message_stop\"}"),
        "{body}"
    );
    gw.stop().await;
}
