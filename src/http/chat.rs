//! `POST /v1/chat/completions`: decode, hand to the proxy core, answer with
//! route headers; streams are relayed event by event.

use super::error::ApiError;
use super::{decimal_header, header, AppState, Caller};
use crate::catalog::WireFormat;
use crate::proxy::view::ViewError;
use crate::proxy::{self, ChatCall, ChatOutcome, RequestView, RouteInfo};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub async fn chat_completions(State(state): State<AppState>, req: Request) -> Response {
    let started = super::timing::arrived(&req);
    let request_id = state.next_request_id();
    let caller = req
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or_default();
    let session = req
        .headers()
        .get("x-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let hints = request_hints(req.headers());
    let result = async {
        let bytes = read_body(req, state.gw.settings.max_body_bytes).await?;
        // One pass over the bytes for what routing reads; no document is built.
        let view = RequestView::peek(WireFormat::Openai, &bytes).map_err(|e| {
            let code = match e {
                ViewError::Json(_) => "invalid_json",
                _ => "invalid_request",
            };
            ApiError::invalid_request(code, e.to_string())
        })?;
        let call = ChatCall {
            request_id: request_id.clone(),
            key_id: caller.key_id.clone(),
            endpoint: "chat.completions",
            raw: bytes,
            view,
            started,
            session,
            native: None,
            hints,
        };
        proxy::chat(&state.gw, call).await.map_err(ApiError::from)
    }
    .await;
    let mut resp = match result {
        Ok(ChatOutcome::Complete {
            status,
            body,
            route,
            ..
        }) => {
            let mut r = Response::new(Body::from(body));
            *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            route_headers(r.headers_mut(), &route);
            r
        }
        Ok(ChatOutcome::Stream {
            status,
            events,
            route,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut r = super::stream::response(status, Body::from_stream(events));
            route_headers(r.headers_mut(), &route);
            r
        }
        Err(e) => {
            tracing::info!(status = e.status.as_u16(), code = ?e.code, "request failed");
            e.into_response()
        }
    };
    resp.headers_mut().insert(X_REQUEST_ID, header(&request_id));
    resp
}

/// `Cache-Control`, `Idempotency-Key` and `X-Request-Id` as the core reads them.
pub(super) fn request_hints(h: &HeaderMap) -> crate::cache::RequestHints {
    const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
    let get = |n: &HeaderName| h.get(n).and_then(|v| v.to_str().ok());
    crate::cache::RequestHints::from_headers(
        get(&axum::http::header::CACHE_CONTROL),
        get(&IDEMPOTENCY_KEY),
        get(&X_REQUEST_ID),
    )
}

pub(super) async fn read_body(req: Request, limit: usize) -> Result<bytes::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            let too_long =
                std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
                    .any(|e| e.to_string().contains("length limit"));
            if too_long {
                ApiError::too_large(limit)
            } else {
                ApiError::invalid_request(
                    "body_read_failed",
                    format!("could not read the request body: {e}"),
                )
            }
        })
}

// Names built at compile time: a `&str` name is parsed on every insert.
const X_PROVIDER: HeaderName = HeaderName::from_static("x-omniroute-provider");
const X_ACCOUNT: HeaderName = HeaderName::from_static("x-omniroute-account");
const X_MODEL: HeaderName = HeaderName::from_static("x-omniroute-model");
const X_ATTEMPTS: HeaderName = HeaderName::from_static("x-omniroute-attempts");
const X_UPSTREAM_MS: HeaderName = HeaderName::from_static("x-omniroute-upstream-ms");
const X_OVERHEAD_MS: HeaderName = HeaderName::from_static("x-omniroute-overhead-ms");
const X_TIER: HeaderName = HeaderName::from_static("x-omniroute-tier");
const X_COMBO: HeaderName = HeaderName::from_static("x-omniroute-combo");
const X_STRATEGY: HeaderName = HeaderName::from_static("x-omniroute-strategy");
const X_COST_USD: HeaderName = HeaderName::from_static("x-omniroute-cost-usd");
const X_SKIPPED: HeaderName = HeaderName::from_static("x-omniroute-skipped");
const X_FAILED: HeaderName = HeaderName::from_static("x-omniroute-failed");
const X_CONTEXT_RELAY: HeaderName = HeaderName::from_static("x-omniroute-context-relay");
const X_TRANSLATION: HeaderName = HeaderName::from_static("x-omniroute-translation");
const X_TRANSLATION_NOTES: HeaderName = HeaderName::from_static("x-omniroute-translation-notes");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_CACHE: HeaderName = HeaderName::from_static("x-omniroute-cache");
const X_CACHE_KIND: HeaderName = HeaderName::from_static("x-omniroute-cache-kind");
const X_CACHE_SIMILARITY: HeaderName = HeaderName::from_static("x-omniroute-cache-similarity");
const X_CACHE_REASON: HeaderName = HeaderName::from_static("x-omniroute-cache-reason");
const X_CACHE_SAVED: HeaderName = HeaderName::from_static("x-omniroute-cache-saved-usd");
const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

pub(super) fn route_headers(h: &mut HeaderMap, route: &RouteInfo) {
    // Room for the dozen headers below: one growth, not several.
    h.reserve(12);
    h.insert(X_PROVIDER, header(&route.provider));
    h.insert(X_ACCOUNT, header(&route.account_id));
    h.insert(X_MODEL, header(&route.model));
    h.insert(X_ATTEMPTS, HeaderValue::from(route.attempts));
    h.insert(X_UPSTREAM_MS, decimal_header(route.upstream_ms, 3));
    h.insert(X_OVERHEAD_MS, decimal_header(route.overhead_ms, 3));
    h.insert(X_TIER, header(&route.tier));
    if let Some(combo) = &route.combo {
        h.insert(X_COMBO, header(combo));
    }
    if let Some(strategy) = &route.strategy {
        h.insert(X_STRATEGY, header(strategy));
    }
    if let Some(cost) = route.cost_usd {
        h.insert(X_COST_USD, decimal_header(cost, 8));
    }
    if !route.skipped.is_empty() {
        h.insert(X_SKIPPED, header(&ascii_list(&route.skipped)));
    }
    if !route.failed.is_empty() {
        h.insert(X_FAILED, header(&ascii_list(&route.failed)));
    }
    if let Some(t) = &route.translation {
        h.insert(X_TRANSLATION, header(t));
    }
    if !route.translation_notes.is_empty() {
        let text: String = route
            .translation_notes
            .join("; ")
            .chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control())
            .take(500)
            .collect();
        h.insert(X_TRANSLATION_NOTES, header(&text));
    }
    if let Some(c) = &route.cache {
        h.insert(X_CACHE, HeaderValue::from_static(c.status.as_str()));
        if let Some(k) = c.kind {
            h.insert(X_CACHE_KIND, HeaderValue::from_static(k.as_str()));
        }
        if let Some(s) = c.similarity {
            h.insert(X_CACHE_SIMILARITY, header(&format!("{s:.4}")));
        }
        if let Some(age) = c.age_s {
            h.insert(axum::http::header::AGE, header(&age.to_string()));
        }
        if let Some(usd) = c.saved_usd {
            h.insert(X_CACHE_SAVED, decimal_header(usd, 8));
        }
        if let Some(r) = &c.reason {
            h.insert(X_CACHE_REASON, header(&ascii_list(std::slice::from_ref(r))));
        }
        if c.idempotent_replay {
            h.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
        }
    }
    if let Some(note) = &route.context_relay {
        h.insert(
            X_CONTEXT_RELAY,
            header(&ascii_list(std::slice::from_ref(note))),
        );
    }
}

/// A header-safe list: printable ASCII, each item cut at 200 characters.
fn ascii_list(items: &[String]) -> String {
    let mut out = String::with_capacity(items.iter().map(|i| i.len().min(200) + 3).sum());
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push_str(" | ");
        }
        // Printable ASCII only (a header cannot carry the rest), 200 characters each.
        out.extend(
            item.chars()
                .filter(|c| c.is_ascii() && !c.is_ascii_control())
                .take(200),
        );
    }
    out
}
