//! OpenAI Chat Completions: `/chat/completions` requests, responses,
//! errors, and (in `stream`) the chunk stream.

mod stream;

pub use stream::{StreamDecoder, StreamEncoder};

use super::canonical::*;
use super::json::*;
use super::{custom_tool_as_function, ClientContext, FormatError, Translated};
use crate::catalog::WireFormat;
use serde_json::{json, Map, Value};

pub fn decode_request(body: &[u8]) -> Result<ChatRequest, FormatError> {
    let obj = parse_object(body)?;
    let v = Value::Object(obj);
    let mut req = ChatRequest {
        model: string_of(&v, "model").unwrap_or_default(),
        ..ChatRequest::default()
    };
    if let Some(n) = u64_of(&v, "n") {
        if n > 1 {
            return Err(FormatError::invalid(
                "n",
                "n>1 is not supported: the gateway returns one choice",
            ));
        }
    }
    let messages = v
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| FormatError::invalid("messages", "`messages` must be an array"))?;
    decode_messages(messages, &mut req)?;
    for t in array_of(&v, "tools") {
        match str_of(t, "type") {
            Some("function") | None => {
                let f = t.get("function").unwrap_or(t);
                req.tools.push(Tool {
                    name: string_of(f, "name").unwrap_or_default(),
                    description: string_of(f, "description"),
                    parameters: f.get("parameters").cloned(),
                    strict: bool_of(f, "strict"),
                    kind: ToolKind::Function,
                    cache: None,
                });
            }
            Some(other) => req.lossy.push(format!("tool of type `{other}` dropped")),
        }
    }
    req.tool_choice = v.get("tool_choice").and_then(decode_tool_choice);
    req.parallel_tool_calls = bool_of(&v, "parallel_tool_calls");
    req.max_output_tokens =
        u32_of(&v, "max_completion_tokens").or_else(|| u32_of(&v, "max_tokens"));
    req.sampling = Sampling {
        temperature: f64_of(&v, "temperature"),
        top_p: f64_of(&v, "top_p"),
        top_k: u32_of(&v, "top_k"),
        stop: string_list(v.get("stop")),
        seed: v.get("seed").and_then(Value::as_i64),
        presence_penalty: f64_of(&v, "presence_penalty"),
        frequency_penalty: f64_of(&v, "frequency_penalty"),
    };
    req.reasoning = str_of(&v, "reasoning_effort").map(|e| match e {
        "none" => ReasoningConfig::Disabled,
        other => ReasoningConfig::Effort(other.to_string()),
    });
    req.response_format = v.get("response_format").and_then(decode_response_format);
    req.user = string_of(&v, "user");
    if let Some(Value::Object(m)) = v.get("metadata") {
        req.metadata = m.clone();
    }
    req.prompt_cache_key = string_of(&v, "prompt_cache_key");
    req.stream = bool_of(&v, "stream").unwrap_or(false);
    req.stream_usage = v
        .get("stream_options")
        .and_then(|o| bool_of(o, "include_usage"))
        .unwrap_or(false);
    for dropped in [
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "audio",
        "modalities",
    ] {
        if v.get(dropped)
            .is_some_and(|x| !x.is_null() && x != &Value::Bool(false))
        {
            req.lossy.push(format!("`{dropped}` is not translated"));
        }
    }
    Ok(req)
}

pub fn decode_response_format(v: &Value) -> Option<ResponseFormat> {
    match str_of(v, "type")? {
        "json_object" => Some(ResponseFormat::JsonObject),
        "json_schema" => {
            let s = v.get("json_schema").unwrap_or(v);
            Some(ResponseFormat::JsonSchema {
                name: string_of(s, "name").unwrap_or_else(|| "response".into()),
                schema: s.get("schema").cloned().unwrap_or(json!({})),
                strict: bool_of(s, "strict"),
            })
        }
        _ => Some(ResponseFormat::Text),
    }
}

fn decode_tool_choice(v: &Value) -> Option<ToolChoice> {
    match v {
        Value::String(s) => match s.as_str() {
            "none" => Some(ToolChoice::None),
            "required" => Some(ToolChoice::Required),
            _ => Some(ToolChoice::Auto),
        },
        Value::Object(_) => {
            let name = v
                .get("function")
                .and_then(|f| str_of(f, "name"))
                .or_else(|| str_of(v, "name"))?;
            Some(ToolChoice::Tool(name.to_string()))
        }
        _ => None,
    }
}

fn content_parts(v: Option<&Value>, req_lossy: &mut Vec<String>) -> Vec<Part> {
    match v {
        Some(Value::String(s)) => vec![Part::text(s.clone())],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|p| match str_of(p, "type") {
                Some("text") | Some("input_text") | Some("output_text") => {
                    Some(Part::text(string_of(p, "text").unwrap_or_default()))
                }
                Some("refusal") => Some(Part::text(string_of(p, "refusal").unwrap_or_default())),
                Some("image_url") => {
                    let iu = p.get("image_url")?;
                    let url = str_of(iu, "url").or_else(|| iu.as_str())?;
                    Some(Part::Image {
                        source: MediaSource::from_url(url),
                        detail: string_of(iu, "detail"),
                    })
                }
                Some("file") => {
                    let f = p.get("file")?;
                    let data = str_of(f, "file_data")?;
                    Some(Part::Document {
                        source: MediaSource::from_url(data),
                        filename: string_of(f, "filename"),
                    })
                }
                other => {
                    req_lossy.push(format!(
                        "content part `{}` dropped",
                        other.unwrap_or("untyped")
                    ));
                    None
                }
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn decode_messages(messages: &[Value], req: &mut ChatRequest) -> Result<(), FormatError> {
    let mut names: Map<String, Value> = Map::new();
    let mut last_was_tool = false;
    for m in messages {
        let role = str_of(m, "role").unwrap_or("user");
        match role {
            "system" | "developer" => {
                if !req.messages.is_empty() {
                    req.lossy.push(
                        "a system message after the first turn was hoisted into the system prompt"
                            .into(),
                    );
                }
                let parts = content_parts(m.get("content"), &mut req.lossy);
                let text = parts
                    .iter()
                    .filter_map(|p| match p {
                        Part::Text { text, .. } => Some(text.as_str()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                req.system.push(SystemBlock { text, cache: None });
                last_was_tool = false;
            }
            "assistant" => {
                let mut parts = Vec::new();
                for key in ["reasoning_content", "reasoning"] {
                    if let Some(r) = str_of(m, key).filter(|r| !r.is_empty()) {
                        parts.push(Part::Reasoning(Reasoning {
                            text: r.to_string(),
                            signature: None,
                            provenance: WireFormat::Openai,
                            redacted: None,
                            id: None,
                        }));
                        break;
                    }
                }
                parts.extend(
                    content_parts(m.get("content"), &mut req.lossy)
                        .into_iter()
                        .filter(|p| !matches!(p, Part::Text { text, .. } if text.is_empty())),
                );
                if let Some(r) = str_of(m, "refusal").filter(|r| !r.is_empty()) {
                    parts.push(Part::text(r));
                }
                for tc in array_of(m, "tool_calls") {
                    let f = tc.get("function").unwrap_or(tc);
                    let id = string_of(tc, "id").unwrap_or_default();
                    let name = string_of(f, "name").unwrap_or_default();
                    names.insert(id.clone(), Value::String(name.clone()));
                    parts.push(Part::ToolCall {
                        id,
                        name,
                        arguments: match f.get("arguments") {
                            Some(Value::String(s)) => s.clone(),
                            Some(other) => other.to_string(),
                            None => "{}".into(),
                        },
                        kind: CallKind::Function,
                        signature: None,
                    });
                }
                push_merged(req, Role::Assistant, parts, false);
                last_was_tool = false;
            }
            "tool" | "function" => {
                let call_id = string_of(m, "tool_call_id")
                    .or_else(|| string_of(m, "name"))
                    .unwrap_or_default();
                let name = names
                    .get(&call_id)
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let content = content_parts(m.get("content"), &mut req.lossy);
                let part = Part::ToolResult {
                    call_id,
                    name,
                    content,
                    is_error: false,
                };
                push_merged(req, Role::User, vec![part], last_was_tool);
                last_was_tool = true;
            }
            _ => {
                let parts = content_parts(m.get("content"), &mut req.lossy);
                push_merged(req, Role::User, parts, false);
                last_was_tool = false;
            }
        }
    }
    Ok(())
}

fn push_merged(req: &mut ChatRequest, role: Role, parts: Vec<Part>, merge: bool) {
    if merge {
        if let Some(last) = req.messages.last_mut() {
            if last.role == role {
                last.parts.extend(parts);
                return;
            }
        }
    }
    req.messages.push(Message { role, parts });
}

/// Text of result parts, joined; images are returned separately.
fn result_text(content: &[Part]) -> (String, Vec<Part>) {
    let mut texts = Vec::new();
    let mut media = Vec::new();
    for p in content {
        match p {
            Part::Text { text, .. } => texts.push(text.clone()),
            Part::Image { .. } | Part::Document { .. } => media.push(p.clone()),
            _ => {}
        }
    }
    (texts.join("\n"), media)
}

fn encode_user_part(p: &Part) -> Option<Value> {
    match p {
        Part::Text { text, .. } => Some(json!({"type": "text", "text": text})),
        Part::Image { source, detail } => {
            let mut iu = json!({"url": source.to_url()});
            if let Some(d) = detail {
                iu["detail"] = json!(d);
            }
            Some(json!({"type": "image_url", "image_url": iu}))
        }
        Part::Document { source, filename } => {
            let mut f = json!({"file_data": source.to_url()});
            if let Some(n) = filename {
                f["filename"] = json!(n);
            }
            Some(json!({"type": "file", "file": f}))
        }
        _ => None,
    }
}

fn user_content(parts: &[Value]) -> Value {
    if parts.len() == 1 && parts[0]["type"] == "text" {
        return parts[0]["text"].clone();
    }
    if !parts.is_empty() && parts.iter().all(|p| p["type"] == "text") {
        let joined: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        return json!(joined.join("\n\n"));
    }
    Value::Array(parts.to_vec())
}

pub fn encode_request(req: &ChatRequest) -> Result<Translated, FormatError> {
    let mut lossy = Vec::new();
    let mut messages = Vec::new();
    let system = req.system_text();
    if !system.is_empty() {
        messages.push(json!({"role": "system", "content": system}));
    }
    let custom_calls = super::custom_call_ids(req);
    for m in &req.messages {
        match m.role {
            Role::User => {
                let mut rest = Vec::new();
                let mut tool_media = Vec::new();
                for p in &m.parts {
                    if let Part::ToolResult {
                        call_id,
                        content,
                        is_error,
                        ..
                    } = p
                    {
                        let (text, media) = result_text(content);
                        let text = if *is_error {
                            format!("Error: {text}")
                        } else {
                            text
                        };
                        messages.push(
                            json!({"role": "tool", "tool_call_id": call_id, "content": text}),
                        );
                        tool_media.extend(media);
                    } else if let Some(v) = encode_user_part(p) {
                        rest.push(v);
                    } else {
                        lossy.push("a non-content part in a user turn was dropped".into());
                    }
                }
                if !tool_media.is_empty() {
                    lossy.push("images in tool results moved to a following user message".into());
                    let media: Vec<Value> =
                        tool_media.iter().filter_map(encode_user_part).collect();
                    messages.push(json!({"role": "user", "content": media}));
                }
                if !rest.is_empty() {
                    messages.push(json!({"role": "user", "content": user_content(&rest)}));
                }
            }
            Role::Assistant => {
                let mut text = String::new();
                let mut calls = Vec::new();
                for p in &m.parts {
                    match p {
                        Part::Text { text: t, .. } => text.push_str(t),
                        Part::ToolCall {
                            id,
                            name,
                            arguments,
                            kind,
                            ..
                        } => {
                            let args = if *kind == CallKind::Custom || custom_calls.contains(id) {
                                json!({"input": arguments}).to_string()
                            } else {
                                arguments.clone()
                            };
                            calls.push(json!({"id": id, "type": "function",
                                "function": {"name": name, "arguments": args}}));
                        }
                        Part::Reasoning(_) => super::note(
                            &mut lossy,
                            "reasoning in history dropped (OpenAI Chat has no field for it)",
                        ),
                        _ => lossy.push("a media part in an assistant turn was dropped".into()),
                    }
                }
                let mut msg = json!({"role": "assistant",
                    "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
                if !calls.is_empty() {
                    msg["tool_calls"] = Value::Array(calls);
                }
                messages.push(msg);
            }
        }
    }
    let mut body = json!({"model": req.model, "messages": messages});
    let tools = encode_tools(&req.tools, &mut lossy);
    if !tools.is_empty() {
        body["tools"] = Value::Array(tools);
    }
    if let Some(tc) = &req.tool_choice {
        body["tool_choice"] = match tc {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Tool(n) => json!({"type": "function", "function": {"name": n}}),
        };
    }
    if let Some(p) = req.parallel_tool_calls {
        body["parallel_tool_calls"] = json!(p);
    }
    if let Some(n) = req.max_output_tokens {
        body["max_tokens"] = json!(n);
    }
    let s = &req.sampling;
    set_opt(&mut body, "temperature", s.temperature.map(|t| json!(t)));
    set_opt(&mut body, "top_p", s.top_p.map(|t| json!(t)));
    if s.top_k.is_some() {
        lossy.push("top_k dropped (OpenAI Chat has none)".into());
    }
    if !s.stop.is_empty() {
        if s.stop.len() > 4 {
            lossy.push("stop sequences truncated to 4".into());
        }
        body["stop"] = json!(s.stop.iter().take(4).collect::<Vec<_>>());
    }
    set_opt(&mut body, "seed", s.seed.map(|t| json!(t)));
    set_opt(
        &mut body,
        "presence_penalty",
        s.presence_penalty.map(|t| json!(t)),
    );
    set_opt(
        &mut body,
        "frequency_penalty",
        s.frequency_penalty.map(|t| json!(t)),
    );
    if let Some(r) = &req.reasoning {
        if let Some(e) = r.effort() {
            body["reasoning_effort"] = json!(e);
        }
    }
    if let Some(rf) = &req.response_format {
        body["response_format"] = encode_response_format(rf);
    }
    set_opt(&mut body, "user", req.user.as_ref().map(|u| json!(u)));
    set_opt(
        &mut body,
        "prompt_cache_key",
        req.prompt_cache_key.as_ref().map(|u| json!(u)),
    );
    if !req.metadata.is_empty() {
        lossy.push("metadata dropped (OpenAI Chat accepts it only with store)".into());
    }
    if req.responses.previous_response_id.is_some() {
        lossy.push("previous_response_id needs the gateway's response store".into());
    }
    if req.stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    Ok(Translated { body, lossy })
}

pub fn encode_response_format(rf: &ResponseFormat) -> Value {
    match rf {
        ResponseFormat::Text => json!({"type": "text"}),
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => {
            let mut s = json!({"name": name, "schema": schema});
            if let Some(st) = strict {
                s["strict"] = json!(st);
            }
            json!({"type": "json_schema", "json_schema": s})
        }
    }
}

fn encode_tools(tools: &[Tool], lossy: &mut Vec<String>) -> Vec<Value> {
    tools
        .iter()
        .filter_map(|t| {
            let (desc, params) = match &t.kind {
                ToolKind::Function => (
                    t.description.clone(),
                    t.parameters
                        .clone()
                        .unwrap_or(json!({"type": "object", "properties": {}})),
                ),
                ToolKind::Custom { format } => custom_tool_as_function(t, format.as_ref()),
                ToolKind::Hosted { .. } => {
                    lossy.push(format!("hosted tool `{}` dropped", t.name));
                    return None;
                }
            };
            let mut f = json!({"name": t.name, "parameters": params});
            if let Some(d) = desc {
                f["description"] = json!(d);
            }
            if let Some(s) = t.strict {
                f["strict"] = json!(s);
            }
            Some(json!({"type": "function", "function": f}))
        })
        .collect()
}

fn set_opt(body: &mut Value, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        body[key] = v;
    }
}

pub fn decode_usage(u: &Value) -> Usage {
    let prompt = u64_of(u, "prompt_tokens").unwrap_or(0);
    let cached = u
        .get("prompt_tokens_details")
        .and_then(|d| u64_of(d, "cached_tokens"))
        .or_else(|| u64_of(u, "prompt_cache_hit_tokens"))
        .unwrap_or(0);
    let write = u
        .get("prompt_tokens_details")
        .and_then(|d| u64_of(d, "cache_creation_tokens"))
        .unwrap_or(0);
    Usage {
        input_tokens: prompt.saturating_sub(cached + write),
        output_tokens: u64_of(u, "completion_tokens").unwrap_or(0),
        cache_read_tokens: cached,
        cache_write_tokens: write,
        reasoning_tokens: u
            .get("completion_tokens_details")
            .and_then(|d| u64_of(d, "reasoning_tokens"))
            .unwrap_or(0),
    }
}

pub fn encode_usage(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_total(),
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total(),
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    })
}

pub fn decode_finish(raw: Option<&str>, saw_tool: bool) -> FinishReason {
    match raw {
        Some("length") => FinishReason::MaxTokens,
        Some("tool_calls") | Some("function_call") => FinishReason::ToolUse,
        Some("content_filter") => FinishReason::ContentFilter,
        _ if saw_tool => FinishReason::ToolUse,
        Some("stop") | None => FinishReason::EndTurn,
        Some(other) => FinishReason::Other(other.to_string()),
    }
}

pub fn encode_finish(f: &FinishReason) -> &'static str {
    match f {
        FinishReason::MaxTokens | FinishReason::ContextWindowExceeded => "length",
        FinishReason::ToolUse => "tool_calls",
        FinishReason::ContentFilter | FinishReason::Refusal => "content_filter",
        _ => "stop",
    }
}

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, FormatError> {
    let v = Value::Object(parse_object(body)?);
    let choice = array_of(&v, "choices")
        .first()
        .cloned()
        .unwrap_or(json!({}));
    let msg = choice.get("message").cloned().unwrap_or(json!({}));
    let mut parts = Vec::new();
    for key in ["reasoning_content", "reasoning"] {
        if let Some(r) = str_of(&msg, key).filter(|r| !r.is_empty()) {
            parts.push(Part::Reasoning(Reasoning {
                text: r.to_string(),
                signature: None,
                provenance: WireFormat::Openai,
                redacted: None,
                id: None,
            }));
            break;
        }
    }
    if let Some(t) = str_of(&msg, "content").filter(|t| !t.is_empty()) {
        parts.push(Part::text(t));
    }
    if let Some(t) = str_of(&msg, "refusal").filter(|t| !t.is_empty()) {
        parts.push(Part::text(t));
    }
    let calls = array_of(&msg, "tool_calls");
    for tc in calls {
        let f = tc.get("function").unwrap_or(tc);
        parts.push(Part::ToolCall {
            id: string_of(tc, "id").unwrap_or_default(),
            name: string_of(f, "name").unwrap_or_default(),
            arguments: string_of(f, "arguments").unwrap_or_default(),
            kind: CallKind::Function,
            signature: None,
        });
    }
    Ok(ChatResponse {
        id: string_of(&v, "id").unwrap_or_default(),
        model: string_of(&v, "model").unwrap_or_default(),
        created: u64_of(&v, "created").unwrap_or(0),
        parts,
        finish: decode_finish(str_of(&choice, "finish_reason"), !calls.is_empty()),
        stop_sequence: None,
        usage: v.get("usage").map(decode_usage).unwrap_or_default(),
    })
}

pub fn encode_response(resp: &ChatResponse, ctx: &ClientContext) -> Translated {
    let mut lossy = Vec::new();
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for p in &resp.parts {
        match p {
            Part::Text { text: t, .. } => text.push_str(t),
            Part::Reasoning(r) => {
                reasoning.push_str(&r.text);
                if r.signature.is_some() || r.redacted.is_some() {
                    super::note(
                        &mut lossy,
                        "reasoning signature dropped (OpenAI Chat cannot carry it)",
                    );
                }
            }
            Part::ToolCall {
                id,
                name,
                arguments,
                kind,
                ..
            } => {
                let args = if *kind == CallKind::Custom {
                    json!({"input": arguments}).to_string()
                } else {
                    arguments.clone()
                };
                calls.push(json!({"id": id, "type": "function",
                    "function": {"name": name, "arguments": args}}));
            }
            _ => lossy.push("a media part in the response was dropped".into()),
        }
    }
    let mut message = json!({"role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
    if !reasoning.is_empty() {
        message["reasoning_content"] = json!(reasoning);
    }
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let body = json!({
        "id": chat_id(&resp.id),
        "object": "chat.completion",
        "created": if ctx.created > 0 { ctx.created } else { resp.created },
        "model": ctx.model_or(&resp.model),
        "choices": [{"index": 0, "message": message, "finish_reason": encode_finish(&resp.finish), "logprobs": null}],
        "usage": encode_usage(&resp.usage),
    });
    Translated { body, lossy }
}

pub fn chat_id(id: &str) -> String {
    if id.starts_with("chatcmpl-") {
        id.to_string()
    } else {
        format!("chatcmpl-{id}")
    }
}

/// OpenAI's error `type` and `code` for a kind, and the status it uses.
fn error_shape(status: u16, kind: ErrorKind) -> (u16, &'static str, Option<&'static str>) {
    match kind {
        ErrorKind::BadRequest => (400, "invalid_request_error", None),
        ErrorKind::ContextTooLong => (
            400,
            "invalid_request_error",
            Some("context_length_exceeded"),
        ),
        ErrorKind::Auth => (401, "invalid_request_error", Some("invalid_api_key")),
        ErrorKind::Billing => (429, "insufficient_quota", Some("insufficient_quota")),
        ErrorKind::Permission => (403, "permission_error", None),
        ErrorKind::NotFound => (404, "invalid_request_error", Some("model_not_found")),
        ErrorKind::RequestTooLarge => (413, "invalid_request_error", Some("request_too_large")),
        ErrorKind::RateLimited => (429, "rate_limit_exceeded", Some("rate_limit_exceeded")),
        ErrorKind::Overloaded => (503, "server_error", Some("overloaded")),
        ErrorKind::Timeout => (504, "server_error", Some("timeout")),
        ErrorKind::Upstream => (
            if status >= 500 { status } else { 502 },
            "server_error",
            None,
        ),
    }
}

pub fn encode_error(status: u16, kind: ErrorKind, message: &str) -> (u16, Value) {
    let (status, ty, code) = error_shape(status, kind);
    (
        status,
        json!({"error": {"message": message, "type": ty, "param": null, "code": code}}),
    )
}

/// The in-stream error chunk body (`data: {"error":…}`).
pub fn stream_error(e: &ErrorInfo) -> Value {
    let (_, ty, code) = error_shape(e.status, e.kind);
    let code = e.code.clone().or(code.map(str::to_string));
    json!({"error": {"message": e.message, "type": ty, "param": null, "code": code}})
}

/// An OpenAI-shaped error body (also used by Responses).
pub fn decode_error_value(status: u16, v: &Value) -> ErrorInfo {
    let e = v.get("error").unwrap_or(v);
    let message = match e {
        Value::String(s) => s.clone(),
        _ => string_of(e, "message").unwrap_or_else(|| v.to_string()),
    };
    let code = string_of(e, "code").or_else(|| string_of(e, "type"));
    let c = code.as_deref().unwrap_or("");
    let kind = if c == "context_length_exceeded" || is_context_overflow(&message) {
        ErrorKind::ContextTooLong
    } else if c == "insufficient_quota" {
        ErrorKind::Billing
    } else if c.contains("rate_limit") {
        ErrorKind::RateLimited
    } else if c == "invalid_api_key" {
        ErrorKind::Auth
    } else if c == "model_not_found" {
        ErrorKind::NotFound
    } else if c.contains("overloaded") {
        ErrorKind::Overloaded
    } else if status == 200 {
        ErrorKind::Upstream
    } else {
        ErrorKind::from_status(status)
    };
    let status = if status == 200 { 502 } else { status };
    ErrorInfo {
        status,
        kind,
        message,
        code,
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
