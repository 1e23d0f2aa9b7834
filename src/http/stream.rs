//! The one way every HTTP surface answers with a stream (the proxy's chat,
//! Messages, Responses and Gemini streams, A2A's SSE, both MCP transports):
//! `content-type: text/event-stream`, `cache-control: no-cache` and
//! `x-accel-buffering: no`. Without the last, a reverse proxy in front of
//! the gateway may buffer the answer and deliver it at the end: nginx
//! buffers proxied responses by default and turns that off per response when
//! this header says `no` (nginx.org/en/docs/http/ngx_http_proxy_module.html,
//! `proxy_buffering`).

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::sse::Sse;
use axum::response::{IntoResponse, Response};

pub const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// The headers of a streamed answer, on `h`.
pub fn mark(h: &mut HeaderMap) {
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(crate::formats::SSE_CONTENT_TYPE),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
}

/// A streamed answer: `body` (already framed as SSE) with `status`.
pub fn response(status: StatusCode, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    mark(r.headers_mut());
    r
}

/// An axum SSE stream (events framed and kept alive by axum), answered
/// through the same builder.
pub fn sse<S>(events: Sse<S>) -> Response
where
    Sse<S>: IntoResponse,
{
    let (parts, body) = events.into_response().into_parts();
    response(parts.status, body)
}

/// Is this response a stream of server-sent events?
pub fn is_event_stream(h: &HeaderMap) -> bool {
    h.get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with(crate::formats::SSE_CONTENT_TYPE)
        })
}

/// Middleware for services that build their own responses (rmcp's
/// Streamable HTTP at `/mcp`): their streamed answers get the same headers.
pub async fn mark_streams(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    if is_event_stream(r.headers()) {
        mark(r.headers_mut());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_builder_sets_the_stream_headers() {
        let check = |r: &Response| {
            let h = r.headers();
            assert_eq!(h[CONTENT_TYPE], "text/event-stream");
            assert_eq!(h[CACHE_CONTROL], "no-cache");
            assert_eq!(h[X_ACCEL_BUFFERING], "no");
        };
        check(&response(StatusCode::OK, Body::empty()));
        let events = futures::stream::iter([Ok::<_, std::convert::Infallible>(
            axum::response::sse::Event::default().data("x"),
        )]);
        let r = sse(Sse::new(events));
        assert_eq!(r.status(), StatusCode::OK);
        check(&r);
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(!is_event_stream(&h));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        assert!(is_event_stream(&h));
    }
}
