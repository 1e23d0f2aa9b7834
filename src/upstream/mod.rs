//! The HTTP clients to upstream providers, and how a request to a target is
//! built (URL, auth header). Chat and embeddings requests, the hot path, go
//! through [`client::HotClient`]; sign-in and token calls through reqwest.

pub mod client;

use crate::catalog::{AuthStyle, WireFormat};
use crate::registry::Target;
use bytes::Bytes;
pub use client::{BodyStream, Error, Request, Response};
use http::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use http::Uri;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

#[derive(Debug, Clone)]
pub struct Upstream {
    hot: client::HotClient,
    client: reqwest::Client,
}

const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const X_GOOG_API_KEY: HeaderName = HeaderName::from_static("x-goog-api-key");

impl Upstream {
    pub fn new(
        connect_timeout: Duration,
        egress: crate::egress::EgressPolicy,
    ) -> Result<Upstream, UpstreamError> {
        let tls = client::tls_config().map_err(UpstreamError::Client)?;
        let hot = client::HotClient::new(connect_timeout, egress.clone(), tls.clone())
            .map_err(UpstreamError::Client)?;
        let client = reqwest::Client::builder()
            // The same roots, read once.
            .tls_backend_preconfigured(tls)
            // Every name resolved for an upstream is checked against the
            // egress policy (no metadata, link-local or private addresses).
            .dns_resolver(crate::egress::CheckedResolver { policy: egress })
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            // An API that redirects is misconfigured; following it would carry
            // the provider key to wherever the redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("omniroute/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| UpstreamError::Client(e.to_string()))?;
        Ok(Upstream { hot, client })
    }

    /// The reqwest client for sign-in, token and discovery calls.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// A POST to `url` on the hot client (subscriber endpoints build theirs).
    pub fn post(&self, url: &str) -> Request {
        self.hot.post(parse(url))
    }

    /// A POST of `body` to the target's OpenAI-style chat endpoint.
    pub fn chat_completions(&self, target: &Target, body: Bytes, stream: bool) -> Request {
        let uri = match &target.provider.chat_url {
            Some(uri) => Ok(uri.clone()),
            None => parse(&format!(
                "{}/chat/completions",
                target.provider.spec.base_url.trim_end_matches('/')
            )),
        };
        authorize(json_post(self.hot.post(uri), stream).body(body), target)
    }

    /// A POST of an OpenAI embeddings `body` to the target's `/embeddings`.
    pub fn embeddings(&self, target: &Target, body: Bytes) -> Request {
        let url = format!(
            "{}/embeddings",
            target.provider.spec.base_url.trim_end_matches('/')
        );
        authorize(json_post(self.post(&url), false).body(body), target)
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
    ) -> Request {
        if fmt == WireFormat::Openai && extra.is_empty() {
            return self.chat_completions(target, body, stream);
        }
        let uri = match (&target.provider.chat_url, fmt) {
            (Some(uri), WireFormat::Openai) => Ok(uri.clone()),
            _ => parse(&format!(
                "{}{}",
                target.provider.spec.base_url.trim_end_matches('/'),
                crate::formats::upstream_path(fmt, &target.model, stream)
            )),
        };
        let mut req = json_post(self.hot.post(uri), stream);
        for (k, v) in crate::formats::upstream_headers(fmt) {
            if !extra.iter().any(|(e, _)| e == k) {
                req = req.header(*k, *v);
            }
        }
        for (k, v) in extra {
            req = req.header(*k, v.as_str());
        }
        authorize(req.body(body), target)
    }

    /// A POST of an OpenAI Chat `body` to the target: as is when it speaks
    /// OpenAI Chat, else translated into its format (health probes).
    /// The error is the client's fault: the body could not be translated.
    pub fn chat(&self, target: &Target, body: Bytes, stream: bool) -> Result<Request, String> {
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

/// An upstream URL as the client sends it; the error says which one HTTP refused.
pub fn parse(url: &str) -> Result<Uri, String> {
    url.parse::<Uri>()
        .map_err(|e| format!("the upstream URL {url:?} is invalid: {e}"))
}

/// A JSON body, answered as SSE when streaming.
fn json_post(req: Request, stream: bool) -> Request {
    let accept = if stream {
        EVENT_STREAM
    } else {
        APPLICATION_JSON
    };
    req.header(CONTENT_TYPE, APPLICATION_JSON)
        .header(ACCEPT, accept)
}

fn authorize(req: Request, target: &Target) -> Request {
    let Some(secret) = &target.account.secret else {
        return req;
    };
    match target.provider.spec.auth {
        AuthStyle::Bearer => req.bearer_auth(secret.expose()),
        AuthStyle::XApiKey => req.secret_header(X_API_KEY, secret.expose()),
        AuthStyle::XGoogApiKey => req.secret_header(X_GOOG_API_KEY, secret.expose()),
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
