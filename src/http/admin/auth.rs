//! Who may use the dashboard, the admin API and `/metrics`, and how a
//! browser proves it: an admin key as bearer (scripts, Prometheus), or a
//! session cookie (HttpOnly, SameSite=Strict) from a login with an admin key
//! or with the one-time login link printed at start. Every change made with
//! a cookie must carry the session's CSRF token in `x-csrf-token`, and a
//! browser `Origin` that is not this server's is refused.

use super::super::auth::presented_key;
use super::super::error::ApiError;
use super::super::AppState;
use crate::registry::{hash_key, KeyInfo, Registry};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const COOKIE: &str = "omniroute_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session lives this long after login, however busy.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The printed login link works once, within this time.
const LINK_TTL: Duration = Duration::from_secs(15 * 60);
const MAX_SESSIONS: usize = 1000;

/// THE decision "may this client key administer the gateway?": it carries
/// the `admin` scope (the first-start key does).
pub fn key_is_admin(key: &KeyInfo) -> bool {
    key.scopes.allows(crate::access::Scope::Admin)
}

/// An admin, as the auth layer attaches it to the request.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The admin key's id; None for a session from the login link.
    pub key_id: Option<String>,
    /// Some when the request came with a session cookie.
    pub session: Option<String>,
}

struct Session {
    csrf: String,
    /// The key that logged in (SHA-256); the session ends when it is revoked.
    key_hash: Option<[u8; 32]>,
    key_id: Option<String>,
    expires: Instant,
}

/// Sessions and the one-time login link of this process (lost on restart:
/// log in again).
#[derive(Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    link: Mutex<Option<(String, Instant)>>,
}

/// What the dashboard learns about its session.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SessionInfo {
    /// Send this in `x-csrf-token` with every POST, PUT, PATCH and DELETE.
    pub csrf_token: String,
    /// The admin key that logged in; null for the login link.
    pub key_id: Option<String>,
    pub expires_in_s: u64,
}

fn token(prefix: &str) -> Result<String, ApiError> {
    crate::secret::random_bytes::<32>()
        .map(|b| format!("{prefix}{}", hex::encode(b)))
        .map_err(|e| ApiError::internal(format!("no randomness for a session: {e}")))
}

impl Sessions {
    /// A new one-time login token (the previous one stops working).
    pub fn issue_login_link(&self) -> Option<String> {
        let t = token("omr-login-").ok()?;
        if let Ok(mut l) = self.link.lock() {
            *l = Some((t.clone(), Instant::now() + LINK_TTL));
        }
        Some(t)
    }

    fn take_link(&self, presented: &str) -> bool {
        let Ok(mut l) = self.link.lock() else {
            return false;
        };
        match l.as_ref() {
            Some((t, until)) if t == presented && Instant::now() < *until => {
                *l = None;
                true
            }
            _ => false,
        }
    }

    fn create(&self, key: Option<(&str, [u8; 32])>) -> Result<(String, SessionInfo), ApiError> {
        let id = token("")?;
        let csrf = token("")?;
        let mut map = self
            .sessions
            .lock()
            .map_err(|_| ApiError::internal("session table unavailable"))?;
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            // Oldest first out, so a flood of logins cannot exhaust memory.
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            id.clone(),
            Session {
                csrf: csrf.clone(),
                key_hash: key.map(|(_, h)| h),
                key_id: key.map(|(id, _)| id.to_string()),
                expires: now + SESSION_TTL,
            },
        );
        Ok((
            id,
            SessionInfo {
                csrf_token: csrf,
                key_id: key.map(|(id, _)| id.to_string()),
                expires_in_s: SESSION_TTL.as_secs(),
            },
        ))
    }

    /// The live session for a cookie value, checked against the current keys.
    fn find(&self, id: &str, registry: &Registry) -> Option<(SessionInfo, String)> {
        let mut map = self.sessions.lock().ok()?;
        let now = Instant::now();
        let s = map.get(id)?;
        let still_admin = match &s.key_hash {
            None => true,
            Some(h) => registry.key_by_hash(h).is_some_and(key_is_admin),
        };
        if s.expires <= now || !still_admin {
            map.remove(id);
            return None;
        }
        Some((
            SessionInfo {
                csrf_token: s.csrf.clone(),
                key_id: s.key_id.clone(),
                expires_in_s: s.expires.saturating_duration_since(now).as_secs(),
            },
            s.csrf.clone(),
        ))
    }

    fn remove(&self, id: &str) {
        if let Ok(mut map) = self.sessions.lock() {
            map.remove(id);
        }
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == COOKIE).then_some(v)
        })
}

fn set_cookie(id: &str, max_age: u64) -> HeaderValue {
    let v = format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}");
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn forbidden(code: &str, message: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "permission_error",
        code,
        message.to_string(),
    )
}

/// A browser's `Origin`, when sent, must be this server (scheme://Host).
fn origin_ok(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| !host.is_empty() && o.eq_ignore_ascii_case(host))
}

fn changes_state(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Who is calling, if an admin: by bearer admin key, or by session (then
/// the CSRF token and origin are checked for changes).
pub fn authorize(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Admin, ApiError> {
    let registry = state.gw.registry();
    if let Some(raw) = presented_key(headers).filter(|k| !k.is_empty()) {
        return match registry.authenticate(raw) {
            Some(k) if key_is_admin(k) => Ok(Admin {
                key_id: Some(k.id.clone()),
                session: None,
            }),
            Some(_) => Err(forbidden(
                "not_admin",
                "this key may not administer the gateway: use the admin key",
            )),
            None => Err(ApiError::unauthorized("invalid API key")),
        };
    }
    let Some(id) = session_cookie(headers) else {
        return Err(ApiError::unauthorized(
            "log in: open the dashboard with the admin key or the login link printed at start, or send `Authorization: Bearer ADMIN_KEY`",
        ));
    };
    let Some((info, csrf)) = state.admin.find(id, &registry) else {
        return Err(ApiError::unauthorized(
            "the session has ended: log in again",
        ));
    };
    if changes_state(method) {
        if !origin_ok(headers) {
            return Err(forbidden("bad_origin", "cross-origin request refused"));
        }
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if !sent.is_some_and(|s| constant_time_eq(s.as_bytes(), csrf.as_bytes())) {
            return Err(forbidden(
                "csrf_token_invalid",
                "missing or wrong x-csrf-token (GET /api/session gives it)",
            ));
        }
    }
    Ok(Admin {
        key_id: info.key_id,
        session: Some(id.to_string()),
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The layer in front of every admin route.
pub async fn require_admin(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    match authorize(&state, req.method(), req.headers()) {
        Ok(admin) => {
            req.extensions_mut().insert(admin);
            let mut resp = next.run(req).await;
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    /// The admin key.
    pub key: String,
}

/// `POST /api/login`: an admin key in, a session cookie out.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !origin_ok(&headers) {
        return forbidden("bad_origin", "cross-origin login refused").into_response();
    }
    let input: LoginInput = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => {
            return ApiError::invalid_request("invalid_json", format!("body: {e}")).into_response()
        }
    };
    let registry = state.gw.registry();
    let raw = input.key.trim();
    let Some(k) = registry.authenticate(raw) else {
        return ApiError::unauthorized("invalid API key").into_response();
    };
    if !key_is_admin(k) {
        return forbidden(
            "not_admin",
            "this key may not administer the gateway: use the admin key",
        )
        .into_response();
    }
    match state.admin.create(Some((&k.id, hash_key(raw)))) {
        Ok((id, info)) => with_cookie(axum::Json(info).into_response(), &id),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct LinkQuery {
    pub token: String,
}

/// `GET /api/login/link?token=…`: the one-time link printed at start.
pub async fn login_link(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<LinkQuery>,
) -> Response {
    if !state.admin.take_link(&q.token) {
        return ApiError::unauthorized(
            "this login link was used already or has expired: restart omniroute for a new one, or log in with the admin key",
        )
        .into_response();
    }
    match state.admin.create(None) {
        Ok((id, _)) => {
            let resp = (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, HeaderValue::from_static("/"))],
            )
                .into_response();
            with_cookie(resp, &id)
        }
        Err(e) => e.into_response(),
    }
}

fn with_cookie(mut resp: Response, id: &str) -> Response {
    resp.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(id, SESSION_TTL.as_secs()));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `GET /api/session`: the CSRF token of the caller's session.
pub async fn session(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let registry = state.gw.registry();
    match session_cookie(&headers).and_then(|id| state.admin.find(id, &registry)) {
        Some((info, _)) => axum::Json(info).into_response(),
        None => ApiError::unauthorized("not logged in").into_response(),
    }
}

/// `POST /api/logout`: end the session (behind `require_admin`).
pub async fn logout(
    State(state): State<AppState>,
    axum::Extension(admin): axum::Extension<Admin>,
) -> Response {
    if let Some(id) = &admin.session {
        state.admin.remove(id);
    }
    let mut resp = axum::Json(serde_json::json!({"logged_out": true})).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, set_cookie("", 0));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn cookie_and_origin_parsing() {
        let h = headers(&[("cookie", "a=b; omniroute_session=xyz; c=d")]);
        assert_eq!(session_cookie(&h), Some("xyz"));
        assert!(origin_ok(&headers(&[("host", "127.0.0.1:20128")])));
        assert!(origin_ok(&headers(&[
            ("host", "127.0.0.1:20128"),
            ("origin", "http://127.0.0.1:20128")
        ])));
        assert!(!origin_ok(&headers(&[
            ("host", "127.0.0.1:20128"),
            ("origin", "http://evil.example")
        ])));
        assert!(!origin_ok(&headers(&[("origin", "null")])));
    }

    #[test]
    fn login_link_works_once() {
        let s = Sessions::default();
        let t = s.issue_login_link().unwrap();
        assert!(!s.take_link("omr-login-wrong"));
        assert!(s.take_link(&t));
        assert!(!s.take_link(&t));
    }
}
