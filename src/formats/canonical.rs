//! The canonical chat model every codec decodes into and encodes from.
//!
//! Block-structured (like Anthropic Messages, the richest of the four): tool
//! results are parts of user turns, reasoning keeps its signature and the
//! format that produced it, images can sit inside tool results.

use crate::catalog::WireFormat;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Who speaks a message. System text lives in [`ChatRequest::system`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
}

/// One system block; `cache` is Anthropic's `cache_control` object, kept verbatim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemBlock {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

/// Where an image or document comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaSource {
    Url { url: String },
    Base64 { media_type: String, data: String },
}

impl MediaSource {
    /// Parses `data:<mime>;base64,<data>` into base64, anything else is a URL.
    pub fn from_url(url: &str) -> MediaSource {
        if let Some(rest) = url.strip_prefix("data:") {
            if let Some((meta, data)) = rest.split_once(',') {
                if let Some(mime) = meta.strip_suffix(";base64") {
                    return MediaSource::Base64 {
                        media_type: mime.to_string(),
                        data: data.to_string(),
                    };
                }
            }
        }
        MediaSource::Url {
            url: url.to_string(),
        }
    }

    /// The source as a URL (a `data:` URL for base64).
    pub fn to_url(&self) -> String {
        match self {
            MediaSource::Url { url } => url.clone(),
            MediaSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        }
    }
}

/// Whether a tool (or a call to it) takes JSON arguments or free text
/// (Responses `custom` tools such as Codex's `apply_patch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    #[default]
    Function,
    Custom,
}

fn is_function(k: &CallKind) -> bool {
    *k == CallKind::Function
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    Text {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache: Option<Value>,
    },
    Image {
        source: MediaSource,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A PDF or other file.
    Document {
        source: MediaSource,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
    ToolCall {
        id: String,
        name: String,
        /// The arguments as the JSON text the model produced; for
        /// [`CallKind::Custom`] the raw free-text input.
        arguments: String,
        #[serde(default, skip_serializing_if = "is_function")]
        kind: CallKind,
        /// Gemini `thoughtSignature` carried on the functionCall part.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    ToolResult {
        call_id: String,
        /// The tool's name when the format carries it (Gemini needs it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Text and image parts.
        content: Vec<Part>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
    Reasoning(Reasoning),
}

impl Part {
    pub fn text(t: impl Into<String>) -> Part {
        Part::Text {
            text: t.into(),
            cache: None,
        }
    }
}

/// Thinking / reasoning content and the proof that lets its producer accept it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reasoning {
    pub text: String,
    /// Anthropic `signature`, OpenAI `encrypted_content` or Gemini
    /// `thoughtSignature`: only valid for [`Reasoning::provenance`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The format that produced it (decides where the signature may go).
    pub provenance: WireFormat,
    /// Anthropic `redacted_thinking.data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted: Option<String>,
    /// Responses reasoning item id (`rs_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments (functions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    pub kind: ToolKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolKind {
    Function,
    /// Free-text tool with an optional grammar (`format` object of Responses).
    Custom {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<Value>,
    },
    /// A provider-hosted tool (Anthropic web search, Responses `web_search`,
    /// Gemini `googleSearch`): only meaningful to the format it came from.
    Hosted {
        format: WireFormat,
        raw: Value,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    Tool(String),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
}

/// How much the model should think before answering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum ReasoningConfig {
    Disabled,
    /// A token budget (Anthropic `budget_tokens`, Gemini `thinkingBudget`).
    Budget(u32),
    /// An effort level (`minimal`, `low`, `medium`, `high`, …).
    Effort(String),
    /// The model decides (Anthropic adaptive, Gemini budget -1).
    Adaptive,
}

impl ReasoningConfig {
    /// Effort → budget (1024 / 8192 / 24576), the thresholds used across gateways.
    pub fn budget(&self) -> Option<u32> {
        match self {
            ReasoningConfig::Disabled => None,
            ReasoningConfig::Budget(b) => Some(*b),
            ReasoningConfig::Effort(e) => Some(match e.as_str() {
                "minimal" | "low" => 1024,
                "medium" => 8192,
                "none" => 0,
                _ => 24576,
            }),
            ReasoningConfig::Adaptive => Some(8192),
        }
    }

    /// Budget → effort: ≤1024 low, ≤8192 medium, else high.
    pub fn effort(&self) -> Option<String> {
        match self {
            ReasoningConfig::Disabled => None,
            ReasoningConfig::Effort(e) => Some(e.clone()),
            ReasoningConfig::Adaptive => Some("medium".into()),
            ReasoningConfig::Budget(b) => Some(
                match b {
                    0 => "none",
                    1..=1024 => "low",
                    1025..=8192 => "medium",
                    _ => "high",
                }
                .into(),
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        schema: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
    },
}

/// Responses-API fields with no counterpart elsewhere.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesExtras {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    /// Whether the system prompt came in as `instructions`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub instructions: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_summary: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Client-visible model name; empty for Gemini (the model is in the path).
    pub model: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<SystemBlock>,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub sampling: Sampling,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<ReasoningConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// End-user id (`user`, `metadata.user_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Free-form metadata (`metadata` of OpenAI and Responses).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    /// Sticky cache key (`prompt_cache_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache_key: Option<String>,
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream_usage: bool,
    #[serde(default)]
    pub responses: ResponsesExtras,
    /// What decoding could not keep (unknown items, unsupported fields).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lossy: Vec<String>,
}

impl ChatRequest {
    /// Names of free-text (custom) tools, so a response can be re-shaped for them.
    pub fn custom_tool_names(&self) -> Vec<String> {
        self.tools
            .iter()
            .filter(|t| matches!(t.kind, ToolKind::Custom { .. }))
            .map(|t| t.name.clone())
            .collect()
    }

    /// The system prompt as one string (blocks joined by a blank line).
    pub fn system_text(&self) -> String {
        join_system(&self.system)
    }
}

pub fn join_system(blocks: &[SystemBlock]) -> String {
    blocks
        .iter()
        .map(|b| b.text.as_str())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Token counts. `input_tokens` excludes cache reads and writes (Anthropic's
/// meaning), so each token is counted once; `output_tokens` includes reasoning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Everything the prompt cost: uncached + cache reads + cache writes
    /// (OpenAI `prompt_tokens`, Gemini `promptTokenCount`, Responses `input_tokens`).
    pub fn prompt_total(&self) -> u64 {
        self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
    }

    pub fn total(&self) -> u64 {
        self.prompt_total() + self.output_tokens
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    EndTurn,
    StopSequence,
    MaxTokens,
    ToolUse,
    ContentFilter,
    Refusal,
    PauseTurn,
    ContextWindowExceeded,
    MalformedToolCall,
    Error,
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub id: String,
    pub model: String,
    /// Unix seconds; 0 when unknown (the proxy fills it in).
    #[serde(default)]
    pub created: u64,
    pub parts: Vec<Part>,
    pub finish: FinishReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequence: Option<String>,
    pub usage: Usage,
}

/// What kind of block a stream opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockKind {
    Text,
    Reasoning {
        provenance: WireFormat,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        redacted: Option<String>,
    },
    ToolCall {
        id: String,
        name: String,
        #[serde(default, skip_serializing_if = "is_function")]
        kind: CallKind,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Delta {
    Text(String),
    Reasoning(String),
    /// A signature for the open block (Anthropic thinking signature, Responses
    /// encrypted_content, Gemini thoughtSignature on any part).
    Signature(String),
    ToolArgs(String),
}

/// One canonical stream event. Blocks are strictly sequential: a block is
/// stopped before the next one starts, and indexes count up from 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum StreamEvent {
    Start {
        id: String,
        model: String,
        usage: Usage,
    },
    BlockStart {
        index: usize,
        block: BlockKind,
    },
    Delta {
        index: usize,
        delta: Delta,
    },
    BlockStop {
        index: usize,
    },
    /// Cumulative usage so far; the last one wins.
    Usage(Usage),
    /// The stream completed normally; always the last event but for `Error`.
    Finish {
        reason: FinishReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stop_sequence: Option<String>,
    },
    /// The upstream failed mid-stream; nothing follows.
    Error(ErrorInfo),
}

/// The gateway's classification of an error, mapped to each format's status and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    BadRequest,
    ContextTooLong,
    Auth,
    Billing,
    Permission,
    NotFound,
    RequestTooLarge,
    RateLimited,
    Overloaded,
    Upstream,
    Timeout,
}

impl ErrorKind {
    /// A kind for an HTTP status when nothing better is known.
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            401 => ErrorKind::Auth,
            402 => ErrorKind::Billing,
            403 => ErrorKind::Permission,
            404 => ErrorKind::NotFound,
            413 => ErrorKind::RequestTooLarge,
            429 => ErrorKind::RateLimited,
            503 | 529 => ErrorKind::Overloaded,
            504 | 408 => ErrorKind::Timeout,
            400..=499 => ErrorKind::BadRequest,
            _ => ErrorKind::Upstream,
        }
    }

    /// Whether trying another target may help.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Auth
                | ErrorKind::Billing
                | ErrorKind::Permission
                | ErrorKind::NotFound
                | ErrorKind::RateLimited
                | ErrorKind::Overloaded
                | ErrorKind::Upstream
                | ErrorKind::Timeout
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub status: u16,
    pub kind: ErrorKind,
    pub message: String,
    /// The upstream's own code or type, kept for logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl ErrorInfo {
    pub fn new(kind: ErrorKind, status: u16, message: impl Into<String>) -> ErrorInfo {
        ErrorInfo {
            status,
            kind,
            message: message.into(),
            code: None,
        }
    }

    /// The error for an upstream stream that closed without its terminator.
    pub fn truncated() -> ErrorInfo {
        ErrorInfo::new(
            ErrorKind::Upstream,
            502,
            "upstream stream ended unexpectedly",
        )
    }
}

/// Recognises context-window overflow in an upstream error message (the
/// same list routing classifies with).
pub use crate::routing::classify::is_context_overflow;
