//! The browser guard in front of every route: a page on another site must
//! not be able to spend credit or read answers, with or without client keys.
//!
//! - `Host` must name this gateway: a loopback name when bound to loopback
//!   (so a DNS-rebinding page on `evil.example` that resolves to 127.0.0.1
//!   is refused), or a name in `server.allowed_hosts`.
//! - A browser `Origin` must be a loopback page, this gateway's own origin,
//!   or one in `server.allowed_origins`.
//! - A POST to a JSON route must say `Content-Type: application/json`
//!   (`text/plain` is what a cross-site form or `fetch` without a preflight
//!   sends). `/mcp` and `/a2a` check their own content type, to answer in
//!   JSON-RPC.
//!
//! Refusals are in the shape of the route's surface.

use super::AppState;
use crate::catalog::WireFormat;
use crate::formats::{self, canonical::ErrorKind};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Which names this gateway answers to.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    bound_loopback: bool,
    /// The bound address, when it is a specific one (not 0.0.0.0 / ::).
    bound: Option<String>,
    allowed_hosts: Vec<String>,
    allowed_origins: Vec<String>,
}

fn is_loopback_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost"
        || h.ends_with(".localhost")
        || h.trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The host of a `Host` value or an origin's authority, without the port.
pub fn host_part(authority: &str) -> &str {
    let a = authority.trim();
    if let Some(v6) = a.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    // A bare IPv6 address has several colons and no port.
    if a.matches(':').count() > 1 {
        return a;
    }
    a.split(':').next().unwrap_or("")
}

impl HostPolicy {
    pub fn new(bind_host: &str, allowed_hosts: &[String], allowed_origins: &[String]) -> Self {
        let unspecified = bind_host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
        HostPolicy {
            bound_loopback: crate::server::is_loopback(bind_host),
            bound: (!unspecified).then(|| {
                bind_host
                    .trim_matches(|c| c == '[' || c == ']')
                    .to_ascii_lowercase()
            }),
            allowed_hosts: allowed_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect(),
            allowed_origins: allowed_origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    fn listed(&self, host: &str) -> bool {
        self.allowed_hosts.iter().any(|a| {
            a == "*"
                || a == host
                || a.strip_prefix("*.")
                    .is_some_and(|suffix| host.ends_with(&format!(".{suffix}")))
        })
    }

    /// Is `host` (from `Host`, port ignored) a name this gateway may be reached by?
    pub fn allows_host(&self, authority: &str) -> bool {
        let host = host_part(authority)
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if host.is_empty() {
            return false;
        }
        if self.listed(&host) || is_loopback_name(&host) {
            return true;
        }
        if self.bound_loopback {
            return false;
        }
        // Off loopback (keys are required there): the bound address itself,
        // any IP literal when bound to all interfaces, or any name when the
        // operator listed none.
        let ip_literal = host.parse::<std::net::IpAddr>().is_ok();
        match &self.bound {
            Some(b) => b == &host || self.allowed_hosts.is_empty(),
            None => ip_literal || self.allowed_hosts.is_empty(),
        }
    }

    /// May a page from `origin` call this gateway, reached at `host`?
    pub fn allows_origin(&self, origin: &str, host: Option<&str>) -> bool {
        let o = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if self.allowed_origins.iter().any(|a| a == "*" || a == &o) {
            return true;
        }
        let Some(authority) = o
            .strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"))
        else {
            // "null" (sandboxed frames, file:// pages) and other schemes.
            return false;
        };
        if authority.contains('/') || authority.contains('@') {
            return false;
        }
        let origin_host = host_part(authority);
        if is_loopback_name(origin_host) {
            return true;
        }
        // Same origin: the page was served by this gateway under an allowed name.
        host.is_some_and(|h| h.eq_ignore_ascii_case(authority) && self.allows_host(h))
    }

    /// May the agent card name `host` as this agent's address? Only a
    /// loopback name when bound there, the bound address, or a listed name.
    pub fn trusts_for_links(&self, authority: &str) -> bool {
        let host = host_part(authority)
            .trim_end_matches('.')
            .to_ascii_lowercase();
        (self.bound_loopback && is_loopback_name(&host))
            || self.bound.as_deref() == Some(host.as_str())
            || self.allowed_hosts.iter().any(|a| {
                a != "*"
                    && (a == &host
                        || a.strip_prefix("*.")
                            .is_some_and(|s| host.ends_with(&format!(".{s}"))))
            })
    }
}

/// The surface a path belongs to, for the shape of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Surface {
    OpenAi,
    Format(WireFormat),
    JsonRpc,
}

fn surface(path: &str) -> Surface {
    if path.starts_with("/a2a") || path.starts_with("/mcp") {
        Surface::JsonRpc
    } else if path.contains("/messages") {
        Surface::Format(WireFormat::Anthropic)
    } else if path.starts_with("/v1beta")
        || path.contains(":generateContent")
        || path.contains(":streamGenerateContent")
        || path.contains(":countTokens")
    {
        Surface::Format(WireFormat::Gemini)
    } else {
        Surface::OpenAi
    }
}

fn refuse(path: &str, status: StatusCode, code: &str, message: String) -> Response {
    match surface(path) {
        Surface::OpenAi => {
            super::error::ApiError::new(status, "invalid_request_error", code, message)
                .into_response()
        }
        Surface::Format(fmt) => {
            let kind = match status {
                StatusCode::FORBIDDEN => ErrorKind::Permission,
                _ => ErrorKind::BadRequest,
            };
            // The body in the format's words; the status stays the true one
            // (Anthropic documents no 415: its codec would say 400).
            let (_, body) = formats::encode_error(fmt, status.as_u16(), kind, &message);
            (status, axum::Json(body)).into_response()
        }
        Surface::JsonRpc => {
            // -32600: the HTTP request itself is not one this server takes.
            let body = serde_json::json!({
                "jsonrpc": "2.0",
                "id": null,
                "error": {"code": -32600, "message": message, "data": {"reason": code}},
            });
            (status, axum::Json(body)).into_response()
        }
    }
}

fn request_host(req: &Request) -> Option<String> {
    req.headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_string()))
}

/// Is this a JSON media type (`application/json`, `application/*+json`)?
fn is_json(ct: &HeaderValue) -> bool {
    let Ok(ct) = ct.to_str() else { return false };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Routes that check their own content type, in JSON-RPC.
fn checks_own_content_type(path: &str) -> bool {
    path.starts_with("/mcp") || path.starts_with("/a2a")
}

/// A body-less POST (an action such as a rollback) needs no content type;
/// one with a body must say JSON.
fn content_type_ok(headers: &HeaderMap) -> bool {
    let empty = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "0")
        || (!headers.contains_key(header::CONTENT_LENGTH)
            && !headers.contains_key(header::TRANSFER_ENCODING));
    empty || headers.get(header::CONTENT_TYPE).is_some_and(is_json)
}

pub async fn browser_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let policy = &state.hosts;
    let host = request_host(&req);
    match &host {
        Some(h) if policy.allows_host(h) => {}
        Some(h) => {
            return refuse(
                &path,
                StatusCode::FORBIDDEN,
                "host_not_allowed",
                format!(
                    "Host {h:?} is not a name this gateway answers to; add it to server.allowed_hosts if it is yours"
                ),
            )
        }
        None => {
            return refuse(
                &path,
                StatusCode::BAD_REQUEST,
                "host_missing",
                "the request has no Host header".into(),
            )
        }
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let text = origin.to_str().unwrap_or("(not text)");
        if !policy.allows_origin(text, host.as_deref()) {
            return refuse(
                &path,
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                format!(
                    "Origin {text:?} is not allowed: only pages from localhost, this gateway, or server.allowed_origins may call it"
                ),
            );
        }
    }
    if req.method() == Method::POST
        && !checks_own_content_type(&path)
        && !content_type_ok(req.headers())
    {
        let got = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        return refuse(
            &path,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type must be application/json (got {got})"),
        );
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> HostPolicy {
        HostPolicy::new("127.0.0.1", &[], &[])
    }

    #[test]
    fn loopback_binding_answers_only_loopback_names() {
        let p = local();
        for ok in [
            "127.0.0.1:20128",
            "localhost:1",
            "[::1]:8080",
            "LOCALHOST",
            "app.localhost:3",
        ] {
            assert!(p.allows_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:20128",
            "127.0.0.1.evil.example",
            "10.0.0.2:20128",
            "",
        ] {
            assert!(!p.allows_host(bad), "{bad}");
        }
        let listed = HostPolicy::new(
            "127.0.0.1",
            &["gw.internal".into(), "*.corp.example".into()],
            &[],
        );
        assert!(listed.allows_host("gw.internal:20128"));
        assert!(listed.allows_host("a.corp.example"));
        assert!(!listed.allows_host("corp.example.evil"));
    }

    #[test]
    fn off_loopback_bindings() {
        let any = HostPolicy::new("0.0.0.0", &[], &[]);
        assert!(any.allows_host("192.168.1.5:20128"));
        assert!(any.allows_host("gateway.lan"));
        let named = HostPolicy::new("0.0.0.0", &["gateway.lan".into()], &[]);
        assert!(named.allows_host("gateway.lan"));
        assert!(named.allows_host("192.168.1.5"));
        assert!(!named.allows_host("evil.example"));
        assert!(!named.trusts_for_links("192.168.1.5"));
        assert!(named.trusts_for_links("gateway.lan:20128"));
    }

    #[test]
    fn origins() {
        let p = local();
        assert!(p.allows_origin("http://localhost:5173", Some("127.0.0.1:20128")));
        assert!(p.allows_origin("http://127.0.0.1:20128", Some("127.0.0.1:20128")));
        assert!(!p.allows_origin("http://evil.example", Some("127.0.0.1:20128")));
        // A rebinding page is same-origin with itself, but its Host is refused.
        assert!(!p.allows_origin("http://evil.example:20128", Some("evil.example:20128")));
        assert!(!p.allows_origin("null", Some("127.0.0.1:20128")));
        assert!(!p.allows_origin("http://127.0.0.1.evil.example", None));
        let listed = HostPolicy::new("127.0.0.1", &[], &["https://app.example".into()]);
        assert!(listed.allows_origin("https://app.example/", None));
    }

    #[test]
    fn json_media_types() {
        assert!(is_json(&HeaderValue::from_static("application/json")));
        assert!(is_json(&HeaderValue::from_static(
            "Application/JSON; charset=utf-8"
        )));
        assert!(is_json(&HeaderValue::from_static(
            "application/vnd.api+json"
        )));
        assert!(!is_json(&HeaderValue::from_static("text/plain")));
        assert!(!is_json(&HeaderValue::from_static(
            "application/x-www-form-urlencoded"
        )));
        assert!(!is_json(&HeaderValue::from_static(
            "multipart/form-data; boundary=x"
        )));
    }

    #[test]
    fn refusals_speak_the_route_format() {
        assert_eq!(surface("/v1/chat/completions"), Surface::OpenAi);
        assert_eq!(
            surface("/v1/messages"),
            Surface::Format(WireFormat::Anthropic)
        );
        assert_eq!(
            surface("/v1beta/models/x:generateContent"),
            Surface::Format(WireFormat::Gemini)
        );
        assert_eq!(surface("/a2a"), Surface::JsonRpc);
    }
}
