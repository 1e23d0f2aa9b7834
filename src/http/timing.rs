//! When a request arrived, and the gateway's own time as the answer leaves.
//!
//! The outermost layer notes the instant the request's head was read (its
//! first bytes; a body is read after it), so the guard, auth, body read and
//! everything after count as gateway time. On the way out it rewrites
//! `x-omniroute-overhead-ms` as arrival → the answer handed to the socket,
//! minus the upstream's time. A whole answer's body follows at once; a
//! stream's head leaves here, and its usage row adds the time the gateway
//! spent on each chunk.

use axum::extract::Request;
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// When the request's head was read.
#[derive(Debug, Clone, Copy)]
pub struct Arrived(pub Instant);

/// The arrival instant a handler should count from (now when no layer set it).
pub fn arrived(req: &Request) -> Instant {
    req.extensions()
        .get::<Arrived>()
        .map_or_else(Instant::now, |a| a.0)
}

const UPSTREAM_MS: HeaderName = HeaderName::from_static("x-omniroute-upstream-ms");
const OVERHEAD_MS: HeaderName = HeaderName::from_static("x-omniroute-overhead-ms");

pub async fn timing(mut req: Request, next: Next) -> Response {
    let at = Instant::now();
    req.extensions_mut().insert(Arrived(at));
    let mut resp = next.run(req).await;
    let upstream = resp
        .headers()
        .get(UPSTREAM_MS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<f64>().ok());
    if let Some(upstream) = upstream {
        let total = at.elapsed().as_secs_f64() * 1000.0;
        let overhead = (total - upstream).max(0.0);
        resp.headers_mut()
            .insert(OVERHEAD_MS, super::decimal_header(overhead, 3));
    }
    resp
}
