//! Small readers over `serde_json::Value` shared by the decoders, and the
//! lenient argument parser used when a tool call's JSON text must become an object.

use super::FormatError;
use serde_json::{Map, Value};

pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, FormatError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(FormatError::invalid("", "the body must be a JSON object")),
        Err(e) => Err(FormatError::Json(e.to_string())),
    }
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

pub fn string_of(v: &Value, key: &str) -> Option<String> {
    str_of(v, key).map(str::to_string)
}

pub fn u64_of(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

pub fn u32_of(v: &Value, key: &str) -> Option<u32> {
    u64_of(v, key).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

pub fn f64_of(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

pub fn bool_of(v: &Value, key: &str) -> Option<bool> {
    v.get(key).and_then(Value::as_bool)
}

pub fn array_of<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// `"a"` or `["a","b"]` → list.
pub fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// Tool arguments text → JSON object. `""` is `{}`; truncated JSON is
/// repaired by closing open strings, arrays and objects; anything else that
/// still fails becomes `{}` (the caller records a lossy note).
pub fn arguments_to_object(args: &str) -> (Value, bool) {
    let t = args.trim();
    if t.is_empty() {
        return (Value::Object(Map::new()), true);
    }
    if let Ok(v) = serde_json::from_str::<Value>(t) {
        return match v {
            Value::Object(_) => (v, true),
            other => (serde_json::json!({ "value": other }), false),
        };
    }
    if let Some(v) = repair(t) {
        return (v, false);
    }
    (Value::Object(Map::new()), false)
}

fn repair(t: &str) -> Option<Value> {
    let mut stack = Vec::new();
    let mut in_str = false;
    let mut escaped = false;
    for c in t.chars() {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' => stack.push('}'),
            '[' => stack.push(']'),
            '}' | ']' => {
                stack.pop();
            }
            _ => {}
        }
    }
    let mut fixed = t.to_string();
    if in_str {
        fixed.push('"');
    }
    while let Some(c) = stack.pop() {
        fixed.push(c);
    }
    match serde_json::from_str::<Value>(&fixed) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ => None,
    }
}

/// An object as compact JSON text (tool arguments).
pub fn to_arguments(v: &Value) -> String {
    match v {
        Value::Null => "{}".into(),
        other => other.to_string(),
    }
}

/// `body` (a JSON object) with every top-level `key` set to the string
/// `value` and every other byte kept as it was; `None` when `body` is not an
/// object or `key` is absent or not a string (the caller then re-serialises).
/// Used to forward a client's request to an upstream of the same format:
/// only the model name changes, the rest (cache markers, signatures) stays exact.
pub fn set_top_level_string(body: &[u8], key: &str, value: &str) -> Option<Vec<u8>> {
    let mut spans = Vec::new();
    let mut i = skip_ws(body, 0);
    if body.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(body, i + 1);
    if body.get(i) == Some(&b'}') {
        return None;
    }
    loop {
        let key_end = string_end(body, i)?;
        let is_key = &body[i + 1..key_end - 1] == key.as_bytes();
        i = skip_ws(body, key_end);
        if body.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(body, i + 1);
        let end = value_end(body, start)?;
        if is_key {
            if body.get(start) != Some(&b'"') {
                return None;
            }
            spans.push((start, end));
        }
        i = skip_ws(body, end);
        match body.get(i) {
            Some(b',') => i = skip_ws(body, i + 1),
            Some(b'}') => break,
            _ => return None,
        }
    }
    if spans.is_empty() {
        return None;
    }
    let quoted = serde_json::to_string(value).ok()?;
    let mut out = Vec::with_capacity(body.len() + quoted.len());
    let mut at = 0;
    for (s, e) in spans {
        out.extend_from_slice(&body[at..s]);
        out.extend_from_slice(quoted.as_bytes());
        at = e;
    }
    out.extend_from_slice(&body[at..]);
    Some(out)
}

/// Where each of `keys` sits among the top-level members of `body` (the
/// byte span of its value), found in one pass that jumps over strings with
/// a SIMD search and parses nothing. `None` when `body` is not one object
/// whose members are well formed at the top level (strings closed, brackets
/// balanced), when a key holds an escape, or when one of `keys` appears
/// twice: the caller then reads the body with serde, whose error names the fault.
pub fn pick_top_level<const N: usize>(
    body: &[u8],
    keys: [&str; N],
) -> Option<[Option<(usize, usize)>; N]> {
    let mut found = [None; N];
    let mut i = skip_ws(body, 0);
    if body.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(body, i + 1);
    if body.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            let key_end = string_end(body, i)?;
            let key = &body[i + 1..key_end - 1];
            if memchr::memchr(b'\\', key).is_some() {
                return None;
            }
            i = skip_ws(body, key_end);
            if body.get(i) != Some(&b':') {
                return None;
            }
            let start = skip_ws(body, i + 1);
            let end = value_end(body, start)?;
            if let Some(k) = keys.iter().position(|k| k.as_bytes() == key) {
                if found[k].replace((start, end)).is_some() {
                    return None;
                }
            }
            i = skip_ws(body, end);
            match body.get(i) {
                Some(b',') => i = skip_ws(body, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_ws(body, i) == body.len()).then_some(found)
}

/// `body` with the string value at `span` (as `pick_top_level` found it)
/// replaced by `value`; `None` when the span does not hold a string.
pub fn replace_string_at(body: &[u8], span: (usize, usize), value: &str) -> Option<Vec<u8>> {
    let (start, end) = span;
    let old = body.get(start..end)?;
    if old.len() < 2 || old[0] != b'"' || old[old.len() - 1] != b'"' {
        return None;
    }
    let quoted = serde_json::to_string(value).ok()?;
    let mut out = Vec::with_capacity(body.len() + quoted.len());
    out.extend_from_slice(&body[..start]);
    out.extend_from_slice(quoted.as_bytes());
    out.extend_from_slice(&body[end..]);
    Some(out)
}

/// `body` (a JSON object) with `"key": raw_value` added as its last member,
/// every other byte kept; `None` when `body` is not an object. The caller
/// makes sure `key` is absent and `raw_value` is valid JSON.
pub fn append_top_level(body: &mut Vec<u8>, key: &str, raw_value: &str) -> Option<()> {
    let end = body
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))?;
    if body[end] != b'}' {
        return None;
    }
    let open = skip_ws(body, 0);
    if body.get(open) != Some(&b'{') {
        return None;
    }
    let empty = skip_ws(body, open + 1) == end;
    let quoted = serde_json::to_string(key).ok()?;
    let mut member = Vec::with_capacity(quoted.len() + raw_value.len() + 2);
    if !empty {
        member.push(b',');
    }
    member.extend_from_slice(quoted.as_bytes());
    member.push(b':');
    member.extend_from_slice(raw_value.as_bytes());
    body.splice(end..end, member);
    Some(())
}

/// An OpenAI Chat body for an upstream: the client's bytes with `model`
/// set and, when `ask_usage`, `stream_options.include_usage` added, by
/// in-place edits. `None` when that cannot be done in place (the model is
/// not a plain string member, or `stream_options` exists without the
/// option): the caller then goes through a document.
pub fn openai_for_upstream(
    raw: &[u8],
    model: &str,
    model_span: Option<(usize, usize)>,
    ask_usage: bool,
    has_stream_options: bool,
) -> Option<Vec<u8>> {
    if ask_usage && has_stream_options {
        return None;
    }
    // The routing view already found where the model is: no second scan.
    let mut out = match model_span.and_then(|span| replace_string_at(raw, span, model)) {
        Some(out) => out,
        None => set_top_level_string(raw, "model", model)?,
    };
    if ask_usage {
        append_top_level(&mut out, "stream_options", r#"{"include_usage":true}"#)?;
    }
    Some(out)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b
        .get(i)
        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// End (exclusive) of the string starting at `i` (its opening quote).
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    // Strings are most of an agent's body: jump from quote or backslash to
    // the next one (SIMD search) instead of looking at every byte.
    let mut j = i + 1;
    while j < b.len() {
        j += memchr::memchr2(b'"', b'\\', &b[j..])?;
        match b[j] {
            b'\\' => j += 2,
            _ => return Some(j + 1),
        }
    }
    None
}

/// End (exclusive) of the JSON value starting at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_top_level_members_in_one_pass() {
        let body =
            br#" { "messages": [{"role":"user","content":"a \"model\": 1 {["}], "model" : "m-1",
            "stream":true, "n": 1.5e3, "generationConfig": {"seed": 4} } "#;
        let [model, stream, seed, gc] =
            pick_top_level(body, ["model", "stream", "seed", "generationConfig"]).unwrap();
        let at =
            |s: Option<(usize, usize)>| s.map(|(a, b)| std::str::from_utf8(&body[a..b]).unwrap());
        assert_eq!(at(model), Some(r#""m-1""#));
        assert_eq!(at(stream), Some("true"));
        assert_eq!(at(seed), None, "only top-level members");
        assert_eq!(at(gc), Some(r#"{"seed": 4}"#));
        let out = replace_string_at(body, model.unwrap(), "real").unwrap();
        assert_eq!(out, set_top_level_string(body, "model", "real").unwrap());
        // Left to serde: not an object, unclosed, trailing bytes, a twice-named key, an escaped key.
        for bad in [
            &b"[1]"[..],
            br#"{"model":"x""#,
            br#"{"model":"x"} x"#,
            br#"{"model":"x","model":"y"}"#,
            br#"{"mod\u0065l":"x"}"#,
            br#"{"model" "x"}"#,
            br#"{"a":[1,{"b":2]}"#,
        ] {
            assert!(
                pick_top_level(bad, ["model"]).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(pick_top_level(b" {} ", ["model"]), Some([None]));
    }

    #[test]
    fn sets_a_top_level_string_and_keeps_every_other_byte() {
        let body = br#"{ "messages": [{"role":"user","content":"say \"model\": {x}"}], "model" : "claude-x",
  "system":[{"type":"text","text":"a","cache_control":{"type":"ephemeral"}}], "n": 1.5e3, "t": true }"#;
        let out = set_top_level_string(body, "model", "real-\"m\"").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            String::from_utf8_lossy(body).replace("\"claude-x\"", "\"real-\\\"m\\\"\"")
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["model"], "real-\"m\"");
        // The nested "model" inside a string is not touched.
        assert!(text.contains(r#"say \"model\": {x}"#));
        assert_eq!(
            set_top_level_string(br#"{"a":{"model":"x"}}"#, "model", "y"),
            None
        );
        assert_eq!(set_top_level_string(br#"{"model":3}"#, "model", "y"), None);
        assert_eq!(set_top_level_string(b"[1]", "model", "y"), None);
        assert_eq!(set_top_level_string(b"{}", "model", "y"), None);
        assert_eq!(
            set_top_level_string(br#"{"model":"a","model":"b"}"#, "model", "c").unwrap(),
            br#"{"model":"c","model":"c"}"#.to_vec()
        );
    }

    #[test]
    fn openai_bodies_get_model_and_usage_option_in_place() {
        let body = br#"{"model":"combo","messages":[{"role":"user","content":"}"}],"stream":true}
"#;
        let out = openai_for_upstream(body, "gpt-x", None, true, false).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["model"], "gpt-x");
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["messages"][0]["content"], "}");
        assert!(out.starts_with(br#"{"model":"gpt-x","messages":[{"role":"user","content":"}"}],"stream":true,"stream_options""#));
        let plain = openai_for_upstream(body, "m", None, false, false).unwrap();
        assert!(!String::from_utf8(plain).unwrap().contains("stream_options"));
        // Present without the option: not done in place.
        assert_eq!(openai_for_upstream(body, "m", None, true, true), None);
        let mut empty = b"{ }".to_vec();
        append_top_level(&mut empty, "a", "1").unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&empty).unwrap(),
            serde_json::json!({"a": 1})
        );
    }

    #[test]
    fn arguments_are_parsed_leniently() {
        assert_eq!(arguments_to_object("").0, serde_json::json!({}));
        assert_eq!(
            arguments_to_object("{\"a\":1").0,
            serde_json::json!({"a":1})
        );
        assert_eq!(
            arguments_to_object("{\"a\":\"x").0,
            serde_json::json!({"a":"x"})
        );
        let (v, ok) = arguments_to_object("not json");
        assert_eq!(v, serde_json::json!({}));
        assert!(!ok);
    }
}
