//! The two A2A wire dialects over one task model: 1.0 (ProtoJSON names,
//! `TASK_STATE_*`/`ROLE_*` enums, parts by member, results wrapped by kind)
//! and 0.3 (`kind` on every object, lowercase states, `file` parts, `final`
//! on status updates). Decoding is lenient and accepts either dialect, plus
//! the README's `{role, content}` shorthand.

use super::jsonrpc::RpcError;
use crate::ops::tasks::{Artifact, Message, Part, Role, Task, TaskState, TaskStatus};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    V1,
    V03,
}

/// One change to a running task, as streams carry it.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskEvent {
    Status {
        status: TaskStatus,
        is_final: bool,
    },
    Artifact {
        artifact: Artifact,
        append: bool,
        last_chunk: bool,
    },
}

fn state_v1(s: TaskState) -> &'static str {
    match s {
        TaskState::Submitted => "TASK_STATE_SUBMITTED",
        TaskState::Working => "TASK_STATE_WORKING",
        TaskState::InputRequired => "TASK_STATE_INPUT_REQUIRED",
        TaskState::Completed => "TASK_STATE_COMPLETED",
        TaskState::Canceled => "TASK_STATE_CANCELED",
        TaskState::Failed => "TASK_STATE_FAILED",
        TaskState::Rejected => "TASK_STATE_REJECTED",
        TaskState::AuthRequired => "TASK_STATE_AUTH_REQUIRED",
    }
}

/// A state in either spelling.
pub fn parse_state(s: &str) -> Option<TaskState> {
    TaskState::parse(s).or_else(|| TaskState::ALL.into_iter().find(|t| state_v1(*t) == s))
}

fn put(obj: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        obj.insert(key.into(), v);
    }
}

impl Dialect {
    pub fn part(self, p: &Part) -> Value {
        let mut o = Map::new();
        match self {
            Dialect::V1 => {
                put(&mut o, "text", p.text.clone().map(Value::String));
                put(&mut o, "data", p.data.clone());
                put(&mut o, "url", p.url.clone().map(Value::String));
                put(&mut o, "raw", p.raw.clone().map(Value::String));
                put(&mut o, "mediaType", p.media_type.clone().map(Value::String));
                put(&mut o, "filename", p.filename.clone().map(Value::String));
                put(&mut o, "metadata", p.metadata.clone());
            }
            Dialect::V03 => {
                let mut meta = p.metadata.clone();
                if let Some(t) = &p.text {
                    o.insert("kind".into(), json!("text"));
                    o.insert("text".into(), json!(t));
                } else if let Some(d) = &p.data {
                    o.insert("kind".into(), json!("data"));
                    // 0.3 data parts are objects; others travel wrapped, as the SDKs do.
                    if d.is_object() {
                        o.insert("data".into(), d.clone());
                    } else {
                        o.insert("data".into(), json!({ "value": d }));
                        let mut m = meta
                            .and_then(|m| m.as_object().cloned())
                            .unwrap_or_default();
                        m.insert("data_part_compat".into(), json!(true));
                        meta = Some(Value::Object(m));
                    }
                } else {
                    let mut f = Map::new();
                    put(&mut f, "uri", p.url.clone().map(Value::String));
                    put(&mut f, "bytes", p.raw.clone().map(Value::String));
                    put(&mut f, "mimeType", p.media_type.clone().map(Value::String));
                    put(&mut f, "name", p.filename.clone().map(Value::String));
                    o.insert("kind".into(), json!("file"));
                    o.insert("file".into(), Value::Object(f));
                }
                put(&mut o, "metadata", meta);
            }
        }
        Value::Object(o)
    }

    pub fn message(self, m: &Message) -> Value {
        let mut o = Map::new();
        if self == Dialect::V03 {
            o.insert("kind".into(), json!("message"));
        }
        o.insert("messageId".into(), json!(m.message_id));
        put(&mut o, "contextId", m.context_id.clone().map(Value::String));
        put(&mut o, "taskId", m.task_id.clone().map(Value::String));
        let role = match (self, m.role) {
            (Dialect::V1, Role::User) => "ROLE_USER",
            (Dialect::V1, Role::Agent) => "ROLE_AGENT",
            (Dialect::V03, Role::User) => "user",
            (Dialect::V03, Role::Agent) => "agent",
        };
        o.insert("role".into(), json!(role));
        o.insert(
            "parts".into(),
            Value::Array(m.parts.iter().map(|p| self.part(p)).collect()),
        );
        put(&mut o, "metadata", m.metadata.clone());
        if !m.reference_task_ids.is_empty() {
            o.insert("referenceTaskIds".into(), json!(m.reference_task_ids));
        }
        if !m.extensions.is_empty() {
            o.insert("extensions".into(), json!(m.extensions));
        }
        Value::Object(o)
    }

    pub fn status(self, s: &TaskStatus) -> Value {
        let mut o = Map::new();
        let state = match self {
            Dialect::V1 => state_v1(s.state),
            Dialect::V03 => s.state.as_str(),
        };
        o.insert("state".into(), json!(state));
        put(
            &mut o,
            "message",
            s.message.as_ref().map(|m| self.message(m)),
        );
        o.insert("timestamp".into(), json!(s.timestamp));
        Value::Object(o)
    }

    pub fn artifact(self, a: &Artifact) -> Value {
        let mut o = Map::new();
        o.insert("artifactId".into(), json!(a.artifact_id));
        put(&mut o, "name", a.name.clone().map(Value::String));
        put(
            &mut o,
            "description",
            a.description.clone().map(Value::String),
        );
        o.insert(
            "parts".into(),
            Value::Array(a.parts.iter().map(|p| self.part(p)).collect()),
        );
        put(&mut o, "metadata", a.metadata.clone());
        Value::Object(o)
    }

    /// A task; `artifacts: false` leaves the member out (ListTasks default).
    pub fn task(self, t: &Task, artifacts: bool) -> Value {
        let mut o = Map::new();
        if self == Dialect::V03 {
            o.insert("kind".into(), json!("task"));
        }
        o.insert("id".into(), json!(t.id));
        o.insert("contextId".into(), json!(t.context_id));
        o.insert("status".into(), self.status(&t.status));
        if artifacts && (self == Dialect::V1 || !t.artifacts.is_empty()) {
            o.insert(
                "artifacts".into(),
                Value::Array(t.artifacts.iter().map(|a| self.artifact(a)).collect()),
            );
        }
        if !t.history.is_empty() {
            o.insert(
                "history".into(),
                Value::Array(t.history.iter().map(|m| self.message(m)).collect()),
            );
        }
        put(&mut o, "metadata", t.metadata.clone());
        Value::Object(o)
    }

    /// The result of a send: 1.0 wraps it by kind, 0.3 tags it with `kind`.
    pub fn send_result(self, t: &Task) -> Value {
        match self {
            Dialect::V1 => json!({ "task": self.task(t, true) }),
            Dialect::V03 => self.task(t, true),
        }
    }

    /// One stream event for a task.
    pub fn event(self, t: &Task, ev: &TaskEvent) -> Value {
        match (self, ev) {
            (Dialect::V1, TaskEvent::Status { status, .. }) => json!({ "statusUpdate": {
                "taskId": t.id, "contextId": t.context_id, "status": self.status(status),
            }}),
            (Dialect::V03, TaskEvent::Status { status, is_final }) => json!({
                "kind": "status-update", "taskId": t.id, "contextId": t.context_id,
                "status": self.status(status), "final": is_final,
            }),
            (
                _,
                TaskEvent::Artifact {
                    artifact,
                    append,
                    last_chunk,
                },
            ) => {
                let body = json!({
                    "taskId": t.id, "contextId": t.context_id, "artifact": self.artifact(artifact),
                    "append": append, "lastChunk": last_chunk,
                });
                match self {
                    Dialect::V1 => json!({ "artifactUpdate": body }),
                    Dialect::V03 => {
                        let mut b = body;
                        b["kind"] = json!("artifact-update");
                        b
                    }
                }
            }
        }
    }

    /// The first event of a stream: the task as it stands.
    pub fn stream_task(self, t: &Task) -> Value {
        self.send_result(t)
    }
}

/// ProtoJSON readers accept a field's proto name (`history_length`) as
/// well as its JSON name (`historyLength`): rename snake_case keys of the
/// request's own objects to camelCase (user data under `data` and
/// `metadata` is left as sent).
pub fn camel_case_keys(v: &mut Value) {
    match v {
        Value::Object(o) => {
            let keys: Vec<String> = o.keys().filter(|k| k.contains('_')).cloned().collect();
            for k in keys {
                let mut camel = String::with_capacity(k.len());
                let mut up = false;
                for c in k.chars() {
                    if c == '_' {
                        up = !camel.is_empty();
                    } else if up {
                        camel.extend(c.to_uppercase());
                        up = false;
                    } else {
                        camel.push(c);
                    }
                }
                if !o.contains_key(&camel) {
                    if let Some(val) = o.remove(&k) {
                        o.insert(camel, val);
                    }
                }
            }
            for (k, child) in o.iter_mut() {
                if k != "data" && k != "metadata" {
                    camel_case_keys(child);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(camel_case_keys),
        _ => {}
    }
}

fn invalid(msg: impl Into<String>) -> RpcError {
    RpcError::InvalidParams(msg.into())
}

fn opt_str(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Media types this agent reads in a message's parts.
fn readable(media_type: &str) -> bool {
    let m = media_type.split(';').next().unwrap_or("").trim();
    m.starts_with("text/") || m == "application/json" || m.ends_with("+json")
}

/// Decode one part of either dialect.
pub fn decode_part(v: &Value, at: &str) -> Result<Part, RpcError> {
    let Some(o) = v.as_object() else {
        return Err(invalid(format!("{at} must be an object")));
    };
    let mut p = Part {
        metadata: o.get("metadata").filter(|m| !m.is_null()).cloned(),
        media_type: opt_str(v, "mediaType"),
        filename: opt_str(v, "filename"),
        ..Part::default()
    };
    match o.get("kind").and_then(Value::as_str) {
        Some("text") | None if o.get("text").is_some() => {
            p.text = Some(
                o.get("text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(format!("{at}.text must be a string")))?
                    .to_string(),
            );
        }
        Some("data") | None if o.contains_key("data") => {
            let mut d = o.get("data").cloned().unwrap_or(Value::Null);
            let compat = p
                .metadata
                .as_ref()
                .and_then(|m| m.get("data_part_compat"))
                .and_then(Value::as_bool)
                == Some(true);
            if compat {
                d = d.get("value").cloned().unwrap_or(Value::Null);
                if let Some(Value::Object(m)) = &mut p.metadata {
                    m.remove("data_part_compat");
                }
            }
            p.data = Some(d);
        }
        Some("file") => {
            let f = o.get("file").unwrap_or(&Value::Null);
            p.url = opt_str(f, "uri");
            p.raw = opt_str(f, "bytes");
            p.media_type = opt_str(f, "mimeType");
            p.filename = opt_str(f, "name");
        }
        None if o.contains_key("url") || o.contains_key("raw") => {
            p.url = opt_str(v, "url");
            p.raw = opt_str(v, "raw");
        }
        _ => {
            return Err(invalid(format!(
            "{at} must carry one of text, data, url or raw (1.0) or kind text, data or file (0.3)"
        )))
        }
    }
    if p.url.is_some() || p.raw.is_some() {
        return Err(RpcError::ContentType(format!(
            "{at} is a file{}; this agent reads text and JSON parts only",
            p.media_type
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        )));
    }
    if let Some(m) = p.media_type.as_deref().filter(|m| !readable(m)) {
        return Err(RpcError::ContentType(format!(
            "{at} has media type {m}; this agent reads text/plain and application/json"
        )));
    }
    Ok(p)
}

fn decode_role(v: Option<&Value>, at: &str) -> Result<Role, RpcError> {
    match v.and_then(Value::as_str) {
        Some("user" | "ROLE_USER") => Ok(Role::User),
        Some("agent" | "ROLE_AGENT" | "assistant") => Ok(Role::Agent),
        Some(other) => Err(invalid(format!(
            "{at}.role {other:?} is not ROLE_USER/ROLE_AGENT (1.0) or user/agent (0.3)"
        ))),
        None => Err(invalid(format!("{at}.role is required"))),
    }
}

/// Decode a message of either dialect, or the `{role, content}` shorthand.
pub fn decode_message(v: &Value, at: &str) -> Result<Message, RpcError> {
    if !v.is_object() {
        return Err(invalid(format!("{at} must be an object")));
    }
    let role = decode_role(v.get("role"), at)?;
    let parts = match (v.get("parts"), v.get("content")) {
        (Some(Value::Array(parts)), _) => parts
            .iter()
            .enumerate()
            .map(|(i, p)| decode_part(p, &format!("{at}.parts[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
        (None, Some(Value::String(text))) => vec![Part::text(text.clone())],
        (None, Some(Value::Array(items))) => items
            .iter()
            .enumerate()
            .map(|(i, p)| match p {
                Value::String(s) => Ok(Part::text(s.clone())),
                Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("text") => Ok(
                    Part::text(o.get("text").and_then(Value::as_str).unwrap_or_default()),
                ),
                other => decode_part(other, &format!("{at}.content[{i}]")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            return Err(invalid(format!(
                "{at} needs `parts` (a list) or `content` (a string)"
            )))
        }
    };
    if parts.is_empty() {
        return Err(invalid(format!("{at}.parts must not be empty")));
    }
    Ok(Message {
        message_id: opt_str(v, "messageId").unwrap_or_else(crate::ops::tasks::new_id),
        context_id: opt_str(v, "contextId"),
        task_id: opt_str(v, "taskId"),
        role,
        parts,
        metadata: v.get("metadata").filter(|m| m.is_object()).cloned(),
        reference_task_ids: v
            .get("referenceTaskIds")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        extensions: Vec::new(),
    })
}

/// What a send asks for, in either dialect.
#[derive(Debug, Clone)]
pub struct SendParams {
    pub message: Message,
    /// Earlier turns given with the shorthand `messages` list (role, text).
    pub prior: Vec<(Role, String)>,
    /// `params.skill` or `params.metadata.skill`.
    pub skill: Option<String>,
    pub return_immediately: bool,
    pub history_length: Option<usize>,
    pub metadata: Option<Value>,
}

fn history_length(v: Option<&Value>) -> Result<Option<usize>, RpcError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n
            .as_u64()
            .map(|n| Some(n as usize))
            .ok_or_else(|| invalid("historyLength must be a non-negative integer")),
    }
}

/// Decode `SendMessageRequest` (1.0), `MessageSendParams` (0.3) or the shorthand.
pub fn decode_send(params: &Value) -> Result<SendParams, RpcError> {
    let (message, prior) =
        match (params.get("message"), params.get("messages")) {
            (Some(m), _) => (decode_message(m, "params.message")?, Vec::new()),
            (None, Some(Value::Array(list))) if !list.is_empty() => {
                let mut msgs = list
                    .iter()
                    .enumerate()
                    .map(|(i, m)| decode_message(m, &format!("params.messages[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                let last = msgs
                    .pop()
                    .ok_or_else(|| invalid("params.messages is empty"))?;
                (last, msgs.into_iter().map(|m| (m.role, m.text())).collect())
            }
            _ => return Err(invalid(
                "params.message is required (or the shorthand params.messages: [{role, content}])",
            )),
        };
    let config = params.get("configuration").unwrap_or(&Value::Null);
    if let Some(modes) = config.get("acceptedOutputModes").and_then(Value::as_array) {
        let ours = |m: &str| {
            let m = m.split(';').next().unwrap_or("").trim();
            m == "*/*" || m == "text/*" || m == "text/plain" || m == "application/json"
        };
        if !modes.is_empty() && !modes.iter().filter_map(Value::as_str).any(ours) {
            return Err(RpcError::ContentType(format!(
                "acceptedOutputModes {modes:?}: this agent answers in text/plain and application/json"
            )));
        }
    }
    let return_immediately = config
        .get("returnImmediately")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        || config.get("blocking").and_then(Value::as_bool) == Some(false);
    let metadata = params.get("metadata").filter(|m| m.is_object()).cloned();
    let skill =
        opt_str(params, "skill").or_else(|| metadata.as_ref().and_then(|m| opt_str(m, "skill")));
    Ok(SendParams {
        message,
        prior,
        skill,
        return_immediately,
        history_length: history_length(config.get("historyLength"))?,
        metadata,
    })
}

/// `{id, historyLength}` of GetTask / tasks/get, CancelTask, SubscribeToTask.
pub fn decode_task_id(params: &Value) -> Result<(String, Option<usize>), RpcError> {
    let id = opt_str(params, "id").ok_or_else(|| invalid("params.id (the task id) is required"))?;
    Ok((id, history_length(params.get("historyLength"))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_and_the_shorthand_decode_to_one_message() {
        let v1 = json!({"message": {"messageId": "m1", "role": "ROLE_USER",
            "parts": [{"text": "hi"}, {"data": {"skill": "health"}, "mediaType": "application/json"}]},
            "configuration": {"returnImmediately": true, "historyLength": 2}});
        let p = decode_send(&v1).unwrap();
        assert_eq!(p.message.message_id, "m1");
        assert_eq!(p.message.parts[1].data, Some(json!({"skill": "health"})));
        assert!(p.return_immediately);
        assert_eq!(p.history_length, Some(2));

        let v03 = json!({"message": {"kind": "message", "messageId": "m2", "role": "user",
            "parts": [{"kind": "text", "text": "hi"}, {"kind": "data", "data": {"value": [1]},
            "metadata": {"data_part_compat": true}}]}, "configuration": {"blocking": false}});
        let p = decode_send(&v03).unwrap();
        assert_eq!(p.message.parts[1].data, Some(json!([1])));
        assert!(p.return_immediately);

        let short = json!({"skill": "quota-management", "messages": [
            {"role": "user", "content": "Give me a short quota summary."}]});
        let p = decode_send(&short).unwrap();
        assert_eq!(p.skill.as_deref(), Some("quota-management"));
        assert_eq!(p.message.text(), "Give me a short quota summary.");
        assert_eq!(p.message.role, Role::User);
    }

    #[test]
    fn proto_field_names_are_read_too() {
        let mut p = json!({"id": "t", "history_length": 1, "message": {"message_id": "m",
            "role": "ROLE_USER", "parts": [{"text": "x", "media_type": "text/plain"}],
            "metadata": {"keep_me": 1}}, "historyLength_x": 2});
        camel_case_keys(&mut p);
        assert_eq!(p["historyLength"], 1);
        assert_eq!(p["message"]["messageId"], "m");
        assert_eq!(p["message"]["parts"][0]["mediaType"], "text/plain");
        assert_eq!(p["message"]["metadata"]["keep_me"], 1);
    }

    #[test]
    fn files_and_foreign_media_types_are_content_type_errors() {
        let file = json!({"message": {"messageId": "m", "role": "user",
            "parts": [{"kind": "file", "file": {"uri": "http://x/y.png", "mimeType": "image/png"}}]}});
        assert_eq!(decode_send(&file).unwrap_err().code(), -32005);
        let png = json!({"message": {"messageId": "m", "role": "ROLE_USER",
            "parts": [{"text": "x", "mediaType": "image/png"}]}});
        assert_eq!(decode_send(&png).unwrap_err().code(), -32005);
        let modes = json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "x"}]},
            "configuration": {"acceptedOutputModes": ["image/png"]}});
        assert_eq!(decode_send(&modes).unwrap_err().code(), -32005);
        assert_eq!(decode_send(&json!({})).unwrap_err().code(), -32602);
    }

    #[test]
    fn tasks_render_in_each_dialect() {
        let mut t = Task::new("ctx".into(), "health");
        t.status = TaskStatus::now(TaskState::Completed, None);
        t.artifacts.push(Artifact {
            artifact_id: "a".into(),
            name: None,
            description: None,
            parts: vec![Part::text("ok"), Part::data(json!({"n": 1}))],
            metadata: None,
        });
        let v1 = Dialect::V1.send_result(&t);
        assert_eq!(v1["task"]["status"]["state"], "TASK_STATE_COMPLETED");
        assert_eq!(v1["task"]["artifacts"][0]["parts"][1]["data"]["n"], 1);
        assert!(v1["task"].get("kind").is_none());
        let v03 = Dialect::V03.send_result(&t);
        assert_eq!(v03["kind"], "task");
        assert_eq!(v03["status"]["state"], "completed");
        assert_eq!(v03["artifacts"][0]["parts"][0]["kind"], "text");
        let ev = TaskEvent::Status {
            status: t.status.clone(),
            is_final: true,
        };
        assert_eq!(Dialect::V03.event(&t, &ev)["final"], true);
        assert_eq!(
            Dialect::V1.event(&t, &ev)["statusUpdate"]["status"]["state"],
            "TASK_STATE_COMPLETED"
        );
        assert_eq!(parse_state("TASK_STATE_WORKING"), Some(TaskState::Working));
        assert_eq!(
            parse_state("input-required"),
            Some(TaskState::InputRequired)
        );
    }
}
