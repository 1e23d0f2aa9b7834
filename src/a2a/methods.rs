//! `POST /a2a`: decode the envelope, pick the dialect from the method name
//! (after checking `A2A-Version`), run the method, answer as JSON or SSE.

use super::jsonrpc::{self, Id, RpcError};
use super::runner::{self, Started};
use super::skills::{self, Request as SkillRequest};
use super::wire::{self, Dialect, TaskEvent};
use super::Agent;
use crate::http::Caller;
use crate::ops::tasks::{self, Task, TaskQuery, TaskState, TaskStatus};
use crate::ops::OpsError;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::{json, Map, Value};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// How long a cancel waits for the running skill to stop.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

enum Answer {
    Json(Value),
    Stream(BoxStream<'static, Value>),
}

/// Who is asking, as tasks record it.
struct Ctx {
    agent: Arc<Agent>,
    owner: String,
    who: crate::access::Principal,
    dialect: Dialect,
    headers: HeaderMap,
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn version_header(headers: &HeaderMap) -> Result<(), RpcError> {
    let Some(v) = headers.get("a2a-version") else {
        return Ok(());
    };
    let v = v.to_str().unwrap_or("?").trim();
    let mut it = v.split('.');
    let major_minor = (it.next(), it.next().unwrap_or("0"));
    match major_minor {
        (Some(""), _) => Ok(()),
        (Some("1"), "0") | (Some("0"), "3") => Ok(()),
        _ => Err(RpcError::VersionNotSupported(v.to_string())),
    }
}

async fn read_body(req: Request, limit: usize) -> Result<bytes::Bytes, Response> {
    let too_large = || {
        json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            jsonrpc::failure(
                &Value::Null,
                &RpcError::InvalidRequest(format!("the request body is larger than {limit} bytes")),
            ),
        )
    };
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| too_large())
}

pub async fn handle(State(agent): State<Arc<Agent>>, req: Request) -> Response {
    let caller = req
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or_default();
    let headers = req.headers().clone();
    let body = match read_body(req, agent.body_limit()).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let rpc = match jsonrpc::decode(&body) {
        Ok(r) => r,
        Err((id, e)) => return json_response(StatusCode::OK, jsonrpc::failure(&id, &e)),
    };
    let id = rpc.id.clone();
    let dialect = if rpc.method.contains('/') {
        Dialect::V03
    } else {
        Dialect::V1
    };
    let ctx = Ctx {
        agent,
        owner: caller.key_id.clone().unwrap_or_default(),
        who: caller,
        dialect,
        headers,
    };
    let answer = match version_header(&ctx.headers) {
        Ok(()) => dispatch(&ctx, &rpc.method, &rpc.params).await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(Answer::Json(result)) => json_response(StatusCode::OK, jsonrpc::success(&id, result)),
        Ok(Answer::Stream(events)) => sse(id, events),
        Err(e) => {
            if matches!(e, RpcError::Internal(_)) {
                tracing::error!(method = %rpc.method, error = %e, "A2A method failed");
            }
            json_response(StatusCode::OK, jsonrpc::failure(&id, &e))
        }
    }
}

fn sse(id: Id, events: BoxStream<'static, Value>) -> Response {
    let frames = events.map(move |result| {
        Ok::<_, Infallible>(Event::default().data(jsonrpc::success(&id, result).to_string()))
    });
    Sse::new(frames)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn dispatch(ctx: &Ctx, method: &str, params: &Value) -> Result<Answer, RpcError> {
    match method {
        "SendMessage" | "message/send" => send(ctx, params).await.map(Answer::Json),
        "SendStreamingMessage" | "message/stream" => stream_send(ctx, params).await,
        "GetTask" | "tasks/get" => get_task(ctx, params).await.map(Answer::Json),
        "ListTasks" => list_tasks(ctx, params).await.map(Answer::Json),
        "CancelTask" | "tasks/cancel" => cancel_task(ctx, params).await.map(Answer::Json),
        "SubscribeToTask" | "tasks/resubscribe" => subscribe(ctx, params).await,
        "GetExtendedAgentCard" | "agent/getAuthenticatedExtendedCard" => {
            Ok(Answer::Json(super::card_for(&ctx.agent.gw, &ctx.headers)))
        }
        "CreateTaskPushNotificationConfig"
        | "GetTaskPushNotificationConfig"
        | "ListTaskPushNotificationConfigs"
        | "DeleteTaskPushNotificationConfig"
        | "tasks/pushNotificationConfig/set"
        | "tasks/pushNotificationConfig/get"
        | "tasks/pushNotificationConfig/list"
        | "tasks/pushNotificationConfig/delete" => Err(RpcError::PushNotSupported),
        other => Err(RpcError::MethodNotFound(format!(
            "{other:?}; this agent serves SendMessage, SendStreamingMessage, GetTask, ListTasks, CancelTask, SubscribeToTask, GetExtendedAgentCard (1.0) and message/send, message/stream, tasks/get, tasks/cancel, tasks/resubscribe, agent/getAuthenticatedExtendedCard (0.3)"
        ))),
    }
}

fn ops_error(e: OpsError) -> RpcError {
    match e {
        OpsError::NotFound(what) => RpcError::TaskNotFound(what),
        OpsError::InvalidInput(m) => RpcError::InvalidParams(m),
        OpsError::Store(e) => RpcError::Internal(e.to_string()),
    }
}

/// A task of this caller, settled if a restart left it stuck.
async fn load(ctx: &Ctx, id: &str) -> Result<Task, RpcError> {
    let gw = &ctx.agent.gw;
    let t = tasks::get_task(gw, &ctx.owner, id)
        .await
        .map_err(ops_error)?;
    Ok(runner::settle(gw, &ctx.agent.live, &ctx.owner, t).await)
}

/// Decode a send, pick the skill, decode its input and start the task.
async fn start(
    ctx: &Ctx,
    params: &Value,
    streaming: bool,
) -> Result<(Started, wire::SendParams), RpcError> {
    let mut sp = wire::decode_send(params)?;
    let existing = match sp.message.task_id.clone() {
        None => None,
        Some(id) => {
            let t = load(ctx, &id).await?;
            if t.status.state.is_terminal() {
                return Err(RpcError::Unsupported(format!(
                    "task {id} is {}; it takes no more messages (send without taskId, in the same contextId, to start a new one)",
                    t.status.state.as_str()
                )));
            }
            if ctx.agent.live.get(&ctx.owner, &id).is_some() {
                return Err(RpcError::Unsupported(format!(
                    "task {id} is still working; wait for it, subscribe to it or cancel it"
                )));
            }
            Some(t)
        }
    };
    if let (Some(t), Some(c)) = (&existing, &sp.message.context_id) {
        if &t.context_id != c {
            return Err(RpcError::InvalidParams(format!(
                "task {} belongs to context {}, not {c}",
                t.id, t.context_id
            )));
        }
    }
    let msg_meta = sp.message.metadata.clone().unwrap_or(Value::Null);
    let data = sp.message.parts.iter().find_map(|p| p.data.as_ref());
    let named = msg_meta
        .get("skill")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| sp.skill.clone())
        .or_else(|| {
            data.and_then(|d| d.get("skill"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .or_else(|| existing.as_ref().map(|t| t.skill.clone()));
    let text = sp.message.text();
    let skill = skills::select(named.as_deref(), &text)?;
    let mut metadata = Map::new();
    for m in [&sp.metadata, &sp.message.metadata].into_iter().flatten() {
        if let Some(o) = m.as_object() {
            metadata.extend(o.clone());
        }
    }
    let input = skills::parse(
        &skill,
        &SkillRequest {
            text,
            data: skills::data_input(data),
            prior: sp.prior.clone(),
            metadata: Value::Object(metadata),
        },
    )?;
    ctx.who
        .require(
            input.scope(),
            &format!("the {skill} skill ({})", input.action()),
        )
        .map_err(|e| RpcError::Forbidden(e.to_string()))?;
    let mut task = match existing {
        Some(t) => t,
        None => Task::new(
            sp.message.context_id.clone().unwrap_or_else(tasks::new_id),
            &skill,
        ),
    };
    sp.message.task_id = Some(task.id.clone());
    sp.message.context_id = Some(task.context_id.clone());
    task.history.push(sp.message.clone());
    task.status = TaskStatus::now(TaskState::Submitted, None);
    let started = runner::start(
        ctx.agent.gw.clone(),
        ctx.agent.live.clone(),
        ctx.owner.clone(),
        ctx.who.clone(),
        task,
        input,
        streaming,
    )
    .await
    .map_err(|e| RpcError::Internal(e.to_string()))?;
    Ok((started, sp))
}

async fn send(ctx: &Ctx, params: &Value) -> Result<Value, RpcError> {
    let (started, sp) = start(ctx, params, false).await?;
    let task = if sp.return_immediately {
        started.live.snapshot()
    } else {
        // Blocking: wait for the final state (the skill has its own deadlines).
        started.live.wait(Duration::from_secs(24 * 3600)).await;
        load(ctx, &started.live.id).await?
    };
    Ok(ctx
        .dialect
        .send_result(&task.with_history(sp.history_length)))
}

/// The task, then its events until the final status (then the stream ends).
fn task_stream(
    dialect: Dialect,
    first: Task,
    rx: tokio::sync::broadcast::Receiver<TaskEvent>,
) -> BoxStream<'static, Value> {
    let head = dialect.stream_task(&first);
    let tail = stream::unfold(
        (rx, first, false),
        move |(mut rx, task, ended)| async move {
            if ended {
                return None;
            }
            loop {
                match rx.recv().await {
                    Ok(ev) => {
                        let is_final = matches!(ev, TaskEvent::Status { is_final: true, .. });
                        let v = dialect.event(&task, &ev);
                        return Some((v, (rx, task, is_final)));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "A2A subscriber fell behind; events dropped");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    stream::once(async move { head }).chain(tail).boxed()
}

async fn stream_send(ctx: &Ctx, params: &Value) -> Result<Answer, RpcError> {
    let (started, _) = start(ctx, params, true).await?;
    Ok(Answer::Stream(task_stream(
        ctx.dialect,
        started.first,
        started.events,
    )))
}

async fn subscribe(ctx: &Ctx, params: &Value) -> Result<Answer, RpcError> {
    let (id, _) = wire::decode_task_id(params)?;
    let t = load(ctx, &id).await?;
    if t.status.state.is_terminal() {
        return Err(RpcError::Unsupported(format!(
            "task {id} is {}; there is nothing left to stream (use GetTask)",
            t.status.state.as_str()
        )));
    }
    let Some(live) = ctx.agent.live.get(&ctx.owner, &id) else {
        return Err(RpcError::Unsupported(format!(
            "task {id} is {} and not running; send a message to continue it",
            t.status.state.as_str()
        )));
    };
    let (first, rx) = live.subscribe();
    Ok(Answer::Stream(task_stream(ctx.dialect, first, rx)))
}

async fn get_task(ctx: &Ctx, params: &Value) -> Result<Value, RpcError> {
    let (id, history) = wire::decode_task_id(params)?;
    let t = match ctx.agent.live.get(&ctx.owner, &id) {
        Some(live) => live.snapshot(),
        None => load(ctx, &id).await?,
    };
    Ok(ctx.dialect.task(&t.with_history(history), true))
}

async fn cancel_task(ctx: &Ctx, params: &Value) -> Result<Value, RpcError> {
    let (id, _) = wire::decode_task_id(params)?;
    if let Some(live) = ctx.agent.live.get(&ctx.owner, &id) {
        live.cancel_and_wait(CANCEL_WAIT).await;
        let t = load(ctx, &id).await?;
        if t.status.state != TaskState::Canceled {
            return Err(RpcError::TaskNotCancelable(format!(
                "task {id} finished ({}) before it could be canceled",
                t.status.state.as_str()
            )));
        }
        return Ok(ctx.dialect.task(&t, true));
    }
    let mut t = load(ctx, &id).await?;
    if t.status.state.is_terminal() {
        return Err(RpcError::TaskNotCancelable(format!(
            "task {id} is already {}",
            t.status.state.as_str()
        )));
    }
    // Waiting for input: nothing runs, so cancel it here.
    let msg = crate::ops::tasks::Message::agent(
        &t,
        vec![crate::ops::tasks::Part::text("canceled by the client")],
    );
    t.history.push(msg.clone());
    t.status = TaskStatus::now(TaskState::Canceled, Some(msg));
    tasks::save_task(&ctx.agent.gw, &ctx.owner, &t)
        .await
        .map_err(ops_error)?;
    Ok(ctx.dialect.task(&t, true))
}

async fn list_tasks(ctx: &Ctx, params: &Value) -> Result<Value, RpcError> {
    let str_of = |k: &str| {
        params
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let state =
        match str_of("status") {
            None | Some("TASK_STATE_UNSPECIFIED") => None,
            Some(s) => Some(wire::parse_state(s).ok_or_else(|| {
                RpcError::InvalidParams(format!("status {s:?} is not a task state"))
            })?),
        };
    let updated_after_ms = match str_of("statusTimestampAfter") {
        None => None,
        Some(ts) => Some(
            humantime::parse_rfc3339_weak(ts)
                .map_err(|e| RpcError::InvalidParams(format!("statusTimestampAfter {ts:?}: {e}")))?
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
        ),
    };
    let page_size = match params.get("pageSize") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    RpcError::InvalidParams("pageSize must be a positive integer".into())
                })?,
        ),
    };
    let history = match params.get("historyLength") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            RpcError::InvalidParams("historyLength must be a non-negative integer".into())
        })? as usize),
    };
    let include_artifacts = params
        .get("includeArtifacts")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let page = tasks::list_tasks(
        &ctx.agent.gw,
        &ctx.owner,
        TaskQuery {
            context_id: str_of("contextId").map(str::to_string),
            state,
            page_size,
            page_token: str_of("pageToken").map(str::to_string),
            updated_after_ms,
        },
    )
    .await
    .map_err(|e| match e {
        OpsError::InvalidInput(m) => RpcError::InvalidParams(m),
        other => ops_error(other),
    })?;
    let rendered: Vec<Value> = page
        .tasks
        .into_iter()
        .map(|t| {
            ctx.dialect
                .task(&t.with_history(history), include_artifacts)
        })
        .collect();
    Ok(json!({
        "tasks": rendered,
        "nextPageToken": page.next_page_token,
        "pageSize": page.page_size,
        "totalSize": page.total_size,
    }))
}
