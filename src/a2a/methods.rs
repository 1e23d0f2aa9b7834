//! `POST /a2a`: decode the envelope, pick the dialect from the method name
//! (after checking `A2A-Version`), run the method, answer as JSON or SSE.

use super::jsonrpc::{self, Id, RpcError};
use super::runner::{self, Started};
use super::skills::{self, Request as SkillRequest};
use super::wire::{self, Dialect, TaskEvent};
use super::{card, Agent};
use crate::http::Caller;
use crate::ops::tasks::{self, Task, TaskQuery, TaskState, TaskStatus};
use crate::ops::OpsError;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
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

/// A JSON-RPC answer (already serialized, so ids stay as sent).
fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
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

/// A2A §9 (JSON-RPC binding): requests are `application/json` (with or
/// without parameters such as `charset`); anything else is refused before
/// the body is read, with HTTP 415 and a ContentTypeNotSupported error.
fn content_type_ok(headers: &HeaderMap) -> Result<(), RpcError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        let shown = if ct.is_empty() { "(none)" } else { ct };
        Err(RpcError::ContentType(format!(
            "the request Content-Type is {shown}; JSON-RPC requests to /a2a must be sent as application/json"
        )))
    }
}

/// How much of an over-limit body is read (and dropped) before answering,
/// so the client, still sending, reads the error instead of a reset.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

async fn read_body(req: Request, limit: usize) -> Result<bytes::Bytes, Response> {
    let too_large = || {
        json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            jsonrpc::failure(
                &jsonrpc::null_id(),
                &RpcError::InvalidRequest(format!("the request body is larger than {limit} bytes")),
            ),
        )
    };
    let mut body = req.into_body().into_data_stream();
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else {
            return Err(json_response(
                StatusCode::BAD_REQUEST,
                jsonrpc::failure(
                    &jsonrpc::null_id(),
                    &RpcError::InvalidRequest("the request body could not be read".into()),
                ),
            ));
        };
        seen = seen.saturating_add(chunk.len());
        if seen > DRAIN_LIMIT {
            // Past this, reading on costs more than a reset saves.
            return Err(too_large());
        }
        if seen <= limit {
            buf.extend_from_slice(&chunk);
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(buf.freeze())
}

pub async fn handle(State(agent): State<Arc<Agent>>, req: Request) -> Response {
    let caller = req
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or_default();
    let headers = req.headers().clone();
    if let Err(e) = content_type_ok(&headers) {
        return json_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            jsonrpc::failure(&jsonrpc::null_id(), &e),
        );
    }
    let body = match read_body(req, agent.body_limit()).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut rpc = match jsonrpc::decode(&body) {
        Ok(r) => r,
        Err((id, e)) => return json_response(StatusCode::OK, jsonrpc::failure(&id, &e)),
    };
    wire::camel_case_keys(&mut rpc.params);
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
        Ok(()) if rpc.missing_id => Err(without_id(&rpc.method, &rpc.params)),
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
        Ok::<_, Infallible>(Event::default().data(jsonrpc::success(&id, result)))
    });
    crate::http::stream::sse(Sse::new(frames).keep_alive(KeepAlive::default()))
}

/// The error for a request without an id: its method, then its params, are
/// checked first (nothing runs).
fn without_id(method: &str, params: &Value) -> RpcError {
    let checked = match method {
        "SendMessage" | "message/send" | "SendStreamingMessage" | "message/stream" => {
            wire::decode_send(params).map(|_| ())
        }
        "GetTask" | "tasks/get" | "CancelTask" | "tasks/cancel" | "SubscribeToTask"
        | "tasks/resubscribe" => wire::decode_task_id(params).map(|_| ()),
        "ListTasks" | "GetExtendedAgentCard" | "agent/getAuthenticatedExtendedCard" => Ok(()),
        m if m.contains("ushNotificationConfig") => Ok(()),
        other => Err(RpcError::MethodNotFound(format!("{other:?}"))),
    };
    checked.err().unwrap_or_else(jsonrpc::missing_id)
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
            let version = match ctx.dialect {
                Dialect::V1 => card::CardVersion::V1,
                Dialect::V03 => card::CardVersion::V03,
            };
            Ok(Answer::Json(card::card(
                version,
                &super::base_for(&ctx.agent.gw, &ctx.headers),
            )))
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
    let fixtures = ctx.agent.gw.settings.conformance_fixtures;
    let tck = fixtures
        && match named.as_deref() {
            Some(n) => n == skills::conformance::SKILL,
            None => skills::conformance::applies(&sp.message.message_id),
        };
    let (selection, input) = if tck {
        (
            skills::Selection {
                skill: skills::conformance::SKILL.to_string(),
                by: "conformance-fixture",
                scores: Vec::new(),
            },
            skills::Input::Conformance(sp.message.message_id.clone()),
        )
    } else {
        let selection = skills::select(named.as_deref(), &text)?;
        let mut metadata = Map::new();
        for m in [&sp.metadata, &sp.message.metadata].into_iter().flatten() {
            if let Some(o) = m.as_object() {
                metadata.extend(o.clone());
            }
        }
        let input = skills::parse(
            &selection.skill,
            &SkillRequest {
                text,
                data: skills::data_input(data),
                prior: sp.prior.clone(),
                metadata: Value::Object(metadata),
            },
        )?;
        (selection, input)
    };
    let skill = selection.skill.clone();
    ctx.who
        .require(
            input.scope(),
            &format!("the {skill} skill ({})", input.action()),
        )
        .map_err(|e| RpcError::Forbidden(e.to_string()))?;
    let mut task = match existing {
        Some(t) => t,
        None => {
            let mut t = Task::new(
                sp.message.context_id.clone().unwrap_or_else(tasks::new_id),
                &skill,
            );
            // Which skill serves the task and why: named, classified or the default.
            if let Some(Value::Object(m)) = &mut t.metadata {
                m.insert("skillSelection".into(), selection.to_json());
            }
            t
        }
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

/// The TCK's message-only scenario (fixtures only): the answer is a Message, no task.
fn direct_reply(ctx: &Ctx, params: &Value) -> Result<Option<Value>, RpcError> {
    if !ctx.agent.gw.settings.conformance_fixtures {
        return Ok(None);
    }
    let sp = wire::decode_send(params)?;
    let Some(text) = skills::conformance::direct_reply(&sp.message.message_id) else {
        return Ok(None);
    };
    let msg = crate::ops::tasks::Message {
        message_id: tasks::new_id(),
        context_id: Some(sp.message.context_id.clone().unwrap_or_else(tasks::new_id)),
        task_id: None,
        role: crate::ops::tasks::Role::Agent,
        parts: vec![crate::ops::tasks::Part::text(text)],
        metadata: None,
        reference_task_ids: Vec::new(),
        extensions: Vec::new(),
    };
    let m = ctx.dialect.message(&msg);
    Ok(Some(match ctx.dialect {
        Dialect::V1 => json!({ "message": m }),
        Dialect::V03 => m,
    }))
}

async fn send(ctx: &Ctx, params: &Value) -> Result<Value, RpcError> {
    if let Some(reply) = direct_reply(ctx, params)? {
        return Ok(reply);
    }
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
    if let Some(reply) = direct_reply(ctx, params)? {
        return Ok(Answer::Stream(stream::once(async move { reply }).boxed()));
    }
    let (started, _) = start(ctx, params, true).await?;
    Ok(Answer::Stream(task_stream(
        ctx.dialect,
        started.first,
        started.events,
    )))
}

/// SubscribeToTask / tasks/resubscribe: any task not in a terminal state
/// (A2A 1.0 §3.1.6), running or waiting for input. The stream starts with
/// the task as it stands. A waiting task's stream then waits for the
/// message that resumes it (or a cancel). On 1.0 the stream follows the task
/// across input-required pauses and ends at a terminal state; on 0.3 it ends
/// with the run's `final` event, as that version's clients expect.
async fn subscribe(ctx: &Ctx, params: &Value) -> Result<Answer, RpcError> {
    let (id, _) = wire::decode_task_id(params)?;
    let live_set = ctx.agent.live.clone();
    // Follow first, then look: a run that starts in between is not missed.
    let news = live_set.follow(&ctx.owner, &id);
    let (head, run) = match live_set.get(&ctx.owner, &id) {
        Some(run) => {
            let (first, rx) = run.subscribe();
            (first, Some((run, rx)))
        }
        None => {
            let t = load(ctx, &id).await?;
            if t.status.state.is_terminal() {
                return Err(RpcError::Unsupported(format!(
                    "task {id} is {}; there is nothing left to stream (use GetTask)",
                    t.status.state.as_str()
                )));
            }
            (t, None)
        }
    };
    Ok(Answer::Stream(subscription(ctx.dialect, head, run, news)))
}

type Run = (
    Arc<runner::LiveTask>,
    tokio::sync::broadcast::Receiver<TaskEvent>,
);

fn subscription(
    dialect: Dialect,
    head: Task,
    run: Option<Run>,
    mut news: tokio::sync::mpsc::UnboundedReceiver<runner::Resumed>,
) -> BoxStream<'static, Value> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Value>(64);
    tokio::spawn(async move {
        if tx.send(dialect.stream_task(&head)).await.is_err() {
            return;
        }
        let mut task = head;
        let mut run = run;
        let mut followed: Option<Arc<runner::LiveTask>> = None;
        loop {
            if let Some((live, mut events)) = run.take() {
                followed = Some(live);
                loop {
                    let ev = match events.recv().await {
                        Ok(ev) => ev,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(
                                skipped = n,
                                "A2A subscriber fell behind; events dropped"
                            );
                            continue;
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    };
                    let is_final = matches!(ev, TaskEvent::Status { is_final: true, .. });
                    if let TaskEvent::Status { status, .. } = &ev {
                        task.status = status.clone();
                    }
                    if tx.send(dialect.event(&task, &ev)).await.is_err() {
                        return;
                    }
                    if is_final {
                        if task.status.state.is_terminal() || matches!(dialect, Dialect::V03) {
                            return;
                        }
                        break;
                    }
                }
            }
            // Waiting for input: until a message resumes the task or a cancel ends it.
            let next = tokio::select! {
                n = news.recv() => n,
                () = tx.closed() => return,
            };
            match next {
                Some(runner::Resumed::Run(live, first, events)) => {
                    // The run this stream started on may be announced too.
                    if followed.as_ref().is_some_and(|f| Arc::ptr_eq(f, &live)) {
                        continue;
                    }
                    task = first;
                    run = Some((live, events));
                }
                Some(runner::Resumed::Ended(t)) => {
                    let ev = TaskEvent::Status {
                        status: t.status.clone(),
                        is_final: true,
                    };
                    let _ = tx.send(dialect.event(&t, &ev)).await;
                    return;
                }
                None => return,
            }
        }
    });
    stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) }).boxed()
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
    // Streams subscribed while it waited end with this state.
    ctx.agent.live.ended(&ctx.owner, &t);
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
