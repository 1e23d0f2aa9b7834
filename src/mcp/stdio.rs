//! `omniroute --mcp`: MCP over stdio, newline-delimited JSON-RPC.
//!
//! When a gateway is running on the same data dir (its `gateway.json`
//! names a URL that answers), every message is relayed to that gateway's
//! `/mcp`, so tools see and change the running gateway's live state
//! (`bridge`). Otherwise the MCP server runs in this process on the store.
//!
//! Either way this module owns stdin and stdout: a line that is not JSON gets
//! a JSON-RPC parse error (-32700) and the session goes on; only protocol
//! messages are written to stdout, one per line.

use super::OmnirouteMcp;
use crate::gateway::Gateway;
use rmcp::ServiceExt;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("stdio: {0}")]
    Io(#[from] std::io::Error),
    #[error("MCP server failed to start: {0}")]
    Serve(String),
}

/// The JSON-RPC parse error for a line that is not JSON.
pub fn parse_error(e: &serde_json::Error) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": -32700,
            "message": format!("Parse error: the line is not JSON ({e}); send one JSON-RPC message per line"),
        }
    })
}

/// Read newline-delimited lines from `input` until EOF; send each JSON message
/// (its bytes and value) to `messages`, and answer anything else with a parse
/// error on `out`.
pub async fn read_lines<R: AsyncRead + Unpin>(
    input: R,
    out: mpsc::Sender<Vec<u8>>,
    messages: mpsc::Sender<(Vec<u8>, Value)>,
) {
    let mut reader = BufReader::new(input);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "stdin read failed; ending the session");
                return;
            }
        }
        let line = buf.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let sent = match serde_json::from_slice::<Value>(line) {
            Ok(v) => messages.send((line.to_vec(), v)).await.is_ok(),
            Err(e) => {
                tracing::debug!(error = %e, "malformed JSON on stdin");
                out.send(parse_error(&e).to_string().into_bytes())
                    .await
                    .is_ok()
            }
        };
        if !sent {
            return;
        }
    }
}

/// Write each message on its own line to `output` until every sender is gone.
pub async fn write_lines<W: AsyncWrite + Unpin>(mut output: W, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(mut line) = rx.recv().await {
        line.push(b'\n');
        if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
            return;
        }
    }
}

/// Serve MCP on `input`/`output` with the server in this process.
pub async fn serve_in_process<R, W>(gw: Arc<Gateway>, input: R, output: W) -> Result<(), StdioError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    // rmcp reads and writes one end of an in-memory pipe; this module pumps
    // lines between the other end and the real stdio.
    let (server_end, pump_end) = tokio::io::duplex(1 << 20);
    let (pump_read, mut pump_write) = tokio::io::split(pump_end);
    let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>(64);
    let writer = tokio::spawn(write_lines(output, out_rx));

    let from_server = {
        let out_tx = out_tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(pump_read);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match lines.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let line = buf.trim_ascii().to_vec();
                        if !line.is_empty() && out_tx.send(line).await.is_err() {
                            return;
                        }
                    }
                }
            }
        })
    };

    let (in_tx, mut in_rx) = mpsc::channel::<(Vec<u8>, Value)>(64);
    let to_server = tokio::spawn(async move {
        while let Some((mut line, _)) = in_rx.recv().await {
            line.push(b'\n');
            if pump_write.write_all(&line).await.is_err() {
                break;
            }
        }
        let _ = pump_write.shutdown().await;
    });
    // Reading starts before `serve`, which waits for the client's first message.
    let reader = tokio::spawn(read_lines(input, out_tx, in_tx));

    let (server_read, server_write) = tokio::io::split(server_end);
    let served = OmnirouteMcp::new(gw)
        .serve((server_read, server_write))
        .await
        .map_err(|e| StdioError::Serve(e.to_string()));
    let result = match served {
        Ok(running) => {
            if let Err(e) = running.waiting().await {
                tracing::warn!(error = %e, "MCP session ended with an error");
            }
            Ok(())
        }
        Err(e) => Err(e),
    };
    reader.abort();
    to_server.abort();
    let drain = async {
        let _ = from_server.await;
        let _ = writer.await;
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
    result
}

/// `omniroute --mcp` on the real stdio.
pub async fn run_in_process(gw: Arc<Gateway>) -> Result<(), StdioError> {
    serve_in_process(gw, tokio::io::stdin(), tokio::io::stdout()).await
}

pub use super::bridge::{find_running_gateway, run_bridge, RunningGateway};
