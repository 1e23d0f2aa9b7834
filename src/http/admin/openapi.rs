//! The OpenAPI 3.0 description of the admin API, generated from the route
//! table and the schemars types of `ops`; checked in as
//! `schemas/openapi.json` (a test fails when it drifts).

use super::{auth, routes, Route};
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

fn param_names(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// Query parameters from the properties of a query type's schema.
fn query_params(schema: &Value, defs: &Map<String, Value>) -> Vec<Value> {
    let resolved = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .and_then(|name| defs.get(name))
        .unwrap_or(schema);
    let required: Vec<&str> = resolved
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    resolved
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(name, s)| {
                    let mut p = json!({
                        "name": name,
                        "in": "query",
                        "required": required.contains(&name.as_str()),
                        "schema": s,
                    });
                    if let Some(d) = s.get("description") {
                        p["description"] = d.clone();
                    }
                    p
                })
                .collect()
        })
        .unwrap_or_default()
}

fn operation(r: &Route, g: &mut schemars::SchemaGenerator, defs: &mut Map<String, Value>) -> Value {
    let mut params: Vec<Value> = param_names(r.path)
        .into_iter()
        .map(|n| json!({"name": n, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    if let Some(q) = r.query {
        let s = q(g).to_value();
        defs.extend(g.take_definitions(true));
        params.extend(query_params(&s, defs));
    }
    let response = match r.response {
        Some(f) => {
            json!({"description": "OK", "content": {r.content_type: {"schema": f(g).to_value()}}})
        }
        None => json!({"description": "OK", "content": {r.content_type: {}}}),
    };
    let mut op = json!({
        "summary": r.summary,
        "operationId": format!("{} {}", r.method, r.path),
        "responses": {
            "200": response,
            "400": {"$ref": "#/components/responses/Error"},
            "401": {"$ref": "#/components/responses/Error"},
            "403": {"$ref": "#/components/responses/Error"},
        },
    });
    if r.op != "-" {
        op["x-omniroute-op"] = json!(r.op);
    }
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    if let Some(b) = r.body {
        op["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": b(g).to_value()}},
        });
    }
    op
}

/// The whole document.
pub fn document() -> Value {
    let mut g = SchemaSettings::openapi3().into_generator();
    let mut defs = Map::new();
    let mut paths = Map::new();
    for r in routes() {
        let op = operation(&r, &mut g, &mut defs);
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method.as_str().to_ascii_lowercase()] = op;
    }
    let login_body = g.subschema_for::<auth::LoginInput>().to_value();
    let session = g.subschema_for::<auth::SessionInfo>().to_value();
    paths.insert(
        "/api/login".into(),
        json!({"post": {
            "summary": "Log in with the admin key: sets the session cookie (HttpOnly, SameSite=Strict).",
            "operationId": "POST /api/login",
            "security": [],
            "requestBody": {"required": true, "content": {"application/json": {"schema": login_body}}},
            "responses": {
                "200": {"description": "Logged in", "content": {"application/json": {"schema": session}}},
                "401": {"$ref": "#/components/responses/Error"},
                "403": {"$ref": "#/components/responses/Error"},
            },
        }}),
    );
    paths.insert(
        "/api/login/link".into(),
        json!({"get": {
            "summary": "The one-time login link printed at start: sets the session cookie and redirects to the dashboard.",
            "operationId": "GET /api/login/link",
            "security": [],
            "parameters": [{"name": "token", "in": "query", "required": true, "schema": {"type": "string"}}],
            "responses": {
                "303": {"description": "Logged in; redirect to /"},
                "401": {"$ref": "#/components/responses/Error"},
            },
        }}),
    );
    defs.extend(g.take_definitions(true));
    defs.insert(
        "ApiError".into(),
        json!({
            "type": "object",
            "properties": {"error": {"type": "object", "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": "string", "nullable": true},
                "code": {"type": "string", "nullable": true},
            }, "required": ["message", "type"]}},
            "required": ["error"],
        }),
    );
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "omniroute admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The API the dashboard uses. Authenticate with the admin key as `Authorization: Bearer KEY`, or with the session cookie from /api/login; with the cookie, every POST, PUT and DELETE needs the session's `x-csrf-token`.",
        },
        "servers": [{"url": "/"}],
        "security": [{"adminKey": []}, {"session": []}],
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {
                "adminKey": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": auth::COOKIE},
            },
            "responses": {
                "Error": {"description": "An error in OpenAI's shape", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}},
            },
        },
    })
}

#[cfg(test)]
mod tests {
    /// Fails when `schemas/openapi.json` differs from the code. To refresh:
    /// `OMNIROUTE_WRITE_SCHEMAS=1 cargo test --lib openapi`.
    #[test]
    fn checked_in_openapi_matches_the_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/openapi.json");
        let mut want = serde_json::to_string_pretty(&super::document()).unwrap();
        want.push('\n');
        if std::env::var_os("OMNIROUTE_WRITE_SCHEMAS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        assert!(
            std::fs::read_to_string(&path).ok().as_deref() == Some(want.as_str()),
            "schemas/openapi.json is out of date; run OMNIROUTE_WRITE_SCHEMAS=1 cargo test --lib openapi"
        );
    }

    #[test]
    fn every_route_is_documented_with_its_parameters() {
        let doc = super::document();
        for r in super::routes() {
            let op = &doc["paths"][r.path][r.method.as_str().to_ascii_lowercase()];
            assert!(op.is_object(), "{} {}", r.method, r.path);
        }
        let q = &doc["paths"]["/api/requests"]["get"]["parameters"];
        let names: Vec<&str> = q
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["key", "model", "status", "limit", "before", "since"]
        );
    }
}
