//! Context relay: when a conversation moves to a target whose context window
//! is too small for it (after a quota or breaker fallback), the older turns
//! are summarised by the combo's summariser model and the summary plus the
//! recent turns are sent instead of skipping the target.

use super::{json_len, ChatCall, ChatOutcome};
use crate::gateway::Gateway;
use serde_json::{json, Map, Value};
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

const SUMMARY_PROMPT: &str = "You write handoff summaries. Another assistant will continue this \
conversation from your summary plus the most recent messages, which it will also see. Keep every \
fact, decision, file name, identifier, error, open task and instruction from the user; drop \
pleasantries; be concise.";

/// The text of one OpenAI Chat message for a transcript.
fn message_text(m: &Value) -> String {
    let mut text = match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    };
    for call in m["tool_calls"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "\n[called {}({})]",
            call["function"]["name"].as_str().unwrap_or("?"),
            call["function"]["arguments"].as_str().unwrap_or("")
        ));
    }
    text
}

/// Where the kept recent turns begin: as many as fit in half the window,
/// at least the last one, never starting on a tool result.
fn split_point(messages: &[Value], head: usize, window: u32) -> usize {
    let budget = window as usize / 2 * 4;
    let mut start = messages.len();
    let mut used = 0;
    while start > head + 1 {
        let len = json_len(&messages[start - 1]);
        if used + len > budget && start < messages.len() {
            break;
        }
        used += len;
        start -= 1;
    }
    while start + 1 < messages.len() && messages[start]["role"] == "tool" {
        start += 1;
    }
    start
}

type Relayed<'a> =
    Pin<Box<dyn Future<Output = Result<(Map<String, Value>, String), String>> + Send + 'a>>;

/// `body` with its older turns replaced by a summary from `summarizer`;
/// the note says what happened, for the route header. Boxed: the summary
/// goes through the router like any request, so this future is inside it.
pub(super) fn summarise<'a>(
    gw: &'a Gateway,
    call: &'a ChatCall,
    body: &'a Map<String, Value>,
    window: u32,
    summarizer: &'a str,
) -> Relayed<'a> {
    Box::pin(summarise_inner(gw, call, body, window, summarizer))
}

async fn summarise_inner(
    gw: &Gateway,
    call: &ChatCall,
    body: &Map<String, Value>,
    window: u32,
    summarizer: &str,
) -> Result<(Map<String, Value>, String), String> {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("the request has no messages")?;
    let head = messages
        .iter()
        .take_while(|m| matches!(m["role"].as_str(), Some("system" | "developer")))
        .count();
    let start = split_point(messages, head, window);
    if start <= head {
        return Err("nothing older than the last turn to summarise".into());
    }
    let transcript: String = messages[head..start]
        .iter()
        .map(|m| {
            format!(
                "{}: {}\n\n",
                m["role"].as_str().unwrap_or("?"),
                message_text(m)
            )
        })
        .collect();
    let request = json!({
        "model": summarizer,
        "max_tokens": 1024,
        "messages": [
            {"role": "system", "content": SUMMARY_PROMPT},
            {"role": "user", "content": format!("Summarise this conversation so far:\n\n{transcript}")},
        ],
    });
    let Value::Object(request) = request else {
        return Err("summary request is not an object".into());
    };
    let sub = ChatCall {
        request_id: format!("{}-relay", call.request_id),
        key_id: call.key_id.clone(),
        endpoint: "context_relay",
        body: request,
        started: Instant::now(),
        session: None,
        native: None,
        hints: Default::default(),
    };
    let answer = match super::chat(gw, sub)
        .await
        .map_err(|e| format!("summariser: {e}"))?
    {
        ChatOutcome::Complete { status, body, .. } if status < 300 => body,
        ChatOutcome::Complete { status, .. } => {
            return Err(format!("summariser answered HTTP {status}"))
        }
        ChatOutcome::Stream { .. } => return Err("summariser streamed".into()),
    };
    let v: Value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
    let summary = v
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .ok_or("the summariser gave no text")?;
    let mut relayed = messages[..head].to_vec();
    relayed.push(json!({
        "role": "user",
        "content": format!("[Summary of the earlier conversation, written for a handoff]\n{summary}"),
    }));
    relayed.extend_from_slice(&messages[start..]);
    let mut out = body.clone();
    out.insert("messages".into(), Value::Array(relayed));
    Ok((
        out,
        format!(
            "summarised {} earlier messages with {summarizer}",
            start - head
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_recent_turns_and_never_starts_on_a_tool_result() {
        let big = "x".repeat(4000);
        let msgs = vec![
            json!({"role": "system", "content": "sys"}),
            json!({"role": "user", "content": big}),
            json!({"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}),
            json!({"role": "tool", "content": big}),
            json!({"role": "user", "content": "last"}),
        ];
        // A window of 1000 tokens keeps ~2000 bytes: only the last message fits,
        let start = split_point(&msgs, 1, 1000);
        assert_eq!(start, 4);
        // and a tool result is never the first kept message.
        let start = split_point(&msgs, 1, 2400);
        assert_ne!(msgs[start]["role"], "tool");
        assert!(message_text(&msgs[2]).contains("[called f({})]"));
    }
}
