//! What the gateway needs from a stream it forwards untouched (same format
//! on both sides): usage, whether the stream completed, and an upstream
//! error. A tap reads only the few events that carry those (cheap substring
//! checks first), never re-encodes anything.

use super::canonical::{ErrorInfo, Usage};
use super::{anthropic, gemini, openai_responses};
use crate::catalog::WireFormat;
use serde_json::Value;

/// The `event:` name and the `data:` payload of one raw SSE event.
pub fn split_event(event: &[u8]) -> (Option<&[u8]>, Vec<&[u8]>) {
    let mut name = None;
    let mut data = Vec::new();
    for line in event.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(v) = line.strip_prefix(b"event:") {
            name = Some(v.strip_prefix(b" ").unwrap_or(v));
        } else if let Some(v) = line.strip_prefix(b"data:") {
            data.push(v.strip_prefix(b" ").unwrap_or(v));
        }
    }
    (name, data)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// What one forwarded event was, for the relay.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// Nothing the gateway acts on (most events).
    Other,
    /// A Responses lifecycle event (`response.created`, `.in_progress`,
    /// `.completed`, `.incomplete`, `.failed`), parsed, so the gateway can
    /// give the response its own id and store it.
    Lifecycle { kind: String, event: Value },
}

/// Watches a stream in `format` as it is forwarded (Anthropic, Responses or
/// Gemini; OpenAI Chat streams have their own tap in the relay).
#[derive(Debug, Clone)]
pub struct StreamTap {
    format: WireFormat,
    usage: Usage,
    done: bool,
    error: Option<ErrorInfo>,
}

impl StreamTap {
    pub fn new(format: WireFormat) -> StreamTap {
        StreamTap {
            format,
            usage: Usage::default(),
            done: false,
            error: None,
        }
    }

    /// Usage so far (cumulative).
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// The stream reached its terminator (or the upstream's own error event).
    pub fn done(&self) -> bool {
        self.done
    }

    /// The upstream's own error event, if it sent one.
    pub fn error(&self) -> Option<&ErrorInfo> {
        self.error.as_ref()
    }

    /// One whole raw SSE event (without or with its blank line).
    pub fn observe(&mut self, event: &[u8]) -> Observed {
        let (name, data) = split_event(event);
        if data.is_empty() {
            return Observed::Other;
        }
        let data: std::borrow::Cow<[u8]> = if data.len() == 1 {
            std::borrow::Cow::Borrowed(data[0])
        } else {
            std::borrow::Cow::Owned(data.join(&b'\n'))
        };
        match self.format {
            WireFormat::Anthropic => self.anthropic(name, &data),
            WireFormat::OpenaiResponses => return self.responses(name, &data),
            WireFormat::Gemini => self.gemini(&data),
            WireFormat::Openai => {
                if *data == *b"[DONE]" {
                    self.done = true;
                }
            }
        }
        Observed::Other
    }

    fn anthropic(&mut self, name: Option<&[u8]>, data: &[u8]) {
        let kind: &[u8] = match name {
            Some(n) => n,
            None if contains(data, b"\"message_start\"") => b"message_start",
            None if contains(data, b"\"message_delta\"") => b"message_delta",
            None if contains(data, b"\"message_stop\"") => b"message_stop",
            None if contains(data, b"\"error\"") => b"error",
            None => return,
        };
        match kind {
            b"message_start" => {
                if let Ok(v) = serde_json::from_slice::<Value>(data) {
                    if let Some(u) = v.pointer("/message/usage") {
                        self.usage = anthropic::decode_usage(u);
                    }
                }
            }
            b"message_delta" => {
                if let Ok(v) = serde_json::from_slice::<Value>(data) {
                    if let Some(u) = v.get("usage") {
                        // Later counts replace earlier ones, field by field.
                        let d = anthropic::decode_usage(u);
                        let has = |k: &str| u.get(k).is_some_and(|x| !x.is_null());
                        if has("output_tokens") {
                            self.usage.output_tokens = d.output_tokens;
                        }
                        if has("input_tokens") {
                            self.usage.input_tokens = d.input_tokens;
                        }
                        if has("cache_read_input_tokens") {
                            self.usage.cache_read_tokens = d.cache_read_tokens;
                        }
                        if has("cache_creation_input_tokens") {
                            self.usage.cache_write_tokens = d.cache_write_tokens;
                        }
                    }
                }
            }
            b"message_stop" => self.done = true,
            b"error" => {
                let v = serde_json::from_slice::<Value>(data).unwrap_or(Value::Null);
                self.error = Some(anthropic::decode_error_value(200, &v));
                self.done = true;
            }
            _ => {}
        }
    }

    fn responses(&mut self, name: Option<&[u8]>, data: &[u8]) -> Observed {
        const KINDS: [&str; 6] = [
            "response.created",
            "response.in_progress",
            "response.completed",
            "response.incomplete",
            "response.failed",
            "error",
        ];
        let kind = match name {
            Some(n) => KINDS.iter().find(|k| k.as_bytes() == n),
            None => KINDS.iter().find(|k| {
                let quoted = format!("\"{k}\"");
                contains(data, quoted.as_bytes())
            }),
        };
        let Some(kind) = kind else {
            return Observed::Other;
        };
        let Ok(v) = serde_json::from_slice::<Value>(data) else {
            return Observed::Other;
        };
        // The data's own type decides (a text delta may contain these words).
        let ty = v.get("type").and_then(Value::as_str).unwrap_or(kind);
        match ty {
            "response.completed" | "response.incomplete" => {
                if let Some(u) = v.pointer("/response/usage").filter(|u| u.is_object()) {
                    self.usage = openai_responses::decode_usage(u);
                }
                self.done = true;
            }
            "response.failed" => {
                if let Some(u) = v.pointer("/response/usage").filter(|u| u.is_object()) {
                    self.usage = openai_responses::decode_usage(u);
                }
                let message = v
                    .pointer("/response/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("the upstream reported the response failed");
                self.error = Some(ErrorInfo::new(
                    super::canonical::ErrorKind::Upstream,
                    502,
                    message,
                ));
                self.done = true;
            }
            "error" => {
                let message = v
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("upstream error");
                self.error = Some(ErrorInfo::new(
                    super::canonical::ErrorKind::Upstream,
                    502,
                    message,
                ));
                self.done = true;
                return Observed::Other;
            }
            "response.created" | "response.in_progress" => {}
            _ => return Observed::Other,
        }
        Observed::Lifecycle {
            kind: ty.to_string(),
            event: v,
        }
    }

    fn gemini(&mut self, data: &[u8]) {
        let usage = contains(data, b"\"usageMetadata\"");
        let finish = contains(data, b"\"finishReason\"");
        let error = data.starts_with(b"{\"error\"") || contains(data, b"\"error\":{");
        if !(usage || finish || error) {
            return;
        }
        let Ok(v) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        if v.get("error").is_some_and(Value::is_object) {
            self.error = Some(gemini::decode_error_value(200, &v));
            self.done = true;
            return;
        }
        if let Some(u) = v.get("usageMetadata") {
            self.usage = gemini::decode_usage(u);
        }
        let finished = v
            .get("candidates")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|c| c.get("finishReason").is_some()));
        if finished {
            self.done = true;
        }
    }
}

/// An error the upstream sent as the very first event of a `200` stream
/// (an overloaded Anthropic upstream does): the attempt failed before the
/// client saw anything, so another target can still be tried.
pub fn early_error(format: WireFormat, first: &[u8]) -> Option<ErrorInfo> {
    let end = first
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or(first.len(), |p| p + 2);
    let (name, data) = split_event(&first[..end]);
    let data = data.first()?;
    let v = || serde_json::from_slice::<Value>(data).unwrap_or(Value::Null);
    match format {
        WireFormat::Anthropic
            if name == Some(b"error") || data.starts_with(b"{\"type\":\"error\"") =>
        {
            Some(anthropic::decode_error_value(200, &v()))
        }
        WireFormat::Gemini if data.starts_with(b"{\"error\"") => {
            Some(gemini::decode_error_value(200, &v()))
        }
        WireFormat::OpenaiResponses
            if name == Some(b"error") || name == Some(b"response.failed") =>
        {
            let v = v();
            let message = v
                .pointer("/response/error/message")
                .or_else(|| v.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("upstream error")
                .to_string();
            Some(ErrorInfo::new(
                super::canonical::ErrorKind::Upstream,
                502,
                message,
            ))
        }
        // `{"error": …}` (spacing varies by server), never a chunk with choices.
        WireFormat::Openai if contains(data, b"\"error\"") => {
            let v = v();
            (v.get("error").is_some_and(|e| !e.is_null()) && v.get("choices").is_none())
                .then(|| super::openai_chat::decode_error_value(500, &v))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(fmt: WireFormat, events: &[&str]) -> (StreamTap, Vec<Observed>) {
        let mut t = StreamTap::new(fmt);
        let seen = events.iter().map(|e| t.observe(e.as_bytes())).collect();
        (t, seen)
    }

    #[test]
    fn anthropic_usage_merges_start_and_delta() {
        let (t, _) = feed(
            WireFormat::Anthropic,
            &[
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":9,\"cache_read_input_tokens\":4,\"output_tokens\":1}}}\n\n",
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"message_stop\"}}\n\n",
                "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\n",
            ],
        );
        assert!(!t.done());
        assert_eq!(t.usage().input_tokens, 9);
        assert_eq!(t.usage().cache_read_tokens, 4);
        assert_eq!(t.usage().output_tokens, 7);
        let mut t = t;
        t.observe(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        assert!(t.done());
        assert!(t.error().is_none());
    }

    #[test]
    fn anthropic_error_event_ends_the_stream() {
        let (t, _) = feed(
            WireFormat::Anthropic,
            &["event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"],
        );
        assert!(t.done());
        assert_eq!(t.error().unwrap().message, "Overloaded");
        let e = early_error(
            WireFormat::Anthropic,
            b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        )
        .unwrap();
        assert_eq!(e.status, 529);
        assert!(early_error(
            WireFormat::Anthropic,
            b"event: message_start\ndata: {\"type\":\"message_start\"}\n\n"
        )
        .is_none());
    }

    #[test]
    fn responses_lifecycle_events_are_parsed_and_deltas_are_not() {
        let (t, seen) = feed(
            WireFormat::OpenaiResponses,
            &[
                "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_up\"}}\n\n",
                "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"response.completed\"}\n\n",
                "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_up\",\"usage\":{\"input_tokens\":10,\"input_tokens_details\":{\"cached_tokens\":6},\"output_tokens\":3}}}\n\n",
            ],
        );
        assert!(matches!(&seen[0], Observed::Lifecycle { kind, .. } if kind == "response.created"));
        assert_eq!(seen[1], Observed::Other);
        assert!(
            matches!(&seen[2], Observed::Lifecycle { kind, .. } if kind == "response.completed")
        );
        assert!(t.done());
        assert_eq!(t.usage().input_tokens, 4);
        assert_eq!(t.usage().cache_read_tokens, 6);
        assert_eq!(t.usage().output_tokens, 3);
    }

    #[test]
    fn gemini_finish_and_usage() {
        let (t, _) = feed(
            WireFormat::Gemini,
            &[
                "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hi\"}]}}]}\r\n\r\n",
                "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"!\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":9,\"candidatesTokenCount\":4}}\r\n\r\n",
            ],
        );
        assert!(t.done());
        assert_eq!(t.usage().input_tokens, 9);
        assert_eq!(t.usage().output_tokens, 4);
        let (t, _) = feed(
            WireFormat::Gemini,
            &["data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hi\"}]}}]}\n\n"],
        );
        assert!(!t.done());
    }
}
