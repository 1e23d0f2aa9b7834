//! The one shared HTTP client to upstream providers, and how a request to a
//! target is built (URL, auth header).

use crate::catalog::{AuthStyle, WireFormat};
use crate::registry::Target;
use bytes::Bytes;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

#[derive(Debug, Clone)]
pub struct Upstream {
    client: reqwest::Client,
}

impl Upstream {
    pub fn new(
        connect_timeout: Duration,
        egress: crate::egress::EgressPolicy,
    ) -> Result<Upstream, UpstreamError> {
        let client = reqwest::Client::builder()
            // Every name resolved for an upstream is checked against the
            // egress policy (no metadata, link-local or private addresses).
            .dns_resolver(crate::egress::CheckedResolver { policy: egress })
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            // Enough idle connections for hundreds of agents' streams at
            // once: a connection dropped at 64 is a new TCP (and TLS)
            // handshake on the next request. Idle ones close after 90 s.
            .pool_max_idle_per_host(1024)
            .tcp_nodelay(true)
            // An API that redirects is misconfigured; following it would carry
            // the provider key to wherever the redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("omniroute/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| UpstreamError::Client(e.to_string()))?;
        Ok(Upstream { client })
    }

    /// The shared client (subscription requests and token calls use it too).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// A POST of `body` to the target's OpenAI-style chat endpoint.
    pub fn chat_completions(
        &self,
        target: &Target,
        body: Bytes,
        stream: bool,
    ) -> reqwest::RequestBuilder {
        let req = match &target.provider.chat_url {
            Some(url) => self.client.post(url.clone()),
            None => self.client.post(format!(
                "{}/chat/completions",
                target.provider.spec.base_url.trim_end_matches('/')
            )),
        };
        authorize(json_post(req, stream).body(body), target)
    }
}

impl Upstream {
    /// A POST of an OpenAI embeddings `body` to the target's `/embeddings`.
    pub fn embeddings(&self, target: &Target, body: Bytes) -> reqwest::RequestBuilder {
        let url = format!(
            "{}/embeddings",
            target.provider.spec.base_url.trim_end_matches('/')
        );
        authorize(json_post(self.client.post(url), false).body(body), target)
    }

    /// A POST of `body`, already in the target's format `fmt`, to its chat
    /// endpoint; `extra` headers (a client's `anthropic-beta`…) win over the
    /// format's defaults.
    pub fn send(
        &self,
        target: &Target,
        fmt: WireFormat,
        body: Bytes,
        stream: bool,
        extra: &[(&'static str, String)],
    ) -> reqwest::RequestBuilder {
        if fmt == WireFormat::Openai && extra.is_empty() {
            return self.chat_completions(target, body, stream);
        }
        let url = match (&target.provider.chat_url, fmt) {
            (Some(url), WireFormat::Openai) => url.to_string(),
            _ => format!(
                "{}{}",
                target.provider.spec.base_url.trim_end_matches('/'),
                crate::formats::upstream_path(fmt, &target.model, stream)
            ),
        };
        let mut req = json_post(self.client.post(url), stream);
        for (k, v) in crate::formats::upstream_headers(fmt) {
            if !extra.iter().any(|(e, _)| e == k) {
                req = req.header(*k, *v);
            }
        }
        for (k, v) in extra {
            req = req.header(*k, v);
        }
        authorize(req.body(body), target)
    }

    /// A POST of an OpenAI Chat `body` to the target: as is when it speaks
    /// OpenAI Chat, else translated into its format (health probes).
    /// The error is the client's fault: the body could not be translated.
    pub fn chat(
        &self,
        target: &Target,
        body: Bytes,
        stream: bool,
    ) -> Result<reqwest::RequestBuilder, String> {
        let fmt = target.provider.spec.format;
        if fmt == WireFormat::Openai {
            return Ok(self.chat_completions(target, body, stream));
        }
        let canonical =
            crate::formats::decode_request(WireFormat::Openai, &body).map_err(|e| e.to_string())?;
        let translated =
            crate::formats::encode_request(fmt, &canonical).map_err(|e| e.to_string())?;
        let mut out = translated.body;
        if fmt != WireFormat::Gemini {
            out["model"] = serde_json::Value::String(target.model.clone());
        }
        let bytes = serde_json::to_vec(&out).map_err(|e| e.to_string())?;
        Ok(self.send(target, fmt, Bytes::from(bytes), stream, &[]))
    }
}

/// A JSON body, answered as SSE when streaming.
fn json_post(req: reqwest::RequestBuilder, stream: bool) -> reqwest::RequestBuilder {
    let accept = if stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    req.header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::ACCEPT, accept)
}

fn authorize(req: reqwest::RequestBuilder, target: &Target) -> reqwest::RequestBuilder {
    let Some(secret) = &target.account.secret else {
        return req;
    };
    match target.provider.spec.auth {
        AuthStyle::Bearer => req.bearer_auth(secret.expose()),
        AuthStyle::XApiKey => req.header("x-api-key", secret.expose()),
        AuthStyle::XGoogApiKey => req.header("x-goog-api-key", secret.expose()),
        AuthStyle::None => req,
    }
}

/// Formats this build can send a chat request to: every one, OpenAI Chat as
/// is and the others through the canonical model.
pub fn can_serve(format: WireFormat) -> bool {
    matches!(
        format,
        WireFormat::Openai
            | WireFormat::Anthropic
            | WireFormat::Gemini
            | WireFormat::OpenaiResponses
    )
}
