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
use super::view::RequestView;
use crate::catalog::WireFormat;
use crate::formats::canonical::ChatRequest;
use crate::formats::{self, ClientContext};
use crate::gateway::Gateway;
use crate::registry::Target;
use crate::store::Store;
use bytes::Bytes;
use serde_json::{Map, Value};

/// A request as a client in another format sent it. Routing reads its
/// view; it is decoded into the canonical model only when a target needs a
/// translation (then once, on first use).
#[derive(Debug)]
pub struct Native {
    /// The client's format (never OpenAI Chat: that is the plain path).
    pub format: WireFormat,
    /// The client's body (for Responses, with earlier turns put in front).
    pub raw: Bytes,
    /// What routing reads: model (mapped), stream, output budget, size.
    pub view: RequestView,
    /// What encoders need to know about the client when forwarding (model
    /// as the client named it, clock, usage option).
    pub ctx: ClientContext,
    /// Client headers forwarded to an upstream of the same format
    /// (`anthropic-version`, `anthropic-beta`).
    pub forward_headers: Vec<(&'static str, String)>,
    /// Responses: the id the client sees and the conversation to store.
    pub conversation: Option<Conversation>,
    /// The client's own subscription credential (Claude Code's OAuth bearer,
    /// Codex's ChatGPT token), for providers in `client-credential` mode.
    pub client_credential: Option<crate::subscription::ClientCredential>,
    decoded: std::sync::OnceLock<Result<Decoded, String>>,
}

/// The canonical form, made when a translation first needs it.
#[derive(Debug)]
struct Decoded {
    /// Model mapped, path model and stream applied, Claude Code's billing line removed.
    request: ChatRequest,
    /// What decoding noted (billing line removed, lossy fields), shown when translated.
    notes: Vec<String>,
    /// `ctx` with what only the decoded request tells (Responses custom tools).
    ctx: ClientContext,
}

impl Native {
    /// A request in `format` with its view read; `view.model` is the model
    /// routing uses (mapped), `ctx.model` the one the client named.
    pub fn new(
        format: WireFormat,
        raw: Bytes,
        view: RequestView,
        ctx: ClientContext,
        forward_headers: Vec<(&'static str, String)>,
        conversation: Option<Conversation>,
        client_credential: Option<crate::subscription::ClientCredential>,
    ) -> Native {
        Native {
            format,
            raw,
            view,
            ctx,
            forward_headers,
            conversation,
            client_credential,
            decoded: std::sync::OnceLock::new(),
        }
    }

    fn decoded(&self) -> Result<&Decoded, String> {
        self.decoded
            .get_or_init(|| {
                let mut request =
                    formats::decode_request(self.format, &self.raw).map_err(|e| e.to_string())?;
                request.model = self.view.model.clone();
                if self.format == WireFormat::Gemini {
                    request.stream = self.view.stream;
                    request.stream_usage = true;
                }
                let mut notes = Vec::new();
                // Only a translated request loses it: an Anthropic upstream gets the client's bytes.
                if formats::strip_billing_header(&mut request) {
                    notes.push(
                        "removed Claude Code's billing header line from the system prompt".into(),
                    );
                }
                notes.extend(request.lossy.iter().cloned());
                let mut ctx = ClientContext::for_request(&request, self.ctx.created);
                ctx.model = self.ctx.model.clone();
                Ok(Decoded {
                    request,
                    notes,
                    ctx,
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The canonical request (decoded on first use).
    pub fn request(&self) -> Result<&ChatRequest, String> {
        self.decoded().map(|d| &d.request)
    }

    /// The client context for translated answers.
    pub fn translation_ctx(&self) -> ClientContext {
        self.decoded()
            .map(|d| d.ctx.clone())
            .unwrap_or_else(|_| self.ctx.clone())
    }

    /// What decoding noted, for the route header of a translated request.
    pub fn notes(&self) -> Vec<String> {
        self.decoded().map(|d| d.notes.clone()).unwrap_or_default()
    }

    /// A session key from the conversation's first turns, for sticky routing.
    pub fn session(&self) -> Option<String> {
        super::view::session_from_raw(&self.raw)
    }

    /// The request as an OpenAI Chat body for `model` (context relay and
    /// fusion judges work on that form).
    pub fn openai_body(&self, model: &str) -> Result<Map<String, Value>, String> {
        let t = formats::encode_request(WireFormat::Openai, self.request()?)
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

/// What `target` is sent for `call`; `relayed` replaces the conversation
/// (an OpenAI Chat body) after a context relay.
pub fn outgoing(
    call: &super::ChatCall,
    relayed: Option<&Map<String, Value>>,
    target: &Target,
    stream: bool,
    strip_usage_only: bool,
) -> Result<Outgoing, Unsendable> {
    let native = call.native.as_deref();
    let to = target.provider.spec.format;
    let client = native.map_or(WireFormat::Openai, |n| n.format);
    let translation = (client != WireFormat::Openai || to != WireFormat::Openai)
        .then(|| formats::translation_label(client, to));
    let from_map = |src: &Map<String, Value>| -> Result<ChatRequest, Unsendable> {
        let bytes = serde_json::to_vec(src).map_err(|e| Unsendable::Client(e.to_string()))?;
        formats::decode_request(WireFormat::Openai, &bytes)
            .map_err(|e| Unsendable::Client(e.to_string()))
    };
    match native {
        None if to == WireFormat::Openai => {
            let bytes = match relayed {
                Some(m) => serde_json::to_vec(m)
                    .map_err(|e| Unsendable::Client(format!("request cannot be encoded: {e}")))?,
                None => openai_pass(call, &target.model, stream)?,
            };
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
            let req = match relayed {
                Some(m) => from_map(m)?,
                None => formats::decode_request(WireFormat::Openai, &call.raw)
                    .map_err(|e| Unsendable::Client(e.to_string()))?,
            };
            let mut ctx = ClientContext::for_request(&req, now_s());
            // The gateway always asks for usage; the client sees it only if it asked.
            ctx.include_usage = req.stream_usage && !strip_usage_only;
            ctx.model = call.view.model.clone();
            encode_for(&req, target, stream, Vec::new(), translation, client, ctx)
        }
        Some(n) if relayed.is_some() => {
            let req = from_map(relayed.unwrap_or(&Map::new()))?;
            let mut notes = n.notes();
            notes.push("context relay: the conversation was rebuilt from a summary".into());
            encode_for(
                &req,
                target,
                stream,
                notes,
                translation,
                client,
                n.translation_ctx(),
            )
        }
        Some(n) if to == n.format => {
            let bytes = if to == WireFormat::Gemini {
                // The model is in the path.
                n.raw.clone()
            } else {
                let span = n.view.model_span;
                let rewritten = span
                    .and_then(|sp| formats::json::replace_string_at(&n.raw, sp, &target.model))
                    .or_else(|| {
                        formats::json::set_top_level_string(&n.raw, "model", &target.model)
                    });
                match rewritten {
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
        Some(n) => {
            let req = n.request().map_err(Unsendable::Client)?;
            encode_for(
                req,
                target,
                stream,
                n.notes(),
                translation,
                client,
                n.translation_ctx(),
            )
        }
    }
}

/// The client's OpenAI Chat bytes for an OpenAI upstream: `model` set and,
/// for a stream, usage asked for, in place; through a document only when
/// the bytes do not allow that.
fn openai_pass(call: &super::ChatCall, model: &str, stream: bool) -> Result<Vec<u8>, Unsendable> {
    let ask_usage = stream && call.view.include_usage != Some(true);
    if let Some(b) = formats::json::openai_for_upstream(
        &call.raw,
        model,
        call.view.model_span,
        ask_usage,
        call.view.has_stream_options,
    ) {
        return Ok(b);
    }
    let mut body: Map<String, Value> = serde_json::from_slice(&call.raw)
        .map_err(|e| Unsendable::Client(format!("request cannot be encoded: {e}")))?;
    body.insert("model".into(), Value::String(model.to_string()));
    if ask_usage {
        let opts = body
            .entry("stream_options")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(o) = opts {
            o.insert("include_usage".into(), Value::Bool(true));
        } else {
            *opts = serde_json::json!({"include_usage": true});
        }
    }
    serde_json::to_vec(&body)
        .map_err(|e| Unsendable::Client(format!("request cannot be encoded: {e}")))
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
