//! Inbound formats (Anthropic `/v1/messages`, OpenAI `/v1/responses`, Gemini
//! `/v1beta/models/…`) against an OpenAI-format fake
//! upstream: answers, the exact stream event sequence with text and a
//! streamed tool call, Anthropic error shapes, model mapping, the billing
//! line removed, fallback through a combo, count_tokens and Claude Code's probes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use support::fake_upstream::FakeUpstream;
use support::{client, example_config, InProcess, CLIENT_KEY};

async fn gateway() -> (FakeUpstream, InProcess) {
    let up = FakeUpstream::start().await;
    let cfg = format!(
        "{}\n[[combos]]\nname = \"coding\"\nmodels = [\"mock/fail-500\", \"mock/gpt-4o-mini\"]\n",
        example_config(&up.base_url())
    );
    let gw = InProcess::start_with(&cfg, |s| {
        s.model_map
            .insert("claude-sonnet-*".into(), "coding".into());
        s.model_map
            .insert("claude-haiku-4-5".into(), "mock/tool-call".into());
    })
    .await;
    (up, gw)
}

async fn post(gw: &InProcess, body: Value) -> reqwest::Response {
    client()
        .post(gw.url("/v1/messages?beta=true"))
        .header("x-api-key", CLIENT_KEY)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "fine-grained-tool-streaming-2025-05-14")
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// (event name, data) pairs of an SSE body.
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = String::new();
            let mut data = Value::Null;
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap();
                }
            }
            (name, data)
        })
        .collect()
}

#[tokio::test]
async fn a_message_is_answered_in_anthropic_shape() {
    let (up, gw) = gateway().await;
    let r = post(
        &gw,
        json!({"model": "mock/gpt-4o-mini", "max_tokens": 100,
               "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.70.abc; cch=12345;"},
                          {"type": "text", "text": "You are Claude Code."}],
               "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-omniroute-translation"], "anthropic->openai");
    assert!(r.headers()["x-omniroute-translation-notes"]
        .to_str()
        .unwrap()
        .contains("billing header"));
    assert_eq!(r.headers()["x-omniroute-provider"], "mock");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "mock/gpt-4o-mini");
    assert_eq!(v["content"][0]["type"], "text");
    assert_eq!(v["content"][0]["text"], "echo: hi");
    assert_eq!(v["stop_reason"], "end_turn");
    // prompt_tokens 11 with 3 cached: Anthropic counts input without cache reads.
    assert_eq!(v["usage"]["input_tokens"], 8);
    assert_eq!(v["usage"]["cache_read_input_tokens"], 3);
    assert_eq!(v["usage"]["output_tokens"], 7);
    // The upstream got OpenAI Chat, without the per-request billing line.
    let sent = up.seen.bodies.lock().unwrap().last().cloned().unwrap();
    assert_eq!(sent["messages"][0]["role"], "system");
    let system = sent["messages"][0]["content"].to_string();
    assert!(system.contains("You are Claude Code."), "{system}");
    assert!(!system.contains("billing-header"), "{system}");
    assert_eq!(sent["max_tokens"], 100);
    gw.stop().await;
}

#[tokio::test]
async fn a_stream_follows_the_anthropic_event_sequence() {
    let (_up, gw) = gateway().await;
    let r = post(
        &gw,
        json!({"model": "mock/gpt-4o-mini", "max_tokens": 100, "stream": true,
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let evs = events(&r.text().await.unwrap());
    // As the Anthropic API does, a ping may come between any two events.
    let names: Vec<&str> = evs
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| *n != "ping")
        .collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names[1], "content_block_start");
    assert_eq!(names.last(), Some(&"message_stop"));
    assert_eq!(names[names.len() - 2], "message_delta");
    assert_eq!(names[names.len() - 3], "content_block_stop");
    let text: String = evs
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(text, "echo: hi[0][1][2][3][4]");
    let delta = &evs[evs.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 5);
    gw.stop().await;
}

#[tokio::test]
async fn a_streamed_tool_call_arrives_as_tool_use_with_json_deltas() {
    let (_up, gw) = gateway().await;
    // Mapped: claude-haiku-4-5 -> mock/tool-call.
    let r = post(
        &gw,
        json!({"model": "claude-haiku-4-5", "max_tokens": 100, "stream": true,
               "tools": [{"name": "read_file", "description": "Read a file",
                          "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}],
               "messages": [{"role": "user", "content": "open main"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let evs = events(&r.text().await.unwrap());
    assert_eq!(evs[0].1["message"]["model"], "claude-haiku-4-5");
    let start = evs
        .iter()
        .find(|(n, d)| n == "content_block_start" && d["content_block"]["type"] == "tool_use")
        .expect("a tool_use block");
    assert_eq!(start.1["content_block"]["id"], "call_fake_1");
    assert_eq!(start.1["content_block"]["name"], "read_file");
    let parts: Vec<String> = evs
        .iter()
        .filter(|(n, d)| n == "content_block_delta" && d["delta"]["type"] == "input_json_delta")
        .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap().to_string())
        .collect();
    assert!(parts.len() >= 2, "{parts:?}");
    let input: Value = serde_json::from_str(&parts.concat()).unwrap();
    assert_eq!(input, json!({"path": "src/main.rs"}));
    let delta = evs.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
    assert_eq!(evs.last().unwrap().0, "message_stop");
    gw.stop().await;
}

#[tokio::test]
async fn mapped_names_route_through_a_combo_with_fallback() {
    let (up, gw) = gateway().await;
    let r = post(
        &gw,
        json!({"model": "claude-sonnet-4-5-20250929", "max_tokens": 50,
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-omniroute-combo"], "coding");
    assert_eq!(r.headers()["x-omniroute-attempts"], "2");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(v["content"][0]["text"], "echo: hi");
    assert_eq!(up.calls("fail-500"), 1);
    gw.stop().await;
}

#[tokio::test]
async fn errors_come_back_in_anthropic_shape() {
    let (_up, gw) = gateway().await;
    let body = json!({"model": "mock/gpt-4o-mini", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    // No key.
    let r = client()
        .post(gw.url("/v1/messages"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");
    // Not JSON.
    let r = client()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", CLIENT_KEY)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    // Unknown model.
    let r = post(&gw, json!({"model": "nope/none", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "not_found_error");
    // The upstream rejects the request: passed through as invalid_request_error.
    let r = post(&gw, json!({"model": "mock/fail-400", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    // Context overflow: 400 "prompt is too long", which Claude Code compacts on.
    let r = post(&gw, json!({"model": "mock/fail-context", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("prompt is too long"),
        "{v}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn probes_and_count_tokens() {
    let (_up, gw) = gateway().await;
    for path in ["/", "/api/hello"] {
        let r = client().head(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "HEAD {path}");
    }
    let r = client()
        .post(gw.url("/v1/messages/count_tokens"))
        .bearer_auth(CLIENT_KEY)
        .json(&json!({"model": "claude-sonnet-4-5", "system": "Be brief.",
                      "messages": [{"role": "user", "content": "How many tokens is this sentence?"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let n = v["input_tokens"].as_u64().unwrap();
    assert!((5..100).contains(&n), "{v}");
    gw.stop().await;
}

#[tokio::test]
async fn responses_answers_and_streams_in_the_responses_shape() {
    let (_up, gw) = gateway().await;
    let r = client()
        .post(gw.url("/v1/responses"))
        .bearer_auth(CLIENT_KEY)
        .json(&json!({"model": "mock/gpt-4o-mini", "instructions": "Be brief.", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-omniroute-translation"],
        "openai-responses->openai"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    let msg = v["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == "message")
        .unwrap();
    assert_eq!(msg["content"][0]["type"], "output_text");
    assert_eq!(msg["content"][0]["text"], "echo: hi");
    assert_eq!(v["usage"]["input_tokens"], 11);
    assert_eq!(v["usage"]["output_tokens"], 7);

    // Streamed, with a function call whose arguments arrive in pieces.
    let r = client()
        .post(gw.url("/v1/responses"))
        .bearer_auth(CLIENT_KEY)
        .json(&json!({"model": "mock/tool-call", "stream": true, "input": "open main",
                      "tools": [{"type": "function", "name": "read_file", "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let evs = events(&r.text().await.unwrap());
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"response.created"), "{names:?}");
    assert_eq!(names.last(), Some(&"response.completed"), "{names:?}");
    assert!(
        names.contains(&"response.function_call_arguments.delta"),
        "{names:?}"
    );
    let done = evs
        .iter()
        .find(|(n, d)| n == "response.output_item.done" && d["item"]["type"] == "function_call")
        .expect("a function_call item");
    assert_eq!(done.1["item"]["name"], "read_file");
    assert_eq!(done.1["item"]["call_id"], "call_fake_1");
    let args: Value = serde_json::from_str(done.1["item"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"path": "src/main.rs"}));
    let completed = &evs.last().unwrap().1;
    assert_eq!(completed["response"]["usage"]["output_tokens"], 9);
    gw.stop().await;
}

#[tokio::test]
async fn gemini_generate_content_and_stream() {
    let (_up, gw) = gateway().await;
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                      "generationConfig": {"maxOutputTokens": 50}});
    // Gemini clients send a bare model id in the path: it goes to the provider that lists it.
    let r = client()
        .post(gw.url(&format!(
            "/v1beta/models/gpt-4o-mini:generateContent?key={CLIENT_KEY}"
        )))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-omniroute-translation"], "gemini->openai");
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "echo: hi"
    );
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    assert_eq!(v["usageMetadata"]["promptTokenCount"], 11);

    let r = client()
        .post(gw.url("/v1beta/models/gpt-4o-mini:streamGenerateContent?alt=sse"))
        .header("x-goog-api-key", CLIENT_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let evs = events(&r.text().await.unwrap());
    let text: String = evs
        .iter()
        .filter_map(|(_, d)| d["candidates"][0]["content"]["parts"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "echo: hi[0][1][2][3][4]");
    assert!(evs
        .iter()
        .any(|(_, d)| d["candidates"][0]["finishReason"] == "STOP"));

    // Errors in Gemini's shape.
    let r = client()
        .post(gw.url("/v1beta/models/nope-model:generateContent"))
        .header("x-goog-api-key", CLIENT_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], 404);
    assert_eq!(v["error"]["status"], "NOT_FOUND");
    let r = client()
        .post(gw.url("/v1beta/models/gpt-4o-mini:generateContent"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    gw.stop().await;
}

#[tokio::test]
async fn responses_are_stored_and_continue_with_previous_response_id() {
    let (up, gw) = gateway().await;
    let post = |body: Value| {
        client()
            .post(gw.url("/v1/responses"))
            .bearer_auth(CLIENT_KEY)
            .json(&body)
            .send()
    };
    let first: Value = post(json!({"model": "mock/gpt-4o-mini", "input": "My name is Ada."}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id1 = first["id"].as_str().unwrap().to_string();
    assert!(id1.starts_with("resp_"), "{first}");
    let got: Value = client()
        .get(gw.url(&format!("/v1/responses/{id1}")))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, first);

    // A streamed follow-up: the upstream sees the earlier turn and its answer.
    let r = post(json!({"model": "mock/gpt-4o-mini", "stream": true,
                        "previous_response_id": id1, "input": "What is my name?"}))
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let evs = events(&r.text().await.unwrap());
    let completed = &evs.last().unwrap().1["response"];
    let id2 = completed["id"].as_str().unwrap().to_string();
    assert_ne!(id2, id1);
    let sent = up.seen.bodies.lock().unwrap().last().cloned().unwrap();
    let msgs = sent["messages"].to_string();
    assert!(
        msgs.contains("My name is Ada.") && msgs.contains("echo: My name is Ada."),
        "{msgs}"
    );
    assert!(msgs.contains("What is my name?"), "{msgs}");

    // A third turn on the streamed one at once, through a combo.
    let third = post(json!({"model": "coding", "previous_response_id": id2, "input": "Again?"}))
        .await
        .unwrap();
    assert_eq!(third.status(), 200);
    let sent = up.seen.bodies.lock().unwrap().last().cloned().unwrap();
    assert_eq!(sent["messages"].as_array().unwrap().len(), 5, "{sent}");
    let id3 = third.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Each stored row is its own turn (input + output), linked to the one
    // before: n turns take O(n) space, not the whole history each time.
    gw.gw.store.flush().await.unwrap();
    let ids = [id1.clone(), id2.clone(), id3.clone()];
    let rows = gw
        .gw
        .store
        .read(move |c| {
            let mut out = Vec::new();
            for id in ids {
                out.push(c.query_row(
                    "SELECT json_array_length(items), previous_id, root_id FROM responses WHERE id = ?1",
                    [&id],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, String>(2)?)),
                )?);
            }
            Ok(out)
        })
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (2, None, id1.clone()),
            (2, Some(id1.clone()), id1.clone()),
            (2, Some(id2.clone()), id1.clone()),
        ]
    );
    // A turn lost from the middle is named when the chain is followed.
    let gone = id2.clone();
    gw.gw
        .store
        .write(move |tx| {
            tx.execute("DELETE FROM responses WHERE id = ?1", [&gone])?;
            Ok(())
        })
        .await
        .unwrap();
    let r =
        post(json!({"model": "mock/gpt-4o-mini", "previous_response_id": id3, "input": "More?"}))
            .await
            .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&id2) && message.contains("no longer stored"),
        "{v}"
    );
    let r = client()
        .get(gw.url(&format!("/v1/responses/{id3}")))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // store: false keeps nothing; unknown ids are 404 in OpenAI's shape.
    let unstored: Value = post(json!({"model": "mock/gpt-4o-mini", "input": "x", "store": false}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    gw.gw.store.flush().await.unwrap();
    let r = client()
        .get(gw.url(&format!(
            "/v1/responses/{}",
            unstored["id"].as_str().unwrap()
        )))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = post(
        json!({"model": "mock/gpt-4o-mini", "previous_response_id": "resp_nope", "input": "x"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("resp_nope"),
        "{v}"
    );
    gw.stop().await;
}

/// Every route that can answer with a stream tells reverse proxies not to
/// buffer it (`x-accel-buffering: no`), with the SSE content type and
/// `cache-control: no-cache`: the proxy's chat stream, the translated ones
/// (Messages, Responses, Gemini, on each alias), A2A's SSE and both MCP
/// transports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_streaming_route_says_not_to_buffer() {
    let (_up, gw) = gateway().await;
    let chat = json!({"model": "mock/gpt-4o-mini", "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]});
    let messages = json!({"model": "mock/gpt-4o-mini", "stream": true, "max_tokens": 32,
                          "messages": [{"role": "user", "content": "hi"}]});
    let responses = json!({"model": "mock/gpt-4o-mini", "stream": true, "input": "hi"});
    let gemini = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let a2a = json!({"jsonrpc": "2.0", "id": "s", "method": "SendStreamingMessage",
        "params": {"message": {"messageId": "m-1", "role": "ROLE_USER",
            "parts": [{"text": "hi"}, {"data": {"model": "mock/gpt-4o-mini"}, "mediaType": "application/json"}],
            "metadata": {"skill": "smart-routing"}}}});
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let gem_path = "mock%2Fgpt-4o-mini:streamGenerateContent?alt=sse";
    let posts: Vec<(String, &Value)> = vec![
        ("/v1/chat/completions".into(), &chat),
        ("/chat/completions".into(), &chat),
        ("/v1/messages".into(), &messages),
        ("/messages".into(), &messages),
        ("/v1/v1/messages".into(), &messages),
        ("/v1/responses".into(), &responses),
        ("/responses".into(), &responses),
        (format!("/v1beta/models/{gem_path}"), &gemini),
        (format!("/v1/models/{gem_path}"), &gemini),
        ("/a2a".into(), &a2a),
        ("/a2a/".into(), &a2a),
        ("/mcp".into(), &initialize),
    ];
    let check = |what: &str, r: &reqwest::Response| {
        assert_eq!(r.status(), 200, "{what}");
        let h = r.headers();
        let header = |name: &str| h.get(name).map(|v| v.to_str().unwrap().to_string());
        assert!(
            header("content-type").is_some_and(|c| c.starts_with("text/event-stream")),
            "{what}: {h:?}"
        );
        assert_eq!(
            header("cache-control").as_deref(),
            Some("no-cache"),
            "{what}"
        );
        assert_eq!(header("x-accel-buffering").as_deref(), Some("no"), "{what}");
    };
    for (path, body) in posts {
        let r = client()
            .post(gw.url(&path))
            .bearer_auth(CLIENT_KEY)
            .header("anthropic-version", "2023-06-01")
            .header("A2A-Version", "1.0")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(body)
            .send()
            .await
            .unwrap();
        check(&format!("POST {path}"), &r);
        if !path.starts_with("/mcp") {
            // The stream runs to its end.
            let text = r.text().await.unwrap();
            assert!(text.contains("data:"), "POST {path}: {text}");
        }
    }
    // The legacy MCP transport's event stream.
    let r = client()
        .get(gw.url("/sse"))
        .header("x-api-key", CLIENT_KEY)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    check("GET /sse", &r);
    drop(r);
    gw.stop().await;
}
