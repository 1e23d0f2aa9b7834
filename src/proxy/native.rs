//! Requests in a format other than OpenAI Chat (Anthropic Messages, OpenAI
//! Responses, Gemini), and OpenAI Chat requests to upstreams that speak
//! something else: what each target is sent and how its answer comes back.
//!
//! - Same format on both sides: the client's own bytes are forwarded, only
//!   `model` rewritten in place (cache markers, thinking signatures, betas
//!   and unknown fields reach the upstream exactly); the answer is forwarded
//!   as is and only observed for usage.
//! - Different formats: the canonical request is encoded for the target
//!   (what could not be carried over becomes a note for the route header),
//!   and the answer is decoded from the target's format and encoded in the
//!   client's, a stream event by event. No pivot through OpenAI Chat.

use super::usage::Usage;
use crate::catalog::WireFormat;
use crate::formats::canonical::ChatRequest;
use crate::formats::{self, ClientContext};
use crate::gateway::Gateway;
use crate::registry::Target;
use crate::store::Store;
use bytes::Bytes;
use serde_json::{Map, Value};

/// A request as a client in another format sent it, decoded once.
#[derive(Debug)]
pub struct Native {
    /// The client's format (never OpenAI Chat: that is the plain path).
    pub format: WireFormat,
    /// The client's body (for Responses, with earlier turns put in front).
    pub raw: Bytes,
    /// The decoded request: model mapped, Claude Code's billing line removed.
    pub request: ChatRequest,
    /// What encoders need to know about the client.
    pub ctx: ClientContext,
    /// Client headers forwarded to an upstream of the same format
    /// (`anthropic-version`, `anthropic-beta`).
    pub forward_headers: Vec<(&'static str, String)>,
    /// Notes from decoding (billing line removed…), shown when translated.
    pub notes: Vec<String>,
    /// Responses: the id the client sees and the conversation to store.
    pub conversation: Option<Conversation>,
    /// The client's own subscription credential (Claude Code's OAuth bearer,
    /// Codex's ChatGPT token), for providers in `client-credential` mode.
    pub client_credential: Option<crate::subscription::ClientCredential>,
}

impl Native {
    /// What the router reads (model, stream, max tokens); the conversation
    /// itself is not re-encoded for it.
    pub fn routing_body(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("model".into(), Value::String(self.request.model.clone()));
        m.insert("stream".into(), Value::Bool(self.request.stream));
        if let Some(n) = self.request.max_output_tokens {
            m.insert("max_tokens".into(), Value::from(n));
        }
        m
    }

    /// Prompt size: about four bytes of request text per token.
    pub fn estimate_tokens(&self) -> u64 {
        (self.raw.len() / 4) as u64
    }

    /// A hash of the conversation's first two messages, for sticky sessions.
    pub fn session(&self) -> Option<String> {
        use sha2::Digest;
        let first = self.request.messages.iter().take(2);
        let mut h = sha2::Sha256::new();
        let mut any = false;
        for m in first {
            h.update(serde_json::to_vec(m).ok()?);
            any = true;
        }
        any.then(|| format!("h:{}", hex::encode(&h.finalize()[..12])))
    }

    /// The request as an OpenAI Chat body for `model` (context relay and
    /// fusion judges work on that form).
    pub fn openai_body(&self, model: &str) -> Result<Map<String, Value>, String> {
        let t = formats::encode_request(WireFormat::Openai, &self.request)
            .map_err(|e| e.to_string())?;
        match t.body {
            Value::Object(mut m) => {
                m.insert("model".into(), Value::String(model.to_string()));
                Ok(m)
            }
            _ => Err("the request did not encode to an object".into()),
        }
    }
}

/// A Responses turn to store with its answer (kept in `store::responses`).
pub use crate::store::responses::Conversation;

/// Why the earlier turns of a Responses request could not be put in front.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Store(String),
}

/// A Responses body with the earlier turns of `previous_response_id` put in
/// front of its input, so any provider sees the whole conversation whoever
/// served the earlier turns; and the conversation to store under `id`.
pub async fn with_history(
    gw: &Gateway,
    owner: &str,
    id: String,
    bytes: Bytes,
) -> Result<(Bytes, Option<Conversation>), HistoryError> {
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&bytes) else {
        // Not an object: the decoder says what is wrong.
        return Ok((bytes, None));
    };
    let mut items = match body.remove("input") {
        Some(Value::String(text)) => {
            vec![serde_json::json!({"type": "message", "role": "user", "content": text})]
        }
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let own = items.clone();
    let mut previous = None;
    if let Some(prev) = body.remove("previous_response_id") {
        use crate::store::responses::{self, ChainError, Link};
        let Some(prev) = prev.as_str().map(str::to_string) else {
            return Err(HistoryError::BadRequest(
                "previous_response_id must be a string".into(),
            ));
        };
        let limit = gw.settings.max_body_bytes;
        let lookup = || {
            let (p, o) = (prev.clone(), owner.to_string());
            let store = gw.store.clone();
            async move {
                store
                    .read(move |c| responses::history(c, &p, &o, limit))
                    .await
            }
        };
        let store_err = |e: crate::store::StoreError| HistoryError::Store(e.to_string());
        let mut found = lookup().await.map_err(store_err)?;
        if matches!(
            found,
            Err(ChainError::NotFound(_) | ChainError::Broken { .. })
        ) {
            // The previous answer may still be queued for the writer: let it land, look again.
            let _ = gw.store.flush().await;
            found = lookup().await.map_err(store_err)?;
        }
        let history = found.map_err(|e| match e {
            ChainError::NotFound(_) | ChainError::Broken { .. } => {
                HistoryError::NotFound(e.to_string())
            }
            ChainError::TooLong { .. } | ChainError::TooLarge { .. } => {
                HistoryError::BadRequest(e.to_string())
            }
            ChainError::Unreadable { .. } => HistoryError::Store(e.to_string()),
        })?;
        let mut earlier = history.items;
        earlier.append(&mut items);
        items = earlier;
        previous = Some(Link {
            id: prev,
            root_id: history.root_id,
        });
    }
    let store = body.get("store").and_then(Value::as_bool).unwrap_or(true);
    body.insert("input".into(), Value::Array(items));
    let bytes = serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| HistoryError::BadRequest(e.to_string()))?;
    Ok((
        bytes,
        Some(Conversation {
            id,
            owner: owner.to_string(),
            items: own,
            previous,
            store,
        }),
    ))
}

/// How an answer gets back to the client.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Same format on both sides: forwarded.
    Pass,
    /// Decoded from the upstream's format, encoded in `client`'s.
    Translate {
        client: WireFormat,
        ctx: ClientContext,
    },
}

/// What one target is sent.
#[derive(Debug)]
pub struct Outgoing {
    /// The upstream's format.
    pub format: WireFormat,
    pub bytes: Bytes,
    pub headers: Vec<(&'static str, String)>,
    pub mode: Mode,
    /// `client->upstream`, for the route header; none for OpenAI Chat both sides.
    pub translation: Option<String>,
    /// What the translation could not carry over.
    pub notes: Vec<String>,
}

/// Why a request cannot go to a target.
#[derive(Debug)]
pub enum Unsendable {
    /// The request itself is broken: no target will take it.
    Client(String),
    /// This target's format cannot take it; another may.
    Target(String),
}

/// What `target` is sent. `body` is the OpenAI Chat body (the plain path)
/// or the routing view of a native request, with `model` already set;
/// `relayed` replaces the conversation after a context relay.
pub fn outgoing(
    native: Option<&Native>,
    body: &Map<String, Value>,
    relayed: Option<&Map<String, Value>>,
    target: &Target,
    stream: bool,
    strip_usage_only: bool,
) -> Result<Outgoing, Unsendable> {
    let to = target.provider.spec.format;
    let client = native.map_or(WireFormat::Openai, |n| n.format);
    let translation = (client != WireFormat::Openai || to != WireFormat::Openai)
        .then(|| formats::translation_label(client, to));
    let openai_request = |src: &Map<String, Value>| -> Result<ChatRequest, Unsendable> {
        let bytes = serde_json::to_vec(src).map_err(|e| Unsendable::Client(e.to_string()))?;
        formats::decode_request(WireFormat::Openai, &bytes)
            .map_err(|e| Unsendable::Client(e.to_string()))
    };
    match native {
        None if to == WireFormat::Openai => {
            let bytes = serde_json::to_vec(relayed.unwrap_or(body))
                .map_err(|e| Unsendable::Client(format!("request cannot be encoded: {e}")))?;
            Ok(Outgoing {
                format: to,
                bytes: Bytes::from(bytes),
                headers: Vec::new(),
                mode: Mode::Pass,
                translation,
                notes: Vec::new(),
            })
        }
        None => {
            let req = openai_request(relayed.unwrap_or(body))?;
            let mut ctx = ClientContext::for_request(&req, now_s());
            // The gateway always asks for usage; the client sees it only if it asked.
            ctx.include_usage = req.stream_usage && !strip_usage_only;
            encode_for(&req, target, stream, Vec::new(), translation, client, ctx)
        }
        Some(n) if relayed.is_some() => {
            let req = openai_request(relayed.unwrap_or(body))?;
            let mut notes = n.notes.clone();
            notes.push("context relay: the conversation was rebuilt from a summary".into());
            encode_for(
                &req,
                target,
                stream,
                notes,
                translation,
                client,
                n.ctx.clone(),
            )
        }
        Some(n) if to == n.format => {
            let bytes = if to == WireFormat::Gemini {
                // The model is in the path.
                n.raw.clone()
            } else {
                match formats::json::set_top_level_string(&n.raw, "model", &target.model) {
                    Some(b) => Bytes::from(b),
                    None => {
                        let mut v: Map<String, Value> = serde_json::from_slice(&n.raw)
                            .map_err(|e| Unsendable::Client(e.to_string()))?;
                        v.insert("model".into(), Value::String(target.model.clone()));
                        Bytes::from(
                            serde_json::to_vec(&v)
                                .map_err(|e| Unsendable::Client(e.to_string()))?,
                        )
                    }
                }
            };
            Ok(Outgoing {
                format: to,
                bytes,
                headers: n.forward_headers.clone(),
                mode: Mode::Pass,
                translation,
                notes: Vec::new(),
            })
        }
        Some(n) => encode_for(
            &n.request,
            target,
            stream,
            n.notes.clone(),
            translation,
            client,
            n.ctx.clone(),
        ),
    }
}

fn encode_for(
    req: &ChatRequest,
    target: &Target,
    stream: bool,
    mut notes: Vec<String>,
    translation: Option<String>,
    client: WireFormat,
    ctx: ClientContext,
) -> Result<Outgoing, Unsendable> {
    let to = target.provider.spec.format;
    let t = formats::encode_request(to, req).map_err(|e| Unsendable::Target(e.to_string()))?;
    let Value::Object(mut body) = t.body else {
        return Err(Unsendable::Target(
            "the request did not encode to an object".into(),
        ));
    };
    if to != WireFormat::Gemini {
        body.insert("model".into(), Value::String(target.model.clone()));
    }
    if to == WireFormat::Openai && stream {
        // The translated stream needs the usage chunk.
        body.insert(
            "stream_options".into(),
            serde_json::json!({"include_usage": true}),
        );
    }
    for l in t.lossy {
        formats::note(&mut notes, &l);
    }
    let bytes = serde_json::to_vec(&body).map_err(|e| Unsendable::Client(e.to_string()))?;
    Ok(Outgoing {
        format: to,
        bytes: Bytes::from(bytes),
        headers: Vec::new(),
        mode: Mode::Translate { client, ctx },
        translation,
        notes,
    })
}

/// A whole answer in the upstream's format as the client's, with its
/// usage; a Responses answer gets the gateway's id and is stored.
pub fn answer(
    mode: &Mode,
    upstream: WireFormat,
    body: Bytes,
    conversation: Option<(&Conversation, &Store)>,
) -> Result<(Bytes, Option<Usage>), String> {
    match mode {
        Mode::Pass => {
            let usage = formats::decode_response(upstream, &body)
                .ok()
                .map(|r| Usage::from(r.usage));
            let Some((c, store)) = conversation else {
                return Ok((body, usage));
            };
            let mut v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            v["id"] = Value::String(c.id.clone());
            c.save(store, &v);
            let bytes = serde_json::to_vec(&v).map_err(|e| e.to_string())?;
            Ok((Bytes::from(bytes), usage))
        }
        Mode::Translate { client, ctx } => {
            let mut resp = formats::decode_response(upstream, &body).map_err(|e| e.to_string())?;
            if let Some((c, _)) = conversation {
                resp.id = c.id.clone();
            }
            let out = formats::encode_response(*client, &resp, ctx);
            if let Some((c, store)) = conversation {
                c.save(store, &out.body);
            }
            let bytes = serde_json::to_vec(&out.body).map_err(|e| e.to_string())?;
            Ok((Bytes::from(bytes), Some(Usage::from(resp.usage))))
        }
    }
}

/// The text of a whole answer in `fmt` (fusion judges compare answers).
pub fn answer_text(fmt: WireFormat, body: &[u8]) -> String {
    use crate::formats::canonical::Part;
    formats::decode_response(fmt, body)
        .map(|r| {
            r.parts
                .iter()
                .filter_map(|p| match p {
                    Part::Text { text, .. } => Some(text.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("")
        })
        .unwrap_or_default()
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
