//! Errors on the OpenAI-compatible surface, rendered in OpenAI's error shape
//! in this one place.

use crate::proxy::ProxyError;
use crate::registry::ResolveError;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: Option<String>,
    pub message: String,
    pub param: Option<&'static str>,
    pub retry_after: Option<String>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        code: &str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            kind,
            code: Some(code.to_string()),
            message: message.into(),
            param: None,
            retry_after: None,
        }
    }

    pub fn invalid_request(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            code,
            message,
        )
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            message,
        )
    }

    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            format!(
                "request body is larger than the limit of {limit} bytes (server.max_body_bytes)"
            ),
        )
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal_error",
            message,
        )
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body())).into_response();
        if let Some(ra) = self
            .retry_after
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            resp.headers_mut().insert("retry-after", ra);
        }
        resp
    }
}

impl From<ProxyError> for ApiError {
    fn from(e: ProxyError) -> ApiError {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_GATEWAY);
        let retry_after = e.retry_after();
        let message = e.to_string();
        let (kind, code): (&'static str, String) = match &e {
            ProxyError::BadRequest(_) => ("invalid_request_error", "invalid_request".into()),
            ProxyError::IdempotencyConflict(_) => {
                ("invalid_request_error", "idempotency_key_reused".into())
            }
            ProxyError::Resolve(ResolveError::UnknownModel { .. }) => {
                ("invalid_request_error", "model_not_found".into())
            }
            ProxyError::Resolve(ResolveError::NoAccount { .. }) => {
                ("invalid_request_error", "provider_not_configured".into())
            }
            ProxyError::Unsupported(_) => (
                "invalid_request_error",
                "unsupported_upstream_format".into(),
            ),
            ProxyError::Rejected { status, .. } => {
                ("invalid_request_error", format!("upstream_{status}"))
            }
            ProxyError::Timeout(..) => ("upstream_error", "upstream_timeout".into()),
            ProxyError::NoTarget {
                budget_only: true, ..
            } => ("insufficient_quota", "budget_exhausted".into()),
            ProxyError::NoTarget { .. } => ("upstream_error", "no_target_available".into()),
            ProxyError::AllFailed { attempts } => {
                let code = match attempts.last().and_then(|a| a.status) {
                    Some(429) if status == StatusCode::TOO_MANY_REQUESTS => {
                        "rate_limit_exceeded".to_string()
                    }
                    Some(s) => format!("upstream_{s}"),
                    None => "upstream_unreachable".to_string(),
                };
                ("upstream_error", code)
            }
        };
        ApiError {
            status,
            kind,
            code: Some(code),
            message,
            param: match e {
                ProxyError::Resolve(_) => Some("model"),
                _ => None,
            },
            retry_after,
        }
    }
}
