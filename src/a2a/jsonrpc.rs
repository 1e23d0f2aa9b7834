//! JSON-RPC 2.0 envelopes and the A2A error codes. Small own types: the
//! surface needs only the request envelope, two response shapes and one error
//! enum, so a JSON-RPC framework would add more than it saves.

use serde_json::{json, Value};

/// The request id: a string, a number or null (echoed back as given).
pub type Id = Value;

/// A decoded request envelope.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: Id,
    pub method: String,
    pub params: Value,
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
    pub fn code(&self) -> i64 {
        match self {
            RpcError::Parse(_) => -32700,
            RpcError::InvalidRequest(_) => -32600,
            RpcError::MethodNotFound(_) => -32601,
            RpcError::InvalidParams(_) => -32602,
            RpcError::Internal(_) => -32603,
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

    /// The JSON-RPC error object.
    pub fn to_json(&self) -> Value {
        let mut e = json!({ "code": self.code(), "message": self.to_string() });
        if let Some(reason) = self.reason() {
            e["data"] = json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "a2a-protocol.org",
            }]);
        }
        e
    }
}

pub fn success(id: &Id, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

pub fn failure(id: &Id, err: &RpcError) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": err.to_json() })
}

/// Decode a request body into an envelope; the id is returned with the error
/// when it could be read, so the answer can echo it.
pub fn decode(body: &[u8]) -> Result<Request, (Id, RpcError)> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| (Value::Null, RpcError::Parse(e.to_string())))?;
    let Value::Object(mut obj) = v else {
        return Err((
            Value::Null,
            RpcError::InvalidRequest("the body must be one JSON-RPC request object".into()),
        ));
    };
    let id = match obj.remove("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id,
        Some(Value::Null) | None => {
            return Err((
                Value::Null,
                RpcError::InvalidRequest("`id` (a string or a number) is required".into()),
            ))
        }
        Some(_) => {
            return Err((
                Value::Null,
                RpcError::InvalidRequest("`id` must be a string or a number".into()),
            ))
        }
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err((
            id,
            RpcError::InvalidRequest("`jsonrpc` must be \"2.0\"".into()),
        ));
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) if !m.is_empty() => m,
        _ => {
            return Err((
                id,
                RpcError::InvalidRequest("`method` must be a non-empty string".into()),
            ))
        }
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(p @ Value::Object(_)) => p,
        Some(_) => {
            return Err((
                id,
                RpcError::InvalidParams("`params` must be an object".into()),
            ))
        }
    };
    Ok(Request { id, method, params })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_checked_in_order() {
        assert_eq!(decode(b"{").unwrap_err().1.code(), -32700);
        assert_eq!(decode(b"[]").unwrap_err().1.code(), -32600);
        assert_eq!(
            decode(br#"{"jsonrpc":"2.0","method":"x"}"#)
                .unwrap_err()
                .1
                .code(),
            -32600
        );
        let (id, e) = decode(br#"{"jsonrpc":"1.0","id":7,"method":"x"}"#).unwrap_err();
        assert_eq!((id, e.code()), (json!(7), -32600));
        let (_, e) =
            decode(br#"{"jsonrpc":"2.0","id":"a","method":"x","params":[1]}"#).unwrap_err();
        assert_eq!(e.code(), -32602);
        let r = decode(br#"{"jsonrpc":"2.0","id":"a","method":"GetTask"}"#).unwrap();
        assert_eq!(r.method, "GetTask");
        assert!(r.params.as_object().unwrap().is_empty());
        let e = RpcError::TaskNotFound("t".into()).to_json();
        assert_eq!(e["code"], -32001);
        assert_eq!(e["data"][0]["reason"], "TASK_NOT_FOUND");
    }
}
