//! What routing reads from a request, taken from the client's bytes in one
//! pass without building a document: the model, whether to stream, the
//! output budget, the usage option of OpenAI streams, the sampling fields
//! that make an answer deterministic, and the size. Everything else in the
//! body is skipped (and checked to be well-formed JSON) by the same pass.

use crate::catalog::WireFormat;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// The routing view of one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestView {
    /// The model the client named (Gemini: from the path).
    pub model: String,
    pub stream: bool,
    /// The output budget (`max_completion_tokens`/`max_tokens`, `max_output_tokens`,
    /// `generationConfig.maxOutputTokens`).
    pub max_tokens: Option<u64>,
    /// OpenAI Chat: `stream_options.include_usage`; None when absent.
    pub include_usage: Option<bool>,
    /// OpenAI Chat: a `stream_options` member exists (the in-place rewrite
    /// then falls back to a re-serialisation to add `include_usage`).
    pub has_stream_options: bool,
    pub temperature: Option<f64>,
    pub seed: Option<i64>,
    /// Size of the body in bytes.
    pub bytes: usize,
    /// Where the `model` string sits in the body (bytes `start..end`, quotes
    /// included), so the upstream's copy is made without a second scan.
    pub model_span: Option<(usize, usize)>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ViewError {
    #[error("request body is not a valid JSON object: {0}")]
    Json(String),
    #[error("`model` is required")]
    NoModel,
    #[error("`model` must be a non-empty string")]
    BadModel,
    #[error("`stream` must be a boolean")]
    BadStream,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<Value>,
}

#[derive(Deserialize)]
struct GenerationConfig {
    #[serde(default, rename = "maxOutputTokens")]
    max_output_tokens: Option<Value>,
    #[serde(default)]
    temperature: Option<Value>,
    #[serde(default)]
    seed: Option<Value>,
}

/// The top-level members `Peek` reads (`model` first: its span is kept).
const PICKED: [&str; 9] = [
    "model",
    "stream",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "stream_options",
    "temperature",
    "seed",
    "generationConfig",
];

/// The members any format's router cares about; the rest is skipped.
#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(default, borrow)]
    model: Option<&'a RawValue>,
    #[serde(default)]
    stream: Option<Value>,
    #[serde(default)]
    max_tokens: Option<Value>,
    #[serde(default)]
    max_completion_tokens: Option<Value>,
    #[serde(default)]
    max_output_tokens: Option<Value>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    temperature: Option<Value>,
    #[serde(default)]
    seed: Option<Value>,
    #[serde(default, rename = "generationConfig")]
    generation_config: Option<GenerationConfig>,
}

fn number(v: &Option<Value>) -> Option<u64> {
    v.as_ref().and_then(Value::as_u64)
}

impl RequestView {
    /// Read the view of a request body in `fmt`. Gemini names the model and
    /// streaming in the path, so they are left for the caller to set.
    pub fn peek(fmt: WireFormat, raw: &[u8]) -> Result<RequestView, ViewError> {
        // A struct would also be read from an array; only an object is a request.
        if raw.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ViewError::Json("the body must be a JSON object".into()));
        }
        // One pass that only finds the members routing reads (strings are
        // jumped over); they alone are parsed. serde reads the whole body
        // only when that pass finds it malformed, to say what is wrong.
        let spans = crate::formats::json::pick_top_level(raw, PICKED);
        let Some(spans) = spans else {
            let p: Peek<'_> =
                serde_json::from_slice(raw).map_err(|e| ViewError::Json(e.to_string()))?;
            return RequestView::from_peek(fmt, p, raw.len(), None);
        };
        let mut picked = String::with_capacity(64);
        picked.push('{');
        for (name, span) in PICKED.iter().zip(spans) {
            if let Some((a, b)) = span {
                if picked.len() > 1 {
                    picked.push(',');
                }
                picked.push('"');
                picked.push_str(name);
                picked.push_str("\":");
                picked.push_str(
                    std::str::from_utf8(&raw[a..b]).map_err(|e| ViewError::Json(e.to_string()))?,
                );
            }
        }
        picked.push('}');
        let p: Peek<'_> =
            serde_json::from_str(&picked).map_err(|e| ViewError::Json(e.to_string()))?;
        RequestView::from_peek(fmt, p, raw.len(), spans[0])
    }

    /// `peek` through serde alone (no one-pass picker): what the picker must
    /// agree with (the property tests compare them).
    #[doc(hidden)]
    pub fn peek_with_serde(fmt: WireFormat, raw: &[u8]) -> Result<RequestView, ViewError> {
        if raw.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ViewError::Json("the body must be a JSON object".into()));
        }
        let p: Peek<'_> =
            serde_json::from_slice(raw).map_err(|e| ViewError::Json(e.to_string()))?;
        RequestView::from_peek(fmt, p, raw.len(), None)
    }

    fn from_peek(
        fmt: WireFormat,
        p: Peek<'_>,
        bytes: usize,
        model_span: Option<(usize, usize)>,
    ) -> Result<RequestView, ViewError> {
        let model = match p.model {
            None if fmt == WireFormat::Gemini => String::new(),
            None => return Err(ViewError::NoModel),
            Some(raw_model) => match serde_json::from_str::<Value>(raw_model.get()) {
                Ok(Value::String(s)) if !s.is_empty() => s,
                Ok(Value::Null) if fmt == WireFormat::Gemini => String::new(),
                _ => return Err(ViewError::BadModel),
            },
        };
        let stream = match &p.stream {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(ViewError::BadStream),
        };
        let g = p.generation_config.as_ref();
        let max_tokens = match fmt {
            WireFormat::Openai => number(&p.max_completion_tokens).or(number(&p.max_tokens)),
            WireFormat::Anthropic => number(&p.max_tokens),
            WireFormat::OpenaiResponses => number(&p.max_output_tokens),
            WireFormat::Gemini => g.and_then(|g| number(&g.max_output_tokens)),
        };
        let (temperature, seed) = match fmt {
            WireFormat::Gemini => (
                g.and_then(|g| g.temperature.as_ref()?.as_f64()),
                g.and_then(|g| g.seed.as_ref()?.as_i64()),
            ),
            _ => (
                p.temperature.as_ref().and_then(Value::as_f64),
                p.seed.as_ref().and_then(Value::as_i64),
            ),
        };
        Ok(RequestView {
            model,
            stream,
            max_tokens,
            include_usage: p
                .stream_options
                .as_ref()
                .and_then(|o| o.include_usage.as_ref()?.as_bool()),
            has_stream_options: p.stream_options.is_some(),
            temperature,
            seed,
            bytes,
            model_span,
        })
    }

    /// Rough prompt size: a token is about four bytes of JSON text.
    pub fn estimate_tokens(&self) -> u64 {
        (self.bytes / 4) as u64
    }
}

#[derive(Deserialize)]
struct Messages<'a> {
    #[serde(default, borrow)]
    messages: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    contents: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    input: Option<&'a RawValue>,
}

/// A session key from the conversation's first two turns (their raw text,
/// hashed), for sticky routing when the client names no session.
pub fn session_from_raw(raw: &[u8]) -> Option<String> {
    use sha2::Digest;
    let m: Messages<'_> = serde_json::from_slice(raw).ok()?;
    let turns: Vec<&RawValue> = if !m.messages.is_empty() {
        m.messages
    } else if !m.contents.is_empty() {
        m.contents
    } else {
        m.input.into_iter().collect()
    };
    if turns.is_empty() {
        return None;
    }
    let mut h = sha2::Sha256::new();
    for t in turns.iter().take(2) {
        h.update(t.get().as_bytes());
    }
    Some(format!("h:{}", hex::encode(&h.finalize()[..12])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_routing_needs_in_each_format() {
        let v = RequestView::peek(
            WireFormat::Openai,
            br#"{"messages":[{"role":"user","content":"hi"}],"model":"a/b","stream":true,
                "max_tokens":9,"max_completion_tokens":7,"stream_options":{"include_usage":false},"temperature":0}"#,
        )
        .unwrap();
        assert_eq!(v.model, "a/b");
        assert!(v.stream && v.has_stream_options);
        assert_eq!(
            (v.max_tokens, v.include_usage, v.temperature),
            (Some(7), Some(false), Some(0.0))
        );
        let a = RequestView::peek(
            WireFormat::Anthropic,
            br#"{"model":"m","max_tokens":100,"messages":[]}"#,
        )
        .unwrap();
        assert_eq!((a.max_tokens, a.stream), (Some(100), false));
        let g = RequestView::peek(
            WireFormat::Gemini,
            br#"{"contents":[],"generationConfig":{"maxOutputTokens":33,"temperature":0.5,"seed":4}}"#,
        )
        .unwrap();
        assert_eq!(
            (g.model.as_str(), g.max_tokens, g.seed),
            ("", Some(33), Some(4))
        );
        let r = RequestView::peek(
            WireFormat::OpenaiResponses,
            br#"{"model":"m","input":"x","max_output_tokens":5}"#,
        )
        .unwrap();
        assert_eq!(r.max_tokens, Some(5));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let e = |b: &[u8]| RequestView::peek(WireFormat::Openai, b).unwrap_err();
        assert_eq!(e(br#"{"messages":[]}"#), ViewError::NoModel);
        assert_eq!(e(br#"{"model":3}"#), ViewError::BadModel);
        assert_eq!(e(br#"{"model":""}"#), ViewError::BadModel);
        assert_eq!(e(br#"{"model":"m","stream":"yes"}"#), ViewError::BadStream);
        assert!(matches!(
            e(br#"{"model":"m","messages":[}"#),
            ViewError::Json(_)
        ));
        assert!(matches!(e(b"[1]"), ViewError::Json(_)));
    }

    #[test]
    fn sessions_hash_the_first_two_turns() {
        let a = session_from_raw(br#"{"model":"x","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"}]}"#);
        let b = session_from_raw(br#"{"model":"y","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}"#);
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_eq!(session_from_raw(br#"{"model":"x"}"#), None);
    }
}
