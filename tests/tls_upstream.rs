//! HTTPS upstreams through the real binary: the hot client speaks TLS with
//! the platform's roots (here a test CA named by `SSL_CERT_FILE`, which the
//! Linux verifier reads), negotiates HTTP/2 by ALPN when the upstream offers
//! it, falls back to HTTP/1.1 when it does not, and refuses a certificate it
//! cannot verify without leaking the provider key. Through an HTTP proxy
//! named by `HTTPS_PROXY` it tunnels with CONNECT (with the proxy's
//! credentials when the URL carries them) unless `NO_PROXY` names the host.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use support::fake_upstream::{FakeUpstream, Seen};
use support::{client, example_config, Binary, CLIENT_KEY};

/// The fake upstream behind TLS (certificate for `localhost`), offering
/// `alpn`; each connection's negotiated protocol is recorded.
async fn tls_upstream(alpn: &[&[u8]]) -> (String, FakeUpstream, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Seen::default());
    let (addr, protocols) = support::tls::serve(FakeUpstream::router(seen.clone()), alpn).await;
    let base = format!("https://localhost:{}/v1", addr.port());
    (base, FakeUpstream { addr, seen }, protocols)
}

fn start_gateway(dir: &std::path::Path, base_url: &str, trust_test_ca: bool) -> Binary {
    start_gateway_env(dir, base_url, trust_test_ca, &[])
}

fn start_gateway_env(
    dir: &std::path::Path,
    base_url: &str,
    trust_test_ca: bool,
    extra: &[(&str, &str)],
) -> Binary {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = dir.join("gateway.toml");
    std::fs::write(&cfg, example_config(base_url)).unwrap();
    let ca = support::tls::ca();
    let mut env: Vec<(&str, &str)> = if trust_test_ca {
        vec![("SSL_CERT_FILE", ca.as_str())]
    } else {
        // A roots file without the test CA: nothing vouches for the upstream.
        vec![("SSL_CERT_FILE", "/dev/null")]
    };
    env.extend_from_slice(extra);
    Binary::start_env(
        &dir.join("data"),
        &["--config", cfg.to_str().unwrap()],
        &env,
    )
}

/// A minimal HTTP CONNECT proxy: records each request head, then splices.
async fn connect_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let record = heads.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let record = record.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                record.lock().unwrap().push(head.clone());
                let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let target = target.replace("localhost", "127.0.0.1");
                let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                let _ = client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (format!("http://{addr}"), heads)
}

async fn ask(gw: &Binary, stream: bool) -> (u16, String) {
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .json(&json!({"model": "mock/gpt-4o-mini", "stream": stream,
            "messages": [{"role": "user", "content": "over tls"}]}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn an_https_upstream_is_reached_over_http2_when_offered() {
    let (base, seen, protocols) = tls_upstream(&[b"h2", b"http/1.1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start_gateway(dir.path(), &base, true);
    let (status, body) = ask(&gw, false).await;
    assert_eq!(status, 200, "{body}\n{}", gw.stderr());
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["choices"][0]["message"]["content"].is_string(), "{v}");
    let (status, body) = ask(&gw, true).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("data: [DONE]"), "{body}");
    assert_eq!(seen.last_auth(), "Bearer upstream-secret");
    // Both requests went over the one HTTP/2 connection ALPN chose.
    assert_eq!(*protocols.lock().unwrap(), vec!["h2".to_string()]);
}

#[tokio::test]
async fn an_https_upstream_without_http2_is_served_over_http1() {
    let (base, _seen, protocols) = tls_upstream(&[b"http/1.1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start_gateway(dir.path(), &base, true);
    for stream in [false, true] {
        let (status, body) = ask(&gw, stream).await;
        assert_eq!(status, 200, "{body}\n{}", gw.stderr());
    }
    let seen = protocols.lock().unwrap().clone();
    assert!(
        !seen.is_empty() && seen.iter().all(|p| p == "http/1.1"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn an_unverifiable_certificate_is_refused_and_the_key_is_not_sent() {
    let (base, seen, _protocols) = tls_upstream(&[b"h2", b"http/1.1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start_gateway(dir.path(), &base, false);
    let (status, body) = ask(&gw, false).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("connection failed"), "{body}");
    assert!(!body.contains("upstream-secret"), "{body}");
    // The handshake failed before any request reached the upstream.
    assert_eq!(seen.calls("gpt-4o-mini"), 0);
    assert!(!gw.stderr().contains("upstream-secret"));
}

#[tokio::test]
async fn https_proxy_from_the_environment_tunnels_and_no_proxy_skips_it() {
    let (base, up, _protocols) = tls_upstream(&[b"h2", b"http/1.1"]).await;
    let (proxy, heads) = connect_proxy().await;
    let with_auth = proxy.replace("http://", "http://agent:s3cret@");
    let dir = tempfile::tempdir().unwrap();
    let gw = start_gateway_env(
        &dir.path().join("proxied"),
        &base,
        true,
        &[("HTTPS_PROXY", with_auth.as_str()), ("NO_PROXY", "")],
    );
    let (status, body) = ask(&gw, false).await;
    assert_eq!(status, 200, "{body}\n{}", gw.stderr());
    let (status, body) = ask(&gw, true).await;
    assert_eq!(status, 200, "{body}");
    let seen = heads.lock().unwrap().clone();
    let port = up.addr.port();
    assert!(!seen.is_empty(), "the proxy saw no request");
    for head in &seen {
        assert!(
            head.starts_with(&format!("CONNECT localhost:{port} HTTP/1.1")),
            "{head}"
        );
        // Basic base64("agent:s3cret")
        assert!(
            head.to_ascii_lowercase()
                .contains("proxy-authorization: basic ywdlbnq6cznjcmv0"),
            "{head}"
        );
    }
    // The provider key travelled inside the tunnel only.
    assert!(seen.iter().all(|h| !h.contains("upstream-secret")));
    assert_eq!(up.last_auth(), "Bearer upstream-secret");
    drop(gw);

    heads.lock().unwrap().clear();
    let gw = start_gateway_env(
        &dir.path().join("excluded"),
        &base,
        true,
        &[("HTTPS_PROXY", proxy.as_str()), ("NO_PROXY", "localhost")],
    );
    let (status, body) = ask(&gw, false).await;
    assert_eq!(status, 200, "{body}\n{}", gw.stderr());
    assert!(
        heads.lock().unwrap().is_empty(),
        "NO_PROXY was not honoured"
    );
}
