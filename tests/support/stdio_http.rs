//! A test-side Streamable HTTP endpoint in front of `omniroute --mcp`, so
//! tools that only take a URL (the MCP conformance suite) can drive the
//! stdio server. Each session (an `initialize` without `Mcp-Session-Id`)
//! spawns its own `omniroute --mcp` process and lives until DELETE or the
//! adapter ends; every JSON-RPC message is written to the process's stdin
//! as one line, and every line it prints goes back over HTTP:
//!
//! - a POST holding requests is answered with an SSE stream that carries
//!   the process's answers to those ids, plus whatever the process sends
//!   meanwhile (progress, log messages, sampling and elicitation requests);
//!   it ends when every id is answered. A POST of only notifications or
//!   responses gets 202.
//! - messages while no POST stream is open go to the session's GET stream,
//!   or wait for one.
//! - each POST stream opens with a priming event (an id, empty data, a
//!   retry hint: SEP-1699); the adapter does not replay missed events.
//! - Host and Origin must be loopback names (403 otherwise), as a local
//!   MCP endpoint must check (the transport spec's DNS-rebinding warning).
//!
//! It relays bytes and routes by id; it adds no MCP behaviour of its own.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

type Tx = mpsc::UnboundedSender<Value>;

/// Where a process's output goes.
#[derive(Default)]
struct Routes {
    /// Request id (as JSON text) → the POST stream waiting for its answer.
    by_id: HashMap<String, (u64, Tx)>,
    /// Open POST streams, oldest first.
    streams: Vec<(u64, Tx)>,
    /// The GET stream, if open.
    get: Option<Tx>,
    /// Messages that had nowhere to go yet.
    backlog: Vec<Value>,
}

impl Routes {
    fn deliver(&mut self, msg: Value) {
        let is_response = msg.get("method").is_none();
        if is_response {
            if let Some(id) = msg.get("id").map(|i| i.to_string()) {
                if let Some((_, tx)) = self.by_id.remove(&id) {
                    let _ = tx.send(msg);
                    return;
                }
            }
        }
        // Notifications and server requests: the newest open POST stream
        // (the request in progress), else the GET stream, else later.
        self.streams.retain(|(_, tx)| !tx.is_closed());
        if let Some((_, tx)) = self.streams.last() {
            if tx.send(msg.clone()).is_ok() {
                return;
            }
        }
        if let Some(tx) = &self.get {
            if tx.send(msg.clone()).is_ok() {
                return;
            }
        }
        self.backlog.push(msg);
    }
}

struct Proc {
    stdin: tokio::sync::Mutex<ChildStdin>,
    child: Mutex<Option<Child>>,
    routes: Arc<Mutex<Routes>>,
}

impl Proc {
    async fn send(&self, msg: &Value) -> std::io::Result<()> {
        let mut line = msg.to_string().into_bytes();
        line.push(b'\n');
        let mut stdin = self.stdin.lock().await;
        stdin.write_all(&line).await?;
        stdin.flush().await
    }

    fn kill(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.start_kill();
        }
    }
}

/// How to start `omniroute --mcp` for one session.
pub type Spawn = Arc<dyn Fn() -> Command + Send + Sync>;

struct Adapter {
    spawn: Spawn,
    sessions: Mutex<HashMap<String, Arc<Proc>>>,
    next: AtomicU64,
    streams: AtomicU64,
    stderr_dir: PathBuf,
}

pub struct StdioHttp {
    pub url: String,
    adapter: Arc<Adapter>,
    task: tokio::task::JoinHandle<()>,
}

impl StdioHttp {
    /// Serve on 127.0.0.1:0; `spawn` builds the command for each session
    /// (stdin/stdout are set here). Each process's stderr goes to
    /// `stderr_dir/session-N.log`.
    pub async fn start(spawn: Spawn, stderr_dir: PathBuf) -> StdioHttp {
        let adapter = Arc::new(Adapter {
            spawn,
            sessions: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            streams: AtomicU64::new(1),
            stderr_dir,
        });
        let app = Router::new()
            .route("/mcp", axum::routing::any(handle))
            .with_state(adapter.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StdioHttp { url, adapter, task }
    }

    /// How many sessions (processes) were started.
    pub fn sessions_started(&self) -> u64 {
        self.adapter.next.load(Ordering::SeqCst) - 1
    }

    /// The stderr of every session's process, for failure reports.
    pub fn stderr(&self) -> String {
        let mut out = String::new();
        for n in 1..self.adapter.next.load(Ordering::SeqCst) {
            let path = self.adapter.stderr_dir.join(format!("session-{n}.log"));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if !text.trim().is_empty() {
                out.push_str(&format!("--- session {n} ---\n{text}\n"));
            }
        }
        out
    }
}

impl Drop for StdioHttp {
    fn drop(&mut self) {
        self.task.abort();
        for p in self.adapter.sessions.lock().unwrap().values() {
            p.kill();
        }
    }
}

fn plain(status: StatusCode, text: &str) -> Response {
    (status, text.to_string()).into_response()
}

fn rpc_error(status: StatusCode, code: i64, message: &str) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `localhost`, `127.0.0.1` or `[::1]`, with or without a port.
fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    matches!(name, "localhost" | "127.0.0.1" | "::1")
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn handle(
    State(a): State<Arc<Adapter>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !header(&headers, "host").is_some_and(loopback_host) {
        return plain(StatusCode::FORBIDDEN, "Host must be a loopback name");
    }
    if let Some(origin) = header(&headers, "origin") {
        let host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .unwrap_or("");
        if !loopback_host(host) {
            return plain(StatusCode::FORBIDDEN, "Origin must be a loopback page");
        }
    }
    let session = header(&headers, "mcp-session-id").map(str::to_string);
    match method {
        Method::POST => post(&a, session, &body).await,
        Method::GET => get(&a, session),
        Method::DELETE => {
            let Some(sid) = session else {
                return plain(StatusCode::BAD_REQUEST, "Mcp-Session-Id required");
            };
            match a.sessions.lock().unwrap().remove(&sid) {
                Some(p) => {
                    p.kill();
                    plain(StatusCode::OK, "")
                }
                None => plain(StatusCode::NOT_FOUND, "no such session"),
            }
        }
        _ => plain(StatusCode::METHOD_NOT_ALLOWED, "POST, GET or DELETE"),
    }
}

fn spawn_session(a: &Adapter) -> std::io::Result<(String, Arc<Proc>)> {
    let n = a.next.fetch_add(1, Ordering::SeqCst);
    let stderr = std::fs::File::create(a.stderr_dir.join(format!("session-{n}.log")))?;
    let mut child = (a.spawn)()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()?;
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let routes = Arc::new(Mutex::new(Routes::default()));
    let proc = Arc::new(Proc {
        stdin: tokio::sync::Mutex::new(stdin),
        child: Mutex::new(Some(child)),
        routes: routes.clone(),
    });
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                routes.lock().unwrap().deliver(v);
            }
        }
        // The process ended: close every stream.
        let mut r = routes.lock().unwrap();
        r.by_id.clear();
        r.streams.clear();
        r.get = None;
    });
    Ok((format!("stdio-session-{n}"), proc))
}

async fn post(a: &Adapter, session: Option<String>, body: &[u8]) -> Response {
    let Ok(parsed) = serde_json::from_slice::<Value>(body) else {
        return rpc_error(StatusCode::BAD_REQUEST, -32700, "Parse error");
    };
    let messages: Vec<Value> = match parsed {
        Value::Array(items) => items,
        one => vec![one],
    };
    let initialize = messages
        .iter()
        .any(|m| m.get("method").and_then(Value::as_str) == Some("initialize"));
    let (sid, proc, new_session) = match session {
        Some(sid) => match a.sessions.lock().unwrap().get(&sid) {
            Some(p) => (sid, p.clone(), false),
            None => return plain(StatusCode::NOT_FOUND, "no such session"),
        },
        None if initialize => match spawn_session(a) {
            Ok((sid, p)) => {
                a.sessions.lock().unwrap().insert(sid.clone(), p.clone());
                (sid, p, true)
            }
            Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        },
        None => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                -32600,
                "Mcp-Session-Id required (start with initialize)",
            )
        }
    };
    let ids: Vec<String> = messages
        .iter()
        .filter(|m| m.get("method").is_some())
        .filter_map(|m| m.get("id").map(|i| i.to_string()))
        .collect();
    let (tx, rx) = mpsc::unbounded_channel();
    let stream_id = a.streams.fetch_add(1, Ordering::SeqCst);
    if !ids.is_empty() {
        let mut r = proc.routes.lock().unwrap();
        for id in &ids {
            r.by_id.insert(id.clone(), (stream_id, tx.clone()));
        }
        r.streams.push((stream_id, tx.clone()));
    }
    for m in &messages {
        if let Err(e) = proc.send(m).await {
            return plain(StatusCode::BAD_GATEWAY, &format!("omniroute --mcp: {e}"));
        }
    }
    let mut builder = Response::builder();
    if new_session {
        builder = builder.header("mcp-session-id", &sid);
    }
    if ids.is_empty() {
        return builder
            .status(StatusCode::ACCEPTED)
            .body(Body::empty())
            .unwrap();
    }
    drop(tx);
    let routes = proc.routes.clone();
    let pending = ids.len();
    let events = futures::stream::unfold(
        (rx, pending, routes, stream_id),
        |(mut rx, pending, routes, sid)| async move {
            if pending == 0 {
                routes.lock().unwrap().streams.retain(|(id, _)| *id != sid);
                return None;
            }
            let msg = rx.recv().await?;
            let answered = msg.get("method").is_none() && msg.get("id").is_some();
            let left = if answered { pending - 1 } else { pending };
            let event = format!("event: message\ndata: {msg}\n\n");
            Some((
                Ok::<_, std::convert::Infallible>(Bytes::from(event)),
                (rx, left, routes, sid),
            ))
        },
    );
    // A priming event (an id, no data) and a retry hint first, as SEP-1699
    // asks of a POST stream.
    use futures::StreamExt;
    let priming = futures::stream::once(async move {
        Ok::<_, std::convert::Infallible>(Bytes::from(format!(
            "id: {stream_id}-0\nretry: 3000\ndata: \n\n"
        )))
    });
    builder
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(priming.chain(events)))
        .unwrap()
}

fn get(a: &Adapter, session: Option<String>) -> Response {
    let Some(sid) = session else {
        return plain(StatusCode::BAD_REQUEST, "Mcp-Session-Id required");
    };
    let Some(proc) = a.sessions.lock().unwrap().get(&sid).cloned() else {
        return plain(StatusCode::NOT_FOUND, "no such session");
    };
    let (tx, rx) = mpsc::unbounded_channel();
    {
        let mut r = proc.routes.lock().unwrap();
        for m in r.backlog.drain(..) {
            let _ = tx.send(m);
        }
        r.get = Some(tx);
    }
    let events = futures::stream::unfold(rx, |mut rx| async move {
        let msg = rx.recv().await?;
        let event = format!("event: message\ndata: {msg}\n\n");
        Some((Ok::<_, std::convert::Infallible>(Bytes::from(event)), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(events))
        .unwrap()
}
