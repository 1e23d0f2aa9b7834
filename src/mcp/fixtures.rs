//! The fixtures the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`, server scenarios) drives: its
//! `test_*` tools, prompts and `test://` resources, with the names, arguments
//! and answers each scenario's description asks for. Served only with
//! `--conformance-fixtures`, never in the product's normal lists.
//!
//! Protocol behaviour the suite checks (logging/setLevel, completion,
//! subscriptions, progress, pagination) lives in the product server itself
//! (`super`); these fixtures only give the scenarios something to call.
//!
//! Sampling is deprecated in rmcp (SEP-2577 drops it from the 2026-07-28
//! revision) but the suite's revisions (2025-06-18, 2025-11-25) have it.
#![allow(deprecated)]

use super::session::Progress;
use super::OmnirouteMcp;
use rmcp::model::{
    CallToolResult, ClientResult, CreateMessageRequestParams, ElicitRequest, ElicitRequestParams,
    GetPromptResult, JsonObject, LoggingLevel, Prompt, ReadResourceResult, Resource,
    ResourceTemplate, ServerRequest, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::time::Duration;

/// A 1×1 red PNG.
const PNG_1X1: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";
/// Eight silent samples of 16-bit mono WAV at 8 kHz.
const WAV_SILENCE: &str =
    "UklGRjQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YRAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// The fixture tools, by name.
pub const TOOL_NAMES: &[&str] = &[
    "test_simple_text",
    "test_image_content",
    "test_audio_content",
    "test_embedded_resource",
    "test_multiple_content_types",
    "test_tool_with_logging",
    "test_tool_with_progress",
    "test_error_handling",
    "test_sampling",
    "test_elicitation",
    "test_elicitation_sep1034_defaults",
    "test_elicitation_sep1330_enums",
    "json_schema_2020_12_tool",
];

pub fn is_tool(name: &str) -> bool {
    TOOL_NAMES.contains(&name)
}

fn from_json<T: DeserializeOwned>(v: Value) -> Result<T, ErrorData> {
    serde_json::from_value(v).map_err(|e| ErrorData::internal_error(format!("fixture: {e}"), None))
}

fn no_args() -> Value {
    json!({"type": "object", "properties": {}})
}

fn one_string(name: &str, description: &str) -> Value {
    json!({
        "type": "object",
        "properties": {name: {"type": "string", "description": description}},
        "required": [name],
    })
}

fn tool_defs() -> Vec<Value> {
    let plain = |name: &str, description: &str| json!({"name": name, "description": description, "inputSchema": no_args()});
    vec![
        plain(
            "test_simple_text",
            "Conformance fixture: returns one text block.",
        ),
        plain(
            "test_image_content",
            "Conformance fixture: returns a 1x1 PNG image.",
        ),
        plain(
            "test_audio_content",
            "Conformance fixture: returns a short WAV clip.",
        ),
        plain(
            "test_embedded_resource",
            "Conformance fixture: returns an embedded text resource.",
        ),
        plain(
            "test_multiple_content_types",
            "Conformance fixture: returns text, an image and an embedded resource.",
        ),
        plain(
            "test_tool_with_logging",
            "Conformance fixture: sends three info log messages while it runs.",
        ),
        plain(
            "test_tool_with_progress",
            "Conformance fixture: reports progress 0, 50 and 100 of 100.",
        ),
        plain(
            "test_error_handling",
            "Conformance fixture: always fails with isError.",
        ),
        json!({
            "name": "test_sampling",
            "description": "Conformance fixture: asks the client to sample an LLM answer to `prompt`.",
            "inputSchema": one_string("prompt", "The prompt to send to the LLM"),
        }),
        json!({
            "name": "test_elicitation",
            "description": "Conformance fixture: asks the user for a username and an email.",
            "inputSchema": one_string("message", "The message to show the user"),
        }),
        plain(
            "test_elicitation_sep1034_defaults",
            "Conformance fixture: elicitation with a default for every primitive type (SEP-1034).",
        ),
        plain(
            "test_elicitation_sep1330_enums",
            "Conformance fixture: elicitation with the five enum schema forms (SEP-1330).",
        ),
        json!({
            "name": "json_schema_2020_12_tool",
            "description": "Conformance fixture: a tool whose input schema uses JSON Schema 2020-12 keywords.",
            "inputSchema": {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {
                    "address": {
                        "type": "object",
                        "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
                    }
                },
                "properties": {
                    "name": {"type": "string"},
                    "address": {"$ref": "#/$defs/address"},
                },
                "additionalProperties": false,
            },
        }),
    ]
}

pub fn tools() -> Vec<Tool> {
    tool_defs()
        .into_iter()
        .filter_map(|t| serde_json::from_value(t).ok())
        .collect()
}

fn text(t: &str) -> Value {
    json!({"type": "text", "text": t})
}

fn result(content: Vec<Value>) -> Result<CallToolResult, ErrorData> {
    from_json(json!({ "content": content }))
}

/// The SEP-1034 schema: a default for each primitive type.
fn sep1034_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "User name", "default": "John Doe"},
            "age": {"type": "integer", "description": "User age", "default": 30},
            "score": {"type": "number", "description": "User score", "default": 95.5},
            "status": {"type": "string", "description": "User status",
                       "enum": ["active", "inactive", "pending"], "default": "active"},
            "verified": {"type": "boolean", "description": "Verified", "default": true},
        },
    })
}

/// The SEP-1330 schema: untitled and titled single select, the legacy
/// `enumNames` form, untitled and titled multi select.
fn sep1330_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
            "titledSingle": {"type": "string", "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ]},
            "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"],
                           "enumNames": ["Option One", "Option Two", "Option Three"]},
            "untitledMulti": {"type": "array",
                              "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
            "titledMulti": {"type": "array", "items": {"anyOf": [
                {"const": "value1", "title": "First Choice"},
                {"const": "value2", "title": "Second Choice"},
                {"const": "value3", "title": "Third Choice"},
            ]}},
        },
    })
}

fn string_arg(args: &Option<JsonObject>, name: &str) -> Result<String, ErrorData> {
    args.as_ref()
        .and_then(|a| a.get(name))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ErrorData::invalid_params(format!("`{name}` (a string) is required"), None))
}

/// Ask the client to fill `schema`; the result as JSON (`action`, `content`).
async fn elicit(
    ctx: &RequestContext<RoleServer>,
    message: String,
    schema: Value,
) -> Result<Value, String> {
    let supported = ctx
        .peer
        .peer_info()
        .is_some_and(|i| i.capabilities.elicitation.is_some());
    if !supported {
        return Err("the client did not declare the elicitation capability".into());
    }
    let params: ElicitRequestParams = serde_json::from_value(json!({
        "mode": "form", "message": message, "requestedSchema": schema,
    }))
    .map_err(|e| format!("fixture schema: {e}"))?;
    let answer = ctx
        .peer
        .send_request(ServerRequest::ElicitRequest(ElicitRequest::new(params)))
        .await
        .map_err(|e| format!("elicitation failed: {e}"))?;
    match answer {
        ClientResult::ElicitResult(r) => serde_json::to_value(r).map_err(|e| e.to_string()),
        other => Err(format!(
            "unexpected answer to elicitation/create: {other:?}"
        )),
    }
}

fn elicited_text(prefix: &str, r: &Value) -> String {
    format!(
        "{prefix}: action={}, content={}",
        r["action"].as_str().unwrap_or("?"),
        r.get("content").cloned().unwrap_or(Value::Null)
    )
}

/// Run fixture tool `name`.
pub async fn call(
    server: &OmnirouteMcp,
    name: &str,
    args: Option<JsonObject>,
    ctx: RequestContext<RoleServer>,
) -> Result<CallToolResult, ErrorData> {
    let failed =
        |m: String| from_json::<CallToolResult>(json!({"content": [text(&m)], "isError": true}));
    match name {
        "test_simple_text" => result(vec![text("This is a simple text response for testing.")]),
        "test_image_content" => result(vec![
            json!({"type": "image", "data": PNG_1X1, "mimeType": "image/png"}),
        ]),
        "test_audio_content" => result(vec![
            json!({"type": "audio", "data": WAV_SILENCE, "mimeType": "audio/wav"}),
        ]),
        "test_embedded_resource" => result(vec![json!({"type": "resource", "resource": {
            "uri": "test://embedded-resource", "mimeType": "text/plain",
            "text": "This is an embedded resource content.",
        }})]),
        "test_multiple_content_types" => result(vec![
            text("Multiple content types test:"),
            json!({"type": "image", "data": PNG_1X1, "mimeType": "image/png"}),
            json!({"type": "resource", "resource": {
                "uri": "test://mixed-content-resource", "mimeType": "application/json",
                "text": r#"{"test":"data","value":123}"#,
            }}),
        ]),
        "test_tool_with_logging" => {
            let steps = [
                "Tool execution started",
                "Tool processing data",
                "Tool execution completed",
            ];
            for (i, step) in steps.iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                server
                    .session
                    .log(&ctx.peer, LoggingLevel::Info, "conformance", json!(step))
                    .await;
            }
            result(vec![text("Tool with logging executed successfully")])
        }
        "test_tool_with_progress" => {
            let mut progress = Progress::of(&ctx);
            for (i, p) in [0.0, 50.0, 100.0].into_iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                progress.report(p, Some(100.0), format!("{p}/100")).await;
            }
            result(vec![text("Tool with progress executed successfully")])
        }
        "test_error_handling" => {
            failed("This tool intentionally returns an error for testing".into())
        }
        "test_sampling" => {
            let prompt = string_arg(&args, "prompt")?;
            let supported = ctx
                .peer
                .peer_info()
                .is_some_and(|i| i.capabilities.sampling.is_some());
            if !supported {
                return failed("the client did not declare the sampling capability".into());
            }
            let params: CreateMessageRequestParams = from_json(json!({
                "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                "maxTokens": 100,
            }))?;
            match ctx.peer.create_message(params).await {
                Ok(r) => {
                    let v = serde_json::to_value(&r).unwrap_or_default();
                    let said = v
                        .pointer("/content/text")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    result(vec![text(&format!("LLM response: {said}"))])
                }
                Err(e) => failed(format!("sampling failed: {e}")),
            }
        }
        "test_elicitation" => {
            let message = string_arg(&args, "message")?;
            let schema = json!({
                "type": "object",
                "properties": {
                    "username": {"type": "string", "description": "User's response"},
                    "email": {"type": "string", "description": "User's email address"},
                },
                "required": ["username", "email"],
            });
            match elicit(&ctx, message, schema).await {
                Ok(r) => result(vec![text(&elicited_text("User response", &r))]),
                Err(e) => failed(e),
            }
        }
        "test_elicitation_sep1034_defaults" | "test_elicitation_sep1330_enums" => {
            let schema = if name.ends_with("defaults") {
                sep1034_schema()
            } else {
                sep1330_schema()
            };
            match elicit(
                &ctx,
                "Conformance test: please review the fields".into(),
                schema,
            )
            .await
            {
                Ok(r) => result(vec![text(&elicited_text("Elicitation completed", &r))]),
                Err(e) => failed(e),
            }
        }
        "json_schema_2020_12_tool" => {
            let args = Value::Object(args.unwrap_or_default());
            result(vec![text(&format!("Received: {args}"))])
        }
        _ => Err(ErrorData::invalid_params(
            format!("unknown fixture tool {name:?}"),
            None,
        )),
    }
}

/// The fixture prompts.
pub fn prompts() -> Vec<Prompt> {
    let defs = [
        json!({"name": "test_simple_prompt", "description": "Conformance fixture: a prompt without arguments."}),
        json!({"name": "test_prompt_with_arguments", "description": "Conformance fixture: a prompt with two arguments.",
        "arguments": [
            {"name": "arg1", "description": "First test argument", "required": true},
            {"name": "arg2", "description": "Second test argument", "required": true},
        ]}),
        json!({"name": "test_prompt_with_embedded_resource", "description": "Conformance fixture: a prompt that embeds a resource.",
               "arguments": [{"name": "resourceUri", "description": "URI of the resource to embed", "required": true}]}),
        json!({"name": "test_prompt_with_image", "description": "Conformance fixture: a prompt with an image."}),
    ];
    defs.into_iter()
        .filter_map(|p| serde_json::from_value(p).ok())
        .collect()
}

pub fn is_prompt(name: &str) -> bool {
    prompts().iter().any(|p| p.name == name)
}

/// Fixture prompt `name` with `args`.
pub fn get_prompt(name: &str, args: Option<JsonObject>) -> Result<GetPromptResult, ErrorData> {
    let user = |content: Value| json!({"role": "user", "content": content});
    let messages = match name {
        "test_simple_prompt" => vec![user(text("This is a simple prompt for testing."))],
        "test_prompt_with_arguments" => {
            let (a1, a2) = (string_arg(&args, "arg1")?, string_arg(&args, "arg2")?);
            vec![user(text(&format!(
                "Prompt with arguments: arg1='{a1}', arg2='{a2}'"
            )))]
        }
        "test_prompt_with_embedded_resource" => {
            let uri = string_arg(&args, "resourceUri")?;
            vec![
                user(json!({"type": "resource", "resource": {
                    "uri": uri, "mimeType": "text/plain", "text": "Embedded resource content for testing.",
                }})),
                user(text("Please process the embedded resource above.")),
            ]
        }
        "test_prompt_with_image" => vec![
            user(json!({"type": "image", "data": PNG_1X1, "mimeType": "image/png"})),
            user(text("Please analyze the image above.")),
        ],
        _ => {
            return Err(ErrorData::invalid_params(
                format!("unknown fixture prompt {name:?}"),
                None,
            ))
        }
    };
    from_json(json!({ "messages": messages }))
}

pub const WATCHED: &str = "test://watched-resource";
const TEMPLATE: &str = "test://template/{id}/data";

pub fn resources() -> Vec<Resource> {
    vec![
        Resource::new("test://static-text", "static-text")
            .with_description("Conformance fixture: a static text resource")
            .with_mime_type("text/plain"),
        Resource::new("test://static-binary", "static-binary")
            .with_description("Conformance fixture: a static PNG")
            .with_mime_type("image/png"),
        Resource::new(WATCHED, "watched-resource")
            .with_description("Conformance fixture: a resource to subscribe to")
            .with_mime_type("text/plain"),
    ]
}

pub fn templates() -> Vec<ResourceTemplate> {
    vec![ResourceTemplate::new(TEMPLATE, "template-data")
        .with_description("Conformance fixture: data for an id")
        .with_mime_type("application/json")]
}

/// The id in `test://template/{id}/data`.
fn template_id(uri: &str) -> Option<&str> {
    uri.strip_prefix("test://template/")?
        .strip_suffix("/data")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

pub fn is_resource(uri: &str) -> bool {
    resources().iter().any(|r| r.uri == uri) || template_id(uri).is_some()
}

/// Read fixture resource `uri`, if it is one.
pub fn read(uri: &str) -> Option<Result<ReadResourceResult, ErrorData>> {
    let contents = match uri {
        "test://static-text" => json!({"uri": uri, "mimeType": "text/plain",
                                      "text": "This is the content of the static text resource."}),
        "test://static-binary" => json!({"uri": uri, "mimeType": "image/png", "blob": PNG_1X1}),
        WATCHED => {
            json!({"uri": uri, "mimeType": "text/plain", "text": "Watched resource content."})
        }
        _ => {
            let id = template_id(uri)?;
            let data =
                json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
            json!({"uri": uri, "mimeType": "application/json", "text": data.to_string()})
        }
    };
    Some(from_json(json!({ "contents": [contents] })))
}

/// Completion values for a fixture prompt or template argument (None if the
/// reference is not a fixture).
pub fn complete(reference: &str, argument: &str) -> Option<Vec<&'static str>> {
    match (reference, argument) {
        ("test_prompt_with_arguments", "arg1") => Some(vec!["paris", "park", "party"]),
        ("test_prompt_with_arguments", "arg2") => Some(vec!["hello", "help", "world"]),
        ("test_prompt_with_arguments", _) => Some(vec![]),
        (TEMPLATE, "id") => Some(vec!["123", "456", "789"]),
        (TEMPLATE, _) => Some(vec![]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_parses_and_is_named() {
        assert_eq!(tools().len(), TOOL_NAMES.len());
        for (t, name) in tools().iter().zip(TOOL_NAMES) {
            assert_eq!(t.name, *name);
        }
        assert_eq!(prompts().len(), 4);
        for p in prompts() {
            let args: JsonObject = serde_json::from_value(
                json!({"arg1": "a", "arg2": "b", "resourceUri": "test://x"}),
            )
            .unwrap();
            assert!(get_prompt(&p.name, Some(args)).is_ok(), "{}", p.name);
        }
        for r in resources() {
            assert!(read(&r.uri).unwrap().is_ok(), "{}", r.uri);
        }
        assert!(read("test://template/123/data").unwrap().is_ok());
        assert!(read("test://template//data").is_none());
        assert!(read("omniroute://health").is_none());
    }

    #[test]
    fn elicitation_schemas_survive_rmcp_types() {
        // The typed request must carry every keyword the scenarios check.
        for schema in [sep1034_schema(), sep1330_schema()] {
            let params: ElicitRequestParams = serde_json::from_value(
                json!({"mode": "form", "message": "m", "requestedSchema": schema.clone()}),
            )
            .unwrap();
            let back = serde_json::to_value(&params).unwrap();
            assert_eq!(back["requestedSchema"]["properties"], schema["properties"]);
        }
    }

    #[test]
    fn the_2020_12_schema_keeps_its_keywords() {
        let t = tools()
            .into_iter()
            .find(|t| t.name == "json_schema_2020_12_tool")
            .unwrap();
        let s = serde_json::to_value(t.input_schema.as_ref()).unwrap();
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert!(s["$defs"]["address"].is_object());
        assert_eq!(s["additionalProperties"], false);
    }
}
