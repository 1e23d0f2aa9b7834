//! OpenAI Responses: `/responses` requests (items), responses, and (in
//! `stream`) the `response.*` event stream. Errors use OpenAI's shape.

mod stream;

pub use stream::{StreamDecoder, StreamEncoder};

use super::canonical::*;
use super::json::*;
use super::{ids, note, ClientContext, FormatError, Translated};
use crate::catalog::WireFormat;
use serde_json::{json, Map, Value};

fn input_parts(content: Option<&Value>, lossy: &mut Vec<String>) -> Vec<Part> {
    match content {
        Some(Value::String(s)) => vec![Part::text(s.clone())],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|p| match str_of(p, "type")? {
                "input_text" | "output_text" | "text" => {
                    Some(Part::text(string_of(p, "text").unwrap_or_default()))
                }
                "refusal" => Some(Part::text(string_of(p, "refusal").unwrap_or_default())),
                "input_image" => match str_of(p, "image_url") {
                    Some(url) => Some(Part::Image {
                        source: MediaSource::from_url(url),
                        // "auto" is the default: keep only a real choice
                        detail: string_of(p, "detail").filter(|d| d != "auto"),
                    }),
                    None => {
                        lossy.push("input_image by file_id dropped".into());
                        None
                    }
                },
                "input_file" => match str_of(p, "file_data").or_else(|| str_of(p, "file_url")) {
                    Some(data) => Some(Part::Document {
                        source: MediaSource::from_url(data),
                        filename: string_of(p, "filename"),
                    }),
                    None => {
                        lossy.push("input_file by file_id dropped".into());
                        None
                    }
                },
                other => {
                    lossy.push(format!("content part `{other}` dropped"));
                    None
                }
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn push_part(req: &mut ChatRequest, role: Role, part: Part, merge_results: bool) {
    if let Some(last) = req.messages.last_mut() {
        let mergeable = match role {
            Role::Assistant => last.role == Role::Assistant,
            Role::User => {
                merge_results
                    && last.role == Role::User
                    && last
                        .parts
                        .iter()
                        .all(|p| matches!(p, Part::ToolResult { .. }))
            }
        };
        if mergeable {
            last.parts.push(part);
            return;
        }
    }
    req.messages.push(Message {
        role,
        parts: vec![part],
    });
}

fn reasoning_text(item: &Value) -> String {
    let summary: Vec<&str> = array_of(item, "summary")
        .iter()
        .filter_map(|s| str_of(s, "text"))
        .collect();
    if !summary.is_empty() {
        return summary.join("\n\n");
    }
    array_of(item, "content")
        .iter()
        .filter_map(|s| str_of(s, "text"))
        .collect::<Vec<_>>()
        .join("")
}

fn decode_item(item: &Value, req: &mut ChatRequest) {
    let ty = str_of(item, "type").unwrap_or("message");
    match ty {
        "message" => {
            let role = str_of(item, "role").unwrap_or("user");
            let parts = input_parts(item.get("content"), &mut req.lossy);
            match role {
                "system" | "developer" => {
                    if !req.messages.is_empty() {
                        req.lossy.push("a system message after the first turn was hoisted into the system prompt".into());
                    }
                    let text = parts
                        .iter()
                        .filter_map(|p| match p {
                            Part::Text { text, .. } => Some(text.as_str()),
                            _ => None,
                        })
                        .collect::<Vec<_>>()
                        .join("\n");
                    req.system.push(SystemBlock { text, cache: None });
                }
                "assistant" => {
                    for p in parts {
                        push_part(req, Role::Assistant, p, false);
                    }
                }
                _ => req.messages.push(Message {
                    role: Role::User,
                    parts,
                }),
            }
        }
        "function_call" | "custom_tool_call" => {
            let custom = ty == "custom_tool_call";
            let part = Part::ToolCall {
                id: string_of(item, "call_id").unwrap_or_default(),
                name: string_of(item, "name").unwrap_or_default(),
                arguments: string_of(item, if custom { "input" } else { "arguments" })
                    .unwrap_or_default(),
                kind: if custom {
                    CallKind::Custom
                } else {
                    CallKind::Function
                },
                signature: None,
            };
            push_part(req, Role::Assistant, part, false);
        }
        "function_call_output" | "custom_tool_call_output" => {
            let content = match item.get("output") {
                Some(Value::String(s)) => vec![Part::text(s.clone())],
                other => input_parts(other, &mut req.lossy),
            };
            let part = Part::ToolResult {
                call_id: string_of(item, "call_id").unwrap_or_default(),
                name: None,
                content,
                is_error: false,
            };
            push_part(req, Role::User, part, true);
        }
        "reasoning" => {
            let part = Part::Reasoning(Reasoning {
                text: reasoning_text(item),
                signature: string_of(item, "encrypted_content"),
                provenance: WireFormat::OpenaiResponses,
                redacted: None,
                id: string_of(item, "id"),
            });
            push_part(req, Role::Assistant, part, false);
        }
        other => req.lossy.push(format!("input item `{other}` dropped")),
    }
}

pub fn decode_request(body: &[u8]) -> Result<ChatRequest, FormatError> {
    let v = Value::Object(parse_object(body)?);
    let mut req = ChatRequest {
        model: string_of(&v, "model").unwrap_or_default(),
        ..ChatRequest::default()
    };
    if let Some(i) = str_of(&v, "instructions").filter(|i| !i.is_empty()) {
        req.system.push(SystemBlock {
            text: i.to_string(),
            cache: None,
        });
        req.responses.instructions = true;
    }
    match v.get("input") {
        Some(Value::String(s)) => req.messages.push(Message {
            role: Role::User,
            parts: vec![Part::text(s.clone())],
        }),
        Some(Value::Array(items)) => {
            for item in items {
                decode_item(item, &mut req);
            }
        }
        None if str_of(&v, "previous_response_id").is_some() => {}
        _ => {
            return Err(FormatError::invalid(
                "input",
                "`input` must be a string or an array of items",
            ))
        }
    }
    for t in array_of(&v, "tools") {
        let name = string_of(t, "name").unwrap_or_default();
        let tool = match str_of(t, "type") {
            Some("function") => Tool {
                name,
                description: string_of(t, "description"),
                parameters: t.get("parameters").cloned(),
                strict: bool_of(t, "strict"),
                kind: ToolKind::Function,
                cache: None,
            },
            Some("custom") => Tool {
                name,
                description: string_of(t, "description"),
                parameters: None,
                strict: None,
                kind: ToolKind::Custom {
                    format: t.get("format").cloned(),
                },
                cache: None,
            },
            other => Tool {
                name: if name.is_empty() {
                    other.unwrap_or("hosted").to_string()
                } else {
                    name
                },
                description: None,
                parameters: None,
                strict: None,
                kind: ToolKind::Hosted {
                    format: WireFormat::OpenaiResponses,
                    raw: t.clone(),
                },
                cache: None,
            },
        };
        req.tools.push(tool);
    }
    req.tool_choice = match v.get("tool_choice") {
        Some(Value::String(s)) => Some(match s.as_str() {
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => ToolChoice::Auto,
        }),
        Some(o @ Value::Object(_)) => string_of(o, "name").map(ToolChoice::Tool),
        _ => None,
    };
    req.parallel_tool_calls = bool_of(&v, "parallel_tool_calls");
    req.max_output_tokens = u32_of(&v, "max_output_tokens");
    req.sampling.temperature = f64_of(&v, "temperature");
    req.sampling.top_p = f64_of(&v, "top_p");
    if let Some(r) = v.get("reasoning") {
        req.reasoning = str_of(r, "effort").map(|e| match e {
            "none" => ReasoningConfig::Disabled,
            e => ReasoningConfig::Effort(e.to_string()),
        });
        req.responses.reasoning_summary = string_of(r, "summary");
    }
    if let Some(f) = v.get("text").and_then(|t| t.get("format")) {
        req.response_format = match str_of(f, "type") {
            Some("json_schema") => Some(ResponseFormat::JsonSchema {
                name: string_of(f, "name").unwrap_or_else(|| "response".into()),
                schema: f.get("schema").cloned().unwrap_or(json!({})),
                strict: bool_of(f, "strict"),
            }),
            Some("json_object") => Some(ResponseFormat::JsonObject),
            _ => None,
        };
    }
    if let Some(Value::Object(m)) = v.get("metadata") {
        req.metadata = m.clone();
    }
    req.user = string_of(&v, "user");
    req.prompt_cache_key = string_of(&v, "prompt_cache_key");
    req.responses.store = bool_of(&v, "store");
    req.responses.previous_response_id = string_of(&v, "previous_response_id");
    req.responses.include = string_list(v.get("include"));
    req.stream = bool_of(&v, "stream").unwrap_or(false);
    req.stream_usage = true;
    Ok(req)
}

fn output_text(content: &[Part]) -> String {
    content
        .iter()
        .filter_map(|p| match p {
            Part::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn user_content(p: &Part) -> Option<Value> {
    match p {
        Part::Text { text, .. } => Some(json!({"type": "input_text", "text": text})),
        Part::Image { source, detail } => Some(
            json!({"type": "input_image", "image_url": source.to_url(), "detail": detail.clone().unwrap_or_else(|| "auto".into())}),
        ),
        Part::Document { source, filename } => {
            let mut v = json!({"type": "input_file", "file_data": source.to_url()});
            if let Some(f) = filename {
                v["filename"] = json!(f);
            }
            Some(v)
        }
        _ => None,
    }
}

pub fn encode_request(req: &ChatRequest) -> Result<Translated, FormatError> {
    let mut lossy = Vec::new();
    let custom = super::custom_call_ids(req);
    let mut input = Vec::new();
    for m in &req.messages {
        match m.role {
            Role::User => {
                let mut content = Vec::new();
                for p in &m.parts {
                    match p {
                        Part::ToolResult {
                            call_id,
                            content: c,
                            is_error,
                            ..
                        } => {
                            let has_media = c.iter().any(|p| !matches!(p, Part::Text { .. }));
                            let mut output = if has_media {
                                Value::Array(c.iter().filter_map(user_content).collect())
                            } else {
                                json!(output_text(c))
                            };
                            if *is_error {
                                if let Value::String(s) = &output {
                                    output = json!(format!("Error: {s}"));
                                }
                            }
                            let ty = if custom.contains(call_id) {
                                "custom_tool_call_output"
                            } else {
                                "function_call_output"
                            };
                            input.push(json!({"type": ty, "call_id": call_id, "output": output}));
                        }
                        other => {
                            if let Some(c) = user_content(other) {
                                content.push(c);
                            }
                        }
                    }
                }
                if !content.is_empty() {
                    input.push(json!({"type": "message", "role": "user", "content": content}));
                }
            }
            Role::Assistant => {
                let mut text = String::new();
                let flush = |text: &mut String, input: &mut Vec<Value>| {
                    if !text.is_empty() {
                        input.push(json!({"type": "message", "role": "assistant",
                            "content": [{"type": "output_text", "text": std::mem::take(text), "annotations": []}]}));
                    }
                };
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
                            flush(&mut text, &mut input);
                            if *kind == CallKind::Custom || custom.contains(id) {
                                input.push(json!({"type": "custom_tool_call", "call_id": id, "name": name, "input": arguments}));
                            } else {
                                input.push(json!({"type": "function_call", "call_id": id, "name": name, "arguments": arguments}));
                            }
                        }
                        Part::Reasoning(r)
                            if r.provenance == WireFormat::OpenaiResponses
                                && r.signature.is_some() =>
                        {
                            flush(&mut text, &mut input);
                            let mut item = json!({"type": "reasoning",
                                "summary": if r.text.is_empty() { json!([]) } else { json!([{"type": "summary_text", "text": r.text}]) },
                                "encrypted_content": r.signature});
                            if let Some(id) = &r.id {
                                item["id"] = json!(id);
                            }
                            input.push(item);
                        }
                        Part::Reasoning(_) => {
                            note(&mut lossy, "reasoning not made by OpenAI Responses dropped")
                        }
                        _ => note(&mut lossy, "a media part in an assistant turn was dropped"),
                    }
                }
                flush(&mut text, &mut input);
            }
        }
    }
    let mut body = json!({"model": req.model, "input": input});
    let system = req.system_text();
    if !system.is_empty() {
        body["instructions"] = json!(system);
    }
    let tools: Vec<Value> = req
        .tools
        .iter()
        .filter_map(|t| match &t.kind {
            ToolKind::Function => {
                let mut v = json!({"type": "function", "name": t.name,
                    "parameters": t.parameters.clone().unwrap_or(json!({"type": "object", "properties": {}}))});
                if let Some(d) = &t.description {
                    v["description"] = json!(d);
                }
                if let Some(s) = t.strict {
                    v["strict"] = json!(s);
                }
                Some(v)
            }
            ToolKind::Custom { format } => {
                let mut v = json!({"type": "custom", "name": t.name});
                if let Some(d) = &t.description {
                    v["description"] = json!(d);
                }
                if let Some(f) = format {
                    v["format"] = f.clone();
                }
                Some(v)
            }
            ToolKind::Hosted { format: WireFormat::OpenaiResponses, raw } => Some(raw.clone()),
            ToolKind::Hosted { .. } => {
                lossy.push(format!("hosted tool `{}` dropped", t.name));
                None
            }
        })
        .collect();
    if !tools.is_empty() {
        body["tools"] = Value::Array(tools);
    }
    if let Some(tc) = &req.tool_choice {
        body["tool_choice"] = match tc {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Tool(n) => json!({"type": "function", "name": n}),
        };
    }
    if let Some(p) = req.parallel_tool_calls {
        body["parallel_tool_calls"] = json!(p);
    }
    if let Some(n) = req.max_output_tokens {
        body["max_output_tokens"] = json!(n);
    }
    let s = &req.sampling;
    if let Some(t) = s.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(t) = s.top_p {
        body["top_p"] = json!(t);
    }
    if s.top_k.is_some()
        || !s.stop.is_empty()
        || s.seed.is_some()
        || s.presence_penalty.is_some()
        || s.frequency_penalty.is_some()
    {
        lossy.push("top_k/stop/seed/penalties dropped (Responses has none)".into());
    }
    if let Some(e) = req.reasoning.as_ref().and_then(ReasoningConfig::effort) {
        let mut r = json!({"effort": e});
        if let Some(sm) = &req.responses.reasoning_summary {
            r["summary"] = json!(sm);
        }
        body["reasoning"] = r;
    }
    if let Some(rf) = &req.response_format {
        body["text"] = json!({"format": match rf {
            ResponseFormat::Text => json!({"type": "text"}),
            ResponseFormat::JsonObject => json!({"type": "json_object"}),
            ResponseFormat::JsonSchema { name, schema, strict } => {
                let mut f = json!({"type": "json_schema", "name": name, "schema": schema});
                if let Some(st) = strict { f["strict"] = json!(st); }
                f
            }
        }});
    }
    if !req.metadata.is_empty() {
        body["metadata"] = Value::Object(req.metadata.clone());
    }
    if let Some(u) = &req.user {
        body["user"] = json!(u);
    }
    if let Some(k) = &req.prompt_cache_key {
        body["prompt_cache_key"] = json!(k);
    }
    if let Some(st) = req.responses.store {
        body["store"] = json!(st);
    }
    if let Some(p) = &req.responses.previous_response_id {
        body["previous_response_id"] = json!(p);
    }
    if !req.responses.include.is_empty() {
        body["include"] = json!(req.responses.include);
    }
    if req.stream {
        body["stream"] = json!(true);
    }
    Ok(Translated { body, lossy })
}

pub fn decode_usage(u: &Value) -> Usage {
    let input = u64_of(u, "input_tokens").unwrap_or(0);
    let cached = u
        .get("input_tokens_details")
        .and_then(|d| u64_of(d, "cached_tokens"))
        .unwrap_or(0);
    Usage {
        input_tokens: input.saturating_sub(cached),
        output_tokens: u64_of(u, "output_tokens").unwrap_or(0),
        cache_read_tokens: cached,
        cache_write_tokens: 0,
        reasoning_tokens: u
            .get("output_tokens_details")
            .and_then(|d| u64_of(d, "reasoning_tokens"))
            .unwrap_or(0),
    }
}

pub fn encode_usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_total(),
        "input_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total(),
    })
}

/// `status` and `incomplete_details` for a finish reason.
pub fn encode_status(f: &FinishReason) -> (&'static str, Value) {
    match f {
        FinishReason::MaxTokens | FinishReason::ContextWindowExceeded => {
            ("incomplete", json!({"reason": "max_output_tokens"}))
        }
        FinishReason::ContentFilter => ("incomplete", json!({"reason": "content_filter"})),
        FinishReason::Error | FinishReason::MalformedToolCall => ("failed", Value::Null),
        _ => ("completed", Value::Null),
    }
}

pub fn decode_status(
    status: Option<&str>,
    incomplete: Option<&Value>,
    saw_tool: bool,
) -> FinishReason {
    match status {
        Some("incomplete") => match incomplete.and_then(|i| str_of(i, "reason")) {
            Some("content_filter") => FinishReason::ContentFilter,
            _ => FinishReason::MaxTokens,
        },
        Some("failed") | Some("cancelled") => FinishReason::Error,
        _ if saw_tool => FinishReason::ToolUse,
        _ => FinishReason::EndTurn,
    }
}

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, FormatError> {
    let v = Value::Object(parse_object(body)?);
    let mut parts = Vec::new();
    for item in array_of(&v, "output") {
        match str_of(item, "type") {
            Some("message") => {
                for c in array_of(item, "content") {
                    let t = str_of(c, "text")
                        .or_else(|| str_of(c, "refusal"))
                        .unwrap_or("");
                    if !t.is_empty() {
                        parts.push(Part::text(t));
                    }
                }
            }
            Some("reasoning") => parts.push(Part::Reasoning(Reasoning {
                text: reasoning_text(item),
                signature: string_of(item, "encrypted_content"),
                provenance: WireFormat::OpenaiResponses,
                redacted: None,
                id: string_of(item, "id"),
            })),
            Some(t @ ("function_call" | "custom_tool_call")) => {
                let custom = t == "custom_tool_call";
                parts.push(Part::ToolCall {
                    id: string_of(item, "call_id").unwrap_or_default(),
                    name: string_of(item, "name").unwrap_or_default(),
                    arguments: string_of(item, if custom { "input" } else { "arguments" })
                        .unwrap_or_default(),
                    kind: if custom {
                        CallKind::Custom
                    } else {
                        CallKind::Function
                    },
                    signature: None,
                });
            }
            _ => {}
        }
    }
    let saw_tool = parts.iter().any(|p| matches!(p, Part::ToolCall { .. }));
    Ok(ChatResponse {
        id: string_of(&v, "id").unwrap_or_default(),
        model: string_of(&v, "model").unwrap_or_default(),
        created: u64_of(&v, "created_at").unwrap_or(0),
        parts,
        finish: decode_status(str_of(&v, "status"), v.get("incomplete_details"), saw_tool),
        stop_sequence: None,
        usage: v.get("usage").map(decode_usage).unwrap_or_default(),
    })
}

pub fn response_id(id: &str) -> String {
    if id.starts_with("resp_") {
        id.to_string()
    } else {
        format!("resp_{id}")
    }
}

/// Deterministic item id: `<prefix>_<hash(response id, output index)>`.
pub fn item_id(prefix: &str, resp_id: &str, index: usize) -> String {
    format!(
        "{prefix}_{}",
        ids::short_hash(&[resp_id, &index.to_string()])
    )
}

/// A call as a Responses item, unwrapping `{"input": …}` for custom tools.
pub fn call_item(
    ctx: &ClientContext,
    item_id_base: &str,
    index: usize,
    id: &str,
    name: &str,
    arguments: &str,
    kind: CallKind,
) -> Value {
    if kind == CallKind::Custom {
        return json!({"type": "custom_tool_call", "id": item_id("ctc", item_id_base, index), "call_id": id, "name": name, "input": arguments, "status": "completed"});
    }
    if ctx.custom_tools.iter().any(|t| t == name) {
        let input = serde_json::from_str::<Value>(arguments)
            .ok()
            .and_then(|v| v.get("input").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| arguments.to_string());
        return json!({"type": "custom_tool_call", "id": item_id("ctc", item_id_base, index), "call_id": id, "name": name, "input": input, "status": "completed"});
    }
    json!({"type": "function_call", "id": item_id("fc", item_id_base, index), "call_id": id, "name": name, "arguments": arguments, "status": "completed"})
}

pub fn reasoning_item(
    id: String,
    r_text: &str,
    provenance: WireFormat,
    signature: Option<&str>,
) -> Value {
    let mut item = json!({"type": "reasoning", "id": id,
        "summary": if r_text.is_empty() { json!([]) } else { json!([{"type": "summary_text", "text": r_text}]) }});
    if provenance == WireFormat::OpenaiResponses {
        if let Some(s) = signature {
            item["encrypted_content"] = json!(s);
        }
    }
    item
}

pub fn message_item(id: String, text: &str) -> Value {
    json!({"type": "message", "id": id, "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

/// The full response object (also the payload of `response.completed`).
/// `state` is (status, incomplete_details, error).
pub fn response_object(
    id: &str,
    ctx: &ClientContext,
    model: &str,
    state: (&str, Value, Value),
    output: Vec<Value>,
    usage: Option<&Usage>,
) -> Value {
    let (status, incomplete, error) = state;
    let text: String = output
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["text"].as_str().map(str::to_string))
        .collect();
    let mut o = Map::new();
    o.insert("id".into(), json!(id));
    o.insert("object".into(), json!("response"));
    o.insert("created_at".into(), json!(ctx.created));
    o.insert("status".into(), json!(status));
    o.insert("model".into(), json!(ctx.model_or(model)));
    o.insert("output".into(), Value::Array(output));
    o.insert("output_text".into(), json!(text));
    o.insert("incomplete_details".into(), incomplete);
    o.insert("error".into(), error);
    o.insert(
        "usage".into(),
        usage.map(encode_usage).unwrap_or(Value::Null),
    );
    Value::Object(o)
}

pub fn encode_response(resp: &ChatResponse, ctx: &ClientContext) -> Translated {
    let mut lossy = Vec::new();
    let id = response_id(&resp.id);
    let mut output = Vec::new();
    let mut text = String::new();
    for p in &resp.parts {
        let n = output.len();
        match p {
            Part::Text { text: t, .. } => text.push_str(t),
            Part::Reasoning(r) => {
                if r.provenance != WireFormat::OpenaiResponses && r.signature.is_some() {
                    note(&mut lossy, "foreign reasoning signature dropped");
                }
                output.push(reasoning_item(
                    r.id.clone().unwrap_or_else(|| item_id("rs", &id, n)),
                    &r.text,
                    r.provenance,
                    r.signature.as_deref(),
                ));
            }
            Part::ToolCall {
                id: call_id,
                name,
                arguments,
                kind,
                ..
            } => {
                if !text.is_empty() {
                    output.push(message_item(
                        item_id("msg", &id, output.len()),
                        &std::mem::take(&mut text),
                    ));
                }
                let n = output.len();
                output.push(call_item(ctx, &id, n, call_id, name, arguments, *kind));
            }
            _ => lossy.push("a media part in the response was dropped".into()),
        }
    }
    if !text.is_empty() {
        output.push(message_item(item_id("msg", &id, output.len()), &text));
    }
    let (status, incomplete) = encode_status(&resp.finish);
    Translated {
        body: response_object(
            &id,
            ctx,
            &resp.model,
            (status, incomplete, Value::Null),
            output,
            Some(&resp.usage),
        ),
        lossy,
    }
}

/// `response.failed` error code for a kind (Codex acts on these).
pub fn failure_code(e: &ErrorInfo) -> &'static str {
    match e.kind {
        ErrorKind::ContextTooLong => "context_length_exceeded",
        ErrorKind::RateLimited => "rate_limit_exceeded",
        ErrorKind::Billing => "insufficient_quota",
        ErrorKind::BadRequest => "invalid_request_error",
        _ => "server_error",
    }
}
