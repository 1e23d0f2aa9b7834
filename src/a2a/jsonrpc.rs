//! JSON-RPC 2.0 envelopes and the A2A error codes.
//!
//! Error objects, the standard codes and the `"2.0"` marker are
//! `jsonrpsee-types`' (`ErrorObjectOwned`, `*_CODE`, `TwoPointZero`). The
//! request id is not: `jsonrpsee_types::Id` holds a number only as a `u64`,
//! so an id such as `123456789012345678901234567890`, `-1` or `1.5` (all
//! valid JSON-RPC ids) fails to decode with it, and a `serde_json::Value`
//! would round the first to `1.2345678901234568e29`. The id is therefore kept
//! as the raw JSON text the client sent (`Box<RawValue>`) and written back
//! byte for byte; the test `jsonrpsee_ids_cannot_carry_every_valid_id` keeps
//! the measurement honest if jsonrpsee ever widens its type.

use jsonrpsee_types::error::{
    ErrorObjectOwned, INTERNAL_ERROR_CODE, INVALID_PARAMS_CODE, INVALID_REQUEST_CODE,
    METHOD_NOT_FOUND_CODE, PARSE_ERROR_CODE,
};
use jsonrpsee_types::TwoPointZero;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// The request id exactly as the client wrote it: a string, a number or null.
pub type Id = Box<RawValue>;

/// The `null` id (for answers to requests whose id could not be read).
pub fn null_id() -> Id {
    RawValue::from_string("null".into()).unwrap_or_else(|_| Box::<RawValue>::default())
}

/// A decoded request envelope.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: Id,
    pub method: String,
    pub params: Value,
    /// No `id` was sent. A2A has no notifications, so the request is refused,
    /// but only after its method and params are checked: the most specific
    /// error wins (-32601, -32602, then -32600).
    pub missing_id: bool,
}

/// Every error this surface answers with, by A2A/JSON-RPC code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RpcError {
    #[error("Invalid JSON payload: {0}")]
    Parse(String),
    #[error("Request payload validation error: {0}")]
    InvalidRequest(String),
    #[error("Method not found: {0}")]
    MethodNotFound(String),
    #[error("Invalid parameters: {0}")]
    InvalidParams(String),
    #[error("Internal error: {0}")]
    Internal(String),
    #[error("Task not found: {0}")]
    TaskNotFound(String),
    #[error("Task cannot be canceled: {0}")]
    TaskNotCancelable(String),
    #[error("Push notifications are not supported by this agent")]
    PushNotSupported,
    #[error("This operation is not supported: {0}")]
    Unsupported(String),
    #[error("Content type not supported: {0}")]
    ContentType(String),
    #[error("Invalid agent response: {0}")]
    InvalidAgentResponse(String),
    #[error("Extended agent card not configured")]
    ExtendedCardNotConfigured,
    #[error("Extension support required: {0}")]
    ExtensionRequired(String),
    #[error("A2A version {0:?} is not supported; this agent speaks 1.0 and 0.3")]
    VersionNotSupported(String),
    /// The client key lacks the scope the skill needs (JSON-RPC leaves
    /// -32000..-32099 to servers; A2A uses -32001..-32009).
    #[error("Forbidden: {0}")]
    Forbidden(String),
}

impl RpcError {
    pub fn code(&self) -> i32 {
        match self {
            RpcError::Parse(_) => PARSE_ERROR_CODE,
            RpcError::InvalidRequest(_) => INVALID_REQUEST_CODE,
            RpcError::MethodNotFound(_) => METHOD_NOT_FOUND_CODE,
            RpcError::InvalidParams(_) => INVALID_PARAMS_CODE,
            RpcError::Internal(_) => INTERNAL_ERROR_CODE,
            RpcError::TaskNotFound(_) => -32001,
            RpcError::TaskNotCancelable(_) => -32002,
            RpcError::PushNotSupported => -32003,
            RpcError::Unsupported(_) => -32004,
            RpcError::ContentType(_) => -32005,
            RpcError::InvalidAgentResponse(_) => -32006,
            RpcError::ExtendedCardNotConfigured => -32007,
            RpcError::ExtensionRequired(_) => -32008,
            RpcError::VersionNotSupported(_) => -32009,
            RpcError::Forbidden(_) => -32000,
        }
    }

    /// The google.rpc.ErrorInfo reason for A2A-specific errors.
    fn reason(&self) -> Option<&'static str> {
        Some(match self {
            RpcError::TaskNotFound(_) => "TASK_NOT_FOUND",
            RpcError::TaskNotCancelable(_) => "TASK_NOT_CANCELABLE",
            RpcError::PushNotSupported => "PUSH_NOTIFICATION_NOT_SUPPORTED",
            RpcError::Unsupported(_) => "UNSUPPORTED_OPERATION",
            RpcError::ContentType(_) => "CONTENT_TYPE_NOT_SUPPORTED",
            RpcError::InvalidAgentResponse(_) => "INVALID_AGENT_RESPONSE",
            RpcError::ExtendedCardNotConfigured => "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
            RpcError::ExtensionRequired(_) => "EXTENSION_SUPPORT_REQUIRED",
            RpcError::VersionNotSupported(_) => "VERSION_NOT_SUPPORTED",
            RpcError::Forbidden(_) => "INSUFFICIENT_SCOPE",
            _ => return None,
        })
    }

    /// The JSON-RPC error object (A2A errors carry an ErrorInfo in `data`).
    pub fn to_object(&self) -> ErrorObjectOwned {
        let data = self.reason().map(|reason| {
            json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "a2a-protocol.org",
            }])
        });
        ErrorObjectOwned::owned(self.code(), self.to_string(), data)
    }

    /// The error object as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.to_object()).unwrap_or(Value::Null)
    }
}

#[derive(Serialize)]
struct Success<'a, T: Serialize> {
    jsonrpc: TwoPointZero,
    id: &'a RawValue,
    result: T,
}

#[derive(Serialize)]
struct Failure<'a> {
    jsonrpc: TwoPointZero,
    id: &'a RawValue,
    error: ErrorObjectOwned,
}

/// A success response, with the id written as the client sent it.
pub fn success<T: Serialize>(id: &RawValue, result: T) -> String {
    serde_json::to_string(&Success {
        jsonrpc: TwoPointZero,
        id,
        result,
    })
    .unwrap_or_else(|e| failure(id, &RpcError::Internal(e.to_string())))
}

/// An error response, with the id written as the client sent it.
pub fn failure(id: &RawValue, err: &RpcError) -> String {
    serde_json::to_string(&Failure {
        jsonrpc: TwoPointZero,
        id,
        error: err.to_object(),
    })
    .unwrap_or_default()
}

/// The envelope as read: members kept raw so the id is never re-encoded.
#[derive(Deserialize)]
struct Envelope {
    jsonrpc: Option<Box<RawValue>>,
    id: Option<Box<RawValue>>,
    method: Option<Value>,
    params: Option<Value>,
}

/// Decode a request body into an envelope; the id is returned with the error
/// when it could be read, so the answer can echo it.
pub fn decode(body: &[u8]) -> Result<Request, (Id, RpcError)> {
    // First: is it JSON at all, and one object?
    let raw: &RawValue =
        serde_json::from_slice(body).map_err(|e| (null_id(), RpcError::Parse(e.to_string())))?;
    if !raw.get().trim_start().starts_with('{') {
        return Err((
            null_id(),
            RpcError::InvalidRequest("the body must be one JSON-RPC request object".into()),
        ));
    }
    let env: Envelope = serde_json::from_str(raw.get())
        .map_err(|e| (null_id(), RpcError::InvalidRequest(e.to_string())))?;
    let mut missing_id = false;
    let id = match env.id {
        Some(id) => {
            let first = id.get().as_bytes().first().copied().unwrap_or(b'n');
            match first {
                b'"' | b'-' | b'0'..=b'9' => id,
                b'n' => {
                    missing_id = true;
                    null_id()
                }
                _ => {
                    return Err((
                        null_id(),
                        RpcError::InvalidRequest("`id` must be a string or a number".into()),
                    ))
                }
            }
        }
        None => {
            missing_id = true;
            null_id()
        }
    };
    if env.jsonrpc.as_ref().map(|v| v.get()) != Some("\"2.0\"") {
        return Err((
            id,
            RpcError::InvalidRequest("`jsonrpc` must be \"2.0\"".into()),
        ));
    }
    let method = match env.method {
        Some(Value::String(m)) if !m.is_empty() => m,
        _ => {
            return Err((
                id,
                RpcError::InvalidRequest("`method` must be a non-empty string".into()),
            ))
        }
    };
    let params = match env.params {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(p @ Value::Object(_)) => p,
        Some(_) => {
            return Err((
                id,
                RpcError::InvalidParams("`params` must be an object".into()),
            ))
        }
    };
    Ok(Request {
        id,
        method,
        params,
        missing_id,
    })
}

/// The error for a request that came without an id.
pub fn missing_id() -> RpcError {
    RpcError::InvalidRequest("`id` (a string or a number) is required".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_checked_in_order() {
        assert_eq!(decode(b"{").unwrap_err().1.code(), -32700);
        assert_eq!(decode(b"[]").unwrap_err().1.code(), -32600);
        assert!(
            decode(br#"{"jsonrpc":"2.0","method":"x"}"#)
                .unwrap()
                .missing_id
        );
        let (id, e) = decode(br#"{"jsonrpc":"1.0","id":7,"method":"x"}"#).unwrap_err();
        assert_eq!((id.get(), e.code()), ("7", -32600));
        let (_, e) =
            decode(br#"{"jsonrpc":"2.0","id":"a","method":"x","params":[1]}"#).unwrap_err();
        assert_eq!(e.code(), -32602);
        let r = decode(br#"{"jsonrpc":"2.0","id":"a","method":"GetTask"}"#).unwrap();
        assert_eq!(r.method, "GetTask");
        assert!(r.params.as_object().unwrap().is_empty());
        let e = RpcError::TaskNotFound("t".into()).to_json();
        assert_eq!(e["code"], -32001);
        assert_eq!(e["data"][0]["reason"], "TASK_NOT_FOUND");
        assert!(RpcError::Parse("x".into()).to_json().get("data").is_none());
    }

    #[test]
    fn ids_are_echoed_byte_for_byte() {
        for id in [
            "123456789012345678901234567890",
            "-1",
            "1.5",
            "\"a\\u00e9\"",
            "0",
        ] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"GetTask"}}"#);
            let r = decode(body.as_bytes()).unwrap();
            assert_eq!(r.id.get(), id);
            let out = success(&r.id, json!({"ok": true}));
            assert!(out.contains(&format!(r#""id":{id}"#)), "{out}");
            let out = failure(&r.id, &RpcError::TaskNotFound("t".into()));
            assert!(out.contains(&format!(r#""id":{id}"#)), "{out}");
        }
        let (id, e) = decode(br#"{"jsonrpc":"2.0","id":{"x":1},"method":"m"}"#).unwrap_err();
        assert_eq!((id.get(), e.code()), ("null", -32600));
    }

    /// Why the envelope's id is not `jsonrpsee_types::Id` (see the module doc).
    #[test]
    fn jsonrpsee_ids_cannot_carry_every_valid_id() {
        for id in ["123456789012345678901234567890", "-1", "1.5"] {
            assert!(
                serde_json::from_str::<jsonrpsee_types::Id>(id).is_err(),
                "{id}"
            );
        }
        assert!(serde_json::from_str::<jsonrpsee_types::Id>("7").is_ok());
    }
}
