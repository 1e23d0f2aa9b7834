//! Every client format (OpenAI Chat, Anthropic Messages, OpenAI Responses,
//! Gemini) against every upstream format, through the real router: same
//! format in and out is forwarded byte for byte (only `model` rewritten),
//! other pairs are translated directly; tool calls, thinking, errors before
//! and after the first byte, context overflow, and Responses history across
//! providers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use support::fake_upstream::FakeUpstream;
use support::{client, example_config, InProcess, CLIENT_KEY};

async fn gateway() -> (FakeUpstream, InProcess) {
    gateway_with("").await
}

/// The gateway of `gateway()` with `extra` appended to its config.
async fn gateway_with(extra: &str) -> (FakeUpstream, InProcess) {
    let up = FakeUpstream::start().await;
    let native = up.native_base_url();
    let base = up.base_url();
    let models = r#"["echo", "tool-call", "thinking", "mid-error-1", "mid-error-2", "mid-error-3", "overloaded-stream", "fail-context", "fail-500"]"#;
    let cfg = format!(
        r#"{}
[[providers]]
id = "oai"
format = "openai"
base_url = "{base}"
api_key = "openai-secret"
models = {models}

[[providers]]
id = "claude"
format = "anthropic"
base_url = "{native}"
api_key = "anthropic-secret"
models = {models}

[[providers]]
id = "gem"
format = "gemini"
base_url = "{native}"
api_key = "gemini-secret"
models = {models}

[[providers]]
id = "resp"
format = "openai-responses"
base_url = "{base}"
api_key = "responses-secret"
models = {models}

[[combos]]
name = "overloaded-then-gemini"
models = ["claude/overloaded-stream", "gem/echo"]
{extra}"#,
        example_config(&base)
    );
    let gw = InProcess::start_with(&cfg, |s| {
        s.model_map
            .insert("claude-sonnet-4-5".into(), "claude/thinking".into());
    })
    .await;
    (up, gw)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Client {
    Chat,
    Messages,
    Responses,
    Gemini,
}

const CLIENTS: [Client; 4] = [
    Client::Chat,
    Client::Messages,
    Client::Responses,
    Client::Gemini,
];
const UPSTREAMS: [(&str, &str); 4] = [
    ("oai", "openai"),
    ("claude", "anthropic"),
    ("resp", "openai-responses"),
    ("gem", "gemini"),
];

impl Client {
    fn format(self) -> &'static str {
        match self {
            Client::Chat => "openai",
            Client::Messages => "anthropic",
            Client::Responses => "openai-responses",
            Client::Gemini => "gemini",
        }
    }
}

/// A request saying `text` to `model` in the client's format, with `tools` (OpenAI function shape).
async fn ask(
    gw: &InProcess,
    c: Client,
    model: &str,
    stream: bool,
    text: &str,
    tools: bool,
) -> reqwest::Response {
    let tool = json!({"name": "read_file", "description": "Read a file",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}});
    let (path, mut body) = match c {
        Client::Chat => (
            "/v1/chat/completions".to_string(),
            json!({"model": model, "stream": stream, "max_tokens": 64,
                   "messages": [{"role": "user", "content": text}]}),
        ),
        Client::Messages => (
            "/v1/messages?beta=true".to_string(),
            json!({"model": model, "stream": stream, "max_tokens": 64,
                   "messages": [{"role": "user", "content": text}]}),
        ),
        Client::Responses => (
            "/v1/responses".to_string(),
            json!({"model": model, "stream": stream, "input": text}),
        ),
        Client::Gemini => {
            let action = if stream {
                "streamGenerateContent?alt=sse"
            } else {
                "generateContent"
            };
            (
                format!("/v1beta/models/{}:{action}", model.replace('/', "%2F")),
                json!({"contents": [{"role": "user", "parts": [{"text": text}]}]}),
            )
        }
    };
    if tools {
        body["tools"] = match c {
            Client::Chat => json!([{"type": "function", "function": tool}]),
            Client::Messages => json!([{"name": "read_file", "description": "Read a file",
                "input_schema": tool["parameters"]}]),
            Client::Responses => json!([{"type": "function", "name": "read_file",
                "description": "Read a file", "parameters": tool["parameters"]}]),
            Client::Gemini => json!([{"functionDeclarations": [tool]}]),
        };
    }
    let req = client().post(gw.url(&path)).json(&body);
    let req = match c {
        Client::Messages => req
            .header("x-api-key", CLIENT_KEY)
            .header("anthropic-version", "2023-06-01"),
        Client::Gemini => req.header("x-goog-api-key", CLIENT_KEY),
        _ => req.bearer_auth(CLIENT_KEY),
    };
    req.send().await.unwrap()
}

/// (event name, data) of each SSE event.
fn events(text: &str) -> Vec<(String, Value)> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .filter_map(|e| {
            let mut name = String::new();
            let mut data = None;
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).ok();
                }
            }
            data.map(|d| (name, d))
        })
        .collect()
}

/// The assistant's text in an answer in the client's format.
fn text_of(c: Client, stream: bool, body: &str) -> String {
    if stream {
        let evs = events(body);
        return evs
            .iter()
            .filter_map(|(n, d)| match c {
                Client::Chat => d["choices"][0]["delta"]["content"].as_str(),
                Client::Messages if n == "content_block_delta" => d["delta"]["text"].as_str(),
                Client::Responses if n == "response.output_text.delta" => d["delta"].as_str(),
                Client::Gemini => d["candidates"][0]["content"]["parts"][0]["text"].as_str(),
                _ => None,
            })
            .collect();
    }
    let v: Value = serde_json::from_str(body).unwrap();
    match c {
        Client::Chat => v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or("")
            .into(),
        Client::Messages => v["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect(),
        Client::Responses => v["output"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["type"] == "message")
            .filter_map(|o| o["content"][0]["text"].as_str())
            .collect(),
        Client::Gemini => v["candidates"][0]["content"]["parts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect(),
    }
}

async fn usage_rows(gw: &InProcess) -> Vec<(String, i64, i64, i64, String)> {
    gw.gw.store.flush().await.unwrap();
    gw.gw
        .store
        .read(|c| {
            let mut s = c.prepare(
                "SELECT outcome, input_tokens, output_tokens, cached_tokens, COALESCE(provider_id, '') FROM usage_events ORDER BY id",
            )?;
            let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn every_client_format_reaches_every_upstream_format() {
    let (_up, gw) = gateway().await;
    let mut served = 0;
    for c in CLIENTS {
        for (prefix, upstream) in UPSTREAMS {
            for stream in [false, true] {
                let model = format!("{prefix}/echo");
                let r = ask(&gw, c, &model, stream, "hi", false).await;
                let what = format!("{c:?} -> {upstream} (stream {stream})");
                assert_eq!(r.status(), 200, "{what}");
                let label = r
                    .headers()
                    .get("x-omniroute-translation")
                    .map(|v| v.to_str().unwrap().to_string());
                let expected = (c != Client::Chat || upstream != "openai")
                    .then(|| format!("{}->{upstream}", c.format()));
                assert_eq!(label, expected, "{what}");
                assert_eq!(r.headers()["x-omniroute-provider"], prefix, "{what}");
                let body = r.text().await.unwrap();
                let want = match (stream, upstream) {
                    (false, _) => "echo: hi",
                    (true, "openai") => "echo: hi[0][1][2][3][4]",
                    (true, _) => "echo: hi[0][1]",
                };
                assert_eq!(text_of(c, stream, &body), want, "{what}: {body}");
                served += 1;
            }
        }
    }
    assert_eq!(served, 32);
    let rows = usage_rows(&gw).await;
    assert_eq!(rows.len(), 32);
    for (outcome, input, output, _, provider) in &rows {
        assert_eq!(outcome, "ok", "{rows:?}");
        assert!(*input > 0 && *output > 0, "{provider}: {rows:?}");
    }
    // Cached prompt tokens are recorded whatever the pair (Anthropic reports
    // them apart from input, Gemini and Responses inside it).
    for (provider, cached) in [("claude", 2), ("gem", 2), ("resp", 5)] {
        assert!(
            rows.iter().any(|r| r.4 == provider && r.3 == cached),
            "{provider}: {rows:?}"
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn claude_code_to_an_anthropic_upstream_is_forwarded_byte_for_byte() {
    let (up, gw) = gateway().await;
    // A Claude Code turn: billing line, cache markers, signed thinking and a
    // tool round trip in the history, and a field the gateway does not know.
    let body = r#"{"model":"claude-sonnet-4-5","max_tokens":32000,"stream":true,
 "system":[{"type":"text","text":"x-anthropic-billing-header: cc_version=2.1.1.abc; cch=1f2e3;"},
           {"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],
 "thinking":{"type":"enabled","budget_tokens":10000},
 "context_management":{"edits":[{"type":"clear_thinking_20251015"}]},
 "tools":[{"name":"read_file","input_schema":{"type":"object","properties":{"path":{"type":"string"}}},"cache_control":{"type":"ephemeral"}}],
 "messages":[{"role":"user","content":"open main"},
   {"role":"assistant","content":[{"type":"thinking","thinking":"I should read it.","signature":"EqQBCkYIBxgCKkD+sig=="},
                                  {"type":"tool_use","id":"toolu_01","name":"read_file","input":{"path":"src/main.rs"}}]},
   {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":"fn main() {}"},
                             {"type":"text","text":"and now?","cache_control":{"type":"ephemeral"}}]}]}"#;
    let r = client()
        .post(gw.url("/v1/messages?beta=true"))
        .header("authorization", format!("Bearer {CLIENT_KEY}"))
        .header("anthropic-version", "2023-06-01")
        .header(
            "anthropic-beta",
            "interleaved-thinking-2025-05-14,context-management-2025-06-27",
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-omniroute-translation"],
        "anthropic->anthropic"
    );
    assert!(r.headers().get("x-omniroute-translation-notes").is_none());
    assert_eq!(r.headers()["x-omniroute-model"], "thinking");
    let answer = r.text().await.unwrap();

    // The upstream got the client's bytes with only the model rewritten.
    let sent = up.last_raw_body();
    assert_eq!(
        String::from_utf8(sent.to_vec()).unwrap(),
        body.replace(r#""model":"claude-sonnet-4-5""#, r#""model":"thinking""#)
    );
    assert_eq!(
        up.last_header("anthropic-beta").as_deref(),
        Some("interleaved-thinking-2025-05-14,context-management-2025-06-27")
    );
    assert_eq!(
        up.last_header("anthropic-version").as_deref(),
        Some("2023-06-01")
    );
    assert_eq!(
        up.last_header("x-api-key").as_deref(),
        Some("anthropic-secret")
    );

    // The stream is the upstream's, thinking signature included.
    let evs = events(&answer);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert!(evs
        .iter()
        .any(|(_, d)| d["delta"]["signature"] == "sig-anthropic-1"));
    assert!(evs
        .iter()
        .any(|(_, d)| d["content_block"]["type"] == "thinking"));
    let rows = usage_rows(&gw).await;
    let (outcome, input, output, cached, _) = rows.last().unwrap();
    assert_eq!(outcome, "ok");
    // 9 uncached + 2 cache reads, of which 2 cached; 3 output tokens.
    assert_eq!((*input, *output, *cached), (11, 3, 2));

    // Not streamed: the body comes back as the upstream wrote it.
    let r = ask(&gw, Client::Messages, "claude/thinking", false, "hi", false).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], "msg_fake");
    assert_eq!(v["content"][0]["signature"], "sig-anthropic-1");
    gw.stop().await;
}

#[tokio::test]
async fn translated_pairs_carry_tool_calls_and_say_what_was_dropped() {
    let (up, gw) = gateway().await;
    // Claude Code against a Gemini upstream: billing line removed, foreign
    // thinking dropped (noted), the function call streamed back as tool_use.
    let r = client()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", CLIENT_KEY)
        .json(&json!({"model": "gem/tool-call", "max_tokens": 1024, "stream": true,
            "system": [{"type": "text", "text": "x-anthropic-billing-header: cch=9;"},
                       {"type": "text", "text": "Be brief."}],
            "tools": [{"name": "read_file", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}],
            "messages": [{"role": "user", "content": "hello"},
                         {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "sig"},
                                                           {"type": "text", "text": "Hi."}]},
                         {"role": "user", "content": "open main"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-omniroute-translation"], "anthropic->gemini");
    let notes = r.headers()["x-omniroute-translation-notes"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(notes.contains("billing header"), "{notes}");
    assert!(notes.contains("reasoning"), "{notes}");
    let evs = events(&r.text().await.unwrap());
    let sent = up.last_body();
    assert!(!sent.to_string().contains("x-anthropic-billing-header"));
    assert_eq!(
        sent["tools"][0]["functionDeclarations"][0]["name"],
        "read_file"
    );
    let start = evs
        .iter()
        .find(|(_, d)| d["content_block"]["type"] == "tool_use")
        .expect("a tool_use block");
    assert_eq!(start.1["content_block"]["name"], "read_file");
    let args: String = evs
        .iter()
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"path": "src/main.rs"})
    );
    assert!(evs
        .iter()
        .any(|(n, d)| n == "message_delta" && d["delta"]["stop_reason"] == "tool_use"));

    // Every other client format gets the Anthropic upstream's tool call in its own shape.
    for c in [Client::Chat, Client::Responses, Client::Gemini] {
        let r = ask(&gw, c, "claude/tool-call", true, "open main", true).await;
        assert_eq!(r.status(), 200, "{c:?}");
        let evs = events(&r.text().await.unwrap());
        match c {
            Client::Chat => {
                let id = evs
                    .iter()
                    .find_map(|(_, d)| d["choices"][0]["delta"]["tool_calls"][0]["id"].as_str())
                    .unwrap();
                assert_eq!(id, "toolu_fake_1");
                let args: String = evs
                    .iter()
                    .filter_map(|(_, d)| {
                        d["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
                    })
                    .collect();
                assert_eq!(args, "{\"path\":\"src/main.rs\"}");
                assert!(evs
                    .iter()
                    .any(|(_, d)| d["choices"][0]["finish_reason"] == "tool_calls"));
            }
            Client::Responses => {
                let done = evs
                    .iter()
                    .find(|(n, d)| {
                        n == "response.output_item.done" && d["item"]["type"] == "function_call"
                    })
                    .expect("a function_call item");
                assert_eq!(done.1["item"]["call_id"], "toolu_fake_1");
                assert_eq!(done.1["item"]["arguments"], "{\"path\":\"src/main.rs\"}");
                assert_eq!(evs.last().unwrap().0, "response.completed");
            }
            Client::Gemini => {
                let call = evs
                    .iter()
                    .find_map(|(_, d)| {
                        d["candidates"][0]["content"]["parts"]
                            .as_array()?
                            .iter()
                            .find(|p| p.get("functionCall").is_some())
                            .cloned()
                    })
                    .expect("a functionCall part");
                assert_eq!(call["functionCall"]["args"], json!({"path": "src/main.rs"}));
            }
            Client::Messages => unreachable!(),
        }
    }

    // OpenAI Chat client, Responses upstream, not streamed.
    let r = ask(
        &gw,
        Client::Chat,
        "resp/tool-call",
        false,
        "open main",
        true,
    )
    .await;
    assert_eq!(
        r.headers()["x-omniroute-translation"],
        "openai->openai-responses"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"path\":\"src/main.rs\"}"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    gw.stop().await;
}

#[tokio::test]
async fn upstream_errors_before_and_after_the_first_byte() {
    let (up, gw) = gateway().await;
    // An Anthropic upstream that answers 200 and then an overloaded error as
    // its first event: nothing reached the client, so the combo falls back.
    let r = ask(
        &gw,
        Client::Messages,
        "overloaded-then-gemini",
        true,
        "hi",
        false,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-omniroute-attempts"], "2");
    assert_eq!(r.headers()["x-omniroute-provider"], "gem");
    assert!(r.headers()["x-omniroute-failed"]
        .to_str()
        .unwrap()
        .contains("Overloaded"));
    assert_eq!(
        text_of(Client::Messages, true, &r.text().await.unwrap()),
        "echo: hi[0][1]"
    );
    assert_eq!(up.calls("overloaded-stream"), 1);

    // After the first byte: the client's stream ends with an error in its own format.
    // (A stream broken mid-way cools its target: each case has its own.)
    for (c, model) in [
        (Client::Messages, "claude/mid-error-1"),
        (Client::Chat, "claude/mid-error-2"),
        (Client::Responses, "gem/mid-error-1"),
        (Client::Gemini, "claude/mid-error-3"),
        (Client::Messages, "gem/mid-error-2"),
    ] {
        let r = ask(&gw, c, model, true, "hi", false).await;
        assert_eq!(r.status(), 200, "{c:?} {model}");
        let body = r.text().await.unwrap();
        let evs = events(&body);
        let (name, last) = evs.last().unwrap();
        match c {
            Client::Messages => {
                assert_eq!(name, "error", "{body}");
                assert_eq!(last["type"], "error");
            }
            Client::Chat => assert!(last["error"]["message"].is_string(), "{body}"),
            Client::Responses => {
                assert_eq!(name, "response.failed", "{body}");
                assert_eq!(last["response"]["status"], "failed");
            }
            Client::Gemini => assert!(last["error"]["message"].is_string(), "{body}"),
        }
        assert!(text_of(c, true, &body).starts_with("echo: hi"), "{body}");
    }
    let rows = usage_rows(&gw).await;
    assert_eq!(
        rows.iter().filter(|r| r.0 == "upstream_error").count(),
        5,
        "{rows:?}"
    );

    // Context overflow from any upstream is Anthropic's 400 "prompt is too long".
    for model in [
        "claude/fail-context",
        "gem/fail-context",
        "oai/fail-context",
    ] {
        let r = ask(&gw, Client::Messages, model, true, "hi", false).await;
        assert_eq!(r.status(), 400, "{model}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("prompt is too long"),
            "{v}"
        );
    }
    // An Anthropic upstream's 500 reaches a Gemini client in Gemini's shape.
    let r = ask(&gw, Client::Gemini, "claude/fail-500", false, "hi", false).await;
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["status"].is_string(), "{v}");
    gw.stop().await;
}

/// A prompt too long for the first target of a combo moves on to the next
/// one, whatever format the first upstream speaks (each says it in its own
/// words: OpenAI's `context_length_exceeded`, Anthropic's "prompt is too
/// long", Gemini's "exceeds the maximum number of tokens", Responses'
/// "exceeds the context window").
#[tokio::test]
async fn context_overflow_falls_back_to_the_next_target_for_every_upstream_format() {
    let combos: String = UPSTREAMS
        .iter()
        .map(|(prefix, _)| {
            format!(
                "\n[[combos]]\nname = \"ctx-{prefix}\"\nmodels = [\"{prefix}/fail-context\", \"oai/echo\"]\n"
            )
        })
        .collect();
    let (up, gw) = gateway_with(&combos).await;
    for (prefix, format) in UPSTREAMS {
        for stream in [false, true] {
            let what = format!("{format} upstream (stream {stream})");
            let r = ask(
                &gw,
                Client::Chat,
                &format!("ctx-{prefix}"),
                stream,
                "hi",
                false,
            )
            .await;
            assert_eq!(r.status(), 200, "{what}: {:?}", r.text().await);
            let h = r.headers().clone();
            assert_eq!(h["x-omniroute-attempts"], "2", "{what}");
            assert_eq!(h["x-omniroute-provider"], "oai", "{what}");
            let failed = h["x-omniroute-failed"].to_str().unwrap().to_string();
            assert!(failed.contains("HTTP 400"), "{what}: {failed}");
            let body = r.text().await.unwrap();
            assert!(
                text_of(Client::Chat, stream, &body).starts_with("echo: hi"),
                "{what}: {body}"
            );
        }
    }
    assert_eq!(up.calls("fail-context"), 8);
    // The overflow cooled nothing: the first targets are still planned first.
    for (prefix, _) in UPSTREAMS {
        let plan = omniroute::ops::explain::explain_route(
            &gw.gw,
            omniroute::ops::explain::ExplainInput {
                model: format!("ctx-{prefix}"),
                input_tokens: None,
                max_tokens: None,
                key_id: None,
                session: None,
            },
        )
        .await
        .unwrap();
        assert!(plan.skipped.is_empty(), "{prefix}: {:?}", plan.skipped);
        assert_eq!(plan.targets.len(), 2, "{prefix}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn responses_keep_the_gateway_ids_and_history_across_providers() {
    let (up, gw) = gateway().await;
    let post = |body: Value| {
        client()
            .post(gw.url("/v1/responses"))
            .bearer_auth(CLIENT_KEY)
            .json(&body)
            .send()
    };
    // Responses client, Responses upstream: forwarded, but under the gateway's id.
    let r = post(json!({"model": "resp/echo", "input": "My name is Ada."}))
        .await
        .unwrap();
    assert_eq!(
        r.headers()["x-omniroute-translation"],
        "openai-responses->openai-responses"
    );
    let first: Value = r.json().await.unwrap();
    let id1 = first["id"].as_str().unwrap().to_string();
    assert!(
        id1.starts_with("resp_") && id1 != "resp_upstream_fixed",
        "{id1}"
    );
    assert_eq!(first["usage"]["input_tokens_details"]["cached_tokens"], 5);

    // The follow-up goes to an Anthropic upstream, with the whole conversation.
    let second: Value = post(json!({"model": "claude/echo", "previous_response_id": id1,
                                    "input": "What is my name?"}))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id2 = second["id"].as_str().unwrap().to_string();
    let sent = up.last_body();
    let msgs = sent["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3, "{sent}");
    assert!(msgs[0].to_string().contains("My name is Ada."));
    assert_eq!(msgs[1]["role"], "assistant");
    assert!(msgs[1].to_string().contains("echo: My name is Ada."));

    // And back to the Responses upstream, streamed: ids in every lifecycle event are the gateway's.
    let r = post(
        json!({"model": "resp/echo", "previous_response_id": id2, "stream": true,
                        "input": "Thanks."}),
    )
    .await
    .unwrap();
    let evs = events(&r.text().await.unwrap());
    let ids: Vec<&str> = evs
        .iter()
        .filter_map(|(_, d)| d["response"]["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 3, "{evs:?}");
    assert!(ids
        .iter()
        .all(|i| *i == ids[0] && *i != "resp_upstream_fixed"));
    let sent = up.last_body();
    assert_eq!(sent["input"].as_array().unwrap().len(), 5, "{sent}");
    assert!(sent.get("previous_response_id").is_none());
    let id3 = ids[0].to_string();
    let stored: Value = client()
        .get(gw.url(&format!("/v1/responses/{id3}")))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored["id"], id3.as_str());
    assert_eq!(stored["status"], "completed");
    gw.stop().await;
}

#[tokio::test]
async fn gemini_to_gemini_is_forwarded_as_is() {
    let (up, gw) = gateway().await;
    let body = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"maxOutputTokens":50,"thinkingConfig":{"thinkingBudget":128}},"safetySettings":[{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_NONE"}]}"#;
    let r = client()
        .post(gw.url("/v1beta/models/gem%2Fecho:streamGenerateContent?alt=sse"))
        .header("x-goog-api-key", CLIENT_KEY)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-omniroute-translation"], "gemini->gemini");
    assert_eq!(
        text_of(Client::Gemini, true, &r.text().await.unwrap()),
        "echo: hi[0][1]"
    );
    assert_eq!(up.last_raw_body(), body.as_bytes());
    assert_eq!(up.calls("echo"), 1);
    gw.stop().await;
}

#[tokio::test]
async fn model_listings_and_paths_in_each_clients_shape() {
    let (_up, gw) = gateway().await;
    let get = |path: &str| client().get(gw.url(path));
    // Codex CLI: its own shape, empty so it keeps its bundled catalog.
    let r = get("/v1/models?client_version=0.150.0")
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("etag"));
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"models": []}));
    // Claude Code / Anthropic SDKs.
    let v: Value = get("/v1/models?limit=1000")
        .header("x-api-key", CLIENT_KEY)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["has_more"], false);
    assert_eq!(v["data"][0]["type"], "model");
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == "claude/thinking"));
    assert!(v["first_id"].is_string() && v["last_id"].is_string());
    // OpenAI SDKs.
    let v: Value = get("/v1/models")
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["object"], "model");
    // Gemini clients, with the key in the query.
    let v: Value = get(&format!("/v1beta/models?key={CLIENT_KEY}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["models"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"] == "models/gem/echo"));
    let r = get("/v1beta/models").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["status"],
        "UNAUTHENTICATED"
    );

    // A Gemini model name with its provider prefix, slash unencoded, under /v1beta and /v1.
    for path in [
        "/v1beta/models/gem/echo:generateContent",
        "/v1/models/gem/echo:generateContent",
    ] {
        let r = client()
            .post(gw.url(path))
            .header("x-goog-api-key", CLIENT_KEY)
            .json(&json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            text_of(Client::Gemini, false, &r.text().await.unwrap()),
            "echo: hi"
        );
    }
    // Claude Code's other paths: /messages and its telemetry sink.
    let r = client()
        .post(gw.url("/messages"))
        .header("x-api-key", CLIENT_KEY)
        .json(&json!({"model": "claude/echo", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .post(gw.url("/api/event_logging/batch"))
        .header("x-api-key", CLIENT_KEY)
        .json(&json!({"events": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn context_relay_works_for_an_anthropic_client() {
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
    let mut messages = Vec::new();
    for i in 0..6 {
        messages.push(json!({"role": "user", "content": format!("turn {i}: {}", "lorem ipsum ".repeat(2500))}));
        messages.push(json!({"role": "assistant", "content": format!("done with turn {i}")}));
    }
    messages.push(json!({"role": "user", "content": "latest question"}));
    let r = client()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", CLIENT_KEY)
        .json(&json!({"model": "relay", "max_tokens": 256, "stream": true,
                      "system": "You are a coding agent.", "messages": messages}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["x-omniroute-context-relay"]
        .to_str()
        .unwrap()
        .contains("summarised"));
    assert_eq!(r.headers()["x-omniroute-translation"], "anthropic->openai");
    assert!(r.headers()["x-omniroute-translation-notes"]
        .to_str()
        .unwrap()
        .contains("context relay"));
    let body = r.text().await.unwrap();
    assert!(
        text_of(Client::Messages, true, &body).starts_with("echo: latest question"),
        "{body}"
    );
    let bodies = up.seen.bodies.lock().unwrap().clone();
    let sent = bodies
        .iter()
        .find(|b| b["model"] == "meta-llama/Llama-3.3-70B-Instruct")
        .unwrap();
    let sent_msgs = sent["messages"].as_array().unwrap();
    assert!(sent_msgs.len() < 14, "{}", sent_msgs.len());
    assert!(sent_msgs[1]["content"]
        .to_string()
        .contains("[Summary of the earlier conversation"));
    gw.stop().await;
}
