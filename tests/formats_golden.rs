//! Golden tests of the wire-format codecs: every fixture in
//! `tests/fixtures/formats/<case>.<format>.json` is translated into every
//! format and compared with its insta snapshot (`tests/snapshots/`).
//!
//! - `req_*`: a client request → the upstream request body for each format
//!   (the billing header stripped for non-Anthropic targets, as the proxy does).
//! - `resp_*`: an upstream response → the client response for each format.
//! - `stream_*`: an upstream SSE event list → the client's SSE frames for each format.
//!
//! Plus round trips (decode → encode → decode in one format keeps the
//! canonical request) and cross-format invariants (tool ids, usage, stream shape).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use omniroute::catalog::WireFormat;
use omniroute::formats::{self, canonical::*, ClientContext, StreamDecoder, StreamEncoder};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const FORMATS: [(&str, WireFormat); 4] = [
    ("anthropic", WireFormat::Anthropic),
    ("openai", WireFormat::Openai),
    ("responses", WireFormat::OpenaiResponses),
    ("gemini", WireFormat::Gemini),
];

fn fixtures(prefix: &str) -> Vec<(String, WireFormat, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let (case, fmt) = stem.rsplit_once('.').unwrap();
        if !case.starts_with(prefix) {
            continue;
        }
        let fmt = FORMATS
            .iter()
            .find(|(n, _)| *n == fmt)
            .unwrap_or_else(|| panic!("unknown format in {name}"))
            .1;
        out.push((case.to_string(), fmt, path));
    }
    out.sort_by(|a, b| a.2.cmp(&b.2));
    assert!(!out.is_empty(), "no {prefix} fixtures");
    out
}

fn short(f: WireFormat) -> &'static str {
    FORMATS.iter().find(|(_, x)| *x == f).unwrap().0
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("snapshots/formats");
    s.set_prepend_module_to_snapshot(false);
    s
}

fn decode(fmt: WireFormat, path: &Path) -> ChatRequest {
    let mut req = formats::decode_request(fmt, &std::fs::read(path).unwrap()).unwrap();
    if fmt == WireFormat::Gemini {
        req.model = "gemini-2.5-pro".into();
    }
    req
}

fn ctx() -> ClientContext {
    ClientContext {
        model: "client-model".into(),
        created: 1_700_000_000,
        include_usage: true,
        custom_tools: vec![],
    }
}

#[test]
fn request_translations() {
    settings().bind(|| {
        for (case, from, path) in fixtures("req_") {
            let req = decode(from, &path);
            for (_, to) in FORMATS {
                let mut r = req.clone();
                if to != WireFormat::Anthropic {
                    formats::strip_billing_header(&mut r);
                }
                let t = formats::encode_request(to, &r).unwrap();
                let mut lossy = req.lossy.clone();
                lossy.extend(t.lossy);
                insta::assert_json_snapshot!(
                    format!("{case}.{}-{}", short(from), short(to)),
                    json!({"path": formats::upstream_path(to, &r.model, r.stream), "body": t.body, "lossy": lossy})
                );
            }
        }
    });
}

#[test]
fn response_translations() {
    settings().bind(|| {
        for (case, from, path) in fixtures("resp_") {
            let resp = formats::decode_response(from, &std::fs::read(&path).unwrap()).unwrap();
            for (_, to) in FORMATS {
                let mut c = ctx();
                c.custom_tools = vec!["apply_patch".into()];
                let t = formats::encode_response(to, &resp, &c);
                insta::assert_json_snapshot!(
                    format!("{case}.{}-{}", short(from), short(to)),
                    json!({"body": t.body, "lossy": t.lossy})
                );
            }
        }
    });
}

struct StreamFixture {
    events: Vec<(Option<String>, String)>,
    eof: bool,
    ctx: ClientContext,
}

fn stream_fixture(path: &Path) -> StreamFixture {
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let events = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let data = match &e["data"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (e["event"].as_str().map(str::to_string), data)
        })
        .collect();
    let mut c = ctx();
    c.include_usage = v
        .get("include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    c.custom_tools = v["custom_tools"]
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    StreamFixture {
        events,
        eof: v["eof"].as_bool().unwrap_or(true),
        ctx: c,
    }
}

fn canonical_stream(from: WireFormat, f: &StreamFixture) -> Vec<StreamEvent> {
    let mut dec = StreamDecoder::new(from);
    let mut events = Vec::new();
    for (name, data) in &f.events {
        events.extend(dec.push(name.as_deref(), data));
    }
    if f.eof {
        events.extend(dec.finish());
    }
    events
}

fn check_canonical_shape(case: &str, events: &[StreamEvent]) {
    let mut open: Option<usize> = None;
    let mut next = 0;
    let terminals = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Finish { .. } | StreamEvent::Error(_)))
        .count();
    assert_eq!(terminals, 1, "{case}: exactly one terminal event");
    assert!(
        matches!(
            events.last(),
            Some(StreamEvent::Finish { .. } | StreamEvent::Error(_))
        ),
        "{case}: terminal last"
    );
    for e in events {
        match e {
            StreamEvent::BlockStart { index, .. } => {
                assert_eq!(open, None, "{case}: blocks are sequential");
                assert_eq!(*index, next, "{case}: indexes contiguous");
                open = Some(*index);
                next += 1;
            }
            StreamEvent::Delta { index, .. } => {
                assert_eq!(open, Some(*index), "{case}: delta on the open block")
            }
            StreamEvent::BlockStop { index } => {
                assert_eq!(open, Some(*index), "{case}: stop of the open block");
                open = None;
            }
            _ => {}
        }
    }
}

#[test]
fn stream_translations() {
    settings().bind(|| {
        for (case, from, path) in fixtures("stream_") {
            let f = stream_fixture(&path);
            let events = canonical_stream(from, &f);
            check_canonical_shape(&case, &events);
            insta::assert_json_snapshot!(format!("{case}.{}-canonical", short(from)), events);
            for (_, to) in FORMATS {
                let mut enc = StreamEncoder::new(to, &f.ctx);
                let frames: String = events.iter().flat_map(|e| enc.frames(e)).collect();
                assert!(
                    enc.is_done(),
                    "{case} → {}: the encoder reached its terminator",
                    short(to)
                );
                if to == WireFormat::OpenaiResponses {
                    check_sequence_numbers(&case, &frames);
                }
                insta::assert_snapshot!(format!("{case}.{}-{}", short(from), short(to)), frames);
            }
        }
    });
}

fn check_sequence_numbers(case: &str, frames: &str) {
    let seqs: Vec<u64> = frames
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| {
            serde_json::from_str::<Value>(d).unwrap()["sequence_number"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let expected: Vec<u64> = (0..seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "{case}: sequence_number contiguous from 0");
}

/// Decode → encode → decode in the same format keeps the canonical request.
#[test]
fn requests_round_trip_in_their_own_format() {
    for (case, fmt, path) in fixtures("req_") {
        let first = decode(fmt, &path);
        let body = formats::encode_request(fmt, &first).unwrap().body;
        let mut second = formats::decode_request(fmt, body.to_string().as_bytes()).unwrap();
        if fmt == WireFormat::Gemini {
            second.model = first.model.clone();
        }
        let mut a = first.clone();
        a.lossy.clear();
        second.lossy.clear();
        // Decoding hosted tools or signatures the encoder deliberately keeps is exact;
        // the only normalisations are listed here.
        if fmt == WireFormat::Openai {
            // OpenAI Chat has no request field for reasoning history (a documented lossy case).
            for m in &mut a.messages {
                m.parts.retain(|p| !matches!(p, Part::Reasoning(_)));
            }
        }
        if fmt == WireFormat::Gemini {
            // Gemini ids are regenerated from position; the parts keep their order and names.
            for (m1, m2) in a.messages.iter_mut().zip(second.messages.iter_mut()) {
                for (p1, p2) in m1.parts.iter_mut().zip(m2.parts.iter_mut()) {
                    if let (Part::ToolCall { id: i1, .. }, Part::ToolCall { id: i2, .. }) = (p1, p2)
                    {
                        *i2 = i1.clone();
                    }
                }
            }
        }
        assert_eq!(
            a.messages,
            second.messages,
            "{case}.{}: messages survive a round trip",
            short(fmt)
        );
        assert_eq!(a.system_text(), second.system_text(), "{case}: system");
        assert_eq!(a.tools.len(), second.tools.len(), "{case}: tools");
        assert_eq!(a.tool_choice, second.tool_choice, "{case}: tool_choice");
        assert_eq!(
            a.max_output_tokens.is_some(),
            second.max_output_tokens.is_some(),
            "{case}: max tokens"
        );
    }
}

/// Responses survive decode → encode → decode in their own format.
#[test]
fn responses_round_trip_in_their_own_format() {
    for (case, fmt, path) in fixtures("resp_") {
        let first = formats::decode_response(fmt, &std::fs::read(&path).unwrap()).unwrap();
        let body = formats::encode_response(fmt, &first, &ClientContext::default()).body;
        let second = formats::decode_response(fmt, body.to_string().as_bytes()).unwrap();
        assert_eq!(first.finish, second.finish, "{case}: finish");
        assert_eq!(first.usage, second.usage, "{case}: usage");
        let calls = |r: &ChatResponse| -> Vec<(String, String)> {
            r.parts
                .iter()
                .filter_map(|p| match p {
                    Part::ToolCall {
                        name, arguments, ..
                    } => Some((
                        name.clone(),
                        serde_json::from_str::<Value>(arguments)
                            .map(|v| v.to_string())
                            .unwrap_or(arguments.clone()),
                    )),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(
            calls(&first).len(),
            calls(&second).len(),
            "{case}: tool calls"
        );
    }
}

/// A tool call id survives every client format and comes back unchanged in
/// the next request (Gemini's generated ids included).
#[test]
fn tool_call_ids_are_stable_across_formats() {
    let upstream = br#"{"responseId":"r-7","modelVersion":"g","candidates":[{"finishReason":"STOP","content":{"role":"model","parts":[
        {"functionCall":{"name":"Read","args":{"path":"a"}}},{"functionCall":{"name":"Read","args":{"path":"b"}}}]}}]}"#;
    let resp = formats::decode_response(WireFormat::Gemini, upstream).unwrap();
    let ids: Vec<String> = resp
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    assert_eq!(
        formats::decode_response(WireFormat::Gemini, upstream)
            .unwrap()
            .parts,
        resp.parts,
        "deterministic"
    );
    for (_, client) in FORMATS {
        let body = formats::encode_response(client, &resp, &ClientContext::default()).body;
        let back = formats::decode_response(client, body.to_string().as_bytes()).unwrap();
        let back_ids: Vec<String> = back
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::ToolCall { id, .. } => Some(id.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(back_ids, ids, "{}", short(client));
    }
}

/// Cached tokens are counted once whichever way usage travels.
#[test]
fn usage_with_cache_is_not_double_counted() {
    let a = br#"{"id":"m","model":"c","content":[{"type":"text","text":"x"}],"stop_reason":"end_turn",
        "usage":{"input_tokens":8,"cache_read_input_tokens":12,"cache_creation_input_tokens":0,"output_tokens":5}}"#;
    let resp = formats::decode_response(WireFormat::Anthropic, a).unwrap();
    assert_eq!(resp.usage.prompt_total(), 20);
    let c = formats::encode_response(WireFormat::Openai, &resp, &ClientContext::default()).body;
    assert_eq!(c["usage"]["prompt_tokens"], 20);
    assert_eq!(c["usage"]["prompt_tokens_details"]["cached_tokens"], 12);
    let back = formats::decode_response(WireFormat::Openai, c.to_string().as_bytes()).unwrap();
    assert_eq!(back.usage, resp.usage);
    for (_, f) in FORMATS {
        let body = formats::encode_response(f, &resp, &ClientContext::default()).body;
        let u = formats::decode_response(f, body.to_string().as_bytes())
            .unwrap()
            .usage;
        assert_eq!(
            (u.input_tokens, u.cache_read_tokens, u.output_tokens),
            (8, 12, 5),
            "{}",
            short(f)
        );
    }
}

#[test]
fn errors_in_every_format() {
    let kinds = [
        (ErrorKind::BadRequest, 400),
        (ErrorKind::ContextTooLong, 400),
        (ErrorKind::Auth, 401),
        (ErrorKind::Billing, 402),
        (ErrorKind::Permission, 403),
        (ErrorKind::NotFound, 404),
        (ErrorKind::RequestTooLarge, 413),
        (ErrorKind::RateLimited, 429),
        (ErrorKind::Overloaded, 529),
        (ErrorKind::Upstream, 500),
        (ErrorKind::Timeout, 504),
    ];
    settings().bind(|| {
        for (name, f) in FORMATS {
            let table: Vec<Value> = kinds
                .iter()
                .map(|(k, s)| {
                    let (status, body) = formats::encode_error(f, *s, *k, "something failed");
                    // and back: the same kind is recognised
                    let info = formats::decode_error(f, status, body.to_string().as_bytes());
                    json!({"kind": k, "status": status, "body": body, "decoded_kind": info.kind})
                })
                .collect();
            insta::assert_json_snapshot!(format!("errors.{name}"), table);
        }
    });
}

#[test]
fn anthropic_client_gets_prompt_too_long_for_context_overflow() {
    let up = br#"{"error":{"code":"context_length_exceeded","message":"This model's maximum context length is 128000 tokens","type":"invalid_request_error"}}"#;
    let info = formats::decode_error(WireFormat::Openai, 400, up);
    assert_eq!(info.kind, ErrorKind::ContextTooLong);
    let (status, body) =
        formats::encode_error(WireFormat::Anthropic, info.status, info.kind, &info.message);
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("prompt is too long"));
}

#[test]
fn anthropic_upstream_always_gets_max_tokens() {
    let req = formats::decode_request(
        WireFormat::Openai,
        br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .unwrap();
    let body = formats::encode_request(WireFormat::Anthropic, &req)
        .unwrap()
        .body;
    assert_eq!(body["max_tokens"], formats::anthropic::DEFAULT_MAX_TOKENS);
}

#[test]
fn n_greater_than_one_is_refused_with_param() {
    let err = formats::decode_request(WireFormat::Openai, br#"{"model":"m","n":2,"messages":[]}"#)
        .unwrap_err();
    assert_eq!(err.param(), Some("n"));
}
