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
use axum::response::Response;
use axum::routing::Route;
use futures::future::BoxFuture;
use futures::FutureExt;
use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll};
use std::time::Instant;
use tower::Service;
use tracing::Instrument;

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

/// The layer every route has outermost: arrival instant, the request's
/// tracing span, a panic answered as a 500 in the API's error shape, the
/// overhead header rewritten on the way out and server errors logged. One
/// hand-written service in place of three stacked layers (each boxed its own
/// future and cloned its state per request).
#[derive(Clone)]
pub struct Outer {
    inner: Route,
    on_panic: PanicAnswer,
}

/// Builds [`Outer`] around each route; `on_panic` turns a panic's payload into the answer.
#[derive(Clone)]
pub struct OuterLayer(pub PanicAnswer);

pub type PanicAnswer = fn(Box<dyn std::any::Any + Send + 'static>) -> Response;

impl tower::Layer<Route> for OuterLayer {
    type Service = Outer;
    fn layer(&self, inner: Route) -> Outer {
        Outer {
            inner,
            on_panic: self.0,
        }
    }
}

impl tower::Service<Request> for Outer {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        <Route as Service<Request>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let at = Instant::now();
        req.extensions_mut().insert(Arrived(at));
        let span = tracing::info_span!("request", method = %req.method(), path = %req.uri().path());
        let on_panic = self.on_panic;
        let called = {
            let _entered = span.enter();
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                <Route as Service<Request>>::call(&mut self.inner, req)
            }))
        };
        Box::pin(async move {
            let answered = match called {
                Ok(fut) => AssertUnwindSafe(fut)
                    .catch_unwind()
                    .instrument(span.clone())
                    .await
                    .map(|r| r.unwrap_or_else(|e| match e {})),
                Err(payload) => Err(payload),
            };
            let mut resp = match answered {
                Ok(r) => r,
                Err(payload) => span.in_scope(|| on_panic(payload)),
            };
            stamp_overhead(&mut resp, at);
            if resp.status().is_server_error() {
                let latency_ms = at.elapsed().as_secs_f64() * 1000.0;
                span.in_scope(|| {
                    tracing::error!(
                        status = resp.status().as_u16(),
                        latency_ms,
                        "response failed"
                    )
                });
            }
            Ok(resp)
        })
    }
}

/// `x-omniroute-overhead-ms`: arrival to now, less the upstream's time.
fn stamp_overhead(resp: &mut Response, at: Instant) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    fn answer_500(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
        let mut r = Response::new(Body::from("caught"));
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    }

    #[allow(clippy::panic)]
    fn app() -> Router {
        Router::new()
            .route("/now", get(|| async { panic!("at once") as &'static str }))
            .route(
                "/later",
                get(|| async {
                    tokio::task::yield_now().await;
                    panic!("after an await") as &'static str
                }),
            )
            .route(
                "/timed",
                get(|req: Request| async move {
                    let waited = arrived(&req).elapsed();
                    let mut r = Response::new(Body::empty());
                    r.headers_mut()
                        .insert(UPSTREAM_MS, axum::http::HeaderValue::from_static("0.000"));
                    r.headers_mut().insert(
                        "x-waited-ns",
                        axum::http::HeaderValue::from(waited.as_nanos() as u64),
                    );
                    r
                }),
            )
            .layer(OuterLayer(answer_500))
    }

    async fn get_path(path: &str) -> Response {
        let req = Request::builder().uri(path).body(Body::empty()).unwrap();
        app().oneshot(req).await.unwrap()
    }

    #[tokio::test]
    async fn a_panic_before_or_after_an_await_is_answered_not_dropped() {
        for path in ["/now", "/later"] {
            let r = get_path(path).await;
            assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path}");
            let body = axum::body::to_bytes(r.into_body(), 1024).await.unwrap();
            assert_eq!(&body[..], b"caught");
        }
    }

    #[tokio::test]
    async fn the_handler_sees_the_arrival_and_the_overhead_is_stamped() {
        let r = get_path("/timed").await;
        assert_eq!(r.status(), StatusCode::OK);
        // The layer set the arrival instant (the handler did not fall back to now).
        assert!(r.headers().contains_key("x-waited-ns"));
        let overhead: f64 = r.headers()[OVERHEAD_MS].to_str().unwrap().parse().unwrap();
        assert!((0.0..1000.0).contains(&overhead), "{overhead}");
    }
}
