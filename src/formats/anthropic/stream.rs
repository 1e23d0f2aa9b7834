//! Anthropic Messages SSE: upstream events → canonical events, and
//! canonical events → `message_start` … `message_stop` for a client.

use super::{
    client_signature, decode_error_value, decode_finish, decode_usage, encode_finish, encode_usage,
    message_id,
};
use crate::catalog::WireFormat;
use crate::formats::canonical::*;
use crate::formats::json::{str_of, string_of};
use crate::formats::{ids, note, sse, ClientContext};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Upstream Anthropic events → canonical events.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    /// Anthropic block index → canonical index (unknown block kinds are skipped).
    blocks: HashMap<u64, usize>,
    next_index: usize,
    usage: Usage,
    stop_reason: Option<String>,
    stop_sequence: Option<String>,
    saw_delta: bool,
    done: bool,
}

impl StreamDecoder {
    pub fn new() -> StreamDecoder {
        StreamDecoder::default()
    }

    pub fn push(&mut self, event: Option<&str>, data: &str) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        let v: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(_) if data.trim().is_empty() => return out,
            Err(e) => {
                self.done = true;
                out.push(StreamEvent::Error(ErrorInfo::new(
                    ErrorKind::Upstream,
                    502,
                    format!("malformed upstream event: {e}"),
                )));
                return out;
            }
        };
        let ty = str_of(&v, "type").or(event).unwrap_or("");
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        match ty {
            "message_start" => {
                let m = v.get("message").cloned().unwrap_or(json!({}));
                self.usage = m.get("usage").map(decode_usage).unwrap_or_default();
                out.push(StreamEvent::Start {
                    id: string_of(&m, "id").unwrap_or_default(),
                    model: string_of(&m, "model").unwrap_or_default(),
                    usage: self.usage,
                });
            }
            "content_block_start" => {
                let b = v.get("content_block").cloned().unwrap_or(json!({}));
                let block = match str_of(&b, "type") {
                    Some("text") => Some(BlockKind::Text),
                    Some("thinking") => Some(BlockKind::Reasoning {
                        provenance: WireFormat::Anthropic,
                        redacted: None,
                    }),
                    Some("redacted_thinking") => Some(BlockKind::Reasoning {
                        provenance: WireFormat::Anthropic,
                        redacted: string_of(&b, "data"),
                    }),
                    Some("tool_use") => Some(BlockKind::ToolCall {
                        id: string_of(&b, "id").unwrap_or_default(),
                        name: string_of(&b, "name").unwrap_or_default(),
                        kind: CallKind::Function,
                    }),
                    _ => None,
                };
                if let Some(block) = block {
                    let idx = self.next_index;
                    self.next_index += 1;
                    self.blocks.insert(index, idx);
                    out.push(StreamEvent::BlockStart { index: idx, block });
                    if let Some(t) = str_of(&b, "text").filter(|t| !t.is_empty()) {
                        out.push(StreamEvent::Delta {
                            index: idx,
                            delta: Delta::Text(t.to_string()),
                        });
                    }
                }
            }
            "content_block_delta" => {
                let Some(&idx) = self.blocks.get(&index) else {
                    return out;
                };
                let d = v.get("delta").cloned().unwrap_or(json!({}));
                let delta = match str_of(&d, "type") {
                    Some("text_delta") => str_of(&d, "text").map(|t| Delta::Text(t.to_string())),
                    Some("thinking_delta") => {
                        str_of(&d, "thinking").map(|t| Delta::Reasoning(t.to_string()))
                    }
                    Some("signature_delta") => {
                        str_of(&d, "signature").map(|t| Delta::Signature(t.to_string()))
                    }
                    Some("input_json_delta") => str_of(&d, "partial_json")
                        .filter(|t| !t.is_empty())
                        .map(|t| Delta::ToolArgs(t.to_string())),
                    _ => None,
                };
                if let Some(delta) = delta {
                    out.push(StreamEvent::Delta { index: idx, delta });
                }
            }
            "content_block_stop" => {
                if let Some(idx) = self.blocks.remove(&index) {
                    out.push(StreamEvent::BlockStop { index: idx });
                }
            }
            "message_delta" => {
                self.saw_delta = true;
                if let Some(d) = v.get("delta") {
                    if let Some(r) = str_of(d, "stop_reason") {
                        self.stop_reason = Some(r.to_string());
                    }
                    self.stop_sequence = string_of(d, "stop_sequence");
                }
                if let Some(u) = v.get("usage").and_then(Value::as_object) {
                    for (k, n) in u {
                        let Some(n) = n.as_u64() else { continue };
                        match k.as_str() {
                            "input_tokens" => self.usage.input_tokens = n,
                            "output_tokens" => self.usage.output_tokens = n,
                            "cache_read_input_tokens" => self.usage.cache_read_tokens = n,
                            "cache_creation_input_tokens" => self.usage.cache_write_tokens = n,
                            _ => {}
                        }
                    }
                }
                out.push(StreamEvent::Usage(self.usage));
            }
            "message_stop" => self.complete(&mut out),
            "error" => {
                self.done = true;
                out.push(StreamEvent::Error(decode_error_value(200, &v)));
            }
            _ => {}
        }
        out
    }

    pub fn finish(&mut self) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        if self.saw_delta {
            self.complete(&mut out);
        } else {
            self.done = true;
            out.push(StreamEvent::Error(ErrorInfo::truncated()));
        }
        out
    }

    fn complete(&mut self, out: &mut Vec<StreamEvent>) {
        let mut open: Vec<usize> = self.blocks.drain().map(|(_, i)| i).collect();
        open.sort_unstable();
        out.extend(
            open.into_iter()
                .map(|index| StreamEvent::BlockStop { index }),
        );
        out.push(StreamEvent::Finish {
            reason: decode_finish(self.stop_reason.as_deref()),
            stop_sequence: self.stop_sequence.take(),
        });
        self.done = true;
    }
}

#[derive(Debug, Clone)]
struct OpenBlock {
    index: usize,
    provenance: Option<WireFormat>,
}

/// Canonical events → Anthropic SSE for a Messages client.
#[derive(Debug)]
pub struct StreamEncoder {
    ctx: ClientContext,
    started: bool,
    blocks: HashMap<usize, OpenBlock>,
    next_index: usize,
    usage: Usage,
    done: bool,
    lossy: Vec<String>,
}

impl StreamEncoder {
    pub fn new(ctx: &ClientContext) -> StreamEncoder {
        StreamEncoder {
            ctx: ctx.clone(),
            started: false,
            blocks: HashMap::new(),
            next_index: 0,
            usage: Usage::default(),
            done: false,
            lossy: Vec::new(),
        }
    }

    pub fn lossy(&self) -> &[String] {
        &self.lossy
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    fn start(&mut self, id: &str, model: &str, usage: Usage, out: &mut Vec<String>) {
        self.started = true;
        self.usage = usage;
        let model = if self.ctx.model.is_empty() {
            model.to_string()
        } else {
            self.ctx.model.clone()
        };
        out.push(sse::named("message_start", &json!({"type": "message_start", "message": {
            "id": message_id(id), "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": usage.input_tokens, "cache_creation_input_tokens": usage.cache_write_tokens,
                      "cache_read_input_tokens": usage.cache_read_tokens, "output_tokens": usage.output_tokens},
        }})));
        out.push(sse::named("ping", &json!({"type": "ping"})));
    }

    pub fn push(&mut self, ev: &StreamEvent) -> Vec<String> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        if !self.started {
            match ev {
                StreamEvent::Start { id, model, usage } => {
                    self.start(id, model, *usage, &mut out);
                    return out;
                }
                StreamEvent::Error(_) => {}
                _ => self.start("gateway", "", Usage::default(), &mut out),
            }
        }
        match ev {
            StreamEvent::Start { .. } => {}
            StreamEvent::BlockStart { index, block } => {
                let a = self.next_index;
                self.next_index += 1;
                let (content, provenance) = match block {
                    BlockKind::Text => (json!({"type": "text", "text": ""}), None),
                    BlockKind::Reasoning {
                        provenance,
                        redacted: Some(data),
                    } if *provenance == WireFormat::Anthropic => (
                        json!({"type": "redacted_thinking", "data": data}),
                        Some(*provenance),
                    ),
                    BlockKind::Reasoning { provenance, .. } => (
                        json!({"type": "thinking", "thinking": "", "signature": ""}),
                        Some(*provenance),
                    ),
                    BlockKind::ToolCall { id, name, .. } => (
                        json!({"type": "tool_use", "id": ids::sanitize_tool_id(id), "name": name, "input": {}}),
                        None,
                    ),
                };
                self.blocks.insert(
                    *index,
                    OpenBlock {
                        index: a,
                        provenance,
                    },
                );
                out.push(sse::named(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": a, "content_block": content}),
                ));
            }
            StreamEvent::Delta { index, delta } => {
                let Some(b) = self.blocks.get(index).cloned() else {
                    return out;
                };
                let d = match delta {
                    Delta::Text(t) => json!({"type": "text_delta", "text": t}),
                    Delta::Reasoning(t) => json!({"type": "thinking_delta", "thinking": t}),
                    Delta::ToolArgs(a) => json!({"type": "input_json_delta", "partial_json": a}),
                    Delta::Signature(s) => match b.provenance {
                        Some(p) => {
                            json!({"type": "signature_delta", "signature": client_signature(p, s)})
                        }
                        None => {
                            note(&mut self.lossy, "signature on a non-thinking block dropped");
                            return out;
                        }
                    },
                };
                out.push(sse::named(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": b.index, "delta": d}),
                ));
            }
            StreamEvent::BlockStop { index } => {
                if let Some(b) = self.blocks.remove(index) {
                    out.push(sse::named(
                        "content_block_stop",
                        &json!({"type": "content_block_stop", "index": b.index}),
                    ));
                }
            }
            StreamEvent::Usage(u) => self.usage = *u,
            StreamEvent::Finish {
                reason,
                stop_sequence,
            } => {
                let mut open: Vec<usize> = self.blocks.drain().map(|(_, b)| b.index).collect();
                open.sort_unstable();
                for i in open {
                    out.push(sse::named(
                        "content_block_stop",
                        &json!({"type": "content_block_stop", "index": i}),
                    ));
                }
                out.push(sse::named(
                    "message_delta",
                    &json!({"type": "message_delta",
                    "delta": {"stop_reason": encode_finish(reason), "stop_sequence": stop_sequence},
                    "usage": encode_usage(&self.usage)}),
                ));
                out.push(sse::named("message_stop", &json!({"type": "message_stop"})));
                self.done = true;
            }
            StreamEvent::Error(e) => {
                out.push(sse::named(
                    "error",
                    &super::error_body(e.kind, e.status, &e.message),
                ));
                self.done = true;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mid_stream_error_ends_with_an_error_event_and_no_stop() {
        let mut e = StreamEncoder::new(&ClientContext {
            model: "claude".into(),
            ..ClientContext::default()
        });
        let mut out = Vec::new();
        for ev in [
            StreamEvent::Start {
                id: "u1".into(),
                model: "up".into(),
                usage: Usage::default(),
            },
            StreamEvent::BlockStart {
                index: 0,
                block: BlockKind::Text,
            },
            StreamEvent::Delta {
                index: 0,
                delta: Delta::Text("Hel".into()),
            },
            StreamEvent::Error(ErrorInfo::new(ErrorKind::Overloaded, 503, "Overloaded")),
            StreamEvent::Finish {
                reason: FinishReason::EndTurn,
                stop_sequence: None,
            },
        ] {
            out.extend(e.push(&ev));
        }
        let names: Vec<&str> = out
            .iter()
            .filter_map(|f| f.lines().next()?.strip_prefix("event: "))
            .collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "error"
            ]
        );
        assert_eq!(out[4], "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
    }

    #[test]
    fn foreign_signatures_are_tagged_and_anthropic_ones_pass_unchanged() {
        let mut e = StreamEncoder::new(&ClientContext::default());
        let gem = BlockKind::Reasoning {
            provenance: WireFormat::Gemini,
            redacted: None,
        };
        let mut out = e.push(&StreamEvent::BlockStart {
            index: 0,
            block: gem,
        });
        out.extend(e.push(&StreamEvent::Delta {
            index: 0,
            delta: Delta::Signature("S".into()),
        }));
        assert!(out
            .iter()
            .any(|f| f.contains("\"signature\":\"gw1.gemini.S\"")));
        let mut d = StreamDecoder::new();
        let evs = d.push(Some("content_block_start"), r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#);
        assert!(matches!(
            &evs[0],
            StreamEvent::BlockStart {
                block: BlockKind::Reasoning {
                    provenance: WireFormat::Anthropic,
                    ..
                },
                ..
            }
        ));
        let evs = d.push(None, r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"real"}}"#);
        assert_eq!(
            evs,
            vec![StreamEvent::Delta {
                index: 0,
                delta: Delta::Signature("real".into())
            }]
        );
    }

    #[test]
    fn decoder_merges_usage_and_reports_truncation() {
        let mut d = StreamDecoder::new();
        d.push(None, r#"{"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":15,"cache_read_input_tokens":5,"output_tokens":1}}}"#);
        let ev = d.push(None, r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":9}}"#);
        assert_eq!(
            ev,
            vec![StreamEvent::Usage(Usage {
                input_tokens: 15,
                output_tokens: 9,
                cache_read_tokens: 5,
                ..Usage::default()
            })]
        );
        let ev = d.push(None, r#"{"type":"message_stop"}"#);
        assert_eq!(
            ev,
            vec![StreamEvent::Finish {
                reason: FinishReason::MaxTokens,
                stop_sequence: None
            }]
        );
        let mut d = StreamDecoder::new();
        d.push(
            None,
            r#"{"type":"message_start","message":{"id":"m","model":"c"}}"#,
        );
        assert!(matches!(d.finish().as_slice(), [StreamEvent::Error(_)]));
    }
}
