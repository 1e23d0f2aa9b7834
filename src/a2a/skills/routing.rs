//! `smart-routing`: send the message's text through the router to a model or
//! combo named in the request (or `auto`), answer with an artifact holding
//! the text, the route taken and its cost; streamed chunk by chunk when the
//! client streams.

use super::{decode, Outcome, Request};
use crate::a2a::jsonrpc::RpcError;
use crate::a2a::runner::Sink;
use crate::gateway::Gateway;
use crate::ops::route::{route_chat, route_chat_stream, ChatMessage, RouteDelta, RouteRequest};
use crate::ops::tasks::{new_id, Artifact, Part, Role};
use futures::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingInput {
    /// A `prefix/model`, a model name, a combo, or "auto" (default): the
    /// built-in combo over every usable model, tier by tier.
    #[serde(default)]
    pub model: Option<String>,
    /// The prompt; defaults to the message's text.
    #[serde(default)]
    pub prompt: Option<String>,
    /// A whole conversation instead of one prompt.
    #[serde(default)]
    pub messages: Option<Vec<ChatMessage>>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f64>,
}

pub fn parse(req: &Request) -> Result<RoutingInput, RpcError> {
    let mut input = match req.data.clone() {
        Some(d) => decode::<RoutingInput>("smart-routing", d)?,
        None => RoutingInput::default(),
    };
    if input.model.is_none() {
        input.model = req
            .metadata
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    if input.messages.is_none() {
        let prompt = input.prompt.clone().unwrap_or_else(|| req.text.clone());
        if prompt.trim().is_empty() {
            return Err(RpcError::InvalidParams(
                "smart-routing needs a prompt: a text part, or data {prompt} or {messages}".into(),
            ));
        }
        let mut msgs: Vec<ChatMessage> = req
            .prior
            .iter()
            .map(|(role, text)| ChatMessage {
                role: match role {
                    Role::User => "user".into(),
                    Role::Agent => "assistant".into(),
                },
                content: text.clone(),
            })
            .collect();
        msgs.push(ChatMessage {
            role: "user".into(),
            content: prompt,
        });
        input.messages = Some(msgs);
    }
    Ok(input)
}

/// No model named means `auto`: the router's built-in combo over every usable model.
async fn resolve_model(_gw: &Gateway, asked: Option<String>) -> Option<String> {
    Some(asked.unwrap_or_else(|| crate::routing::combo::AUTO.into()))
}

fn route_part(route: &crate::proxy::RouteInfo, cost: Option<f64>, extra: Value) -> Part {
    let mut d = json!({ "route": route, "cost_usd": cost });
    if let (Value::Object(d), Value::Object(e)) = (&mut d, extra) {
        d.extend(e);
    }
    Part::data(d)
}

pub async fn run(
    gw: &Gateway,
    key_id: Option<String>,
    input: RoutingInput,
    sink: &Sink,
) -> Outcome {
    let Some(model) = resolve_model(gw, input.model.clone()).await else {
        return Outcome::failed(
            "no usable model: add an account for a provider first",
            vec![],
        );
    };
    let req = RouteRequest {
        model: model.clone(),
        messages: input.messages.unwrap_or_default(),
        max_tokens: input.max_tokens,
        temperature: input.temperature,
    };
    if !sink.streaming() {
        return match route_chat(gw, req, key_id).await {
            Ok(a) => {
                let note = format!(
                    "Answered by {}/{} in {} attempt(s){}.",
                    a.route.provider,
                    a.route.model,
                    a.route.attempts,
                    a.cost_usd
                        .map(|c| format!(", cost ${c:.6}"))
                        .unwrap_or_default()
                );
                let artifact = Artifact {
                    artifact_id: new_id(),
                    name: Some("answer".into()),
                    description: Some(note.clone()),
                    parts: vec![
                        Part::text(a.answer),
                        route_part(
                            &a.route,
                            a.cost_usd,
                            json!({ "usage": a.usage, "finish_reason": a.finish_reason }),
                        ),
                    ],
                    metadata: None,
                };
                Outcome::completed(note, vec![artifact])
            }
            Err(e) => Outcome::failed(format!("routing {model} failed: {e}"), vec![]),
        };
    }
    let (route, mut deltas) = match route_chat_stream(gw, req, key_id).await {
        Ok(v) => v,
        Err(e) => return Outcome::failed(format!("routing {model} failed: {e}"), vec![]),
    };
    let artifact_id = new_id();
    let chunk = |parts: Vec<Part>| Artifact {
        artifact_id: artifact_id.clone(),
        name: Some("answer".into()),
        description: None,
        parts,
        metadata: None,
    };
    let mut first = true;
    let mut error = None;
    while let Some(d) = deltas.next().await {
        match d {
            RouteDelta::Text(t) => {
                sink.artifact(chunk(vec![Part::text(t)]), !first, false)
                    .await;
                first = false;
            }
            RouteDelta::Error(e) => {
                error = Some(e);
                break;
            }
        }
    }
    sink.artifact(
        chunk(vec![route_part(&route, route.cost_usd, json!({}))]),
        !first,
        true,
    )
    .await;
    match error {
        Some(e) => Outcome::failed(format!("the stream from {model} failed: {e}"), vec![]),
        None => Outcome::completed(
            format!(
                "Answered by {}/{} in {} attempt(s), streamed.",
                route.provider, route.model, route.attempts
            ),
            vec![],
        ),
    }
}
