//! The agent card, generated from the skill files, in two shapes: the A2A
//! 1.0 card (`supportedInterfaces`, `securityRequirements`, security schemes
//! wrapped by kind: it validates against the 1.0 JSON schema, which allows no
//! other members) and the 0.3 card (`url`, `protocolVersion`,
//! `preferredTransport`, `security`, `type`-tagged schemes). `serve` picks
//! one per request and answers with `ETag`/`Cache-Control`.

use super::skills;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The URI of the card extension that publishes each skill's input schema.
pub const INPUT_SCHEMAS_EXTENSION: &str = "urn:omniroute:a2a:skill-input-schemas:v1";

/// Which card a client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardVersion {
    V1,
    V03,
}

impl CardVersion {
    /// 0.3 for the old well-known path or an `A2A-Version: 0.x` header; else 1.0.
    pub fn for_request(path: &str, headers: &HeaderMap) -> CardVersion {
        let asked = headers
            .get("a2a-version")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        match asked {
            Some(v) if v.starts_with("0.") => CardVersion::V03,
            Some(_) => CardVersion::V1,
            None if path.ends_with("/agent.json") => CardVersion::V03,
            None => CardVersion::V1,
        }
    }
}

const DESCRIPTION: &str = "AI gateway agent: quota and budget summaries, combo (routing plan) management, gateway health, smart routing of prompts across providers with the route and cost, and cost analysis with savings suggestions. A message that names no skill goes to the skill its text is about, or to smart routing.";
const BEARER_HELP: &str =
    "An omniroute client key (`omniroute keys create`) as `Authorization: Bearer KEY`.";
const API_KEY_HELP: &str = "The same client key in the `x-api-key` header.";

fn skill_list() -> Vec<Value> {
    skills::all()
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "name": s.name,
                "description": s.description,
                "tags": s.tags,
                "examples": s.examples,
                "inputModes": s.input_modes,
                "outputModes": s.output_modes,
            })
        })
        .collect()
}

fn input_schemas_extension() -> Value {
    let schemas: Map<String, Value> = skills::all()
        .into_iter()
        .map(|s| (s.id, s.input_schema))
        .collect();
    json!({
        "uri": INPUT_SCHEMAS_EXTENSION,
        "description": "JSON Schema of each skill's structured input, sent as a data part (optionally naming the skill in its `skill` member).",
        "required": false,
        "params": schemas,
    })
}

fn rpc_url(base_url: &str) -> String {
    format!("{}/a2a", base_url.trim_end_matches('/'))
}

/// The card in the shape `version` defines.
pub fn card(version: CardVersion, base_url: &str) -> Value {
    match version {
        CardVersion::V1 => agent_card(base_url),
        CardVersion::V03 => agent_card_v03(base_url),
    }
}

/// The A2A 1.0 card for an agent reached at `base_url` (scheme and authority).
pub fn agent_card(base_url: &str) -> Value {
    let url = rpc_url(base_url);
    json!({
        "name": "omniroute",
        "description": DESCRIPTION,
        "version": env!("CARGO_PKG_VERSION"),
        "supportedInterfaces": [
            { "url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0" },
            { "url": url, "protocolBinding": "JSONRPC", "protocolVersion": "0.3" },
        ],
        "capabilities": {
            "streaming": true,
            "pushNotifications": false,
            "extendedAgentCard": true,
            "extensions": [input_schemas_extension()],
        },
        "securitySchemes": {
            "bearer": { "httpAuthSecurityScheme": { "scheme": "bearer", "description": BEARER_HELP } },
            "apiKey": { "apiKeySecurityScheme": {
                "location": "header", "name": "x-api-key", "description": API_KEY_HELP,
            } },
        },
        "securityRequirements": [
            { "schemes": { "bearer": { "list": [] } } },
            { "schemes": { "apiKey": { "list": [] } } },
        ],
        "defaultInputModes": ["text/plain", "application/json"],
        "defaultOutputModes": ["text/plain", "application/json"],
        "skills": skill_list(),
    })
}

/// The A2A 0.3 card (for 0.3 clients: the old path or `A2A-Version: 0.3`).
pub fn agent_card_v03(base_url: &str) -> Value {
    let url = rpc_url(base_url);
    json!({
        "name": "omniroute",
        "description": DESCRIPTION,
        "version": env!("CARGO_PKG_VERSION"),
        "protocolVersion": "0.3.0",
        "url": url,
        "preferredTransport": "JSONRPC",
        "additionalInterfaces": [ { "url": url, "transport": "JSONRPC" } ],
        "capabilities": {
            "streaming": true,
            "pushNotifications": false,
            "extensions": [input_schemas_extension()],
        },
        "supportsAuthenticatedExtendedCard": true,
        "securitySchemes": {
            "bearer": { "type": "http", "scheme": "bearer", "description": BEARER_HELP },
            "apiKey": { "type": "apiKey", "in": "header", "name": "x-api-key", "description": API_KEY_HELP },
        },
        "security": [ { "bearer": [] }, { "apiKey": [] } ],
        "defaultInputModes": ["text/plain", "application/json"],
        "defaultOutputModes": ["text/plain", "application/json"],
        "skills": skill_list(),
    })
}

/// How long clients and caches may keep the card: it changes only with a
/// new build (skills are compiled in) or the address it is reached by.
pub const CACHE_CONTROL: &str = "public, max-age=3600";

/// The card as an HTTP answer: `ETag` (a digest of the exact bytes),
/// `Cache-Control`, `Last-Modified` (when this process started), `Vary`;
/// `If-None-Match` with the current tag gets 304.
pub fn serve(card: &Value, headers: &HeaderMap, started: std::time::SystemTime) -> Response {
    let body = serde_json::to_string(card).unwrap_or_default();
    let etag = format!(
        "\"{}\"",
        &hex::encode(Sha256::digest(body.as_bytes()))[..32]
    );
    let modified = httpdate::fmt_http_date(started);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        });
    let h = |v: &str| HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static(""));
    let meta = [
        (header::ETAG, h(&etag)),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        ),
        (header::LAST_MODIFIED, h(&modified)),
        (header::VARY, HeaderValue::from_static("A2A-Version, Host")),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, meta).into_response();
    }
    (
        StatusCode::OK,
        meta,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
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
            let schema = serde_json::to_value(crate::schema::clean(schema)).unwrap();
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

    /// The cards (for the default address) match `schemas/agent-card.json`
    /// (1.0) and `schemas/agent-card-0.3.json`.
    #[test]
    fn agent_card_matches_the_checked_in_schema_copy() {
        for (file, version) in [
            ("schemas/agent-card.json", CardVersion::V1),
            ("schemas/agent-card-0.3.json", CardVersion::V03),
        ] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            let card = pretty(&card(version, "http://127.0.0.1:20128"));
            if write_mode() {
                std::fs::write(&path, &card).unwrap();
            } else {
                assert!(
                    std::fs::read_to_string(&path).ok().as_deref() == Some(card.as_str()),
                    "{file} is out of date; run OMNIROUTE_WRITE_SCHEMAS=1 cargo test --lib schema"
                );
            }
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
        assert!(c.get("url").is_none() && c.get("security").is_none());
        let old = agent_card_v03("http://h:1/");
        assert_eq!(old["url"], "http://h:1/a2a");
        assert_eq!(old["securitySchemes"]["bearer"]["type"], "http");
        assert!(old.get("supportedInterfaces").is_none());
        let mut v = axum::http::HeaderMap::new();
        assert_eq!(
            CardVersion::for_request("/.well-known/agent-card.json", &v),
            CardVersion::V1
        );
        assert_eq!(
            CardVersion::for_request("/.well-known/agent.json", &v),
            CardVersion::V03
        );
        v.insert("a2a-version", "0.3".parse().unwrap());
        assert_eq!(
            CardVersion::for_request("/.well-known/agent-card.json", &v),
            CardVersion::V03
        );
        assert_eq!(c["skills"].as_array().unwrap().len(), 5);
        let mut h = axum::http::HeaderMap::new();
        h.insert("host", "127.0.0.1:9".parse().unwrap());
        assert_eq!(base_url(&h, "x", |_| true), "http://127.0.0.1:9");
        assert_eq!(base_url(&h, "x", |_| false), "x");
        assert_eq!(base_url(&Default::default(), "x", |_| true), "x");
    }
}
