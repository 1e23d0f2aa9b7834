//! JSON Schemas of the public types, generated into `schemas/` and checked
//! by a test so the checked-in files never drift from the code.

use schemars::{schema_for, Schema};

/// Every schema we publish, by file name.
pub fn all() -> Vec<(&'static str, Schema)> {
    let all = vec![
        ("config.schema.json", schema_for!(crate::config::FileConfig)),
        (
            "catalog-provider.schema.json",
            schema_for!(crate::catalog::ProviderSpec),
        ),
        (
            "health.schema.json",
            schema_for!(crate::ops::health::Health),
        ),
        (
            "provider-view.schema.json",
            schema_for!(crate::ops::providers::ProviderView),
        ),
        (
            "account-view.schema.json",
            schema_for!(crate::ops::accounts::AccountView),
        ),
        (
            "add-account-input.schema.json",
            schema_for!(crate::ops::accounts::AddAccountInput),
        ),
        (
            "usage-query.schema.json",
            schema_for!(crate::ops::usage::UsageQuery),
        ),
        (
            "usage-report.schema.json",
            schema_for!(crate::ops::usage::UsageReport),
        ),
        (
            "audit-entry.schema.json",
            schema_for!(crate::store::AuditEntry),
        ),
        (
            "list-providers-input.schema.json",
            schema_for!(crate::ops::providers::ListProvidersInput),
        ),
        (
            "list-models-input.schema.json",
            schema_for!(crate::ops::models::ListModelsInput),
        ),
        (
            "audit-query.schema.json",
            schema_for!(crate::ops::audit::AuditQuery),
        ),
        (
            "cost-query.schema.json",
            schema_for!(crate::ops::cost::CostQuery),
        ),
        (
            "cost-report.schema.json",
            schema_for!(crate::ops::cost::CostReport),
        ),
        (
            "route-request.schema.json",
            schema_for!(crate::ops::route::RouteRequest),
        ),
        (
            "route-answer.schema.json",
            schema_for!(crate::ops::route::RouteAnswer),
        ),
        (
            "mcp-providers-output.schema.json",
            schema_for!(crate::mcp::ProvidersOutput),
        ),
        (
            "mcp-models-output.schema.json",
            schema_for!(crate::mcp::ModelsOutput),
        ),
        (
            "mcp-audit-output.schema.json",
            schema_for!(crate::mcp::AuditOutput),
        ),
        // Not a schema of one type: every MCP tool as `tools/list` shows it
        // (name, description, inputSchema, outputSchema, annotations).
        (
            "mcp-tools.json",
            Schema::try_from(crate::mcp::OmnirouteMcp::tool_catalog()).unwrap_or_default(),
        ),
    ];
    all.into_iter().map(|(n, s)| (n, clean(s))).collect()
}

/// The `format` values JSON Schema (2020-12, §7.3) defines. schemars also
/// writes OpenAPI-style ones (`uint32`, `int64`, `double`, …) that
/// validators flag as unknown (Claude Code warns at every session start):
/// those are dropped, the bounds that carry their meaning (`minimum`) stay.
pub const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Remove every non-standard `format` from a schema, at any depth (values
/// under `default`, `examples`, `const` and `enum` are data, left alone).
pub fn standard_formats(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            let drop = matches!(o.get("format"), Some(serde_json::Value::String(f)) if !STANDARD_FORMATS.contains(&f.as_str()));
            if drop {
                o.remove("format");
            }
            for (k, child) in o.iter_mut() {
                if !matches!(k.as_str(), "default" | "examples" | "const" | "enum") {
                    standard_formats(child);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(standard_formats),
        _ => {}
    }
}

/// A schema with only standard formats.
pub fn clean(schema: Schema) -> Schema {
    let mut v = schema.to_value();
    standard_formats(&mut v);
    Schema::try_from(v).unwrap_or_default()
}

/// The file text for a schema (pretty JSON, trailing newline).
pub fn render(schema: &Schema) -> String {
    let mut s = serde_json::to_string_pretty(schema).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Fails when a checked-in schema differs from the code. To refresh:
    /// `OMNIROUTE_WRITE_SCHEMAS=1 cargo test --lib schema`.
    #[test]
    fn checked_in_schemas_match_the_code() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let write = std::env::var_os("OMNIROUTE_WRITE_SCHEMAS").is_some();
        let mut stale = Vec::new();
        for (name, schema) in all() {
            let path = dir.join(name);
            let want = render(&schema);
            if write {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &want).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
                stale.push(name);
            }
        }
        assert!(
            stale.is_empty(),
            "schemas out of date: {stale:?}; run OMNIROUTE_WRITE_SCHEMAS=1 cargo test --lib schema"
        );
    }

    #[test]
    fn only_standard_formats_are_published() {
        let mut v = serde_json::json!({
            "type": "object",
            "properties": {
                "n": {"type": "integer", "format": "uint32", "minimum": 0},
                "at": {"type": "string", "format": "date-time"},
                "format": {"type": "string", "default": {"format": "uint32"}},
            },
        });
        standard_formats(&mut v);
        assert_eq!(
            v["properties"]["n"],
            serde_json::json!({"type": "integer", "minimum": 0})
        );
        assert_eq!(v["properties"]["at"]["format"], "date-time");
        assert_eq!(v["properties"]["format"]["default"]["format"], "uint32");
        for (name, schema) in all() {
            let text = render(&schema);
            for bad in [
                "\"uint32\"",
                "\"uint\"",
                "\"int64\"",
                "\"double\"",
                "\"uint64\"",
            ] {
                assert!(
                    !text.contains(&format!("\"format\": {bad}")),
                    "{name} has format {bad}"
                );
            }
        }
    }
}
