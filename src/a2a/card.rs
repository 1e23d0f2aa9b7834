//! The agent card, generated from the skill files, valid for A2A 1.0
//! (`supportedInterfaces`, `securityRequirements`, typed security schemes)
//! and 0.3 (`url`, `protocolVersion`, `preferredTransport`, `security`,
//! `type`-tagged schemes) at once: each version's readers ignore the other's
//! members.

use super::skills;
use serde_json::{json, Map, Value};

/// The URI of the card extension that publishes each skill's input schema.
pub const INPUT_SCHEMAS_EXTENSION: &str = "urn:omniroute:a2a:skill-input-schemas:v1";

/// The card for an agent reached at `base_url` (scheme and authority).
pub fn agent_card(base_url: &str) -> Value {
    let url = format!("{}/a2a", base_url.trim_end_matches('/'));
    let skills = skills::all();
    let schemas: Map<String, Value> = skills
        .iter()
        .map(|s| (s.id.clone(), s.input_schema.clone()))
        .collect();
    json!({
        "name": "omniroute",
        "description": "AI gateway agent: quota and budget summaries, combo (routing plan) management, gateway health, smart routing of prompts across providers with the route and cost, and cost analysis with savings suggestions.",
        "version": env!("CARGO_PKG_VERSION"),
        "supportedInterfaces": [
            { "url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0" },
            { "url": url, "protocolBinding": "JSONRPC", "protocolVersion": "0.3" },
        ],
        "protocolVersion": "0.3.0",
        "url": url,
        "preferredTransport": "JSONRPC",
        "capabilities": {
            "streaming": true,
            "pushNotifications": false,
            "extendedAgentCard": true,
            "extensions": [{
                "uri": INPUT_SCHEMAS_EXTENSION,
                "description": "JSON Schema of each skill's structured input, sent as a data part (optionally naming the skill in its `skill` member).",
                "required": false,
                "params": schemas,
            }],
        },
        "supportsAuthenticatedExtendedCard": true,
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "An omniroute client key (`omniroute keys create`) as `Authorization: Bearer KEY`.",
                "httpAuthSecurityScheme": {
                    "scheme": "bearer",
                    "description": "An omniroute client key (`omniroute keys create`) as `Authorization: Bearer KEY`.",
                },
            },
            "apiKey": {
                "type": "apiKey",
                "in": "header",
                "name": "x-api-key",
                "description": "The same client key in the `x-api-key` header.",
                "apiKeySecurityScheme": {
                    "location": "header",
                    "name": "x-api-key",
                    "description": "The same client key in the `x-api-key` header.",
                },
            },
        },
        "security": [ { "bearer": [] }, { "apiKey": [] } ],
        "securityRequirements": [
            { "schemes": { "bearer": { "list": [] } } },
            { "schemes": { "apiKey": { "list": [] } } },
        ],
        "defaultInputModes": ["text/plain", "application/json"],
        "defaultOutputModes": ["text/plain", "application/json"],
        "skills": skills.iter().map(|s| json!({
            "id": s.id,
            "name": s.name,
            "description": s.description,
            "tags": s.tags,
            "examples": s.examples,
            "inputModes": s.input_modes,
            "outputModes": s.output_modes,
        })).collect::<Vec<_>>(),
    })
}

/// The base URL a client reached us by, from its request, when `trusted`
/// says the name is this gateway's own; else `fallback`.
pub fn base_url(
    headers: &axum::http::HeaderMap,
    fallback: &str,
    trusted: impl Fn(&str) -> bool,
) -> String {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let proto = h("x-forwarded-proto").unwrap_or("http");
    match h("x-forwarded-host").or_else(|| h("host")) {
        Some(host) if host.chars().all(|c| c.is_ascii_graphic()) && trusted(host) => {
            format!("{proto}://{host}")
        }
        _ => fallback.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemars::schema_for;
    use std::path::Path;

    fn write_mode() -> bool {
        std::env::var_os("OMNIROUTE_WRITE_SCHEMAS").is_some()
    }

    fn pretty(v: &Value) -> String {
        let mut s = serde_json::to_string_pretty(v).unwrap();
        s.push('\n');
        s
    }

    /// Each skill file's `inputSchema` is the schema of the type its data
    /// part decodes into. Refresh: `OMNIROUTE_WRITE_SCHEMAS=1 cargo test --lib schema`.
    #[test]
    fn skill_input_schemas_match_the_code() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("skills");
        let want = [
            ("quota-management", schema_for!(skills::quota::QuotaRequest)),
            (
                "combo-management",
                schema_for!(skills::combos::ComboRequest),
            ),
            ("health", schema_for!(skills::health::HealthInput)),
            ("smart-routing", schema_for!(skills::routing::RoutingInput)),
            ("cost-analysis", schema_for!(crate::ops::cost::CostQuery)),
        ];
        let mut stale = Vec::new();
        for (id, schema) in want {
            let path = dir.join(format!("{id}.json"));
            let mut file: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let schema = serde_json::to_value(&schema).unwrap();
            if file["inputSchema"] != schema {
                if write_mode() {
                    file["inputSchema"] = schema;
                    std::fs::write(&path, pretty(&file)).unwrap();
                } else {
                    stale.push(id);
                }
            }
        }
        assert!(
            stale.is_empty(),
            "skill input schemas out of date: {stale:?}; run OMNIROUTE_WRITE_SCHEMAS=1 cargo test --lib schema"
        );
    }

    /// The card (for the default address) matches `schemas/agent-card.json`.
    #[test]
    fn agent_card_matches_the_checked_in_schema_copy() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/agent-card.json");
        let card = pretty(&agent_card("http://127.0.0.1:20128"));
        if write_mode() {
            std::fs::write(&path, &card).unwrap();
        } else {
            assert!(
                std::fs::read_to_string(&path).ok().as_deref() == Some(card.as_str()),
                "schemas/agent-card.json is out of date; run OMNIROUTE_WRITE_SCHEMAS=1 cargo test --lib schema"
            );
        }
    }

    #[test]
    fn card_has_both_versions_and_every_skill() {
        let c = agent_card("http://h:1/");
        let versions: Vec<_> = c["supportedInterfaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["protocolVersion"].as_str().unwrap())
            .collect();
        assert_eq!(versions, ["1.0", "0.3"]);
        assert_eq!(c["url"], "http://h:1/a2a");
        assert_eq!(c["skills"].as_array().unwrap().len(), 5);
        let mut h = axum::http::HeaderMap::new();
        h.insert("host", "127.0.0.1:9".parse().unwrap());
        assert_eq!(base_url(&h, "x", |_| true), "http://127.0.0.1:9");
        assert_eq!(base_url(&h, "x", |_| false), "x");
        assert_eq!(base_url(&Default::default(), "x", |_| true), "x");
    }
}
