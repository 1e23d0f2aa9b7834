//! Gemini generateContent: requests (model in the URL path), responses,
//! errors and (in `stream`) `alt=sse` chunks. Gemini sends no tool-call ids:
//! decoders derive deterministic ones and encoders match results by name and order.

mod schema;
mod stream;

pub use schema::sanitize as sanitize_schema;
pub use stream::{StreamDecoder, StreamEncoder};

use super::canonical::*;
use super::json::*;
use super::{custom_tool_as_function, ids, note, ClientContext, FormatError, Translated};
use crate::catalog::WireFormat;
use serde_json::{json, Map, Value};

/// Gemini's documented signature that skips thought-signature validation,
/// sent on a replayed functionCall whose real signature was lost.
pub const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

fn media(mime: &str, source: MediaSource) -> Part {
    if mime.starts_with("image/") {
        Part::Image {
            source,
            detail: None,
        }
    } else {
        Part::Document {
            source,
            filename: None,
        }
    }
}

/// Gemini parts → canonical parts. `seed` makes generated call ids unique per turn.
fn decode_parts(
    parts: &[Value],
    seed: &str,
    lossy: &mut Vec<String>,
    pending: &mut Vec<(String, String, bool)>,
) -> Vec<Part> {
    let mut out = Vec::new();
    let mut calls = 0;
    for p in parts {
        let sig = string_of(p, "thoughtSignature");
        if let Some(fc) = p.get("functionCall") {
            let name = string_of(fc, "name").unwrap_or_default();
            let id = string_of(fc, "id").unwrap_or_else(|| ids::gemini_call_id(seed, calls, &name));
            calls += 1;
            pending.push((id.clone(), name.clone(), false));
            out.push(Part::ToolCall {
                id,
                name,
                arguments: to_arguments(fc.get("args").unwrap_or(&Value::Null)),
                kind: CallKind::Function,
                signature: sig,
            });
        } else if let Some(fr) = p.get("functionResponse") {
            let name = string_of(fr, "name").unwrap_or_default();
            let id = match string_of(fr, "id") {
                Some(id) => {
                    if let Some(e) = pending.iter_mut().find(|e| e.0 == id) {
                        e.2 = true;
                    }
                    id
                }
                None => {
                    let found = pending.iter_mut().find(|e| !e.2 && e.1 == name);
                    match found {
                        Some(e) => {
                            e.2 = true;
                            e.0.clone()
                        }
                        None => ids::gemini_call_id(seed, calls, &name),
                    }
                }
            };
            let resp = fr.get("response").cloned().unwrap_or(json!({}));
            let (content, is_error) = match &resp {
                Value::Object(m)
                    if m.len() == 1 && m.get("output").is_some_and(Value::is_string) =>
                {
                    (m["output"].as_str().unwrap_or("").to_string(), false)
                }
                Value::Object(m)
                    if m.len() == 1 && m.get("error").is_some_and(Value::is_string) =>
                {
                    (m["error"].as_str().unwrap_or("").to_string(), true)
                }
                other => (other.to_string(), false),
            };
            out.push(Part::ToolResult {
                call_id: id,
                name: Some(name),
                content: vec![Part::text(content)],
                is_error,
            });
        } else if let Some(t) = str_of(p, "text") {
            if bool_of(p, "thought") == Some(true) {
                out.push(Part::Reasoning(Reasoning {
                    text: t.to_string(),
                    signature: sig,
                    provenance: WireFormat::Gemini,
                    redacted: None,
                    id: None,
                }));
            } else {
                if sig.is_some() {
                    out.push(Part::Reasoning(Reasoning {
                        text: String::new(),
                        signature: sig,
                        provenance: WireFormat::Gemini,
                        redacted: None,
                        id: None,
                    }));
                }
                if !t.is_empty() {
                    out.push(Part::text(t));
                }
            }
        } else if let Some(d) = p.get("inlineData") {
            let mime = str_of(d, "mimeType").unwrap_or("application/octet-stream");
            out.push(media(
                mime,
                MediaSource::Base64 {
                    media_type: mime.to_string(),
                    data: string_of(d, "data").unwrap_or_default(),
                },
            ));
        } else if let Some(d) = p.get("fileData") {
            let mime = str_of(d, "mimeType").unwrap_or("");
            out.push(media(
                mime,
                MediaSource::Url {
                    url: string_of(d, "fileUri").unwrap_or_default(),
                },
            ));
        } else {
            lossy.push("a Gemini part kind was dropped".into());
        }
    }
    out
}

pub fn decode_request(body: &[u8]) -> Result<ChatRequest, FormatError> {
    let v = Value::Object(parse_object(body)?);
    let mut req = ChatRequest::default();
    if let Some(si) = v
        .get("systemInstruction")
        .or_else(|| v.get("system_instruction"))
    {
        let text: Vec<&str> = array_of(si, "parts")
            .iter()
            .filter_map(|p| str_of(p, "text"))
            .collect();
        req.system.push(SystemBlock {
            text: text.join("\n"),
            cache: None,
        });
    }
    let contents = v
        .get("contents")
        .and_then(Value::as_array)
        .ok_or_else(|| FormatError::invalid("contents", "`contents` must be an array"))?;
    let mut pending = Vec::new();
    for (turn, c) in contents.iter().enumerate() {
        let role = if str_of(c, "role") == Some("model") {
            Role::Assistant
        } else {
            Role::User
        };
        if role == Role::Assistant {
            pending.clear();
        }
        let parts = decode_parts(
            array_of(c, "parts"),
            &format!("turn{turn}"),
            &mut req.lossy,
            &mut pending,
        );
        req.messages.push(Message { role, parts });
    }
    for t in array_of(&v, "tools") {
        let decls = t
            .get("functionDeclarations")
            .or_else(|| t.get("function_declarations"));
        match decls.and_then(Value::as_array) {
            Some(list) => {
                for d in list {
                    req.tools.push(Tool {
                        name: string_of(d, "name").unwrap_or_default(),
                        description: string_of(d, "description"),
                        parameters: d
                            .get("parametersJsonSchema")
                            .cloned()
                            .or_else(|| d.get("parameters").map(schema::lowercase_types)),
                        strict: None,
                        kind: ToolKind::Function,
                        cache: None,
                    });
                }
            }
            None => {
                let name = t
                    .as_object()
                    .and_then(|m| m.keys().next().cloned())
                    .unwrap_or_else(|| "hosted".into());
                req.tools.push(Tool {
                    name,
                    description: None,
                    parameters: None,
                    strict: None,
                    kind: ToolKind::Hosted {
                        format: WireFormat::Gemini,
                        raw: t.clone(),
                    },
                    cache: None,
                });
            }
        }
    }
    if let Some(fc) = v
        .get("toolConfig")
        .and_then(|t| t.get("functionCallingConfig"))
    {
        let allowed = string_list(fc.get("allowedFunctionNames"));
        req.tool_choice = match str_of(fc, "mode") {
            Some("ANY") if allowed.len() == 1 => Some(ToolChoice::Tool(allowed[0].clone())),
            Some("ANY") | Some("VALIDATED") => Some(ToolChoice::Required),
            Some("NONE") => Some(ToolChoice::None),
            Some(_) => Some(ToolChoice::Auto),
            None => None,
        };
    }
    if let Some(g) = v.get("generationConfig") {
        req.max_output_tokens = u32_of(g, "maxOutputTokens");
        req.sampling = Sampling {
            temperature: f64_of(g, "temperature"),
            top_p: f64_of(g, "topP"),
            top_k: u32_of(g, "topK"),
            stop: string_list(g.get("stopSequences")),
            seed: g.get("seed").and_then(Value::as_i64),
            presence_penalty: f64_of(g, "presencePenalty"),
            frequency_penalty: f64_of(g, "frequencyPenalty"),
        };
        if str_of(g, "responseMimeType") == Some("application/json") {
            req.response_format = Some(
                match g
                    .get("responseJsonSchema")
                    .or_else(|| g.get("responseSchema"))
                {
                    Some(s) => ResponseFormat::JsonSchema {
                        name: "response".into(),
                        schema: s.clone(),
                        strict: None,
                    },
                    None => ResponseFormat::JsonObject,
                },
            );
        }
        if let Some(t) = g.get("thinkingConfig") {
            req.reasoning = match (
                t.get("thinkingBudget").and_then(Value::as_i64),
                str_of(t, "thinkingLevel"),
            ) {
                (Some(0), _) => Some(ReasoningConfig::Disabled),
                (Some(b), _) if b < 0 => Some(ReasoningConfig::Adaptive),
                (Some(b), _) => Some(ReasoningConfig::Budget(
                    u32::try_from(b).unwrap_or(u32::MAX),
                )),
                (None, Some(level)) => Some(ReasoningConfig::Effort(level.to_ascii_lowercase())),
                (None, None) => None,
            };
        }
    }
    if v.get("cachedContent").is_some() {
        req.lossy
            .push("cachedContent is only kept on a Gemini upstream".into());
    }
    Ok(req)
}

fn encode_media(source: &MediaSource, lossy: &mut Vec<String>) -> Value {
    match source {
        MediaSource::Base64 { media_type, data } => {
            json!({"inlineData": {"mimeType": media_type, "data": data}})
        }
        MediaSource::Url { url } => {
            note(
                lossy,
                "media by URL sent as fileData (Gemini fetches only URLs it can reach)",
            );
            json!({"fileData": {"mimeType": guess_mime(url), "fileUri": url}})
        }
    }
}

fn guess_mime(url: &str) -> &'static str {
    let u = url.to_ascii_lowercase();
    let path = u.split(['?', '#']).next().unwrap_or("");
    match path.rsplit('.').next() {
        Some("png") => "image/png",
        Some("jpg") | Some("jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("pdf") => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// A tool result's content as the object `functionResponse.response` must be.
fn response_object(content: &[Part], is_error: bool) -> Value {
    let text: Vec<&str> = content
        .iter()
        .filter_map(|p| match p {
            Part::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let text = text.join("\n");
    if is_error {
        return json!({"error": text});
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({"output": text}),
    }
}

pub fn encode_request(req: &ChatRequest) -> Result<Translated, FormatError> {
    let mut lossy = Vec::new();
    let custom = super::custom_call_ids(req);
    let mut names: Map<String, Value> = Map::new();
    let mut contents: Vec<Value> = Vec::new();
    for m in &req.messages {
        let role = if m.role == Role::User {
            "user"
        } else {
            "model"
        };
        let mut parts: Vec<Value> = Vec::new();
        let mut responses: Vec<Value> = Vec::new();
        let mut pending_sig: Option<String> = None;
        for p in &m.parts {
            let mut part = match p {
                Part::Text { text, .. } if text.is_empty() => continue,
                Part::Text { text, .. } => json!({"text": text}),
                Part::Image { source, .. } | Part::Document { source, .. } => {
                    encode_media(source, &mut lossy)
                }
                Part::ToolCall {
                    id,
                    name,
                    arguments,
                    kind,
                    signature,
                } => {
                    names.insert(id.clone(), json!(name));
                    let args = if *kind == CallKind::Custom || custom.contains(id) {
                        json!({"input": arguments})
                    } else {
                        let (v, ok) = arguments_to_object(arguments);
                        if !ok {
                            note(&mut lossy, "malformed tool-call arguments repaired");
                        }
                        v
                    };
                    let mut v = json!({"functionCall": {"name": name, "args": args}});
                    if let Some(s) = signature {
                        v["thoughtSignature"] = json!(s);
                    }
                    v
                }
                Part::ToolResult {
                    call_id,
                    name,
                    content,
                    is_error,
                } => {
                    let name = names
                        .get(call_id)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .or_else(|| name.clone())
                        .unwrap_or_default();
                    responses.push(json!({"functionResponse": {"name": name, "response": response_object(content, *is_error)}}));
                    for c in content {
                        if let Part::Image { source, .. } | Part::Document { source, .. } = c {
                            parts.push(encode_media(source, &mut lossy));
                        }
                    }
                    continue;
                }
                Part::Reasoning(r) if r.provenance == WireFormat::Gemini => {
                    if r.text.is_empty() {
                        pending_sig = r.signature.clone();
                        continue;
                    }
                    let mut v = json!({"text": r.text, "thought": true});
                    if let Some(s) = &r.signature {
                        v["thoughtSignature"] = json!(s);
                    }
                    v
                }
                Part::Reasoning(_) => {
                    note(&mut lossy, "reasoning not made by Gemini dropped");
                    continue;
                }
            };
            if let Some(s) = pending_sig.take() {
                if part.get("thoughtSignature").is_none() {
                    part["thoughtSignature"] = json!(s);
                }
            }
            parts.push(part);
        }
        if m.role == Role::Assistant {
            let calls: Vec<usize> = parts
                .iter()
                .enumerate()
                .filter(|(_, p)| p.get("functionCall").is_some())
                .map(|(i, _)| i)
                .collect();
            if let Some(&first) = calls.first() {
                if calls
                    .iter()
                    .all(|&i| parts[i].get("thoughtSignature").is_none())
                {
                    note(&mut lossy, "function call replayed without its Gemini thought signature (validator skipped)");
                    parts[first]["thoughtSignature"] = json!(SKIP_SIGNATURE);
                }
            }
        }
        responses.extend(parts);
        let parts = responses;
        if parts.is_empty() {
            continue;
        }
        match contents.last_mut() {
            Some(last) if last["role"] == role => {
                if let Value::Array(prev) = &mut last["parts"] {
                    prev.extend(parts);
                }
            }
            _ => contents.push(json!({"role": role, "parts": parts})),
        }
    }
    let mut body = json!({"contents": contents});
    let system = req.system_text();
    if !system.is_empty() {
        body["systemInstruction"] = json!({"parts": [{"text": system}]});
    }
    let mut decls = Vec::new();
    let mut tools = Vec::new();
    for t in &req.tools {
        let (desc, params) = match &t.kind {
            ToolKind::Function => (
                t.description.clone(),
                t.parameters.as_ref().map(schema::sanitize),
            ),
            ToolKind::Custom { format } => {
                let (d, p) = custom_tool_as_function(t, format.as_ref());
                (d, Some(p))
            }
            ToolKind::Hosted {
                format: WireFormat::Gemini,
                raw,
            } => {
                tools.push(raw.clone());
                continue;
            }
            ToolKind::Hosted { .. } => {
                lossy.push(format!("hosted tool `{}` dropped", t.name));
                continue;
            }
        };
        let mut d = json!({"name": t.name});
        if let Some(desc) = desc {
            d["description"] = json!(desc);
        }
        if let Some(p) = params {
            d["parameters"] = p;
        }
        decls.push(d);
    }
    if !decls.is_empty() {
        tools.insert(0, json!({"functionDeclarations": decls}));
    }
    if !tools.is_empty() {
        body["tools"] = Value::Array(tools);
    }
    if let Some(tc) = &req.tool_choice {
        body["toolConfig"] = json!({"functionCallingConfig": match tc {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Required => json!({"mode": "ANY"}),
            ToolChoice::Tool(n) => json!({"mode": "ANY", "allowedFunctionNames": [n]}),
        }});
    }
    let mut g = Map::new();
    let s = &req.sampling;
    if let Some(n) = req.max_output_tokens {
        g.insert("maxOutputTokens".into(), json!(n));
    }
    for (k, val) in [
        ("temperature", s.temperature),
        ("topP", s.top_p),
        ("presencePenalty", s.presence_penalty),
        ("frequencyPenalty", s.frequency_penalty),
    ] {
        if let Some(x) = val {
            g.insert(k.into(), json!(x));
        }
    }
    if let Some(k) = s.top_k {
        g.insert("topK".into(), json!(k));
    }
    if let Some(seed) = s.seed {
        g.insert("seed".into(), json!(seed));
    }
    if !s.stop.is_empty() {
        if s.stop.len() > 5 {
            lossy.push("stop sequences truncated to 5".into());
        }
        g.insert(
            "stopSequences".into(),
            json!(s.stop.iter().take(5).collect::<Vec<_>>()),
        );
    }
    match &req.response_format {
        Some(ResponseFormat::JsonObject) => {
            g.insert("responseMimeType".into(), json!("application/json"));
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            g.insert("responseMimeType".into(), json!("application/json"));
            g.insert("responseJsonSchema".into(), schema.clone());
        }
        _ => {}
    }
    match &req.reasoning {
        Some(ReasoningConfig::Disabled) => {
            g.insert("thinkingConfig".into(), json!({"thinkingBudget": 0}));
        }
        Some(ReasoningConfig::Adaptive) => {
            g.insert(
                "thinkingConfig".into(),
                json!({"thinkingBudget": -1, "includeThoughts": true}),
            );
        }
        Some(r) => {
            if let Some(b) = r.budget() {
                g.insert(
                    "thinkingConfig".into(),
                    json!({"thinkingBudget": b, "includeThoughts": b > 0}),
                );
            }
        }
        None => {}
    }
    if !g.is_empty() {
        body["generationConfig"] = Value::Object(g);
    }
    if req.responses.previous_response_id.is_some() {
        lossy.push("previous_response_id needs the gateway's response store".into());
    }
    Ok(Translated { body, lossy })
}

pub fn decode_usage(u: &Value) -> Usage {
    let prompt = u64_of(u, "promptTokenCount").unwrap_or(0);
    let cached = u64_of(u, "cachedContentTokenCount").unwrap_or(0);
    let tool = u64_of(u, "toolUsePromptTokenCount").unwrap_or(0);
    let thoughts = u64_of(u, "thoughtsTokenCount").unwrap_or(0);
    Usage {
        input_tokens: prompt.saturating_sub(cached) + tool,
        output_tokens: u64_of(u, "candidatesTokenCount").unwrap_or(0) + thoughts,
        cache_read_tokens: cached,
        cache_write_tokens: 0,
        reasoning_tokens: thoughts,
    }
}

pub fn encode_usage(u: &Usage) -> Value {
    let mut v = json!({
        "promptTokenCount": u.prompt_total(),
        "candidatesTokenCount": u.output_tokens.saturating_sub(u.reasoning_tokens),
        "totalTokenCount": u.total(),
    });
    if u.cache_read_tokens > 0 {
        v["cachedContentTokenCount"] = json!(u.cache_read_tokens);
    }
    if u.reasoning_tokens > 0 {
        v["thoughtsTokenCount"] = json!(u.reasoning_tokens);
    }
    v
}

pub fn decode_finish(raw: Option<&str>, saw_tool: bool) -> FinishReason {
    match raw {
        Some("MAX_TOKENS") => FinishReason::MaxTokens,
        Some(
            "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "LANGUAGE"
            | "MODEL_ARMOR",
        ) => FinishReason::ContentFilter,
        Some(r) if r.starts_with("IMAGE_") || r == "NO_IMAGE" => FinishReason::ContentFilter,
        Some("MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" | "TOO_MANY_TOOL_CALLS") => {
            FinishReason::MalformedToolCall
        }
        _ if saw_tool => FinishReason::ToolUse,
        _ => FinishReason::EndTurn,
    }
}

pub fn encode_finish(f: &FinishReason) -> &'static str {
    match f {
        FinishReason::MaxTokens | FinishReason::ContextWindowExceeded => "MAX_TOKENS",
        FinishReason::ContentFilter | FinishReason::Refusal => "SAFETY",
        FinishReason::MalformedToolCall => "MALFORMED_FUNCTION_CALL",
        _ => "STOP",
    }
}

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, FormatError> {
    let v = Value::Object(parse_object(body)?);
    let id = string_of(&v, "responseId").unwrap_or_default();
    let cand = array_of(&v, "candidates").first().cloned();
    let mut lossy = Vec::new();
    let parts = cand
        .as_ref()
        .and_then(|c| c.get("content"))
        .map(|c| decode_parts(array_of(c, "parts"), &id, &mut lossy, &mut Vec::new()))
        .unwrap_or_default();
    let saw_tool = parts.iter().any(|p| matches!(p, Part::ToolCall { .. }));
    let finish = match &cand {
        None if v
            .get("promptFeedback")
            .and_then(|p| p.get("blockReason"))
            .is_some() =>
        {
            FinishReason::ContentFilter
        }
        c => decode_finish(c.as_ref().and_then(|c| str_of(c, "finishReason")), saw_tool),
    };
    Ok(ChatResponse {
        id,
        model: string_of(&v, "modelVersion").unwrap_or_default(),
        created: 0,
        parts,
        finish,
        stop_sequence: None,
        usage: v.get("usageMetadata").map(decode_usage).unwrap_or_default(),
    })
}

/// A part for a Gemini client; `None` for parts it cannot show.
pub fn encode_part(p: &Part, lossy: &mut Vec<String>) -> Option<Value> {
    match p {
        Part::Text { text, .. } => Some(json!({"text": text})),
        Part::Reasoning(r) => {
            let mut v = json!({"text": r.text, "thought": true});
            match (&r.signature, r.provenance) {
                (Some(s), WireFormat::Gemini) => v["thoughtSignature"] = json!(s),
                (Some(_), _) => note(lossy, "foreign reasoning signature dropped"),
                _ => {}
            }
            Some(v)
        }
        Part::ToolCall {
            id,
            name,
            arguments,
            kind,
            signature,
        } => {
            let args = if *kind == CallKind::Custom {
                json!({"input": arguments})
            } else {
                arguments_to_object(arguments).0
            };
            let mut v = json!({"functionCall": {"id": id, "name": name, "args": args}});
            if let Some(s) = signature {
                v["thoughtSignature"] = json!(s);
            }
            Some(v)
        }
        Part::Image { source, .. } | Part::Document { source, .. } => {
            Some(encode_media(source, lossy))
        }
        Part::ToolResult { .. } => None,
    }
}

pub fn encode_response(resp: &ChatResponse, ctx: &ClientContext) -> Translated {
    let mut lossy = Vec::new();
    let parts: Vec<Value> = resp
        .parts
        .iter()
        .filter_map(|p| encode_part(p, &mut lossy))
        .collect();
    let body = json!({
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": encode_finish(&resp.finish), "index": 0}],
        "usageMetadata": encode_usage(&resp.usage),
        "modelVersion": ctx.model_or(&resp.model),
        "responseId": resp.id,
    });
    Translated { body, lossy }
}

fn error_shape(status: u16, kind: ErrorKind) -> (u16, &'static str) {
    match kind {
        ErrorKind::BadRequest | ErrorKind::ContextTooLong | ErrorKind::RequestTooLarge => {
            (400, "INVALID_ARGUMENT")
        }
        ErrorKind::Auth => (401, "UNAUTHENTICATED"),
        ErrorKind::Billing | ErrorKind::RateLimited => (429, "RESOURCE_EXHAUSTED"),
        ErrorKind::Permission => (403, "PERMISSION_DENIED"),
        ErrorKind::NotFound => (404, "NOT_FOUND"),
        ErrorKind::Overloaded => (503, "UNAVAILABLE"),
        ErrorKind::Timeout => (504, "DEADLINE_EXCEEDED"),
        ErrorKind::Upstream => (if status >= 500 { status } else { 500 }, "INTERNAL"),
    }
}

pub fn error_body(status: u16, kind: ErrorKind, message: &str) -> (u16, Value) {
    let (status, s) = error_shape(status, kind);
    (
        status,
        json!({"error": {"code": status, "message": message, "status": s}}),
    )
}

pub fn encode_error(status: u16, kind: ErrorKind, message: &str) -> (u16, Value) {
    error_body(status, kind, message)
}

pub fn decode_error_value(status: u16, v: &Value) -> ErrorInfo {
    let e = v.get("error").unwrap_or(v);
    let message = string_of(e, "message").unwrap_or_else(|| v.to_string());
    let code = string_of(e, "status");
    let status = u64_of(e, "code")
        .and_then(|c| u16::try_from(c).ok())
        .filter(|_| status == 200)
        .unwrap_or(status);
    let kind = match code.as_deref() {
        Some("INVALID_ARGUMENT") | Some("FAILED_PRECONDITION") if is_context_overflow(&message) => {
            ErrorKind::ContextTooLong
        }
        Some("INVALID_ARGUMENT") | Some("FAILED_PRECONDITION") => ErrorKind::BadRequest,
        Some("UNAUTHENTICATED") => ErrorKind::Auth,
        Some("PERMISSION_DENIED") => ErrorKind::Permission,
        Some("NOT_FOUND") => ErrorKind::NotFound,
        Some("RESOURCE_EXHAUSTED") => ErrorKind::RateLimited,
        Some("UNAVAILABLE") => ErrorKind::Overloaded,
        Some("DEADLINE_EXCEEDED") => ErrorKind::Timeout,
        Some("INTERNAL") => ErrorKind::Upstream,
        _ if status == 200 => ErrorKind::Upstream,
        _ => ErrorKind::from_status(status),
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
    // Some Gemini errors arrive as a one-element array.
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(a)) if !a.is_empty() => decode_error_value(status, &a[0]),
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
