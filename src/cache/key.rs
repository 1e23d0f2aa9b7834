//! The canonical form of a chat request, hashed: what decides whether two
//! requests get the same answer. Everything the core offers about a request
//! is read here, through `ChatCall`, so a change to how the core holds a
//! request (a borrowed routing view, raw bytes) is adapted in one place.
//!
//! In the form: the client's wire format and endpoint, the model or combo as
//! resolved (a combo with a digest of its definition), the conversation,
//! tools and every sampling or output setting, whether it streams (and, for
//! OpenAI Chat, whether the usage chunk was asked for), and the headers that
//! change an Anthropic answer (`anthropic-version`, `anthropic-beta`). Left
//! out: fields that only label or bill the request (`user`, `metadata`,
//! `store`, `service_tier`, `prompt_cache_key`, `safety_identifier`, …).
//! Object keys are hashed in sorted order and numbers by value, so `0` and
//! `0.0`, or reordered keys, are the same request.

use crate::catalog::WireFormat;
use crate::proxy::ChatCall;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// One request's place in the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// SHA-256 of the namespace and the canonical form.
    pub hash: [u8; 32],
    pub namespace: String,
    /// The model or combo the request named (for figures and `flush --combo`).
    pub label: String,
    pub format: WireFormat,
    pub stream: bool,
}

impl Key {
    pub fn hex(&self) -> String {
        hex::encode(self.hash)
    }
}

/// The part of a request the semantic cache compares: the last user turn's
/// text, and a digest of everything else (which must match exactly).
#[derive(Debug, Clone, PartialEq)]
pub struct SemanticParts {
    pub text: String,
    pub context: String,
}

/// Top-level fields that do not change the answer, per client format.
fn ignored(format: WireFormat, field: &str) -> bool {
    const COMMON: &[&str] = &[
        "model",
        "stream",
        "user",
        "metadata",
        "store",
        "service_tier",
        "prompt_cache_key",
        "safety_identifier",
    ];
    if COMMON.contains(&field) {
        return true;
    }
    match format {
        // include_usage is hashed on its own; the rest of stream_options is transport.
        WireFormat::Openai => field == "stream_options",
        // Expanded into `input` before the core sees the request.
        WireFormat::OpenaiResponses => {
            matches!(
                field,
                "previous_response_id" | "background" | "stream_options"
            )
        }
        WireFormat::Anthropic => false,
        WireFormat::Gemini => false,
    }
}

/// The array holding the conversation in each client format.
fn turns_field(format: WireFormat) -> &'static str {
    match format {
        WireFormat::Openai | WireFormat::Anthropic => "messages",
        WireFormat::OpenaiResponses => "input",
        WireFormat::Gemini => "contents",
    }
}

/// Is this request deterministic enough to be answered twice alike:
/// temperature 0, or a seed?
pub fn deterministic(call: &ChatCall) -> bool {
    call.view.temperature == Some(0.0) || call.view.seed.is_some()
}

/// The client's format.
pub fn format_of(call: &ChatCall) -> WireFormat {
    call.native
        .as_ref()
        .map_or(WireFormat::Openai, |n| n.format)
}

/// The request body as a JSON object: the client's bytes parsed (only when
/// caching applies to the request).
fn with_body<T>(call: &ChatCall, f: impl FnOnce(&Map<String, Value>) -> T) -> Option<T> {
    match serde_json::from_slice::<Value>(&call.raw) {
        Ok(Value::Object(m)) => Some(f(&m)),
        _ => None,
    }
}

/// The cache key of `call` in `namespace`; `resolved` is the model or combo
/// it names as routing resolves it (a combo with its definition digest).
/// None when the request cannot be put in canonical form.
pub fn key_for(call: &ChatCall, resolved: &str, label: &str, namespace: &str) -> Option<Key> {
    let format = format_of(call);
    let stream = stream_of(call);
    with_body(call, |body| {
        let mut h = Sha256::new();
        head(&mut h, call, format, resolved, namespace, stream, body);
        feed_body(&mut h, format, body, false);
        Key {
            hash: h.finalize().into(),
            namespace: namespace.to_string(),
            label: label.to_string(),
            format,
            stream,
        }
    })
}

/// The semantic parts of `call`, when its last turn is plain user text.
pub fn semantic_parts(
    call: &ChatCall,
    resolved: &str,
    namespace: &str,
    embed_model: &str,
) -> Option<SemanticParts> {
    let format = format_of(call);
    let stream = stream_of(call);
    let text = last_user_text(call)?;
    if text.trim().is_empty() {
        return None;
    }
    let context = with_body(call, |body| {
        let mut h = Sha256::new();
        head(&mut h, call, format, resolved, namespace, stream, body);
        h.update(b"\x00semantic\x00");
        h.update(embed_model.as_bytes());
        feed_body(&mut h, format, body, true);
        hex::encode(h.finalize())
    })?;
    Some(SemanticParts { text, context })
}

/// A digest of the whole request as the client sent it (every field), for
/// telling a repeated idempotent request from a different one.
pub fn fingerprint(call: &ChatCall) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(call.endpoint.as_bytes());
    h.update([0]);
    h.update(call.view.model.as_bytes());
    h.update([0]);
    match serde_json::from_slice::<Value>(&call.raw) {
        Ok(v) => feed(&mut h, &v),
        Err(_) => h.update(&call.raw),
    }
    h.finalize().into()
}

fn stream_of(call: &ChatCall) -> bool {
    call.view.stream
}

fn head(
    h: &mut Sha256,
    call: &ChatCall,
    format: WireFormat,
    resolved: &str,
    namespace: &str,
    stream: bool,
    body: &Map<String, Value>,
) {
    for part in [namespace, format.as_str(), call.endpoint, resolved] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.update([u8::from(stream)]);
    if stream && format == WireFormat::Openai {
        let usage = body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            == Some(true);
        h.update([u8::from(usage)]);
    }
    if let Some(n) = &call.native {
        for (k, v) in &n.forward_headers {
            h.update(k.as_bytes());
            h.update(b"=");
            h.update(v.as_bytes());
            h.update(b"\n");
        }
    }
}

/// The body's fields in sorted order, the ignored ones left out; with
/// `skip_last_turn`, the conversation without its last turn.
fn feed_body(h: &mut Sha256, format: WireFormat, body: &Map<String, Value>, skip_last_turn: bool) {
    let mut keys: Vec<&String> = body.keys().filter(|k| !ignored(format, k)).collect();
    keys.sort();
    let turns = turns_field(format);
    h.update(b"{");
    for k in keys {
        feed_str(h, k);
        match (&body[k.as_str()], skip_last_turn && k == turns) {
            (Value::Array(items), true) => {
                h.update(b"[");
                for v in &items[..items.len().saturating_sub(1)] {
                    feed(h, v);
                }
                h.update(b"]");
            }
            (v, _) => feed(h, v),
        }
    }
    h.update(b"}");
}

fn feed_str(h: &mut Sha256, s: &str) {
    h.update(b"s");
    h.update((s.len() as u64).to_le_bytes());
    h.update(s.as_bytes());
}

/// A JSON value in canonical form: type-tagged, lengths prefixed, object
/// keys sorted, numbers by value.
fn feed(h: &mut Sha256, v: &Value) {
    match v {
        Value::Null => h.update(b"n"),
        Value::Bool(b) => h.update(if *b { b"t" } else { b"f" }),
        Value::Number(n) => {
            h.update(b"d");
            let text = if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    (f as i64).to_string()
                } else {
                    format!("{f:e}")
                }
            };
            feed_str(h, &text);
        }
        Value::String(s) => feed_str(h, s),
        Value::Array(a) => {
            h.update(b"[");
            h.update((a.len() as u64).to_le_bytes());
            for x in a {
                feed(h, x);
            }
            h.update(b"]");
        }
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            h.update(b"{");
            h.update((keys.len() as u64).to_le_bytes());
            for k in keys {
                feed_str(h, k);
                feed(h, &o[k.as_str()]);
            }
            h.update(b"}");
        }
    }
}

/// The text of the last turn when it is the user's and holds only text.
fn last_user_text(call: &ChatCall) -> Option<String> {
    use crate::formats::canonical::{Part, Role};
    match &call.native {
        Some(n) => {
            let last = n.request().ok()?.messages.last()?;
            if last.role != Role::User {
                return None;
            }
            let mut out = Vec::new();
            for p in &last.parts {
                match p {
                    Part::Text { text, .. } => out.push(text.as_str()),
                    _ => return None,
                }
            }
            Some(out.join("\n"))
        }
        None => {
            let body: Value = serde_json::from_slice(&call.raw).ok()?;
            let last = body.get("messages")?.as_array()?.last()?;
            if last.get("role").and_then(Value::as_str) != Some("user") {
                return None;
            }
            match last.get("content")? {
                Value::String(s) => Some(s.clone()),
                Value::Array(parts) => {
                    let mut out = Vec::new();
                    for p in parts {
                        if p.get("type").and_then(Value::as_str) != Some("text") {
                            return None;
                        }
                        out.push(p.get("text").and_then(Value::as_str)?.to_string());
                    }
                    Some(out.join("\n"))
                }
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn call(mut body: Value) -> ChatCall {
        if body.get("model").is_none() {
            body["model"] = Value::String("m".into());
        }
        ChatCall::openai(
            "r".into(),
            Some("k".into()),
            "chat.completions",
            bytes::Bytes::from(body.to_string()),
            Instant::now(),
            None,
        )
        .unwrap()
    }

    fn key(body: Value) -> [u8; 32] {
        key_for(&call(body), "mock/m", "mock/m", "ns").unwrap().hash
    }

    #[test]
    fn same_request_in_another_spelling_is_the_same_key() {
        let a = key(serde_json::json!({"model": "x", "temperature": 0,
            "messages": [{"role": "user", "content": "hi"}], "user": "alice"}));
        let b = key(
            serde_json::json!({"messages": [{"content": "hi", "role": "user"}],
            "temperature": 0.0, "model": "y", "metadata": {"a": 1}}),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn what_changes_the_answer_changes_the_key() {
        let base =
            serde_json::json!({"temperature": 0, "messages": [{"role": "user", "content": "hi"}]});
        let k = key(base.clone());
        let mut other = base.clone();
        other["temperature"] = serde_json::json!(0.5);
        assert_ne!(k, key(other));
        let mut other = base.clone();
        other["messages"][0]["content"] = serde_json::json!("hello");
        assert_ne!(k, key(other));
        let mut other = base.clone();
        other["tools"] = serde_json::json!([{"type": "function", "function": {"name": "f"}}]);
        assert_ne!(k, key(other));
        let mut other = base.clone();
        other["stream"] = serde_json::json!(true);
        assert_ne!(k, key(other));
        let c = call(base.clone());
        assert_ne!(
            key_for(&c, "mock/m", "l", "ns").unwrap().hash,
            key_for(&c, "mock/m", "l", "other").unwrap().hash,
            "namespaces never share"
        );
        assert_ne!(
            key_for(&c, "mock/m", "l", "ns").unwrap().hash,
            key_for(&c, "mock/n", "l", "ns").unwrap().hash
        );
    }

    #[test]
    fn determinism_and_semantic_parts() {
        assert!(deterministic(&call(serde_json::json!({"temperature": 0}))));
        assert!(deterministic(&call(serde_json::json!({"seed": 7}))));
        assert!(!deterministic(&call(
            serde_json::json!({"temperature": 0.2})
        )));
        assert!(!deterministic(&call(serde_json::json!({}))));
        let a = call(serde_json::json!({"messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "capital of France?"}]}));
        let b = call(serde_json::json!({"messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "France's capital?"}]}));
        let pa = semantic_parts(&a, "m", "ns", "e").unwrap();
        let pb = semantic_parts(&b, "m", "ns", "e").unwrap();
        assert_eq!(pa.text, "capital of France?");
        assert_eq!(pa.context, pb.context, "same context, other last turn");
        let c = call(serde_json::json!({"messages": [
            {"role": "system", "content": "be long"},
            {"role": "user", "content": "capital of France?"}]}));
        assert_ne!(
            pa.context,
            semantic_parts(&c, "m", "ns", "e").unwrap().context
        );
        let tool = call(serde_json::json!({"messages": [{"role": "tool", "content": "x"}]}));
        assert!(semantic_parts(&tool, "m", "ns", "e").is_none());
    }

    #[test]
    fn fingerprints_see_every_field() {
        let a = fingerprint(&call(serde_json::json!({"model": "m", "user": "a"})));
        let b = fingerprint(&call(serde_json::json!({"user": "a", "model": "m"})));
        let c = fingerprint(&call(serde_json::json!({"model": "m", "user": "b"})));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
