//! Property tests: no request decoder panics on any input, decoding is
//! stable through its own encoder (decode ∘ encode ∘ decode = decode) for
//! valid requests of every wire format, and the in-place model rewrite used
//! for same-format forwarding changes exactly the model and nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use omniroute::catalog::WireFormat;
use omniroute::formats::{self, json::set_top_level_string};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const FORMATS: [WireFormat; 4] = [
    WireFormat::Openai,
    WireFormat::Anthropic,
    WireFormat::OpenaiResponses,
    WireFormat::Gemini,
];

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e9f64..1e9).prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Keys the decoders look at, so random objects reach deep into them.
fn request_like() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "stream",
        "max_tokens",
        "temperature",
        "input",
        "instructions",
        "contents",
        "systemInstruction",
        "generationConfig",
        "role",
        "content",
        "parts",
        "type",
        "text",
        "tool_calls",
        "function",
        "arguments",
        "name",
        "id",
        "thinking",
        "reasoning",
        "metadata",
    ]);
    prop::collection::vec((keys, any_json()), 0..8).prop_map(|kv| {
        let mut m = Map::new();
        for (k, v) in kv {
            m.insert(k.to_string(), v);
        }
        Value::Object(m)
    })
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 .,!?\\n\"\\\\é中]{1,40}"
}

/// A valid request in `fmt`: a system prompt, alternating turns, sampling.
fn valid_request(fmt: WireFormat) -> impl Strategy<Value = Value> {
    (
        prop::option::of(text()),
        prop::collection::vec(text(), 1..6),
        prop::option::of(0.0f64..2.0),
        prop::option::of(1u32..8192),
        any::<bool>(),
    )
        .prop_map(move |(system, turns, temperature, max_tokens, stream)| {
            let role = |i: usize, user: &'static str, other: &'static str| {
                if i.is_multiple_of(2) {
                    user
                } else {
                    other
                }
            };
            let t = temperature.map(|t| (t * 100.0).round() / 100.0);
            match fmt {
                WireFormat::Openai => {
                    let mut messages = Vec::new();
                    if let Some(s) = &system {
                        messages.push(json!({"role": "system", "content": s}));
                    }
                    for (i, m) in turns.iter().enumerate() {
                        messages.push(json!({"role": role(i, "user", "assistant"), "content": m}));
                    }
                    let mut v = json!({"model": "m", "messages": messages, "stream": stream});
                    if let Some(t) = t {
                        v["temperature"] = json!(t);
                    }
                    if let Some(n) = max_tokens {
                        v["max_tokens"] = json!(n);
                    }
                    v
                }
                WireFormat::Anthropic => {
                    let messages: Vec<Value> = turns
                        .iter()
                        .enumerate()
                        .map(|(i, m)| json!({"role": role(i, "user", "assistant"), "content": [{"type": "text", "text": m}]}))
                        .collect();
                    let mut v = json!({"model": "m", "max_tokens": max_tokens.unwrap_or(256), "messages": messages, "stream": stream});
                    if let Some(s) = &system {
                        v["system"] = json!([{"type": "text", "text": s}]);
                    }
                    if let Some(t) = t {
                        v["temperature"] = json!(t.min(1.0));
                    }
                    v
                }
                WireFormat::OpenaiResponses => {
                    let input: Vec<Value> = turns
                        .iter()
                        .enumerate()
                        .map(|(i, m)| {
                            let (r, kind) = if i.is_multiple_of(2) { ("user", "input_text") } else { ("assistant", "output_text") };
                            json!({"type": "message", "role": r, "content": [{"type": kind, "text": m}]})
                        })
                        .collect();
                    let mut v = json!({"model": "m", "input": input, "stream": stream});
                    if let Some(s) = &system {
                        v["instructions"] = json!(s);
                    }
                    if let Some(t) = t {
                        v["temperature"] = json!(t);
                    }
                    if let Some(n) = max_tokens {
                        v["max_output_tokens"] = json!(n);
                    }
                    v
                }
                WireFormat::Gemini => {
                    let contents: Vec<Value> = turns
                        .iter()
                        .enumerate()
                        .map(|(i, m)| json!({"role": role(i, "user", "model"), "parts": [{"text": m}]}))
                        .collect();
                    let mut v = json!({"contents": contents});
                    if let Some(s) = &system {
                        v["systemInstruction"] = json!({"parts": [{"text": s}]});
                    }
                    let mut g = Map::new();
                    if let Some(t) = t {
                        g.insert("temperature".into(), json!(t));
                    }
                    if let Some(n) = max_tokens {
                        g.insert("maxOutputTokens".into(), json!(n));
                    }
                    if !g.is_empty() {
                        v["generationConfig"] = Value::Object(g);
                    }
                    v
                }
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        for fmt in FORMATS {
            let _ = formats::decode_request(fmt, &bytes);
            let _ = formats::decode_response(fmt, &bytes);
            let _ = formats::decode_error(fmt, 400, &bytes);
        }
        let _ = set_top_level_string(&bytes, "model", "x");
    }

    /// The one-pass view agrees with serde on every request-like body, and
    /// (when it keeps the model's place) rewriting there equals the scan.
    #[test]
    fn the_one_pass_view_agrees_with_serde(v in request_like(), pretty in any::<bool>()) {
        let bytes = if pretty { serde_json::to_vec_pretty(&v).unwrap() } else { serde_json::to_vec(&v).unwrap() };
        for fmt in FORMATS {
            let fast = omniroute::proxy::RequestView::peek(fmt, &bytes);
            let slow = omniroute::proxy::RequestView::peek_with_serde(fmt, &bytes);
            match (fast, slow) {
                (Ok(mut f), Ok(s)) => {
                    if let Some(span) = f.model_span {
                        prop_assert_eq!(
                            omniroute::formats::json::replace_string_at(&bytes, span, "new-m"),
                            set_top_level_string(&bytes, "model", "new-m")
                        );
                    }
                    f.model_span = None;
                    prop_assert_eq!(f, s);
                }
                (Err(_), Err(_)) => {}
                (f, s) => prop_assert!(false, "picker {:?} vs serde {:?}", f, s),
            }
        }
    }

    #[test]
    fn decoders_never_panic_on_json(v in request_like()) {
        let bytes = serde_json::to_vec(&v).unwrap();
        for fmt in FORMATS {
            if let Ok(req) = formats::decode_request(fmt, &bytes) {
                // Whatever decodes can be encoded for every upstream without a panic.
                for to in FORMATS {
                    let _ = formats::encode_request(to, &req);
                }
            }
        }
    }

    #[test]
    fn valid_requests_round_trip_through_their_own_codec(
        (fmt, body) in prop::sample::select(FORMATS.to_vec()).prop_flat_map(|f| (Just(f), valid_request(f)))
    ) {
        let bytes = serde_json::to_vec(&body).unwrap();
        let first = formats::decode_request(fmt, &bytes).expect("a valid request decodes");
        prop_assert!(!first.messages.is_empty());
        let encoded = formats::encode_request(fmt, &first).expect("and encodes");
        let again = formats::decode_request(fmt, &serde_json::to_vec(&encoded.body).unwrap())
            .expect("its encoding decodes");
        let (mut a, mut b) = (first, again);
        // Gemini carries the model in the path and stream in the method.
        if fmt == WireFormat::Gemini {
            a.stream = false;
            b.stream = false;
        }
        a.lossy.clear();
        b.lossy.clear();
        // The OpenAI encoder asks for usage in every stream on purpose.
        if fmt == WireFormat::Openai {
            a.stream_usage = a.stream;
        }
        prop_assert_eq!(a, b);
    }

    #[test]
    fn the_model_rewrite_changes_the_model_and_nothing_else(
        v in prop::collection::btree_map("[a-z_]{1,8}", any_json(), 0..6),
        model in ".{0,20}",
        pretty in any::<bool>(),
        new_model in ".{0,20}",
    ) {
        let mut obj: Map<String, Value> = v.into_iter().collect();
        obj.insert("model".into(), Value::String(model));
        let original = Value::Object(obj.clone());
        let bytes = if pretty {
            serde_json::to_vec_pretty(&original).unwrap()
        } else {
            serde_json::to_vec(&original).unwrap()
        };
        let out = set_top_level_string(&bytes, "model", &new_model).expect("a string model is rewritten");
        let parsed: Value = serde_json::from_slice(&out).expect("still JSON");
        // Against the input as parsed (a float's text need not give back the
        // very f64 that was printed), with only the model changed.
        let mut want: Value = serde_json::from_slice(&bytes).unwrap();
        want["model"] = Value::String(new_model.clone());
        prop_assert_eq!(parsed, want);
        // Bytes outside the model's value are kept as they were.
        let old_len = bytes.len() as isize;
        let quoted = |s: &str| serde_json::to_string(s).unwrap().len() as isize;
        let m = original["model"].as_str().unwrap();
        prop_assert_eq!(out.len() as isize, old_len - quoted(m) + quoted(&new_model));
    }

    #[test]
    fn a_nested_model_is_left_alone(inner in ".{0,12}", new_model in "[a-z]{1,8}") {
        let body = json!({"metadata": {"model": inner}, "model": "top"});
        let out = set_top_level_string(body.to_string().as_bytes(), "model", &new_model).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        prop_assert_eq!(&v["metadata"]["model"], &body["metadata"]["model"]);
        prop_assert_eq!(v["model"].as_str(), Some(new_model.as_str()));
    }
}
