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

#[cfg(test)]
mod tests {
    use super::*;

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
