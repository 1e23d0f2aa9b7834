//! The hot path's HTTP client: hyper's pooled client with rustls, the
//! egress-checked resolver, the environment's proxy rules (`HTTPS_PROXY`,
//! `NO_PROXY`…) and nothing else (no redirects, retries, URL re-parsing or
//! decompression layers), and the small request/response types the proxy reads.

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, USER_AGENT};
use http::{Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls_platform_verifier::BuilderVerifierExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Connector = hyper_rustls::HttpsConnector<HttpConnector<crate::egress::CheckedResolver>>;
type Tunneled = hyper_rustls::HttpsConnector<Tunnel<HttpConnector<crate::egress::CheckedResolver>>>;
type TunnelPool = Client<Tunneled, Full<Bytes>>;

/// What went wrong with a request to an upstream.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request could not be built (a URL or header value that HTTP refuses).
    #[error("the request cannot be built: {0}")]
    Build(String),
    #[error("connection failed: {0}")]
    Connect(#[source] hyper_util::client::legacy::Error),
    #[error("request failed: {0}")]
    Send(#[source] hyper_util::client::legacy::Error),
    #[error("response body interrupted: {0}")]
    Body(#[source] hyper::Error),
}

impl Error {
    /// The short, secret-free words logged and answered for this failure.
    pub fn describe(&self) -> &'static str {
        match self {
            Error::Build(_) => "request cannot be built",
            Error::Connect(_) => "connection failed",
            Error::Send(_) => "request failed",
            Error::Body(e) if e.is_timeout() => "timed out",
            Error::Body(_) => "response body interrupted",
        }
    }
}

/// A streamed answer's body, chunk by chunk as the socket gave it.
pub type BodyStream = BoxStream<'static, Result<Bytes, Error>>;

/// The pooled client (cheap to clone: the pools are shared).
#[derive(Clone)]
pub struct HotClient {
    direct: Client<Connector, Full<Bytes>>,
    /// Set when the environment names a proxy (`HTTPS_PROXY`…, as curl reads them).
    proxies: Option<Arc<Proxies>>,
    user_agent: HeaderValue,
}

impl std::fmt::Debug for HotClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotClient")
            .field("proxied", &self.proxies.is_some())
            .finish()
    }
}

/// Upstreams the environment's proxy rules intercept go through an HTTP
/// CONNECT tunnel to the proxy, one pool per proxy.
struct Proxies {
    matcher: Matcher,
    http: HttpConnector<crate::egress::CheckedResolver>,
    tls: rustls::ClientConfig,
    pools: Mutex<Vec<(Uri, TunnelPool)>>,
}

impl Proxies {
    fn from_env(
        http: &HttpConnector<crate::egress::CheckedResolver>,
        tls: &rustls::ClientConfig,
    ) -> Option<Proxies> {
        let named = [
            "ALL_PROXY",
            "all_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
        ]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
        named.then(|| Proxies {
            matcher: Matcher::from_env(),
            http: http.clone(),
            tls: tls.clone(),
            pools: Mutex::new(Vec::new()),
        })
    }

    /// The pool through the proxy that intercepts `uri`, if one does.
    fn pool_for(&self, uri: &Uri) -> Option<TunnelPool> {
        let intercept = self.matcher.intercept(uri)?;
        let proxy = intercept.uri().clone();
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, pool)) = pools.iter().find(|(p, _)| *p == proxy) {
            return Some(pool.clone());
        }
        let mut tunnel = Tunnel::new(proxy.clone(), self.http.clone());
        if let Some(auth) = intercept.basic_auth() {
            tunnel = tunnel.with_auth(auth.clone());
        }
        let pool = pooled(https(self.tls.clone(), tunnel));
        pools.push((proxy, pool.clone()));
        Some(pool)
    }
}

fn https<C>(tls: rustls::ClientConfig, inner: C) -> hyper_rustls::HttpsConnector<C> {
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(inner)
}

fn pooled<C>(connector: C) -> Client<C, Full<Bytes>>
where
    C: hyper_util::client::legacy::connect::Connect + Clone,
{
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        // Enough idle connections for hundreds of agents' streams at
        // once: a connection dropped at 64 is a new TCP (and TLS)
        // handshake on the next request. Idle ones close after 90 s.
        .pool_max_idle_per_host(1024)
        .build(connector)
}

impl HotClient {
    pub fn new(
        connect_timeout: Duration,
        egress: crate::egress::EgressPolicy,
        tls: rustls::ClientConfig,
    ) -> Result<HotClient, String> {
        let mut http =
            HttpConnector::new_with_resolver(crate::egress::CheckedResolver { policy: egress });
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        let proxies = Proxies::from_env(&http, &tls).map(Arc::new);
        Ok(HotClient {
            direct: pooled(https(tls, http)),
            proxies,
            user_agent: HeaderValue::from_static(concat!("omniroute/", env!("CARGO_PKG_VERSION"))),
        })
    }

    /// A POST to `uri` (parsed once per provider where it can be).
    pub fn post(&self, uri: Result<Uri, String>) -> Request {
        Request {
            client: self.clone(),
            uri,
            headers: HeaderMap::with_capacity(8),
            body: Bytes::new(),
            error: None,
        }
    }
}

/// TLS with the platform's roots (read once: loading the system store is
/// most of the gateway's start-up instructions), shared by both clients.
pub fn tls_config() -> Result<rustls::ClientConfig, String> {
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|b| b.with_platform_verifier())
    .map_err(|e| format!("TLS roots: {e}"))?
    .with_no_client_auth())
}

/// A request being built; the first bad part is kept and reported by `send`.
pub struct Request {
    client: HotClient,
    uri: Result<Uri, String>,
    headers: HeaderMap,
    body: Bytes,
    error: Option<String>,
}

impl Request {
    pub fn header<K, V>(mut self, name: K, value: V) -> Request
    where
        K: TryInto<HeaderName>,
        V: TryInto<HeaderValue>,
    {
        match (name.try_into(), value.try_into()) {
            (Ok(k), Ok(v)) => {
                self.headers.insert(k, v);
            }
            _ => {
                self.error
                    .get_or_insert_with(|| "a header name or value HTTP refuses".into());
            }
        }
        self
    }

    /// A secret header: never indexed by HTTP/2 header compression.
    pub fn secret_header(mut self, name: HeaderName, value: &str) -> Request {
        match HeaderValue::try_from(value) {
            Ok(mut v) => {
                v.set_sensitive(true);
                self.headers.insert(name, v);
            }
            Err(_) => {
                self.error
                    .get_or_insert_with(|| format!("the {name} value is not a valid header"));
            }
        }
        self
    }

    pub fn bearer_auth(self, token: &str) -> Request {
        let mut value = String::with_capacity(7 + token.len());
        value.push_str("Bearer ");
        value.push_str(token);
        self.secret_header(AUTHORIZATION, &value)
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Request {
        self.body = body.into();
        self
    }

    pub async fn send(self) -> Result<Response, Error> {
        let Request {
            client,
            uri,
            mut headers,
            body,
            error,
        } = self;
        let uri = uri.map_err(Error::Build)?;
        if let Some(e) = error {
            return Err(Error::Build(e));
        }
        headers
            .entry(USER_AGENT)
            .or_insert_with(|| client.user_agent.clone());
        let mut req = http::Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;
        let proxied = client.proxies.as_ref().and_then(|p| p.pool_for(req.uri()));
        let answered = match proxied {
            Some(pool) => pool.request(req).await,
            None => client.direct.request(req).await,
        };
        match answered {
            Ok(inner) => Ok(Response { inner }),
            Err(e) if e.is_connect() => Err(Error::Connect(e)),
            Err(e) => Err(Error::Send(e)),
        }
    }
}

/// An upstream's answer: status and headers now, the body as read.
#[derive(Debug)]
pub struct Response {
    inner: http::Response<Incoming>,
}

impl Response {
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// The next chunk of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            match self.inner.body_mut().frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(Error::Body(e)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// The whole body.
    pub async fn bytes(self) -> Result<Bytes, Error> {
        let collected = self
            .inner
            .into_body()
            .collect()
            .await
            .map_err(Error::Body)?;
        Ok(collected.to_bytes())
    }

    /// The body as a stream of its chunks.
    pub fn bytes_stream(self) -> BodyStream {
        self.inner
            .into_body()
            .into_data_stream()
            .map(|r| r.map_err(Error::Body))
            .boxed()
    }

    /// At most `limit` bytes of the body (an error answer's); a broken
    /// body ends the reading with what arrived.
    pub async fn read_limited(mut self, limit: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while let Ok(Some(chunk)) = self.chunk().await {
            out.extend_from_slice(&chunk);
            if out.len() >= limit {
                out.truncate(limit);
                break;
            }
        }
        out
    }
}
