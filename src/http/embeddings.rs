//! `POST /v1/embeddings`: the client's body passed through the router to an
//! OpenAI-format upstream (model rewritten to the target's), the answer
//! back as it came, with route headers. Fallback and budgets apply.

use super::chat::{read_body, route_headers};
use super::error::ApiError;
use super::{header, AppState, Caller};
use crate::embeddings::{self, EmbedCall};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub async fn embeddings(State(state): State<AppState>, req: Request) -> Response {
    let started = super::timing::arrived(&req);
    let request_id = state.next_request_id();
    let caller = req
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or_default();
    let result = async {
        let body = read_body(req, state.gw.settings.max_body_bytes).await?;
        embeddings::embed(
            &state.gw,
            EmbedCall {
                request_id: request_id.clone(),
                key_id: caller.key_id.clone(),
                endpoint: "embeddings",
                body,
                started,
            },
        )
        .await
        .map_err(ApiError::from)
    }
    .await;
    let mut resp = match result {
        Ok(out) => {
            let mut r = Response::new(Body::from(out.body));
            *r.status_mut() = StatusCode::from_u16(out.status).unwrap_or(StatusCode::OK);
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            route_headers(r.headers_mut(), &out.route);
            r
        }
        Err(e) => e.into_response(),
    };
    resp.headers_mut()
        .insert("x-request-id", header(&request_id));
    resp
}
