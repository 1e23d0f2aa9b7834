//! Wire formats: one canonical chat model ([`canonical`]) and one codec per
//! format — OpenAI Chat Completions ([`openai_chat`]), OpenAI Responses
//! ([`openai_responses`]), Anthropic Messages ([`anthropic`]) and Gemini
//! generateContent ([`gemini`]). Codecs are pure functions: no I/O, no
//! clock, no randomness (ids derive from upstream ids), so golden tests pin them.
//!
//! Each codec has `decode_request`, `encode_request`, `decode_response`,
//! `encode_response`, `decode_error`, `encode_error`, a `StreamDecoder`
//! (one upstream SSE event in, canonical events out) and a `StreamEncoder`
//! (canonical events in, the client's SSE frames out, start and terminator
//! included). This module dispatches on [`WireFormat`]. Same format in and
//! out does not come here: the proxy forwards the bytes (only `model`
//! rewritten, [`json::set_top_level_string`]) and watches the answer with an
//! [`observe::StreamTap`] for usage and completion.
//!
//! # Translation matrix
//!
//! Every pair A (Anthropic), C (OpenAI Chat), R (Responses), G (Gemini) of
//! different formats is decode(in) → canonical → encode(out), directly
//! (never through a third format); 4 decoders + 4 encoders per side. The
//! same format on both sides (A→A, C→C, R→R, G→G) is forwarded.
//!
//! | concept | A | C | R | G |
//! |---|---|---|---|---|
//! | system | `system` string/blocks | system/developer messages (hoisted) | `instructions` + system/developer items | `systemInstruction` |
//! | tool call id | `tool_use.id` (sanitised `[A-Za-z0-9_-]`) | `tool_calls[].id` | `call_id` | none: `call_<hash(seed, n, name)>` generated, sent back as `id` |
//! | tool result | `tool_result` block in user turn | `role:tool` messages (before the user's text) | `function_call_output` items | `functionResponse` parts grouped in one user turn; name from the call |
//! | thinking | `thinking`+`signature`, `redacted_thinking` | `reasoning_content` (unsigned) | `reasoning` item, `encrypted_content` | `thought:true` parts, `thoughtSignature` |
//! | stop reason | `end_turn` `max_tokens` `tool_use` `stop_sequence` `refusal` `pause_turn` | `stop` `length` `tool_calls` `content_filter` | `completed` / `incomplete(max_output_tokens\|content_filter)` / `failed` | `STOP` `MAX_TOKENS` `SAFETY`… |
//! | usage | input excludes cache reads/writes | `prompt_tokens` includes cached | `input_tokens` includes cached | `promptTokenCount` includes cached; thoughts apart |
//!
//! Canonical usage keeps `input_tokens` uncached, so cached tokens are
//! counted once whatever the pair.
//!
//! # Lossy cases and how each is handled (returned as `lossy` notes)
//!
//! - Thinking signatures are only valid for the provider family that made
//!   them ([`canonical::Reasoning::provenance`]). To A: foreign reasoning is
//!   dropped, and when thinking is on and the last tool turn lost its
//!   signed thinking, thinking is turned off for the request. To C: reasoning
//!   history is dropped (responses carry it as `reasoning_content`, unsigned).
//!   To R: only OpenAI-made reasoning items with `encrypted_content` are
//!   replayed. To G: only Gemini signatures are replayed; a functionCall
//!   without one gets Gemini's documented skip-validator signature.
//!   Foreign signatures shown to an Anthropic client travel as
//!   `gw1.<format>.<signature>` so the gateway recognises them when replayed.
//! - Hosted tools (web search, …) exist only for their own format: dropped elsewhere.
//! - Responses `custom` (free-text) tools become functions taking
//!   `{"input": string}` with the grammar in the description; calls are
//!   unwrapped back to `custom_tool_call` for an R client.
//! - Images inside tool results: C moves them to a following user message;
//!   G puts `inlineData` beside the `functionResponse`; https images to G
//!   go as `fileData` (G may refuse URLs it cannot fetch).
//! - `is_error` on tool results: C prefixes the text with `Error: `; G wraps
//!   it as `{"error": …}`.
//! - `top_k` has no C/R field; stop sequences are cut to 4 for C (5 for G)
//!   and dropped for R; `seed`/penalties are dropped for A and R.
//! - `response_format` json_schema to A becomes a system instruction.
//! - `previous_response_id` needs the gateway's response store: encoders
//!   other than R note it.
//! - A requires `max_tokens`: [`anthropic::DEFAULT_MAX_TOKENS`] when absent,
//!   raised above the thinking budget when needed; temperature is clamped to
//!   1 and dropped with thinking on.
//! - A mid-conversation system message (C/R) is hoisted into the system prompt.
//! - Stop reasons with no exact counterpart: `refusal`/`content_filter` ↔
//!   `SAFETY`, `pause_turn` → end, context-window stop → length.
//! - Claude Code's per-request billing line is removed from the system
//!   prompt of every translated request (it defeats the upstream's prefix
//!   cache); a forwarded A→A request keeps it, as Anthropic expects.
//! - After a context relay (the conversation summarised to fit a smaller
//!   window) the request is rebuilt from its OpenAI Chat form, so the
//!   summarised turns lose their reasoning and cache markers (noted).
//! - Mid-stream upstream errors become the client format's error event
//!   (A `error`, C `data: {"error":…}`, R `response.failed`, G
//!   `data: {"error":…}`) and the stream ends; an error as the very first
//!   event counts as a failed attempt and falls back.

pub mod anthropic;
pub mod canonical;
pub mod claude_code;
pub mod gemini;
pub mod ids;
pub mod json;
pub mod observe;
pub mod openai_chat;
pub mod openai_responses;
pub mod sse;

use crate::catalog::{AuthStyle, WireFormat};
use bytes::Bytes;
use canonical::*;
use serde_json::{json, Value};
use std::collections::HashSet;

pub use claude_code::strip_billing_header;

/// Why a request or response could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    #[error("the body is not valid JSON: {0}")]
    Json(String),
    #[error("{message}")]
    Invalid { param: String, message: String },
}

impl FormatError {
    pub fn invalid(param: &str, message: impl Into<String>) -> FormatError {
        FormatError::Invalid {
            param: param.to_string(),
            message: message.into(),
        }
    }

    pub fn param(&self) -> Option<&str> {
        match self {
            FormatError::Invalid { param, .. } if !param.is_empty() => Some(param),
            _ => None,
        }
    }

    /// Always the client's fault: a 400.
    pub fn to_error_info(&self) -> ErrorInfo {
        ErrorInfo::new(ErrorKind::BadRequest, 400, self.to_string())
    }
}

/// An encoded body and what the translation could not keep.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    pub body: Value,
    pub lossy: Vec<String>,
}

/// What an encoder needs to know about the client's request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientContext {
    /// The model name the client asked for (shown back to it).
    pub model: String,
    /// Unix seconds for `created` fields (the proxy's clock).
    pub created: u64,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
    /// Responses custom tools: calls to them are re-shaped as `custom_tool_call`.
    pub custom_tools: Vec<String>,
}

impl ClientContext {
    pub fn for_request(req: &ChatRequest, created: u64) -> ClientContext {
        ClientContext {
            model: req.model.clone(),
            created,
            include_usage: req.stream_usage,
            custom_tools: req.custom_tool_names(),
        }
    }

    fn model_or(&self, fallback: &str) -> String {
        if self.model.is_empty() {
            fallback.to_string()
        } else {
            self.model.clone()
        }
    }
}

pub(crate) fn note(lossy: &mut Vec<String>, msg: &str) {
    if !lossy.iter().any(|l| l == msg) {
        lossy.push(msg.to_string());
    }
}

/// Ids of calls (in history) to tools declared as custom.
pub(crate) fn custom_call_ids(req: &ChatRequest) -> HashSet<String> {
    let custom: HashSet<String> = req.custom_tool_names().into_iter().collect();
    req.messages
        .iter()
        .flat_map(|m| &m.parts)
        .filter_map(|p| match p {
            Part::ToolCall { id, name, kind, .. }
                if *kind == CallKind::Custom || custom.contains(name) =>
            {
                Some(id.clone())
            }
            _ => None,
        })
        .collect()
}

/// A custom (free-text) tool as a function taking `{"input": string}`.
pub(crate) fn custom_tool_as_function(t: &Tool, format: Option<&Value>) -> (Option<String>, Value) {
    let mut desc = t.description.clone().unwrap_or_default();
    if let Some(f) = format {
        if let Some(def) = f.get("definition").and_then(Value::as_str) {
            let syntax = f.get("syntax").and_then(Value::as_str).unwrap_or("grammar");
            desc = format!("{desc}\n\nInput grammar ({syntax}):\n{def}");
        }
    }
    (
        Some(desc),
        json!({"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}),
    )
}

/// Decodes a client request in `fmt`.
pub fn decode_request(fmt: WireFormat, body: &[u8]) -> Result<ChatRequest, FormatError> {
    match fmt {
        WireFormat::Openai => openai_chat::decode_request(body),
        WireFormat::OpenaiResponses => openai_responses::decode_request(body),
        WireFormat::Anthropic => anthropic::decode_request(body),
        WireFormat::Gemini => gemini::decode_request(body),
    }
}

/// Encodes a request for an upstream speaking `fmt`.
pub fn encode_request(fmt: WireFormat, req: &ChatRequest) -> Result<Translated, FormatError> {
    match fmt {
        WireFormat::Openai => openai_chat::encode_request(req),
        WireFormat::OpenaiResponses => openai_responses::encode_request(req),
        WireFormat::Anthropic => anthropic::encode_request(req),
        WireFormat::Gemini => gemini::encode_request(req),
    }
}

/// Decodes an upstream's non-streaming response.
pub fn decode_response(fmt: WireFormat, body: &[u8]) -> Result<ChatResponse, FormatError> {
    match fmt {
        WireFormat::Openai => openai_chat::decode_response(body),
        WireFormat::OpenaiResponses => openai_responses::decode_response(body),
        WireFormat::Anthropic => anthropic::decode_response(body),
        WireFormat::Gemini => gemini::decode_response(body),
    }
}

/// Encodes a response for a client speaking `fmt`.
pub fn encode_response(fmt: WireFormat, resp: &ChatResponse, ctx: &ClientContext) -> Translated {
    match fmt {
        WireFormat::Openai => openai_chat::encode_response(resp, ctx),
        WireFormat::OpenaiResponses => openai_responses::encode_response(resp, ctx),
        WireFormat::Anthropic => anthropic::encode_response(resp, ctx),
        WireFormat::Gemini => gemini::encode_response(resp, ctx),
    }
}

/// Classifies an upstream's error body (non-2xx status).
pub fn decode_error(fmt: WireFormat, status: u16, body: &[u8]) -> ErrorInfo {
    match fmt {
        WireFormat::Openai | WireFormat::OpenaiResponses => openai_chat::decode_error(status, body),
        WireFormat::Anthropic => anthropic::decode_error(status, body),
        WireFormat::Gemini => gemini::decode_error(status, body),
    }
}

/// An error in the client's format: the status to send and the body.
pub fn encode_error(fmt: WireFormat, status: u16, kind: ErrorKind, message: &str) -> (u16, Value) {
    match fmt {
        WireFormat::Openai | WireFormat::OpenaiResponses => {
            openai_chat::encode_error(status, kind, message)
        }
        WireFormat::Anthropic => anthropic::encode_error(status, kind, message),
        WireFormat::Gemini => gemini::encode_error(status, kind, message),
    }
}

/// Upstream SSE → canonical events, for any format.
#[derive(Debug)]
pub enum StreamDecoder {
    Openai(openai_chat::StreamDecoder),
    OpenaiResponses(openai_responses::StreamDecoder),
    Anthropic(anthropic::StreamDecoder),
    Gemini(gemini::StreamDecoder),
}

impl StreamDecoder {
    pub fn new(fmt: WireFormat) -> StreamDecoder {
        match fmt {
            WireFormat::Openai => StreamDecoder::Openai(openai_chat::StreamDecoder::new()),
            WireFormat::OpenaiResponses => {
                StreamDecoder::OpenaiResponses(openai_responses::StreamDecoder::new())
            }
            WireFormat::Anthropic => StreamDecoder::Anthropic(anthropic::StreamDecoder::new()),
            WireFormat::Gemini => StreamDecoder::Gemini(gemini::StreamDecoder::new()),
        }
    }

    /// One SSE event: its `event:` name (if any) and `data:` payload.
    pub fn push(&mut self, event: Option<&str>, data: &str) -> Vec<StreamEvent> {
        match self {
            StreamDecoder::Openai(d) => d.push(event, data),
            StreamDecoder::OpenaiResponses(d) => d.push(event, data),
            StreamDecoder::Anthropic(d) => d.push(event, data),
            StreamDecoder::Gemini(d) => d.push(event, data),
        }
    }

    /// The upstream closed: completes the stream or reports it truncated.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        match self {
            StreamDecoder::Openai(d) => d.finish(),
            StreamDecoder::OpenaiResponses(d) => d.finish(),
            StreamDecoder::Anthropic(d) => d.finish(),
            StreamDecoder::Gemini(d) => d.finish(),
        }
    }
}

/// Canonical events → the client's SSE frames, for any format.
#[derive(Debug)]
pub enum StreamEncoder {
    Openai(openai_chat::StreamEncoder),
    OpenaiResponses(openai_responses::StreamEncoder),
    Anthropic(anthropic::StreamEncoder),
    Gemini(gemini::StreamEncoder),
}

impl StreamEncoder {
    pub fn new(fmt: WireFormat, ctx: &ClientContext) -> StreamEncoder {
        match fmt {
            WireFormat::Openai => StreamEncoder::Openai(openai_chat::StreamEncoder::new(ctx)),
            WireFormat::OpenaiResponses => {
                StreamEncoder::OpenaiResponses(openai_responses::StreamEncoder::new(ctx))
            }
            WireFormat::Anthropic => StreamEncoder::Anthropic(anthropic::StreamEncoder::new(ctx)),
            WireFormat::Gemini => StreamEncoder::Gemini(gemini::StreamEncoder::new(ctx)),
        }
    }

    /// Frames for one event (possibly none); nothing after the terminator.
    pub fn push(&mut self, ev: &StreamEvent) -> Bytes {
        sse::to_bytes(self.frames(ev))
    }

    pub fn frames(&mut self, ev: &StreamEvent) -> Vec<String> {
        match self {
            StreamEncoder::Openai(e) => e.push(ev),
            StreamEncoder::OpenaiResponses(e) => e.push(ev),
            StreamEncoder::Anthropic(e) => e.push(ev),
            StreamEncoder::Gemini(e) => e.push(ev),
        }
    }

    /// Whether the terminator (or an error) has been sent.
    pub fn is_done(&self) -> bool {
        match self {
            StreamEncoder::Openai(e) => e.is_done(),
            StreamEncoder::OpenaiResponses(e) => e.is_done(),
            StreamEncoder::Anthropic(e) => e.is_done(),
            StreamEncoder::Gemini(e) => e.is_done(),
        }
    }

    pub fn lossy(&self) -> &[String] {
        match self {
            StreamEncoder::Openai(e) => e.lossy(),
            StreamEncoder::OpenaiResponses(e) => e.lossy(),
            StreamEncoder::Anthropic(e) => e.lossy(),
            StreamEncoder::Gemini(e) => e.lossy(),
        }
    }

    /// A keep-alive frame for silences: Anthropic `ping`, an SSE comment otherwise.
    pub fn keep_alive(&self) -> Bytes {
        match self {
            StreamEncoder::Anthropic(_) => keep_alive(WireFormat::Anthropic),
            _ => keep_alive(WireFormat::Openai),
        }
    }
}

/// A keep-alive frame for a client speaking `fmt`: Anthropic `ping`, an SSE comment otherwise.
pub fn keep_alive(fmt: WireFormat) -> Bytes {
    match fmt {
        WireFormat::Anthropic => Bytes::from_static(b"event: ping\ndata: {\"type\":\"ping\"}\n\n"),
        _ => Bytes::from_static(b": keep-alive\n\n"),
    }
}

/// The in-stream error event a client speaking `fmt` understands, for a
/// forwarded stream that broke mid-way (the client's stream then ends).
pub fn stream_error_frame(fmt: WireFormat, ctx: &ClientContext, e: &ErrorInfo) -> Bytes {
    StreamEncoder::new(fmt, ctx).push(&StreamEvent::Error(e.clone()))
}

/// `from->to`, for the `x-omniroute-translation` header (`anthropic->anthropic`
/// means the bytes were forwarded as they came).
pub fn translation_label(from: WireFormat, to: WireFormat) -> String {
    format!("{}->{}", from.as_str(), to.as_str())
}

/// The path to POST to, relative to the provider's base URL (OpenAI-style
/// base URLs include `/v1`; Anthropic's and Gemini's do not).
pub fn upstream_path(fmt: WireFormat, model: &str, stream: bool) -> String {
    match fmt {
        WireFormat::Openai => "/chat/completions".into(),
        WireFormat::OpenaiResponses => "/responses".into(),
        WireFormat::Anthropic => "/v1/messages".into(),
        WireFormat::Gemini if stream => {
            format!("/v1beta/models/{model}:streamGenerateContent?alt=sse")
        }
        WireFormat::Gemini => format!("/v1beta/models/{model}:generateContent"),
    }
}

/// How a format's upstream expects its key by default.
pub fn default_auth(fmt: WireFormat) -> AuthStyle {
    match fmt {
        WireFormat::Openai | WireFormat::OpenaiResponses => AuthStyle::Bearer,
        WireFormat::Anthropic => AuthStyle::XApiKey,
        WireFormat::Gemini => AuthStyle::XGoogApiKey,
    }
}

/// Headers a format's upstream needs beyond auth and content type.
pub fn upstream_headers(fmt: WireFormat) -> &'static [(&'static str, &'static str)] {
    match fmt {
        WireFormat::Anthropic => &[("anthropic-version", anthropic::API_VERSION)],
        _ => &[],
    }
}

/// The `content-type` of a streamed response to a client.
pub const SSE_CONTENT_TYPE: &str = "text/event-stream";
