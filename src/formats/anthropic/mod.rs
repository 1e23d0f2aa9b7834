//! Anthropic Messages: `/v1/messages` requests, responses, errors and (in
//! `stream`) the event stream.

mod stream;

pub use stream::{StreamDecoder, StreamEncoder};

use super::canonical::*;
use super::json::*;
use super::{custom_tool_as_function, ids, note, ClientContext, FormatError, Translated};
use crate::catalog::WireFormat;
use serde_json::{json, Value};

/// `max_tokens` sent when the client gave none (Anthropic requires it).
pub const DEFAULT_MAX_TOKENS: u32 = 8192;
/// The smallest thinking budget Anthropic accepts.
pub const MIN_THINKING_BUDGET: u32 = 1024;
/// `anthropic-version` sent upstream.
pub const API_VERSION: &str = "2023-06-01";
/// Prefix of a foreign reasoning signature shown to an Anthropic client.
pub const GATEWAY_SIGNATURE_PREFIX: &str = "gw1.";

/// A signature as shown to an Anthropic client: its own, or a tagged foreign one.
pub fn client_signature(provenance: WireFormat, sig: &str) -> String {
    if provenance == WireFormat::Anthropic {
        sig.to_string()
    } else {
        format!("{GATEWAY_SIGNATURE_PREFIX}{}.{sig}", provenance.as_str())
    }
}

/// Reverses [`client_signature`].
fn parse_signature(sig: &str) -> (WireFormat, Option<String>) {
    if let Some(rest) = sig.strip_prefix(GATEWAY_SIGNATURE_PREFIX) {
        if let Some((fmt, value)) = rest.split_once('.') {
            let f = match fmt {
                "openai" => Some(WireFormat::Openai),
                "openai-responses" => Some(WireFormat::OpenaiResponses),
                "gemini" => Some(WireFormat::Gemini),
                _ => None,
            };
            if let Some(f) = f {
                return (f, (!value.is_empty()).then(|| value.to_string()));
            }
        }
    }
    (
        WireFormat::Anthropic,
        (!sig.is_empty()).then(|| sig.to_string()),
    )
}

fn decode_source(s: &Value) -> Option<MediaSource> {
    match str_of(s, "type")? {
        "base64" => Some(MediaSource::Base64 {
            media_type: string_of(s, "media_type").unwrap_or_default(),
            data: string_of(s, "data").unwrap_or_default(),
        }),
        "url" => Some(MediaSource::Url {
            url: string_of(s, "url")?,
        }),
        "text" => Some(MediaSource::Base64 {
            media_type: "text/plain".into(),
            data: string_of(s, "data").unwrap_or_default(),
        }),
        _ => None,
    }
}

fn encode_source(s: &MediaSource) -> Value {
    match s {
        MediaSource::Base64 { media_type, data } => {
            json!({"type": "base64", "media_type": media_type, "data": data})
        }
        MediaSource::Url { url } => json!({"type": "url", "url": url}),
    }
}

fn decode_blocks(content: Option<&Value>, lossy: &mut Vec<String>) -> Vec<Part> {
    let items = match content {
        Some(Value::String(s)) => return vec![Part::text(s.clone())],
        Some(Value::Array(a)) => a,
        _ => return Vec::new(),
    };
    items
        .iter()
        .filter_map(|b| match str_of(b, "type")? {
            "text" => Some(Part::Text {
                text: string_of(b, "text").unwrap_or_default(),
                cache: b.get("cache_control").cloned(),
            }),
            "image" => Some(Part::Image {
                source: decode_source(b.get("source")?)?,
                detail: None,
            }),
            "document" => Some(Part::Document {
                source: decode_source(b.get("source")?)?,
                filename: string_of(b, "title"),
            }),
            "tool_use" => Some(Part::ToolCall {
                id: string_of(b, "id").unwrap_or_default(),
                name: string_of(b, "name").unwrap_or_default(),
                arguments: to_arguments(b.get("input").unwrap_or(&Value::Null)),
                kind: CallKind::Function,
                signature: None,
            }),
            "tool_result" => Some(Part::ToolResult {
                call_id: string_of(b, "tool_use_id").unwrap_or_default(),
                name: None,
                content: decode_blocks(b.get("content"), lossy),
                is_error: bool_of(b, "is_error").unwrap_or(false),
            }),
            "thinking" => {
                let (provenance, signature) = parse_signature(str_of(b, "signature").unwrap_or(""));
                Some(Part::Reasoning(Reasoning {
                    text: string_of(b, "thinking").unwrap_or_default(),
                    signature,
                    provenance,
                    redacted: None,
                    id: None,
                }))
            }
            "redacted_thinking" => Some(Part::Reasoning(Reasoning {
                text: String::new(),
                signature: None,
                provenance: WireFormat::Anthropic,
                redacted: string_of(b, "data"),
                id: None,
            })),
            other => {
                lossy.push(format!("content block `{other}` dropped"));
                None
            }
        })
        .collect()
}

pub fn decode_request(body: &[u8]) -> Result<ChatRequest, FormatError> {
    let v = Value::Object(parse_object(body)?);
    let mut req = ChatRequest {
        model: string_of(&v, "model").unwrap_or_default(),
        ..ChatRequest::default()
    };
    match v.get("system") {
        Some(Value::String(s)) => req.system.push(SystemBlock {
            text: s.clone(),
            cache: None,
        }),
        Some(Value::Array(blocks)) => {
            for b in blocks {
                req.system.push(SystemBlock {
                    text: string_of(b, "text").unwrap_or_default(),
                    cache: b.get("cache_control").cloned(),
                });
            }
        }
        _ => {}
    }
    let messages = v
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| FormatError::invalid("messages", "`messages` must be an array"))?;
    for m in messages {
        let role = match str_of(m, "role") {
            Some("assistant") => Role::Assistant,
            _ => Role::User,
        };
        let parts = decode_blocks(m.get("content"), &mut req.lossy);
        req.messages.push(Message { role, parts });
    }
    for t in array_of(&v, "tools") {
        let kind = match str_of(t, "type") {
            None | Some("custom") => ToolKind::Function,
            Some(_) => ToolKind::Hosted {
                format: WireFormat::Anthropic,
                raw: t.clone(),
            },
        };
        req.tools.push(Tool {
            name: string_of(t, "name").unwrap_or_default(),
            description: string_of(t, "description"),
            parameters: t.get("input_schema").cloned(),
            strict: bool_of(t, "strict"),
            kind,
            cache: t.get("cache_control").cloned(),
        });
    }
    if let Some(tc) = v.get("tool_choice") {
        req.tool_choice = match str_of(tc, "type") {
            Some("any") => Some(ToolChoice::Required),
            Some("none") => Some(ToolChoice::None),
            Some("tool") => string_of(tc, "name").map(ToolChoice::Tool),
            _ => Some(ToolChoice::Auto),
        };
        if bool_of(tc, "disable_parallel_tool_use") == Some(true) {
            req.parallel_tool_calls = Some(false);
        }
    }
    req.max_output_tokens = u32_of(&v, "max_tokens");
    req.sampling = Sampling {
        temperature: f64_of(&v, "temperature"),
        top_p: f64_of(&v, "top_p"),
        top_k: u32_of(&v, "top_k"),
        stop: string_list(v.get("stop_sequences")),
        ..Sampling::default()
    };
    if let Some(t) = v.get("thinking") {
        req.reasoning = match str_of(t, "type") {
            Some("enabled") => Some(ReasoningConfig::Budget(
                u32_of(t, "budget_tokens").unwrap_or(MIN_THINKING_BUDGET),
            )),
            Some("adaptive") => Some(ReasoningConfig::Adaptive),
            Some("disabled") => Some(ReasoningConfig::Disabled),
            _ => None,
        };
    }
    if let Some(e) = v.get("output_config").and_then(|o| str_of(o, "effort")) {
        if !matches!(req.reasoning, Some(ReasoningConfig::Budget(_))) {
            req.reasoning = Some(ReasoningConfig::Effort(e.to_string()));
        }
    }
    req.user = v.get("metadata").and_then(|m| string_of(m, "user_id"));
    req.stream = bool_of(&v, "stream").unwrap_or(false);
    req.stream_usage = true;
    for dropped in [
        "context_management",
        "container",
        "mcp_servers",
        "service_tier",
    ] {
        if v.get(dropped).is_some() {
            req.lossy
                .push(format!("`{dropped}` is only kept on an Anthropic upstream"));
        }
    }
    Ok(req)
}

fn encode_part(
    p: &Part,
    custom: &std::collections::HashSet<String>,
    lossy: &mut Vec<String>,
) -> Option<Value> {
    match p {
        Part::Text { text, cache } => {
            if text.is_empty() {
                return None;
            }
            let mut b = json!({"type": "text", "text": text});
            if let Some(c) = cache {
                b["cache_control"] = c.clone();
            }
            Some(b)
        }
        Part::Image { source, .. } => {
            Some(json!({"type": "image", "source": encode_source(source)}))
        }
        Part::Document { source, filename } => {
            let mut b = json!({"type": "document", "source": encode_source(source)});
            if let Some(f) = filename {
                b["title"] = json!(f);
            }
            Some(b)
        }
        Part::ToolCall {
            id,
            name,
            arguments,
            kind,
            ..
        } => {
            let input = if *kind == CallKind::Custom || custom.contains(id) {
                json!({"input": arguments})
            } else {
                let (v, ok) = arguments_to_object(arguments);
                if !ok {
                    note(lossy, "malformed tool-call arguments repaired");
                }
                v
            };
            Some(
                json!({"type": "tool_use", "id": ids::sanitize_tool_id(id), "name": name, "input": input}),
            )
        }
        Part::ToolResult {
            call_id,
            content,
            is_error,
            ..
        } => {
            let blocks: Vec<Value> = content
                .iter()
                .filter_map(|c| encode_part(c, custom, lossy))
                .collect();
            let content = if blocks.len() == 1 && blocks[0]["type"] == "text" {
                blocks[0]["text"].clone()
            } else {
                Value::Array(blocks)
            };
            let mut b = json!({"type": "tool_result", "tool_use_id": ids::sanitize_tool_id(call_id), "content": content});
            if *is_error {
                b["is_error"] = json!(true);
            }
            Some(b)
        }
        Part::Reasoning(r) => {
            if r.provenance != WireFormat::Anthropic {
                note(
                    lossy,
                    "foreign reasoning dropped (Anthropic accepts only its own signed thinking)",
                );
                return None;
            }
            if let Some(data) = &r.redacted {
                return Some(json!({"type": "redacted_thinking", "data": data}));
            }
            match &r.signature {
                Some(sig) => {
                    Some(json!({"type": "thinking", "thinking": r.text, "signature": sig}))
                }
                None => {
                    note(lossy, "unsigned thinking dropped");
                    None
                }
            }
        }
    }
}

/// Whether the last assistant turn with tool calls starts with signed thinking
/// (Anthropic rejects thinking-enabled requests otherwise).
fn tool_turn_has_thinking(msgs: &[Value]) -> bool {
    let last = msgs.iter().rev().find(|m| {
        m["role"] == "assistant"
            && m["content"]
                .as_array()
                .is_some_and(|c| c.iter().any(|b| b["type"] == "tool_use"))
    });
    match last {
        None => true,
        Some(m) => {
            m["content"][0]["type"] == "thinking" || m["content"][0]["type"] == "redacted_thinking"
        }
    }
}

pub fn encode_request(req: &ChatRequest) -> Result<Translated, FormatError> {
    let mut lossy = Vec::new();
    let custom = super::custom_call_ids(req);
    let mut system: Vec<Value> = req
        .system
        .iter()
        .filter(|b| !b.text.is_empty())
        .map(|b| {
            let mut v = json!({"type": "text", "text": b.text});
            if let Some(c) = &b.cache {
                v["cache_control"] = c.clone();
            }
            v
        })
        .collect();
    let mut messages: Vec<Value> = Vec::new();
    for m in &req.messages {
        let role = if m.role == Role::User {
            "user"
        } else {
            "assistant"
        };
        let blocks: Vec<Value> = m
            .parts
            .iter()
            .filter_map(|p| encode_part(p, &custom, &mut lossy))
            .collect();
        match messages.last_mut() {
            Some(last) if last["role"] == role => {
                if let Value::Array(prev) = &mut last["content"] {
                    prev.extend(blocks);
                }
            }
            _ => messages.push(json!({"role": role, "content": blocks})),
        }
    }
    // Tool results first in their user turn, and one for every call of the turn before.
    for i in 0..messages.len() {
        if messages[i]["role"] != "user" {
            continue;
        }
        let calls: Vec<String> = match i.checked_sub(1).map(|p| &messages[p]["content"]) {
            Some(Value::Array(c)) => c
                .iter()
                .filter(|b| b["type"] == "tool_use")
                .filter_map(|b| b["id"].as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        if let Value::Array(c) = &mut messages[i]["content"] {
            c.sort_by_key(|b| b["type"] != "tool_result");
            fill_missing_results(c, &calls, &mut lossy);
        }
    }
    messages.retain(|m| m["content"].as_array().is_some_and(|c| !c.is_empty()));
    if let Some(rf) = &req.response_format {
        let instruction = match rf {
            ResponseFormat::Text => None,
            ResponseFormat::JsonObject => Some("Respond with a single JSON object and nothing else.".to_string()),
            ResponseFormat::JsonSchema { schema, .. } => {
                Some(format!("Respond with a single JSON object that matches this JSON Schema, and nothing else:\n{schema}"))
            }
        };
        if let Some(i) = instruction {
            lossy.push("response_format became a system instruction".into());
            system.push(json!({"type": "text", "text": i}));
        }
    }
    let mut max_tokens = req.max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let mut body = json!({"model": req.model, "max_tokens": max_tokens, "messages": messages});
    if !system.is_empty() {
        body["system"] = Value::Array(system);
    }
    let tools = encode_tools(&req.tools, &mut lossy);
    if !tools.is_empty() {
        body["tools"] = Value::Array(tools);
    }
    let mut choice = req.tool_choice.as_ref().map(|tc| match tc {
        ToolChoice::Auto => json!({"type": "auto"}),
        ToolChoice::None => json!({"type": "none"}),
        ToolChoice::Required => json!({"type": "any"}),
        ToolChoice::Tool(n) => json!({"type": "tool", "name": n}),
    });
    if req.parallel_tool_calls == Some(false) && !req.tools.is_empty() {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        c["disable_parallel_tool_use"] = json!(true);
    }
    if let Some(c) = choice {
        body["tool_choice"] = c;
    }
    let budget = req
        .reasoning
        .as_ref()
        .and_then(ReasoningConfig::budget)
        .filter(|b| *b > 0);
    let thinking = match budget {
        Some(_)
            if !tool_turn_has_thinking(
                body["messages"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[]),
            ) =>
        {
            lossy.push(
                "thinking disabled: the last tool turn has no Anthropic-signed thinking to replay"
                    .into(),
            );
            None
        }
        other => other,
    };
    let s = &req.sampling;
    if let Some(b) = thinking {
        let b = b.max(MIN_THINKING_BUDGET);
        if b >= max_tokens {
            max_tokens += b;
            body["max_tokens"] = json!(max_tokens);
        }
        body["thinking"] = json!({"type": "enabled", "budget_tokens": b});
        if s.temperature.is_some() || s.top_k.is_some() {
            lossy.push("temperature/top_k dropped: Anthropic forbids them with thinking".into());
        }
    } else {
        if let Some(t) = s.temperature {
            if t > 1.0 {
                lossy.push("temperature clamped to 1".into());
            }
            body["temperature"] = json!(t.min(1.0));
        }
        if let Some(k) = s.top_k {
            body["top_k"] = json!(k);
        }
    }
    if let Some(p) = s.top_p {
        body["top_p"] = json!(p);
    }
    if !s.stop.is_empty() {
        body["stop_sequences"] = json!(s.stop);
    }
    if s.seed.is_some() || s.presence_penalty.is_some() || s.frequency_penalty.is_some() {
        lossy.push("seed/penalties dropped (Anthropic has none)".into());
    }
    if let Some(u) = &req.user {
        body["metadata"] = json!({"user_id": u});
    }
    if req.responses.previous_response_id.is_some() {
        lossy.push("previous_response_id needs the gateway's response store".into());
    }
    if req.stream {
        body["stream"] = json!(true);
    }
    Ok(Translated { body, lossy })
}

fn fill_missing_results(blocks: &mut Vec<Value>, calls: &[String], lossy: &mut Vec<String>) {
    let mut at = blocks
        .iter()
        .take_while(|b| b["type"] == "tool_result")
        .count();
    for id in calls {
        if !blocks
            .iter()
            .any(|b| b["type"] == "tool_result" && b["tool_use_id"] == id.as_str())
        {
            note(lossy, "missing tool result synthesised");
            blocks.insert(at, json!({"type": "tool_result", "tool_use_id": id, "content": "(no result)", "is_error": true}));
            at += 1;
        }
    }
}

fn encode_tools(tools: &[Tool], lossy: &mut Vec<String>) -> Vec<Value> {
    tools
        .iter()
        .filter_map(|t| {
            let (desc, schema) = match &t.kind {
                ToolKind::Hosted {
                    format: WireFormat::Anthropic,
                    raw,
                } => return Some(raw.clone()),
                ToolKind::Hosted { .. } => {
                    lossy.push(format!("hosted tool `{}` dropped", t.name));
                    return None;
                }
                ToolKind::Custom { format } => custom_tool_as_function(t, format.as_ref()),
                ToolKind::Function => (
                    t.description.clone(),
                    t.parameters
                        .clone()
                        .unwrap_or(json!({"type": "object", "properties": {}})),
                ),
            };
            let mut v = json!({"name": t.name, "input_schema": schema});
            if let Some(d) = desc {
                v["description"] = json!(d);
            }
            if let Some(c) = &t.cache {
                v["cache_control"] = c.clone();
            }
            Some(v)
        })
        .collect()
}

pub fn decode_usage(u: &Value) -> Usage {
    Usage {
        input_tokens: u64_of(u, "input_tokens").unwrap_or(0),
        output_tokens: u64_of(u, "output_tokens").unwrap_or(0),
        cache_read_tokens: u64_of(u, "cache_read_input_tokens").unwrap_or(0),
        cache_write_tokens: u64_of(u, "cache_creation_input_tokens").unwrap_or(0),
        reasoning_tokens: 0,
    }
}

pub fn encode_usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
        "output_tokens": u.output_tokens,
    })
}

pub fn decode_finish(raw: Option<&str>) -> FinishReason {
    match raw {
        Some("end_turn") | None => FinishReason::EndTurn,
        Some("max_tokens") => FinishReason::MaxTokens,
        Some("stop_sequence") => FinishReason::StopSequence,
        Some("tool_use") => FinishReason::ToolUse,
        Some("pause_turn") => FinishReason::PauseTurn,
        Some("refusal") => FinishReason::Refusal,
        Some("model_context_window_exceeded") => FinishReason::ContextWindowExceeded,
        Some(other) => FinishReason::Other(other.to_string()),
    }
}

pub fn encode_finish(f: &FinishReason) -> &'static str {
    match f {
        FinishReason::MaxTokens => "max_tokens",
        FinishReason::StopSequence => "stop_sequence",
        FinishReason::ToolUse => "tool_use",
        FinishReason::ContentFilter | FinishReason::Refusal => "refusal",
        FinishReason::PauseTurn => "pause_turn",
        FinishReason::ContextWindowExceeded => "model_context_window_exceeded",
        _ => "end_turn",
    }
}

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, FormatError> {
    let v = Value::Object(parse_object(body)?);
    let mut lossy = Vec::new();
    let parts = decode_blocks(v.get("content"), &mut lossy);
    Ok(ChatResponse {
        id: string_of(&v, "id").unwrap_or_default(),
        model: string_of(&v, "model").unwrap_or_default(),
        created: 0,
        parts,
        finish: decode_finish(str_of(&v, "stop_reason")),
        stop_sequence: string_of(&v, "stop_sequence"),
        usage: v.get("usage").map(decode_usage).unwrap_or_default(),
    })
}

pub fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_string()
    } else {
        format!("msg_{id}")
    }
}

pub fn encode_response(resp: &ChatResponse, ctx: &ClientContext) -> Translated {
    let mut lossy = Vec::new();
    let content: Vec<Value> = resp
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Reasoning(r) => match &r.redacted {
                Some(d) if r.provenance == WireFormat::Anthropic => Some(json!({"type": "redacted_thinking", "data": d})),
                _ => Some(json!({"type": "thinking", "thinking": r.text,
                    "signature": r.signature.as_deref().map(|s| client_signature(r.provenance, s)).unwrap_or_default()})),
            },
            Part::ToolCall { id, name, arguments, kind, .. } => {
                let input = if *kind == CallKind::Custom {
                    json!({"input": arguments})
                } else {
                    let (v, ok) = arguments_to_object(arguments);
                    if !ok {
                        note(&mut lossy, "malformed tool-call arguments repaired");
                    }
                    v
                };
                Some(json!({"type": "tool_use", "id": ids::sanitize_tool_id(id), "name": name, "input": input}))
            }
            Part::Text { text, .. } if text.is_empty() => None,
            Part::Text { text, .. } => Some(json!({"type": "text", "text": text})),
            _ => {
                lossy.push("a media part in the response was dropped".into());
                None
            }
        })
        .collect();
    let body = json!({
        "id": message_id(&resp.id),
        "type": "message",
        "role": "assistant",
        "model": ctx.model_or(&resp.model),
        "content": content,
        "stop_reason": encode_finish(&resp.finish),
        "stop_sequence": resp.stop_sequence,
        "usage": encode_usage(&resp.usage),
    });
    Translated { body, lossy }
}

fn error_shape(status: u16, kind: ErrorKind) -> (u16, &'static str) {
    match kind {
        ErrorKind::BadRequest | ErrorKind::ContextTooLong => (400, "invalid_request_error"),
        ErrorKind::Auth => (401, "authentication_error"),
        ErrorKind::Billing => (402, "billing_error"),
        ErrorKind::Permission => (403, "permission_error"),
        ErrorKind::NotFound => (404, "not_found_error"),
        ErrorKind::RequestTooLarge => (413, "request_too_large"),
        ErrorKind::RateLimited => (429, "rate_limit_error"),
        ErrorKind::Overloaded => (529, "overloaded_error"),
        ErrorKind::Timeout => (504, "timeout_error"),
        ErrorKind::Upstream => (if status >= 500 { status } else { 500 }, "api_error"),
    }
}

fn error_message(kind: ErrorKind, message: &str) -> String {
    // Claude Code compacts its context on this phrase; anything else loops.
    if kind == ErrorKind::ContextTooLong
        && !message.to_ascii_lowercase().contains("prompt is too long")
    {
        format!("prompt is too long: {message}")
    } else {
        message.to_string()
    }
}

pub fn error_body(kind: ErrorKind, status: u16, message: &str) -> Value {
    let (_, ty) = error_shape(status, kind);
    json!({"type": "error", "error": {"type": ty, "message": error_message(kind, message)}})
}

pub fn encode_error(status: u16, kind: ErrorKind, message: &str) -> (u16, Value) {
    let (status, _) = error_shape(status, kind);
    (status, error_body(kind, status, message))
}

pub fn decode_error_value(status: u16, v: &Value) -> ErrorInfo {
    let e = v.get("error").unwrap_or(v);
    let ty = string_of(e, "type");
    let message = string_of(e, "message").unwrap_or_else(|| v.to_string());
    let kind = match ty.as_deref() {
        _ if is_context_overflow(&message) => ErrorKind::ContextTooLong,
        Some("invalid_request_error") => ErrorKind::BadRequest,
        Some("authentication_error") => ErrorKind::Auth,
        Some("billing_error") => ErrorKind::Billing,
        Some("permission_error") => ErrorKind::Permission,
        Some("not_found_error") => ErrorKind::NotFound,
        Some("request_too_large") => ErrorKind::RequestTooLarge,
        Some("rate_limit_error") => ErrorKind::RateLimited,
        Some("overloaded_error") => ErrorKind::Overloaded,
        Some("timeout_error") => ErrorKind::Timeout,
        Some("api_error") => ErrorKind::Upstream,
        _ if status == 200 => ErrorKind::Upstream,
        _ => ErrorKind::from_status(status),
    };
    let status = if status == 200 {
        error_shape(502, kind).0
    } else {
        status
    };
    ErrorInfo {
        status,
        kind,
        message,
        code: ty,
    }
}

pub fn decode_error(status: u16, body: &[u8]) -> ErrorInfo {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => decode_error_value(status, &v),
        Err(_) => ErrorInfo::new(
            ErrorKind::from_status(status),
            status,
            String::from_utf8_lossy(body)
                .chars()
                .take(500)
                .collect::<String>(),
        ),
    }
}
