//! The stdio ↔ HTTP bridge: when a gateway is running on this data dir,
//! `omniroute --mcp` relays each stdio JSON-RPC message to that gateway's
//! `/mcp` (Streamable HTTP) and writes every message of the answer (JSON or
//! SSE) back to stdout. Tools then act on the running gateway itself: its
//! registry, live metrics and usage writer.
//!
//! The credential is the random local token the gateway writes into its
//! `gateway.json` (mode 0600), so only users who can read the data dir can
//! use it. Once the session is initialized the bridge also holds the
//! session's GET stream open and relays what arrives on it: the messages
//! that belong to no request (`notifications/message` log lines,
//! `notifications/resources/updated`).

use super::stdio::{read_lines, write_lines, StdioError};
use crate::server::{RuntimeInfo, RUNTIME_FILE};
use base64::Engine;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

/// A gateway found running on a data dir.
#[derive(Debug, Clone)]
pub struct RunningGateway {
    /// Its `/mcp` endpoint.
    pub mcp_url: String,
    pub token: String,
}

/// The gateway recorded in `<data_dir>/gateway.json`, if it answers its health check.
pub async fn find_running_gateway(data_dir: &Path) -> Option<RunningGateway> {
    let text = tokio::fs::read_to_string(data_dir.join(RUNTIME_FILE))
        .await
        .ok()?;
    let info: RuntimeInfo = serde_json::from_str(&text).ok()?;
    let token = info.mcp_token?;
    let client = http_client(Duration::from_secs(2)).ok()?;
    let answer = client.get(format!("{}/health", info.url)).send().await;
    match answer {
        Ok(r) if r.status().is_success() || r.status().as_u16() == 503 => Some(RunningGateway {
            mcp_url: format!("{}/mcp", info.url),
            token,
        }),
        Ok(r) => {
            tracing::info!(url = %info.url, status = %r.status(), "recorded gateway answered oddly; serving in-process");
            None
        }
        Err(e) => {
            tracing::info!(url = %info.url, error = %e, "recorded gateway does not answer; serving in-process");
            None
        }
    }
}

fn http_client(connect: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(connect)
        .no_proxy()
        .build()
}

/// What the bridge learned from the gateway's answers.
#[derive(Default)]
struct Session {
    id: Option<String>,
    version: Option<String>,
}

struct Relay {
    client: reqwest::Client,
    gw: RunningGateway,
    session: Mutex<Session>,
    out: mpsc::Sender<Vec<u8>>,
    /// The task relaying the session's GET stream.
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Relay MCP between `input`/`output` and a running gateway until `input` ends.
pub async fn run_bridge<R, W>(gw: RunningGateway, input: R, output: W) -> Result<(), StdioError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    tracing::info!(url = %gw.mcp_url, "bridging stdio MCP to the running gateway");
    let client =
        http_client(Duration::from_secs(5)).map_err(|e| StdioError::Serve(e.to_string()))?;
    let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>(64);
    let writer = tokio::spawn(write_lines(output, out_rx));
    let (msg_tx, mut msg_rx) = mpsc::channel::<(Vec<u8>, Value)>(64);
    let reader = tokio::spawn(read_lines(input, out_tx.clone(), msg_tx));
    let relay = Arc::new(Relay {
        client,
        gw,
        session: Mutex::new(Session::default()),
        out: out_tx,
        listener: Mutex::new(None),
    });
    let mut in_flight = tokio::task::JoinSet::new();
    while let Some((raw, msg)) = msg_rx.recv().await {
        let is_request = msg.get("method").is_some() && msg.get("id").is_some();
        if is_request {
            // Requests run concurrently (a long tool call must not hold up others).
            let relay = relay.clone();
            in_flight.spawn(async move { relay.post(raw, msg).await });
        } else {
            // Notifications and responses keep their order relative to what follows.
            let initialized =
                msg.get("method").and_then(Value::as_str) == Some("notifications/initialized");
            relay.post(raw, msg).await;
            if initialized {
                relay.clone().listen();
            }
        }
        while in_flight.try_join_next().is_some() {}
    }
    let _ = reader.await;
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    if let Some(task) = relay.listener.lock().ok().and_then(|mut l| l.take()) {
        task.abort();
    }
    relay.end_session().await;
    drop(relay);
    let _ = writer.await;
    Ok(())
}

/// The header value for `Mcp-Name`, Base64-wrapped when not plain ASCII.
fn header_text(v: &str) -> String {
    let needs_wrap = v.starts_with([' ', '\t'])
        || v.ends_with([' ', '\t'])
        || v.chars().any(|c| !(' '..='~').contains(&c))
        || (v.starts_with("=?base64?") && v.ends_with("?="));
    if !needs_wrap {
        v.to_string()
    } else {
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(v)
        )
    }
}

/// The `Mcp-Name` of a request on revisions that route by headers.
fn mcp_name(method: &str, params: Option<&Value>) -> Option<String> {
    let key = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => "uri",
        "tasks/get" | "tasks/update" | "tasks/cancel" => "taskId",
        _ => return None,
    };
    params?.get(key)?.as_str().map(header_text)
}

/// Revisions from 2026-07-28 on carry the version per request and route by headers.
fn per_request_version(msg: &Value) -> Option<&str> {
    msg.pointer("/params/_meta/io.modelcontextprotocol~1protocolVersion")
        .and_then(Value::as_str)
}

impl Relay {
    async fn emit(&self, msg: &Value) {
        let _ = self.out.send(msg.to_string().into_bytes()).await;
    }

    /// Answer a request the gateway could not (nothing to say for notifications).
    async fn fail(&self, msg: &Value, text: String) {
        tracing::warn!("{text}");
        if let Some(id) = msg.get("id").filter(|_| msg.get("method").is_some()) {
            self.emit(&json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": {"code": -32603, "message": text},
            }))
            .await;
        }
    }

    fn headers(&self, msg: &Value) -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("authorization", format!("Bearer {}", self.gw.token)),
            ("content-type", "application/json".to_string()),
            ("accept", "application/json, text/event-stream".to_string()),
        ];
        let method = msg.get("method").and_then(Value::as_str);
        let session = self
            .session
            .lock()
            .map(|s| (s.id.clone(), s.version.clone()));
        let (sid, negotiated) = session.unwrap_or_default();
        if let Some(sid) = sid {
            h.push(("mcp-session-id", sid));
        }
        let version = per_request_version(msg)
            .map(str::to_string)
            .or(negotiated)
            .filter(|_| method != Some("initialize"));
        if let Some(v) = version {
            if v.as_str() >= "2026-07-28" {
                if let Some(m) = method {
                    h.push(("mcp-method", m.to_string()));
                    if let Some(name) = mcp_name(m, msg.get("params")) {
                        h.push(("mcp-name", name));
                    }
                }
            }
            h.push(("mcp-protocol-version", v));
        }
        h
    }

    async fn post(&self, raw: Vec<u8>, msg: Value) {
        let mut req = self.client.post(&self.gw.mcp_url).body(raw);
        for (k, v) in self.headers(&msg) {
            req = req.header(k, v);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let text = format!(
                    "the running gateway at {} did not answer: {e}",
                    self.gw.mcp_url
                );
                return self.fail(&msg, text).await;
            }
        };
        let is_initialize = msg.get("method").and_then(Value::as_str) == Some("initialize");
        if is_initialize {
            if let Some(sid) = resp
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
            {
                if let Ok(mut s) = self.session.lock() {
                    s.id = Some(sid.to_string());
                }
            }
        }
        let status = resp.status();
        if status.as_u16() == 202 {
            return;
        }
        let sse = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        if sse {
            return self.relay_sse(resp, is_initialize).await;
        }
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return self
                    .fail(&msg, format!("reading the gateway's answer: {e}"))
                    .await
            }
        };
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) if v.get("jsonrpc").is_some() || v.is_array() => {
                self.forward(v, is_initialize).await;
            }
            _ => {
                let text = String::from_utf8_lossy(&body);
                let text = format!("the gateway answered HTTP {status}: {}", text.trim());
                self.fail(&msg, text).await;
            }
        }
    }

    async fn forward(&self, v: Value, is_initialize: bool) {
        if is_initialize {
            if let Some(pv) = v.pointer("/result/protocolVersion").and_then(Value::as_str) {
                if let Ok(mut s) = self.session.lock() {
                    s.version = Some(pv.to_string());
                }
            }
        }
        self.emit(&v).await;
    }

    async fn relay_sse(&self, resp: reqwest::Response, is_initialize: bool) {
        use futures::StreamExt;
        let mut stream = resp.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else { break };
            buf.extend_from_slice(&chunk);
            while let Some((end, sep)) = event_end(&buf) {
                let event: Vec<u8> = buf.drain(..end + sep).collect();
                if let Some(data) = event_data(&event[..end]) {
                    if let Ok(v) = serde_json::from_str::<Value>(&data) {
                        self.forward(v, is_initialize).await;
                    }
                }
            }
        }
    }

    /// Relay the session's GET stream until it ends for good: reopened
    /// (after a pause) when it drops, given up when the gateway refuses it
    /// (405: no such stream; 4xx: the session is gone).
    fn listen(self: Arc<Self>) {
        let has_session = self.session.lock().is_ok_and(|s| s.id.is_some());
        if !has_session {
            return; // A stateless session has no GET stream.
        }
        let relay = self.clone();
        let task = tokio::spawn(async move {
            let mut failures = 0u32;
            while failures < 5 {
                let mut req = relay.client.get(&relay.gw.mcp_url);
                let probe = json!({"method": "GET"});
                for (k, v) in relay.headers(&probe) {
                    if !matches!(k, "content-type" | "accept" | "mcp-method" | "mcp-name") {
                        req = req.header(k, v);
                    }
                }
                let resp = match req.header("accept", "text/event-stream").send().await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::debug!(error = %e, "MCP GET stream failed");
                        failures += 1;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if !resp.status().is_success() {
                    tracing::debug!(status = %resp.status(), "the gateway has no GET stream for this session");
                    return;
                }
                failures = 0;
                relay.relay_sse(resp, false).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        if let Ok(mut l) = self.listener.lock() {
            if let Some(old) = l.replace(task) {
                old.abort();
            }
        }
    }

    async fn end_session(&self) {
        let sid = self.session.lock().ok().and_then(|s| s.id.clone());
        if let Some(sid) = sid {
            let _ = self
                .client
                .delete(&self.gw.mcp_url)
                .header("authorization", format!("Bearer {}", self.gw.token))
                .header("mcp-session-id", sid)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
        }
    }
}

/// Where the first complete SSE event in `buf` ends, and the separator's length.
fn event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// The joined `data:` lines of one SSE event, if it has any.
fn event_data(event: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(event);
    let lines: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect();
    let data = lines.join("\n");
    (!data.trim().is_empty()).then_some(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_are_split_and_joined() {
        let buf = b"id: 1\nretry: 3000\ndata: \n\ndata: {\"a\":1}\n\ndata: x";
        let (end, sep) = event_end(buf).unwrap();
        assert_eq!(event_data(&buf[..end]), None);
        let rest = &buf[end + sep..];
        let (end2, _) = event_end(rest).unwrap();
        assert_eq!(event_data(&rest[..end2]).as_deref(), Some("{\"a\":1}"));
        assert!(event_end(&rest[end2 + 2..]).is_none());
    }

    #[test]
    fn names_for_header_routing() {
        let p = json!({"name": "omniroute_get_health"});
        assert_eq!(
            mcp_name("tools/call", Some(&p)).as_deref(),
            Some("omniroute_get_health")
        );
        let p = json!({"uri": "omniroute://combos/é"});
        assert_eq!(
            mcp_name("resources/read", Some(&p)).as_deref(),
            Some("=?base64?b21uaXJvdXRlOi8vY29tYm9zL8Op?=")
        );
        assert_eq!(mcp_name("tools/list", Some(&p)), None);
    }
}
