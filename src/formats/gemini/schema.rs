//! Gemini's `parameters` accept an OpenAPI-3 subset of JSON Schema: this
//! rewrites a JSON Schema into it (refs inlined, unsupported keys removed,
//! `type: [T, "null"]` → `type: T, nullable: true`).

use serde_json::{Map, Value};

const DROPPED: &[&str] = &[
    "$schema",
    "$id",
    "$defs",
    "definitions",
    "$comment",
    "additionalProperties",
    "default",
    "examples",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "const",
    "patternProperties",
    "unevaluatedProperties",
    "propertyNames",
    "if",
    "then",
    "else",
    "not",
    "strict",
];

pub fn sanitize(schema: &Value) -> Value {
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .cloned()
        .unwrap_or(Value::Null);
    clean(schema, &defs, 0)
}

fn resolve<'a>(r: &str, defs: &'a Value) -> Option<&'a Value> {
    let name = r.rsplit('/').next()?;
    defs.get(name)
}

fn clean(v: &Value, defs: &Value, depth: usize) -> Value {
    if depth > 32 {
        return Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => {
            if let Some(target) = m
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| resolve(r, defs))
            {
                return clean(target, defs, depth + 1);
            }
            let mut out = Map::new();
            for (k, val) in m {
                if DROPPED.contains(&k.as_str()) || k == "$ref" {
                    continue;
                }
                match (k.as_str(), val) {
                    ("type", Value::Array(types)) => {
                        let non_null: Vec<&Value> = types
                            .iter()
                            .filter(|t| t.as_str() != Some("null"))
                            .collect();
                        if let Some(t) = non_null.first() {
                            out.insert("type".into(), (*t).clone());
                        }
                        if non_null.len() < types.len() {
                            out.insert("nullable".into(), Value::Bool(true));
                        }
                    }
                    ("format", Value::String(f)) if f != "enum" && f != "date-time" => {}
                    ("properties", Value::Object(props)) => {
                        let p: Map<String, Value> = props
                            .iter()
                            .map(|(n, s)| (n.clone(), clean(s, defs, depth + 1)))
                            .collect();
                        out.insert(k.clone(), Value::Object(p));
                    }
                    ("enum", Value::Array(items)) => {
                        if items.iter().all(Value::is_string) {
                            out.insert(k.clone(), val.clone());
                        }
                    }
                    _ => {
                        out.insert(k.clone(), clean(val, defs, depth + 1));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| clean(x, defs, depth + 1)).collect()),
        other => other.clone(),
    }
}

/// Gemini's own schemas spell types in upper case (`OBJECT`); JSON Schema wants lower case.
pub fn lowercase_types(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| match (k.as_str(), x) {
                    ("type", Value::String(t)) => {
                        (k.clone(), Value::String(t.to_ascii_lowercase()))
                    }
                    _ => (k.clone(), lowercase_types(x)),
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(lowercase_types).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rewrites_into_the_openapi_subset() {
        let s = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object", "additionalProperties": false,
            "$defs": {"Path": {"type": "string", "description": "a path"}},
            "properties": {
                "path": {"$ref": "#/$defs/Path"},
                "note": {"type": ["string", "null"], "format": "uri"},
                "mode": {"type": "string", "enum": ["a", "b"]}
            },
            "required": ["path"]
        });
        assert_eq!(
            sanitize(&s),
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "a path"},
                    "note": {"type": "string", "nullable": true},
                    "mode": {"type": "string", "enum": ["a", "b"]}
                },
                "required": ["path"]
            })
        );
    }
}
