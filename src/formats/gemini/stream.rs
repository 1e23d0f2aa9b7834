//! Gemini `alt=sse` streams: each `data:` line is a whole
//! GenerateContentResponse holding only new parts; a functionCall arrives
//! whole; there is no terminator (the connection closes).

use super::{
    decode_error_value, decode_finish, decode_usage, encode_finish, encode_usage, error_body,
};
use crate::catalog::WireFormat;
use crate::formats::canonical::*;
use crate::formats::json::{arguments_to_object, str_of, string_of, to_arguments};
use crate::formats::{ids, note, sse, ClientContext};
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    Text,
    Thought,
}

/// Upstream Gemini chunks → canonical events.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    id: String,
    next_index: usize,
    open: Option<(usize, Open)>,
    calls: usize,
    usage: Option<Usage>,
    done: bool,
}

impl StreamDecoder {
    pub fn new() -> StreamDecoder {
        StreamDecoder::default()
    }

    fn ensure(&mut self, kind: Open, out: &mut Vec<StreamEvent>) -> usize {
        if let Some((i, k)) = self.open {
            if k == kind {
                return i;
            }
        }
        self.close(out);
        let i = self.next_index;
        self.next_index += 1;
        let block = match kind {
            Open::Text => BlockKind::Text,
            Open::Thought => BlockKind::Reasoning {
                provenance: WireFormat::Gemini,
                redacted: None,
            },
        };
        out.push(StreamEvent::BlockStart { index: i, block });
        self.open = Some((i, kind));
        i
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some((i, _)) = self.open.take() {
            out.push(StreamEvent::BlockStop { index: i });
        }
    }

    pub fn push(&mut self, _event: Option<&str>, data: &str) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if self.done || data.trim().is_empty() {
            return out;
        }
        let v: Value = match serde_json::from_str(data) {
            Ok(Value::Array(mut a)) if !a.is_empty() => a.swap_remove(0),
            Ok(v) => v,
            Err(e) => {
                self.done = true;
                out.push(StreamEvent::Error(ErrorInfo::new(
                    ErrorKind::Upstream,
                    502,
                    format!("malformed upstream chunk: {e}"),
                )));
                return out;
            }
        };
        if v.get("error").is_some() {
            self.done = true;
            out.push(StreamEvent::Error(decode_error_value(200, &v)));
            return out;
        }
        if !self.started {
            self.started = true;
            self.id = string_of(&v, "responseId").unwrap_or_default();
            out.push(StreamEvent::Start {
                id: self.id.clone(),
                model: string_of(&v, "modelVersion").unwrap_or_default(),
                usage: Usage::default(),
            });
        }
        if let Some(u) = v.get("usageMetadata") {
            self.usage = Some(decode_usage(u));
        }
        let cand = v
            .get("candidates")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
            .cloned();
        let Some(cand) = cand else {
            if v.get("promptFeedback")
                .and_then(|p| p.get("blockReason"))
                .is_some()
            {
                self.complete(FinishReason::ContentFilter, &mut out);
            }
            return out;
        };
        let parts = cand
            .get("content")
            .and_then(|c| c.get("parts"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for p in &parts {
            let sig = str_of(p, "thoughtSignature");
            if let Some(fc) = p.get("functionCall") {
                self.close(&mut out);
                let name = string_of(fc, "name").unwrap_or_default();
                let id = string_of(fc, "id")
                    .unwrap_or_else(|| ids::gemini_call_id(&self.id, self.calls, &name));
                self.calls += 1;
                let i = self.next_index;
                self.next_index += 1;
                out.push(StreamEvent::BlockStart {
                    index: i,
                    block: BlockKind::ToolCall {
                        id,
                        name,
                        kind: CallKind::Function,
                    },
                });
                out.push(StreamEvent::Delta {
                    index: i,
                    delta: Delta::ToolArgs(to_arguments(fc.get("args").unwrap_or(&Value::Null))),
                });
                if let Some(s) = sig {
                    out.push(StreamEvent::Delta {
                        index: i,
                        delta: Delta::Signature(s.to_string()),
                    });
                }
                out.push(StreamEvent::BlockStop { index: i });
            } else if let Some(t) = str_of(p, "text") {
                let kind = if p.get("thought").and_then(Value::as_bool) == Some(true) {
                    Open::Thought
                } else {
                    Open::Text
                };
                if t.is_empty() && sig.is_none() {
                    continue;
                }
                let i = self.ensure(kind, &mut out);
                if !t.is_empty() {
                    let delta = if kind == Open::Thought {
                        Delta::Reasoning(t.to_string())
                    } else {
                        Delta::Text(t.to_string())
                    };
                    out.push(StreamEvent::Delta { index: i, delta });
                }
                if let Some(s) = sig {
                    out.push(StreamEvent::Delta {
                        index: i,
                        delta: Delta::Signature(s.to_string()),
                    });
                }
            }
        }
        if let Some(f) = str_of(&cand, "finishReason") {
            let reason = decode_finish(Some(f), self.calls > 0);
            self.complete(reason, &mut out);
        }
        out
    }

    fn complete(&mut self, reason: FinishReason, out: &mut Vec<StreamEvent>) {
        self.close(out);
        if let Some(u) = self.usage {
            out.push(StreamEvent::Usage(u));
        }
        out.push(StreamEvent::Finish {
            reason,
            stop_sequence: None,
        });
        self.done = true;
    }

    /// Gemini has no terminator: a close after `finishReason` is the end,
    /// anything else is a truncated stream.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        vec![StreamEvent::Error(ErrorInfo::truncated())]
    }
}

#[derive(Debug)]
enum Block {
    Text,
    Thought {
        gemini: bool,
    },
    Call {
        id: String,
        name: String,
        args: String,
        kind: CallKind,
        signature: Option<String>,
    },
}

/// Canonical events → Gemini `alt=sse` chunks for a Gemini client.
#[derive(Debug)]
pub struct StreamEncoder {
    id: String,
    model: String,
    blocks: HashMap<usize, Block>,
    usage: Usage,
    done: bool,
    lossy: Vec<String>,
}

impl StreamEncoder {
    pub fn new(ctx: &ClientContext) -> StreamEncoder {
        StreamEncoder {
            id: String::new(),
            model: ctx.model.clone(),
            blocks: HashMap::new(),
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

    fn chunk(&self, parts: Vec<Value>, finish: Option<&str>, usage: bool) -> String {
        let mut cand = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        if let Some(f) = finish {
            cand["finishReason"] = json!(f);
        }
        let mut v = json!({"candidates": [cand]});
        if usage {
            v["usageMetadata"] = encode_usage(&self.usage);
        }
        v["modelVersion"] = json!(self.model);
        v["responseId"] = json!(self.id);
        sse::data(&v)
    }

    pub fn push(&mut self, ev: &StreamEvent) -> Vec<String> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        match ev {
            StreamEvent::Start { id, model, usage } => {
                self.id = id.clone();
                if self.model.is_empty() {
                    self.model = model.clone();
                }
                self.usage = *usage;
            }
            StreamEvent::BlockStart { index, block } => {
                let b = match block {
                    BlockKind::Text => Block::Text,
                    BlockKind::Reasoning { provenance, .. } => Block::Thought {
                        gemini: *provenance == WireFormat::Gemini,
                    },
                    BlockKind::ToolCall { id, name, kind } => Block::Call {
                        id: id.clone(),
                        name: name.clone(),
                        args: String::new(),
                        kind: *kind,
                        signature: None,
                    },
                };
                self.blocks.insert(*index, b);
            }
            StreamEvent::Delta { index, delta } => {
                let Some(b) = self.blocks.get_mut(index) else {
                    return out;
                };
                let part = match (b, delta) {
                    (_, Delta::Text(t)) => Some(json!({"text": t})),
                    (_, Delta::Reasoning(t)) => Some(json!({"text": t, "thought": true})),
                    (Block::Call { args, .. }, Delta::ToolArgs(a)) => {
                        args.push_str(a);
                        None
                    }
                    (Block::Call { signature, .. }, Delta::Signature(s)) => {
                        *signature = Some(s.clone());
                        None
                    }
                    (Block::Thought { gemini: true }, Delta::Signature(s)) => {
                        Some(json!({"text": "", "thought": true, "thoughtSignature": s}))
                    }
                    (Block::Text, Delta::Signature(s)) => {
                        Some(json!({"text": "", "thoughtSignature": s}))
                    }
                    (_, Delta::Signature(_)) => {
                        note(&mut self.lossy, "foreign reasoning signature dropped");
                        None
                    }
                    (_, Delta::ToolArgs(_)) => None,
                };
                if let Some(p) = part {
                    out.push(self.chunk(vec![p], None, false));
                }
            }
            StreamEvent::BlockStop { index } => {
                if let Some(Block::Call {
                    id,
                    name,
                    args,
                    kind,
                    signature,
                }) = self.blocks.remove(index)
                {
                    let args = if kind == CallKind::Custom {
                        json!({"input": args})
                    } else {
                        arguments_to_object(&args).0
                    };
                    let mut part = json!({"functionCall": {"id": id, "name": name, "args": args}});
                    if let Some(s) = signature {
                        part["thoughtSignature"] = json!(s);
                    }
                    out.push(self.chunk(vec![part], None, false));
                }
            }
            StreamEvent::Usage(u) => self.usage = *u,
            StreamEvent::Finish { reason, .. } => {
                let mut open: Vec<usize> = self.blocks.keys().copied().collect();
                open.sort_unstable();
                for i in open {
                    out.extend(self.push(&StreamEvent::BlockStop { index: i }));
                }
                out.push(self.chunk(vec![json!({"text": ""})], Some(encode_finish(reason)), true));
                self.done = true;
            }
            StreamEvent::Error(e) => {
                out.push(sse::data(&error_body(e.status, e.kind, &e.message).1));
                self.done = true;
            }
        }
        out
    }
}
