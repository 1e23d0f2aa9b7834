//! Send a chat request through the router on behalf of an agent surface
//! (MCP tool, A2A skill): the answer with the route taken and its cost.

use super::OpsError;
use crate::gateway::Gateway;
use crate::proxy::{self, ChatCall, ChatOutcome, RouteInfo, Usage};
use futures::stream::{BoxStream, StreamExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Instant;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ChatMessage {
    /// system, user or assistant
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteRequest {
    /// A `prefix/model`, a bare model name, or (with the routing core) a combo.
    pub model: String,
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RouteAnswer {
    pub answer: String,
    pub finish_reason: Option<String>,
    pub route: RouteInfo,
    pub usage: Option<Usage>,
    pub cost_usd: Option<f64>,
}

/// The error text of a failed routed call, for surfaces to show.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RouteFailure {
    pub status: u16,
    pub message: String,
}

fn body(req: &RouteRequest, stream: bool) -> Result<serde_json::Map<String, Value>, OpsError> {
    if req.messages.is_empty() {
        return Err(OpsError::InvalidInput("messages must not be empty".into()));
    }
    let mut b = json!({"model": req.model, "messages": req.messages, "stream": stream});
    if let Some(m) = req.max_tokens {
        b["max_tokens"] = json!(m);
    }
    if let Some(t) = req.temperature {
        b["temperature"] = json!(t);
    }
    match b {
        Value::Object(m) => Ok(m),
        _ => Err(OpsError::InvalidInput("request is not an object".into())),
    }
}

fn call(
    body: serde_json::Map<String, Value>,
    key_id: Option<String>,
    endpoint: &'static str,
) -> ChatCall {
    ChatCall {
        request_id: format!("ops_{}", crate::store::now_ms()),
        key_id,
        endpoint,
        body,
        started: Instant::now(),
        session: None,
        native: None,
        hints: Default::default(),
    }
}

/// Route a chat request and wait for the whole answer.
pub async fn route_chat(
    gw: &Gateway,
    req: RouteRequest,
    key_id: Option<String>,
) -> Result<RouteAnswer, OpsError> {
    let body = body(&req, false)?;
    match proxy::chat(gw, call(body, key_id, "ops.route")).await {
        Ok(ChatOutcome::Complete {
            body, route, usage, ..
        }) => {
            let v: Value = serde_json::from_slice(&body)
                .map_err(|e| OpsError::InvalidInput(format!("upstream answer is not JSON: {e}")))?;
            Ok(RouteAnswer {
                answer: v
                    .pointer("/choices/0/message/content")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                finish_reason: v
                    .pointer("/choices/0/finish_reason")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                cost_usd: route.cost_usd,
                route,
                usage,
            })
        }
        Ok(ChatOutcome::Stream { .. }) => Err(OpsError::InvalidInput("unexpected stream".into())),
        Err(e) => Err(OpsError::InvalidInput(e.to_string())),
    }
}

/// One piece of a streamed routed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteDelta {
    Text(String),
    Error(String),
}

/// Route a chat request and get its text as it arrives.
pub async fn route_chat_stream(
    gw: &Gateway,
    req: RouteRequest,
    key_id: Option<String>,
) -> Result<(RouteInfo, BoxStream<'static, RouteDelta>), OpsError> {
    let body = body(&req, true)?;
    match proxy::chat(gw, call(body, key_id, "ops.route")).await {
        Ok(ChatOutcome::Stream { events, route, .. }) => {
            let deltas = events
                .flat_map(|ev| {
                    let ev = ev.unwrap_or_default();
                    let mut out = Vec::new();
                    for line in ev.split(|b| *b == b'\n') {
                        let Some(data) = line.strip_prefix(b"data: ") else {
                            continue;
                        };
                        let Ok(v) = serde_json::from_slice::<Value>(data) else {
                            continue;
                        };
                        if let Some(msg) = v.pointer("/error/message").and_then(Value::as_str) {
                            out.push(RouteDelta::Error(msg.to_string()));
                        } else if let Some(t) = v
                            .pointer("/choices/0/delta/content")
                            .and_then(Value::as_str)
                        {
                            if !t.is_empty() {
                                out.push(RouteDelta::Text(t.to_string()));
                            }
                        }
                    }
                    futures::stream::iter(out)
                })
                .boxed();
            Ok((route, deltas))
        }
        Ok(ChatOutcome::Complete { .. }) => Err(OpsError::InvalidInput("expected a stream".into())),
        Err(e) => Err(OpsError::InvalidInput(e.to_string())),
    }
}
