//! Responses SSE: upstream `response.*` events → canonical events, and
//! canonical events → `response.created` … `response.completed` (with
//! `sequence_number`) for a Responses client such as Codex.

use super::{
    call_item, decode_status, decode_usage, encode_status, failure_code, item_id, message_item,
    reasoning_item, response_id, response_object,
};
use crate::catalog::WireFormat;
use crate::formats::canonical::*;
use crate::formats::json::{str_of, string_of};
use crate::formats::{note, sse, ClientContext};
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Debug)]
struct Item {
    block: Option<usize>,
    message: bool,
    args_streamed: bool,
}

/// Upstream Responses events → canonical events.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    next_index: usize,
    items: HashMap<u64, Item>,
    saw_tool: bool,
    done: bool,
}

impl StreamDecoder {
    pub fn new() -> StreamDecoder {
        StreamDecoder::default()
    }

    fn block(&mut self, out_index: u64, kind: BlockKind, out: &mut Vec<StreamEvent>) -> usize {
        let idx = self.next_index;
        self.next_index += 1;
        out.push(StreamEvent::BlockStart {
            index: idx,
            block: kind,
        });
        if let Some(item) = self.items.get_mut(&out_index) {
            item.block = Some(idx);
        }
        idx
    }

    fn text_block(&mut self, out_index: u64, out: &mut Vec<StreamEvent>) -> Option<usize> {
        let item = self.items.entry(out_index).or_insert(Item {
            block: None,
            message: true,
            args_streamed: false,
        });
        if let Some(b) = item.block {
            return Some(b);
        }
        Some(self.block(out_index, BlockKind::Text, out))
    }

    pub fn push(&mut self, event: Option<&str>, data: &str) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        let v: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(_) if data.trim().is_empty() || data.trim() == "[DONE]" => return out,
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
        let oi = v.get("output_index").and_then(Value::as_u64).unwrap_or(0);
        let delta = || str_of(&v, "delta").unwrap_or("").to_string();
        match ty {
            "response.created" => {
                let r = v.get("response").cloned().unwrap_or(json!({}));
                out.push(StreamEvent::Start {
                    id: string_of(&r, "id").unwrap_or_default(),
                    model: string_of(&r, "model").unwrap_or_default(),
                    usage: Usage::default(),
                });
            }
            "response.output_item.added" => {
                let item = v.get("item").cloned().unwrap_or(json!({}));
                let t = str_of(&item, "type").unwrap_or("");
                self.items.insert(
                    oi,
                    Item {
                        block: None,
                        message: t == "message",
                        args_streamed: false,
                    },
                );
                match t {
                    "reasoning" => {
                        self.block(
                            oi,
                            BlockKind::Reasoning {
                                provenance: WireFormat::OpenaiResponses,
                                redacted: None,
                            },
                            &mut out,
                        );
                    }
                    "function_call" | "custom_tool_call" => {
                        self.saw_tool = true;
                        let kind = if t == "custom_tool_call" {
                            CallKind::Custom
                        } else {
                            CallKind::Function
                        };
                        let block = BlockKind::ToolCall {
                            id: string_of(&item, "call_id").unwrap_or_default(),
                            name: string_of(&item, "name").unwrap_or_default(),
                            kind,
                        };
                        self.block(oi, block, &mut out);
                    }
                    _ => {}
                }
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                if let Some(idx) = self.text_block(oi, &mut out) {
                    out.push(StreamEvent::Delta {
                        index: idx,
                        delta: Delta::Text(delta()),
                    });
                }
            }
            "response.reasoning_summary_part.added" => {
                let first = v.get("summary_index").and_then(Value::as_u64).unwrap_or(0) == 0;
                if let (false, Some(idx)) = (first, self.items.get(&oi).and_then(|i| i.block)) {
                    out.push(StreamEvent::Delta {
                        index: idx,
                        delta: Delta::Reasoning("\n\n".into()),
                    });
                }
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                if let Some(idx) = self.items.get(&oi).and_then(|i| i.block) {
                    out.push(StreamEvent::Delta {
                        index: idx,
                        delta: Delta::Reasoning(delta()),
                    });
                }
            }
            "response.function_call_arguments.delta" | "response.custom_tool_call_input.delta" => {
                if let Some(item) = self.items.get_mut(&oi) {
                    item.args_streamed = true;
                    if let Some(idx) = item.block {
                        out.push(StreamEvent::Delta {
                            index: idx,
                            delta: Delta::ToolArgs(delta()),
                        });
                    }
                }
            }
            "response.output_item.done" => {
                let item = v.get("item").cloned().unwrap_or(json!({}));
                let t = str_of(&item, "type").unwrap_or("");
                if t == "message" && self.items.get(&oi).is_none_or(|i| i.block.is_none()) {
                    let text: String = item["content"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|c| c["text"].as_str().or(c["refusal"].as_str()))
                        .collect();
                    if !text.is_empty() {
                        if let Some(idx) = self.text_block(oi, &mut out) {
                            out.push(StreamEvent::Delta {
                                index: idx,
                                delta: Delta::Text(text),
                            });
                        }
                    }
                }
                let Some(state) = self.items.remove(&oi) else {
                    return out;
                };
                let Some(idx) = state.block else { return out };
                match t {
                    "function_call" | "custom_tool_call" if !state.args_streamed => {
                        let args = str_of(
                            &item,
                            if t == "custom_tool_call" {
                                "input"
                            } else {
                                "arguments"
                            },
                        )
                        .unwrap_or("");
                        if !args.is_empty() {
                            out.push(StreamEvent::Delta {
                                index: idx,
                                delta: Delta::ToolArgs(args.to_string()),
                            });
                        }
                    }
                    "reasoning" => {
                        if let Some(sig) = str_of(&item, "encrypted_content") {
                            out.push(StreamEvent::Delta {
                                index: idx,
                                delta: Delta::Signature(sig.to_string()),
                            });
                        }
                    }
                    _ => {}
                }
                let _ = state.message;
                out.push(StreamEvent::BlockStop { index: idx });
            }
            "response.completed" | "response.incomplete" => {
                let r = v.get("response").cloned().unwrap_or(json!({}));
                let mut open: Vec<usize> =
                    self.items.drain().filter_map(|(_, i)| i.block).collect();
                open.sort_unstable();
                out.extend(
                    open.into_iter()
                        .map(|index| StreamEvent::BlockStop { index }),
                );
                if let Some(u) = r.get("usage").filter(|u| u.is_object()) {
                    out.push(StreamEvent::Usage(decode_usage(u)));
                }
                let status = str_of(&r, "status").or(if ty == "response.incomplete" {
                    Some("incomplete")
                } else {
                    None
                });
                out.push(StreamEvent::Finish {
                    reason: decode_status(status, r.get("incomplete_details"), self.saw_tool),
                    stop_sequence: None,
                });
                self.done = true;
            }
            "response.failed" => {
                let err = v
                    .get("response")
                    .and_then(|r| r.get("error"))
                    .cloned()
                    .unwrap_or(json!({}));
                self.done = true;
                out.push(StreamEvent::Error(
                    crate::formats::openai_chat::decode_error_value(200, &json!({"error": err})),
                ));
            }
            "error" => {
                self.done = true;
                out.push(StreamEvent::Error(
                    crate::formats::openai_chat::decode_error_value(200, &v),
                ));
            }
            _ => {}
        }
        out
    }

    pub fn finish(&mut self) -> Vec<StreamEvent> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        vec![StreamEvent::Error(ErrorInfo::truncated())]
    }
}

#[derive(Debug)]
enum Open {
    Message {
        item_id: String,
        text: String,
    },
    Reasoning {
        item_id: String,
        text: String,
        part_open: bool,
        signature: Option<String>,
        provenance: WireFormat,
    },
    Call {
        item_id: String,
        call_id: String,
        name: String,
        args: String,
        kind: CallKind,
        wrapped_custom: bool,
    },
}

/// Canonical events → Responses SSE for a Responses client.
#[derive(Debug)]
pub struct StreamEncoder {
    ctx: ClientContext,
    id: String,
    model: String,
    seq: u64,
    started: bool,
    output: Vec<Value>,
    open: HashMap<usize, (usize, Open)>,
    usage: Option<Usage>,
    done: bool,
    lossy: Vec<String>,
}

impl StreamEncoder {
    pub fn new(ctx: &ClientContext) -> StreamEncoder {
        StreamEncoder {
            ctx: ctx.clone(),
            id: String::new(),
            model: String::new(),
            seq: 0,
            started: false,
            output: Vec::new(),
            open: HashMap::new(),
            usage: None,
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

    fn ev(&mut self, out: &mut Vec<String>, ty: &str, mut body: Value) {
        body["type"] = json!(ty);
        body["sequence_number"] = json!(self.seq);
        self.seq += 1;
        // keep `type` first for readability of the wire
        let mut ordered = serde_json::Map::new();
        ordered.insert("type".into(), json!(ty));
        if let Value::Object(m) = body {
            for (k, v) in m {
                if k != "type" {
                    ordered.insert(k, v);
                }
            }
        }
        out.push(sse::named(ty, &Value::Object(ordered)));
    }

    fn object(&self, status: &str, incomplete: Value, error: Value) -> Value {
        let output = self.output.clone();
        let usage = if status == "in_progress" {
            None
        } else {
            Some(self.usage.unwrap_or_default())
        };
        response_object(
            &self.id,
            &self.ctx,
            &self.model,
            (status, incomplete, error),
            output,
            usage.as_ref(),
        )
    }

    fn start(&mut self, id: &str, model: &str, out: &mut Vec<String>) {
        self.started = true;
        self.id = response_id(if id.is_empty() { "gateway" } else { id });
        self.model = model.to_string();
        let r = self.object("in_progress", Value::Null, Value::Null);
        self.ev(out, "response.created", json!({"response": r}));
        let r = self.object("in_progress", Value::Null, Value::Null);
        self.ev(out, "response.in_progress", json!({"response": r}));
    }

    pub fn push(&mut self, ev: &StreamEvent) -> Vec<String> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        if !self.started {
            match ev {
                StreamEvent::Start { id, model, .. } => {
                    self.start(id, model, &mut out);
                    return out;
                }
                _ => self.start("", "", &mut out),
            }
        }
        match ev {
            StreamEvent::Start { .. } => {}
            StreamEvent::BlockStart { index, block } => self.block_start(*index, block, &mut out),
            StreamEvent::Delta { index, delta } => self.delta(*index, delta, &mut out),
            StreamEvent::BlockStop { index } => self.block_stop(*index, &mut out),
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::Finish { reason, .. } => {
                self.close_all(&mut out);
                let (status, incomplete) = encode_status(reason);
                let (ty, error) = match status {
                    "completed" => ("response.completed", Value::Null),
                    "incomplete" => ("response.incomplete", Value::Null),
                    _ => (
                        "response.failed",
                        json!({"code": "server_error", "message": "the model produced a malformed tool call"}),
                    ),
                };
                let r = self.object(status, incomplete, error);
                self.ev(&mut out, ty, json!({"response": r}));
                self.done = true;
            }
            StreamEvent::Error(e) => {
                let r = self.object(
                    "failed",
                    Value::Null,
                    json!({"code": failure_code(e), "message": e.message}),
                );
                self.ev(&mut out, "response.failed", json!({"response": r}));
                self.done = true;
            }
        }
        out
    }

    fn close_all(&mut self, out: &mut Vec<String>) {
        let mut open: Vec<usize> = self.open.keys().copied().collect();
        open.sort_unstable();
        for i in open {
            self.block_stop(i, out);
        }
    }

    fn block_start(&mut self, index: usize, block: &BlockKind, out: &mut Vec<String>) {
        let oi = self.output.len() + self.open.len();
        let open = match block {
            BlockKind::Text => {
                let item_id = item_id("msg", &self.id, oi);
                self.ev(out, "response.output_item.added", json!({"output_index": oi,
                    "item": {"type": "message", "id": item_id, "status": "in_progress", "role": "assistant", "content": []}}));
                self.ev(
                    out,
                    "response.content_part.added",
                    json!({"item_id": item_id, "output_index": oi, "content_index": 0,
                    "part": {"type": "output_text", "text": "", "annotations": []}}),
                );
                Open::Message {
                    item_id,
                    text: String::new(),
                }
            }
            BlockKind::Reasoning { provenance, .. } => {
                let item_id = item_id("rs", &self.id, oi);
                self.ev(
                    out,
                    "response.output_item.added",
                    json!({"output_index": oi,
                    "item": {"type": "reasoning", "id": item_id, "summary": []}}),
                );
                Open::Reasoning {
                    item_id,
                    text: String::new(),
                    part_open: false,
                    signature: None,
                    provenance: *provenance,
                }
            }
            BlockKind::ToolCall { id, name, kind } => {
                let wrapped_custom =
                    *kind == CallKind::Function && self.ctx.custom_tools.iter().any(|t| t == name);
                let custom = *kind == CallKind::Custom || wrapped_custom;
                let item_id = item_id(if custom { "ctc" } else { "fc" }, &self.id, oi);
                let item = if custom {
                    json!({"type": "custom_tool_call", "id": item_id, "call_id": id, "name": name, "input": "", "status": "in_progress"})
                } else {
                    json!({"type": "function_call", "id": item_id, "call_id": id, "name": name, "arguments": "", "status": "in_progress"})
                };
                self.ev(
                    out,
                    "response.output_item.added",
                    json!({"output_index": oi, "item": item}),
                );
                Open::Call {
                    item_id,
                    call_id: id.clone(),
                    name: name.clone(),
                    args: String::new(),
                    kind: *kind,
                    wrapped_custom,
                }
            }
        };
        self.open.insert(index, (oi, open));
    }

    fn delta(&mut self, index: usize, delta: &Delta, out: &mut Vec<String>) {
        let Some((oi, mut open)) = self.open.remove(&index) else {
            return;
        };
        match (&mut open, delta) {
            (Open::Message { item_id, text }, Delta::Text(t)) => {
                text.push_str(t);
                let item_id = item_id.clone();
                self.ev(out, "response.output_text.delta", json!({"item_id": item_id, "output_index": oi, "content_index": 0, "delta": t, "logprobs": []}));
            }
            (
                Open::Reasoning {
                    item_id,
                    text,
                    part_open,
                    ..
                },
                Delta::Reasoning(t),
            ) => {
                text.push_str(t);
                let item_id = item_id.clone();
                if !*part_open {
                    *part_open = true;
                    self.ev(
                        out,
                        "response.reasoning_summary_part.added",
                        json!({"item_id": item_id, "output_index": oi, "summary_index": 0,
                        "part": {"type": "summary_text", "text": ""}}),
                    );
                }
                self.ev(
                    out,
                    "response.reasoning_summary_text.delta",
                    json!({"item_id": item_id, "output_index": oi, "summary_index": 0, "delta": t}),
                );
            }
            (
                Open::Reasoning {
                    signature,
                    provenance,
                    ..
                },
                Delta::Signature(s),
            ) => {
                if *provenance == WireFormat::OpenaiResponses {
                    *signature = Some(s.clone());
                } else {
                    note(&mut self.lossy, "foreign reasoning signature dropped");
                }
            }
            (
                Open::Call {
                    item_id,
                    args,
                    kind,
                    wrapped_custom,
                    ..
                },
                Delta::ToolArgs(a),
            ) => {
                args.push_str(a);
                let item_id = item_id.clone();
                if *kind == CallKind::Custom {
                    self.ev(
                        out,
                        "response.custom_tool_call_input.delta",
                        json!({"item_id": item_id, "output_index": oi, "delta": a}),
                    );
                } else if !*wrapped_custom {
                    self.ev(
                        out,
                        "response.function_call_arguments.delta",
                        json!({"item_id": item_id, "output_index": oi, "delta": a}),
                    );
                }
            }
            (_, Delta::Signature(_)) => note(
                &mut self.lossy,
                "signature on a non-reasoning block dropped",
            ),
            _ => {}
        }
        self.open.insert(index, (oi, open));
    }

    fn block_stop(&mut self, index: usize, out: &mut Vec<String>) {
        let Some((oi, open)) = self.open.remove(&index) else {
            return;
        };
        let item = match open {
            Open::Message { item_id, text } => {
                self.ev(out, "response.output_text.done", json!({"item_id": item_id, "output_index": oi, "content_index": 0, "text": text, "logprobs": []}));
                self.ev(
                    out,
                    "response.content_part.done",
                    json!({"item_id": item_id, "output_index": oi, "content_index": 0,
                    "part": {"type": "output_text", "text": text, "annotations": []}}),
                );
                message_item(item_id, &text)
            }
            Open::Reasoning {
                item_id,
                text,
                part_open,
                signature,
                provenance,
            } => {
                if part_open {
                    self.ev(out, "response.reasoning_summary_text.done", json!({"item_id": item_id, "output_index": oi, "summary_index": 0, "text": text}));
                    self.ev(
                        out,
                        "response.reasoning_summary_part.done",
                        json!({"item_id": item_id, "output_index": oi, "summary_index": 0,
                        "part": {"type": "summary_text", "text": text}}),
                    );
                }
                reasoning_item(item_id, &text, provenance, signature.as_deref())
            }
            Open::Call {
                item_id,
                call_id,
                name,
                args,
                kind,
                wrapped_custom,
            } => {
                let mut item = call_item(&self.ctx, &self.id, oi, &call_id, &name, &args, kind);
                item["id"] = json!(item_id);
                if wrapped_custom {
                    let input = item["input"].clone();
                    self.ev(
                        out,
                        "response.custom_tool_call_input.delta",
                        json!({"item_id": item_id, "output_index": oi, "delta": input}),
                    );
                }
                if kind == CallKind::Custom || wrapped_custom {
                    let input = item["input"].clone();
                    self.ev(
                        out,
                        "response.custom_tool_call_input.done",
                        json!({"item_id": item_id, "output_index": oi, "input": input}),
                    );
                } else {
                    self.ev(
                        out,
                        "response.function_call_arguments.done",
                        json!({"item_id": item_id, "output_index": oi, "arguments": args}),
                    );
                }
                item
            }
        };
        self.ev(
            out,
            "response.output_item.done",
            json!({"output_index": oi, "item": item}),
        );
        if self.output.len() <= oi {
            self.output.resize(oi + 1, Value::Null);
        }
        self.output[oi] = item;
    }
}
