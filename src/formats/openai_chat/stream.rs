//! OpenAI Chat chunk streams: upstream chunks → canonical events, and
//! canonical events → chunks (`data:` lines, `[DONE]`).

use super::{decode_error_value, decode_finish, decode_usage, encode_finish, encode_usage};
use crate::formats::canonical::*;
use crate::formats::json::{str_of, string_of};
use crate::formats::{ids, sse, ClientContext};
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    Text,
    Reasoning,
    Tool(usize),
}

#[derive(Debug)]
struct Call {
    id: String,
    name: String,
    buffered: String,
    started: bool,
}

/// Upstream OpenAI chunks → canonical events.
///
/// Parallel tool calls: a new call's fragments are buffered while another
/// call's block is open; the open block is closed (and the buffer flushed)
/// when the new call's next fragment shows the old one is finished, or at
/// the finish chunk when fragments of the two calls interleave.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    id: String,
    next_index: usize,
    open: Option<(usize, Open)>,
    calls: Vec<Call>,
    slot: HashMap<u64, usize>,
    pending: Vec<usize>,
    touched_since_pending: bool,
    interleaved: bool,
    finish: Option<Option<String>>,
    usage: Option<Usage>,
    done: bool,
}

impl StreamDecoder {
    pub fn new() -> StreamDecoder {
        StreamDecoder::default()
    }

    /// One SSE event (`event:` name is ignored: OpenAI sends none).
    pub fn push(&mut self, _event: Option<&str>, data: &str) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        let data = data.trim();
        if data == "[DONE]" {
            self.complete(&mut out);
            return out;
        }
        let v: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(e) => {
                self.fail(
                    ErrorInfo::new(
                        ErrorKind::Upstream,
                        502,
                        format!("malformed upstream chunk: {e}"),
                    ),
                    &mut out,
                );
                return out;
            }
        };
        if v.get("error").is_some() {
            self.fail(decode_error_value(200, &v), &mut out);
            return out;
        }
        if !self.started {
            self.started = true;
            self.id = string_of(&v, "id").unwrap_or_default();
            out.push(StreamEvent::Start {
                id: self.id.clone(),
                model: string_of(&v, "model").unwrap_or_default(),
                usage: Usage::default(),
            });
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(decode_usage(u));
        }
        let choices = v
            .get("choices")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for choice in choices
            .iter()
            .filter(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
        {
            if let Some(delta) = choice.get("delta") {
                self.delta(delta, &mut out);
            }
            if let Some(f) = str_of(choice, "finish_reason") {
                self.close_all(&mut out);
                self.finish = Some(Some(f.to_string()));
            }
        }
        out
    }

    /// The upstream closed the connection.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        if self.finish.is_some() {
            self.complete(&mut out);
        } else {
            self.fail(ErrorInfo::truncated(), &mut out);
        }
        out
    }

    fn delta(&mut self, d: &Value, out: &mut Vec<StreamEvent>) {
        for key in ["reasoning_content", "reasoning"] {
            if let Some(r) = str_of(d, key).filter(|r| !r.is_empty()) {
                let idx = self.ensure(Open::Reasoning, out);
                out.push(StreamEvent::Delta {
                    index: idx,
                    delta: Delta::Reasoning(r.to_string()),
                });
                break;
            }
        }
        if let Some(t) = str_of(d, "content").filter(|t| !t.is_empty()) {
            let idx = self.ensure(Open::Text, out);
            out.push(StreamEvent::Delta {
                index: idx,
                delta: Delta::Text(t.to_string()),
            });
        }
        if let Some(calls) = d.get("tool_calls").and_then(Value::as_array) {
            for tc in calls {
                self.tool_fragment(tc, out);
            }
        }
    }

    fn tool_fragment(&mut self, tc: &Value, out: &mut Vec<StreamEvent>) {
        let index = tc.get("index").and_then(Value::as_u64).unwrap_or(0);
        let id = str_of(tc, "id").filter(|s| !s.is_empty());
        let f = tc.get("function").cloned().unwrap_or(json!({}));
        let name = str_of(&f, "name").filter(|s| !s.is_empty());
        let args = str_of(&f, "arguments").unwrap_or("");
        let existing = self.slot.get(&index).copied();
        let is_new = match (existing, id) {
            (None, _) => true,
            (Some(c), Some(id)) => self.calls[c].id != id,
            (Some(_), None) => false,
        };
        let c = if is_new {
            let c = self.calls.len();
            let id = id
                .map(str::to_string)
                .unwrap_or_else(|| ids::gemini_call_id(&self.id, c, name.unwrap_or("")));
            self.calls.push(Call {
                id,
                name: name.unwrap_or("").to_string(),
                buffered: String::new(),
                started: false,
            });
            self.slot.insert(index, c);
            if matches!(self.open, Some((_, Open::Tool(_)))) {
                self.pending.push(c);
                self.touched_since_pending = false;
                self.calls[c].buffered.push_str(args);
                return;
            }
            self.close_open(out);
            self.flush_pending(out);
            self.start_call(c, out);
            c
        } else {
            let c = existing.unwrap_or(0);
            if let Some(n) = name {
                if self.calls[c].name.is_empty() {
                    self.calls[c].name = n.to_string();
                }
            }
            c
        };
        if args.is_empty() && is_new {
            return;
        }
        match self.open {
            Some((idx, Open::Tool(o))) if o == c => {
                if !args.is_empty() {
                    out.push(StreamEvent::Delta {
                        index: idx,
                        delta: Delta::ToolArgs(args.to_string()),
                    });
                }
                if !self.pending.is_empty() {
                    self.touched_since_pending = true;
                }
            }
            _ if self.pending.contains(&c) => {
                self.calls[c].buffered.push_str(args);
                if self.touched_since_pending {
                    self.interleaved = true;
                }
                if !self.interleaved {
                    self.close_open(out);
                    let first = self.pending.remove(0);
                    self.start_call(first, out);
                    self.touched_since_pending = false;
                }
            }
            _ => {
                tracing::warn!(call = %self.calls[c].id, "tool-call fragment for a closed call dropped")
            }
        }
    }

    fn start_call(&mut self, c: usize, out: &mut Vec<StreamEvent>) {
        let idx = self.next_index;
        self.next_index += 1;
        let call = &mut self.calls[c];
        call.started = true;
        out.push(StreamEvent::BlockStart {
            index: idx,
            block: BlockKind::ToolCall {
                id: call.id.clone(),
                name: call.name.clone(),
                kind: CallKind::Function,
            },
        });
        if !call.buffered.is_empty() {
            out.push(StreamEvent::Delta {
                index: idx,
                delta: Delta::ToolArgs(std::mem::take(&mut call.buffered)),
            });
        }
        self.open = Some((idx, Open::Tool(c)));
    }

    fn ensure(&mut self, kind: Open, out: &mut Vec<StreamEvent>) -> usize {
        if let Some((idx, k)) = self.open {
            if k == kind {
                return idx;
            }
        }
        self.close_all(out);
        let idx = self.next_index;
        self.next_index += 1;
        let block = match kind {
            Open::Reasoning => BlockKind::Reasoning {
                provenance: crate::catalog::WireFormat::Openai,
                redacted: None,
            },
            _ => BlockKind::Text,
        };
        out.push(StreamEvent::BlockStart { index: idx, block });
        self.open = Some((idx, kind));
        idx
    }

    fn close_open(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some((idx, _)) = self.open.take() {
            out.push(StreamEvent::BlockStop { index: idx });
        }
    }

    fn flush_pending(&mut self, out: &mut Vec<StreamEvent>) {
        for c in std::mem::take(&mut self.pending) {
            self.start_call(c, out);
            self.close_open(out);
        }
        self.interleaved = false;
    }

    fn close_all(&mut self, out: &mut Vec<StreamEvent>) {
        self.close_open(out);
        self.flush_pending(out);
    }

    fn complete(&mut self, out: &mut Vec<StreamEvent>) {
        self.close_all(out);
        if let Some(u) = self.usage {
            out.push(StreamEvent::Usage(u));
        }
        let raw = self.finish.clone().flatten();
        out.push(StreamEvent::Finish {
            reason: decode_finish(raw.as_deref(), !self.calls.is_empty()),
            stop_sequence: None,
        });
        self.done = true;
    }

    fn fail(&mut self, e: ErrorInfo, out: &mut Vec<StreamEvent>) {
        out.push(StreamEvent::Error(e));
        self.done = true;
    }
}

/// Canonical events → OpenAI chunks for a Chat Completions client.
#[derive(Debug)]
pub struct StreamEncoder {
    ctx: ClientContext,
    id: String,
    started: bool,
    /// canonical block index → (tool ordinal, custom-call buffer)
    tools: HashMap<usize, (usize, Option<String>)>,
    next_tool: usize,
    usage: Usage,
    done: bool,
    lossy: Vec<String>,
}

impl StreamEncoder {
    pub fn new(ctx: &ClientContext) -> StreamEncoder {
        StreamEncoder {
            ctx: ctx.clone(),
            id: String::new(),
            started: false,
            tools: HashMap::new(),
            next_tool: 0,
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

    fn chunk(&self, delta: Value, finish: Option<&str>) -> String {
        sse::data(&json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.ctx.created,
            "model": self.ctx.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }))
    }

    pub fn push(&mut self, ev: &StreamEvent) -> Vec<String> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        if !self.started && !matches!(ev, StreamEvent::Error(_)) {
            self.started = true;
            if let StreamEvent::Start { id, model, .. } = ev {
                self.id = super::chat_id(id);
                if self.ctx.model.is_empty() {
                    self.ctx.model = model.clone();
                }
            }
            out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
        }
        match ev {
            StreamEvent::Start { usage, .. } => self.usage = *usage,
            StreamEvent::BlockStart {
                index,
                block: BlockKind::ToolCall { id, name, kind },
            } => {
                let ordinal = self.next_tool;
                self.next_tool += 1;
                let custom = *kind == CallKind::Custom;
                self.tools
                    .insert(*index, (ordinal, custom.then(String::new)));
                out.push(self.chunk(
                    json!({"tool_calls": [{"index": ordinal, "id": id, "type": "function",
                    "function": {"name": name, "arguments": ""}}]}),
                    None,
                ));
            }
            StreamEvent::BlockStart { .. } => {}
            StreamEvent::Delta { index, delta } => match delta {
                Delta::Text(t) => out.push(self.chunk(json!({"content": t}), None)),
                Delta::Reasoning(t) => out.push(self.chunk(json!({"reasoning_content": t}), None)),
                Delta::Signature(_) => crate::formats::note(
                    &mut self.lossy,
                    "reasoning signature dropped (OpenAI Chat cannot carry it)",
                ),
                Delta::ToolArgs(a) => {
                    if let Some((ordinal, buf)) = self.tools.get_mut(index) {
                        match buf {
                            Some(b) => b.push_str(a),
                            None => {
                                let ordinal = *ordinal;
                                out.push(self.chunk(json!({"tool_calls": [{"index": ordinal, "function": {"arguments": a}}]}), None));
                            }
                        }
                    }
                }
            },
            StreamEvent::BlockStop { index } => {
                if let Some((ordinal, Some(buf))) = self.tools.get_mut(index) {
                    let args = json!({"input": std::mem::take(buf)}).to_string();
                    let ordinal = *ordinal;
                    out.push(self.chunk(json!({"tool_calls": [{"index": ordinal, "function": {"arguments": args}}]}), None));
                }
            }
            StreamEvent::Usage(u) => self.usage = *u,
            StreamEvent::Finish { reason, .. } => {
                out.push(self.chunk(json!({}), Some(encode_finish(reason))));
                if self.ctx.include_usage {
                    out.push(sse::data(&json!({
                        "id": self.id, "object": "chat.completion.chunk", "created": self.ctx.created,
                        "model": self.ctx.model, "choices": [], "usage": encode_usage(&self.usage),
                    })));
                }
                out.push("data: [DONE]\n\n".to_string());
                self.done = true;
            }
            StreamEvent::Error(e) => {
                out.push(sse::data(&super::stream_error(e)));
                self.done = true;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(chunks: &[&str]) -> Vec<StreamEvent> {
        let mut d = StreamDecoder::new();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(d.push(None, c));
        }
        out.extend(d.finish());
        out
    }

    fn args_of(events: &[StreamEvent]) -> Vec<(String, String)> {
        let mut calls: Vec<(usize, String, String)> = Vec::new();
        for e in events {
            match e {
                StreamEvent::BlockStart {
                    index,
                    block: BlockKind::ToolCall { id, .. },
                } => calls.push((*index, id.clone(), String::new())),
                StreamEvent::Delta {
                    index,
                    delta: Delta::ToolArgs(a),
                } => {
                    if let Some(c) = calls.iter_mut().find(|c| c.0 == *index) {
                        c.2.push_str(a);
                    }
                }
                _ => {}
            }
        }
        calls.into_iter().map(|(_, id, a)| (id, a)).collect()
    }

    const ROLE: &str =
        r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"role":"assistant"}}]}"#;

    #[test]
    fn parallel_calls_reusing_index_zero_get_their_own_blocks() {
        let ev = feed(&[
            ROLE,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","function":{"name":"R","arguments":"{\"p\":"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_b","function":{"name":"R","arguments":"{\"p\":2}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            "[DONE]",
        ]);
        assert_eq!(
            args_of(&ev),
            vec![
                ("call_a".into(), "{\"p\":1}".into()),
                ("call_b".into(), "{\"p\":2}".into())
            ]
        );
        assert_eq!(
            ev.last(),
            Some(&StreamEvent::Finish {
                reason: FinishReason::ToolUse,
                stop_sequence: None
            }),
            "stop with tools is tool_use"
        );
    }

    #[test]
    fn interleaved_fragments_are_buffered_until_the_open_call_closes() {
        let ev = feed(&[
            ROLE,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"R","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"G","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"x\":"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"y\":"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"2}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            "[DONE]",
        ]);
        assert_eq!(
            args_of(&ev),
            vec![
                ("a".into(), "{\"x\":1}".into()),
                ("b".into(), "{\"y\":2}".into())
            ]
        );
    }

    #[test]
    fn usage_after_finish_is_kept_and_eof_without_finish_is_an_error() {
        let ev = feed(&[
            ROLE,
            r#"{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":20,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":12}}}"#,
        ]);
        let usage = ev.iter().find_map(|e| match e {
            StreamEvent::Usage(u) => Some(*u),
            _ => None,
        });
        assert_eq!(
            usage.map(|u| (u.input_tokens, u.cache_read_tokens, u.output_tokens)),
            Some((8, 12, 5))
        );
        assert!(
            matches!(ev.last(), Some(StreamEvent::Finish { .. })),
            "EOF after finish_reason completes"
        );
        let ev = feed(&[
            ROLE,
            r#"{"choices":[{"index":0,"delta":{"content":"Hel"}}]}"#,
        ]);
        assert!(
            matches!(ev.last(), Some(StreamEvent::Error(e)) if e.message.contains("ended unexpectedly"))
        );
    }

    #[test]
    fn encoder_writes_exact_chunks_and_hides_usage_unless_asked() {
        let ctx = ClientContext {
            model: "m".into(),
            created: 7,
            include_usage: false,
            custom_tools: vec![],
        };
        let mut e = StreamEncoder::new(&ctx);
        let mut out = Vec::new();
        for ev in [
            StreamEvent::Start {
                id: "x".into(),
                model: "up".into(),
                usage: Usage::default(),
            },
            StreamEvent::BlockStart {
                index: 0,
                block: BlockKind::Text,
            },
            StreamEvent::Delta {
                index: 0,
                delta: Delta::Text("hi".into()),
            },
            StreamEvent::BlockStop { index: 0 },
            StreamEvent::Finish {
                reason: FinishReason::EndTurn,
                stop_sequence: None,
            },
        ] {
            out.extend(e.push(&ev));
        }
        assert_eq!(out, vec![
            "data: {\"id\":\"chatcmpl-x\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"chatcmpl-x\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"chatcmpl-x\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            "data: [DONE]\n\n",
        ]);
        assert!(
            e.push(&StreamEvent::Usage(Usage::default())).is_empty(),
            "nothing after the terminator"
        );
    }
}
