//! Each subscription provider's OAuth endpoints and client, and the token
//! calls: code exchange, refresh, device authorization. Every fact here is
//! recorded with its source in docs/subscriptions.md.
//!
//! `OMNIROUTE_OAUTH_BASE_<KIND>` (e.g. `OMNIROUTE_OAUTH_BASE_CLAUDE=http://127.0.0.1:4000`)
//! replaces the scheme and host of every auth endpoint of that kind, paths
//! kept: tests point the gateway at a local fake this way.

use crate::catalog::SubscriptionKind;
use crate::secret::Secret;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// How a token endpoint wants its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyStyle {
    Json,
    Form,
}

/// One provider's OAuth client as its own CLI registers it.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub kind: SubscriptionKind,
    pub client_id: &'static str,
    /// Installed-app secret (Google documents it as not secret for installed apps).
    pub client_secret: Option<&'static str>,
    pub authorize_url: Option<String>,
    pub token_url: String,
    /// Device authorization (Qwen: RFC 8628; Codex: its own user-code API).
    pub device_url: Option<String>,
    pub scopes: &'static str,
    /// Path of the localhost callback (`http://localhost:{port}{path}`).
    pub callback_path: &'static str,
    /// Host written in the localhost redirect URI.
    pub callback_host: &'static str,
    /// Port the provider's allow-list expects (0: any).
    pub callback_port: u16,
    /// Where the provider shows the code to paste when no callback can reach us.
    pub manual_redirect: Option<String>,
    /// Extra authorize parameters the provider's CLI sends.
    pub extra_params: &'static [(&'static str, &'static str)],
    pub code_body: BodyStyle,
    pub refresh_body: BodyStyle,
}

fn base_override(kind: SubscriptionKind) -> Option<String> {
    let var = format!(
        "OMNIROUTE_OAUTH_BASE_{}",
        kind.as_str().to_ascii_uppercase()
    );
    std::env::var(var)
        .ok()
        .map(|v| v.trim_end_matches('/').to_string())
        .filter(|v| !v.is_empty())
}

/// `url` with its scheme and host replaced by `base`, when there is one.
fn at(base: &Option<String>, url: &str) -> String {
    match (base, url.split_once("://")) {
        (Some(b), Some((_, rest))) => {
            let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
            format!("{b}{path}")
        }
        _ => url.to_string(),
    }
}

impl Endpoints {
    pub fn of(kind: SubscriptionKind) -> Endpoints {
        let b = base_override(kind);
        match kind {
            SubscriptionKind::Claude => Endpoints {
                kind,
                client_id: "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
                client_secret: None,
                authorize_url: Some(at(&b, "https://claude.ai/oauth/authorize")),
                token_url: at(&b, "https://console.anthropic.com/v1/oauth/token"),
                device_url: None,
                scopes: "org:create_api_key user:profile user:inference",
                callback_path: "/callback",
                callback_host: "localhost",
                callback_port: 0,
                manual_redirect: Some(at(&b, "https://console.anthropic.com/oauth/code/callback")),
                extra_params: &[("code", "true")],
                code_body: BodyStyle::Json,
                refresh_body: BodyStyle::Json,
            },
            SubscriptionKind::Codex => Endpoints {
                kind,
                client_id: "app_EMoamEEZ73f0CkXaXp7hrann",
                client_secret: None,
                authorize_url: Some(at(&b, "https://auth.openai.com/oauth/authorize")),
                token_url: at(&b, "https://auth.openai.com/oauth/token"),
                device_url: Some(at(&b, "https://auth.openai.com/api/accounts/deviceauth")),
                scopes: "openid profile email offline_access",
                callback_path: "/auth/callback",
                callback_host: "localhost",
                // The redirect allow-list of Codex's client names port 1455.
                callback_port: 1455,
                manual_redirect: None,
                extra_params: &[
                    ("id_token_add_organizations", "true"),
                    ("codex_cli_simplified_flow", "true"),
                ],
                code_body: BodyStyle::Form,
                refresh_body: BodyStyle::Json,
            },
            SubscriptionKind::Gemini => Endpoints {
                kind,
                client_id: "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com",
                client_secret: Some("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"),
                authorize_url: Some(at(&b, "https://accounts.google.com/o/oauth2/v2/auth")),
                token_url: at(&b, "https://oauth2.googleapis.com/token"),
                device_url: None,
                scopes: "https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile",
                callback_path: "/oauth2callback",
                callback_host: "127.0.0.1",
                callback_port: 0,
                manual_redirect: Some(at(&b, "https://codeassist.google.com/authcode")),
                extra_params: &[("access_type", "offline"), ("prompt", "consent")],
                code_body: BodyStyle::Form,
                refresh_body: BodyStyle::Form,
            },
            SubscriptionKind::Qwen => Endpoints {
                kind,
                client_id: "f0304373b74a44d2b584a3fb70ca9e56",
                client_secret: None,
                authorize_url: None,
                token_url: at(&b, "https://chat.qwen.ai/api/v1/oauth2/token"),
                device_url: Some(at(&b, "https://chat.qwen.ai/api/v1/oauth2/device/code")),
                scopes: "openid profile email model.completion",
                callback_path: "",
                callback_host: "localhost",
                callback_port: 0,
                manual_redirect: None,
                extra_params: &[],
                code_body: BodyStyle::Form,
                refresh_body: BodyStyle::Form,
            },
        }
    }
}

/// A PKCE verifier and its S256 challenge (RFC 7636).
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Pkce {
    pub fn new() -> Result<Pkce, OAuthError> {
        let bytes =
            crate::secret::random_bytes::<32>().map_err(|e| OAuthError::Local(e.to_string()))?;
        Ok(Pkce::from_verifier(b64url(&bytes)))
    }

    pub fn from_verifier(verifier: String) -> Pkce {
        let challenge = b64url(&Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

pub fn random_state() -> Result<String, OAuthError> {
    crate::secret::random_bytes::<24>()
        .map(|b| b64url(&b))
        .map_err(|e| OAuthError::Local(e.to_string()))
}

/// The authorize URL for a code + PKCE login.
pub fn authorize_url(
    ep: &Endpoints,
    redirect_uri: &str,
    pkce: &Pkce,
    state: &str,
) -> Result<String, OAuthError> {
    let base = ep.authorize_url.as_deref().ok_or_else(|| {
        OAuthError::Local(format!("{} signs in by device code", ep.kind.as_str()))
    })?;
    let mut url =
        url::Url::parse(base).map_err(|e| OAuthError::Local(format!("authorize URL: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in ep.extra_params.iter().filter(|(k, _)| *k == "code") {
            q.append_pair(k, v);
        }
        q.append_pair("client_id", ep.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", ep.scopes)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", state);
        for (k, v) in ep.extra_params.iter().filter(|(k, _)| *k != "code") {
            q.append_pair(k, v);
        }
    }
    Ok(url.to_string())
}

/// What a token endpoint answered.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access: Secret,
    /// None when the provider kept the old refresh token.
    pub refresh: Option<Secret>,
    pub expires_ms: Option<i64>,
    pub id_token: Option<String>,
    /// The whole answer minus the tokens (account, resource_url, scope…).
    pub extra: Value,
}

/// Why a token call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OAuthError {
    /// The provider refused the grant: the refresh token is spent or revoked.
    #[error("revoked: {0}")]
    Revoked(String),
    /// The provider says the refresh token expired.
    #[error("expired: {0}")]
    Expired(String),
    /// No answer, or a 5xx / 429: try again later.
    #[error("network: {0}")]
    Network(String),
    /// Device flow: the user has not approved yet.
    #[error("authorization pending")]
    Pending { slow_down: bool },
    #[error("{0}")]
    Local(String),
}

impl OAuthError {
    /// `expired`, `revoked` or `network`, as stored and shown.
    pub fn status(&self) -> &'static str {
        match self {
            OAuthError::Revoked(_) => "revoked",
            OAuthError::Expired(_) => "expired",
            _ => "network",
        }
    }
}

fn now_ms() -> i64 {
    crate::store::now_ms()
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    style: BodyStyle,
    fields: &[(&str, &str)],
) -> Result<(u16, Value), OAuthError> {
    let req = client
        .post(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(Duration::from_secs(30));
    let req = match style {
        BodyStyle::Json => {
            let mut m = serde_json::Map::new();
            for (k, v) in fields {
                m.insert((*k).to_string(), Value::String((*v).to_string()));
            }
            req.json(&Value::Object(m))
        }
        BodyStyle::Form => {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(fields.iter())
                .finish();
            req.header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
        }
    };
    let resp = req
        .send()
        .await
        .map_err(|e| OAuthError::Network(describe(&e)))?;
    let status = resp.status().as_u16();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| OAuthError::Network(describe(&e)))?;
    let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(
        |_| json!({"error": String::from_utf8_lossy(&bytes).chars().take(200).collect::<String>()}),
    );
    Ok((status, v))
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "could not connect to the token endpoint".into()
    } else if e.is_timeout() {
        "the token endpoint timed out".into()
    } else {
        "the token request failed".into()
    }
}

fn error_text(v: &Value) -> String {
    let code = v
        .get("error")
        .and_then(|e| e.as_str().or_else(|| e.get("type").and_then(Value::as_str)))
        .unwrap_or("error");
    let desc = v
        .get("error_description")
        .and_then(Value::as_str)
        .or_else(|| v.pointer("/error/message").and_then(Value::as_str))
        .unwrap_or("");
    if desc.is_empty() {
        code.to_string()
    } else {
        format!("{code}: {desc}")
    }
}

/// A non-2xx token answer as an error: 4xx is the grant's fault, 429/5xx transient.
fn refused(status: u16, v: &Value) -> OAuthError {
    let text = error_text(v);
    if status == 429 || status >= 500 {
        return OAuthError::Network(format!("token endpoint answered HTTP {status}: {text}"));
    }
    if text.to_ascii_lowercase().contains("expired") {
        OAuthError::Expired(text)
    } else {
        OAuthError::Revoked(text)
    }
}

fn token_set(v: Value) -> Result<TokenSet, OAuthError> {
    let Value::Object(mut m) = v else {
        return Err(OAuthError::Network(
            "the token endpoint's answer is not JSON".into(),
        ));
    };
    let access = m
        .remove("access_token")
        .and_then(|t| t.as_str().map(str::to_string))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::Network("the token answer has no access_token".into()))?;
    let refresh = m
        .remove("refresh_token")
        .and_then(|t| t.as_str().map(str::to_string))
        .filter(|t| !t.is_empty())
        .map(Secret::new);
    let expires_ms = m
        .get("expires_in")
        .and_then(|e| e.as_f64().or_else(|| e.as_str()?.parse().ok()))
        .map(|s| now_ms() + (s * 1000.0) as i64);
    let id_token = m
        .remove("id_token")
        .and_then(|t| t.as_str().map(str::to_string));
    Ok(TokenSet {
        access: Secret::new(access),
        refresh,
        expires_ms,
        id_token,
        extra: Value::Object(m),
    })
}

/// Exchange an authorization code (with its PKCE verifier) for tokens.
pub async fn exchange_code(
    client: &reqwest::Client,
    ep: &Endpoints,
    code: &str,
    state: &str,
    redirect_uri: &str,
    pkce: &Pkce,
) -> Result<TokenSet, OAuthError> {
    let mut fields = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("client_id", ep.client_id),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    if ep.kind == SubscriptionKind::Claude {
        // Anthropic's token endpoint takes the state back with the code.
        fields.push(("state", state));
    }
    if let Some(secret) = ep.client_secret {
        fields.push(("client_secret", secret));
    }
    let (status, v) = post(client, &ep.token_url, ep.code_body, &fields).await?;
    if !(200..300).contains(&status) {
        return Err(refused(status, &v));
    }
    token_set(v)
}

/// Trade a refresh token for a new access token (and, where the provider
/// rotates them, a new refresh token).
pub async fn refresh(
    client: &reqwest::Client,
    ep: &Endpoints,
    refresh_token: &str,
) -> Result<TokenSet, OAuthError> {
    let mut fields = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", ep.client_id),
    ];
    if ep.kind == SubscriptionKind::Codex {
        fields.push(("scope", "openid profile email"));
    }
    if let Some(secret) = ep.client_secret {
        fields.push(("client_secret", secret));
    }
    let (status, v) = post(client, &ep.token_url, ep.refresh_body, &fields).await?;
    if !(200..300).contains(&status) {
        return Err(refused(status, &v));
    }
    token_set(v)
}

/// A device authorization in progress.
#[derive(Debug, Clone)]
pub struct DeviceCode {
    pub verification_url: String,
    pub user_code: String,
    /// Qwen: the RFC 8628 device code; Codex: its device_auth_id.
    pub device_code: String,
    pub interval: Duration,
    pub pkce: Option<Pkce>,
}

/// Start a device login (Qwen always; Codex with `--device`).
pub async fn start_device(
    client: &reqwest::Client,
    ep: &Endpoints,
) -> Result<DeviceCode, OAuthError> {
    let url = ep
        .device_url
        .as_deref()
        .ok_or_else(|| OAuthError::Local(format!("{} has no device login", ep.kind.as_str())))?;
    match ep.kind {
        SubscriptionKind::Codex => {
            let (status, v) = post(
                client,
                &format!("{url}/usercode"),
                BodyStyle::Json,
                &[("client_id", ep.client_id)],
            )
            .await?;
            if !(200..300).contains(&status) {
                return Err(refused(status, &v));
            }
            let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
            let interval = v
                .get("interval")
                .and_then(|i| i.as_u64().or_else(|| i.as_str()?.trim().parse().ok()))
                .unwrap_or(5);
            let issuer = ep
                .token_url
                .strip_suffix("/oauth/token")
                .unwrap_or(&ep.token_url);
            Ok(DeviceCode {
                verification_url: format!("{issuer}/codex/device"),
                user_code: s("user_code")
                    .or_else(|| s("usercode"))
                    .ok_or_else(|| OAuthError::Network("no user_code in the answer".into()))?,
                device_code: s("device_auth_id")
                    .ok_or_else(|| OAuthError::Network("no device_auth_id in the answer".into()))?,
                interval: Duration::from_secs(interval.max(1)),
                pkce: None,
            })
        }
        _ => {
            let pkce = Pkce::new()?;
            let (status, v) = post(
                client,
                url,
                BodyStyle::Form,
                &[
                    ("client_id", ep.client_id),
                    ("scope", ep.scopes),
                    ("code_challenge", &pkce.challenge),
                    ("code_challenge_method", "S256"),
                ],
            )
            .await?;
            if !(200..300).contains(&status) {
                return Err(refused(status, &v));
            }
            let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
            Ok(DeviceCode {
                verification_url: s("verification_uri_complete")
                    .or_else(|| s("verification_uri"))
                    .ok_or_else(|| {
                        OAuthError::Network("no verification_uri in the answer".into())
                    })?,
                user_code: s("user_code").unwrap_or_default(),
                device_code: s("device_code")
                    .ok_or_else(|| OAuthError::Network("no device_code in the answer".into()))?,
                interval: Duration::from_secs(
                    v.get("interval").and_then(Value::as_u64).unwrap_or(2),
                ),
                pkce: Some(pkce),
            })
        }
    }
}

/// Poll a device login once: tokens, `Pending`, or an error.
pub async fn poll_device(
    client: &reqwest::Client,
    ep: &Endpoints,
    dc: &DeviceCode,
) -> Result<TokenSet, OAuthError> {
    match ep.kind {
        SubscriptionKind::Codex => {
            let url = format!("{}/token", ep.device_url.as_deref().unwrap_or_default());
            let (status, v) = post(
                client,
                &url,
                BodyStyle::Json,
                &[
                    ("device_auth_id", &dc.device_code),
                    ("user_code", &dc.user_code),
                ],
            )
            .await?;
            // Codex answers 403/404 while the user has not approved.
            if status == 403 || status == 404 {
                return Err(OAuthError::Pending { slow_down: false });
            }
            if !(200..300).contains(&status) {
                return Err(refused(status, &v));
            }
            let s = |k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let pkce = Pkce {
                verifier: s("code_verifier"),
                challenge: s("code_challenge"),
            };
            let issuer = ep
                .token_url
                .strip_suffix("/oauth/token")
                .unwrap_or(&ep.token_url);
            let redirect = format!("{issuer}/deviceauth/callback");
            exchange_code(client, ep, &s("authorization_code"), "", &redirect, &pkce).await
        }
        _ => {
            let verifier = dc.pkce.as_ref().map(|p| p.verifier.as_str()).unwrap_or("");
            let (status, v) = post(
                client,
                &ep.token_url,
                BodyStyle::Form,
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("client_id", ep.client_id),
                    ("device_code", &dc.device_code),
                    ("code_verifier", verifier),
                ],
            )
            .await?;
            let err = v.get("error").and_then(Value::as_str).unwrap_or("");
            if err == "authorization_pending"
                || v.get("status").and_then(Value::as_str) == Some("pending")
            {
                return Err(OAuthError::Pending { slow_down: false });
            }
            if err == "slow_down" {
                return Err(OAuthError::Pending { slow_down: true });
            }
            if !(200..300).contains(&status) {
                return Err(refused(status, &v));
            }
            token_set(v)
        }
    }
}

/// The claims of a JWT's payload, unverified (display and account ids only).
pub fn jwt_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_rfc7636_s256() {
        // RFC 7636 appendix B.
        let p = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        assert_eq!(p.challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn authorize_url_carries_pkce_state_and_the_clients_params() {
        let ep = Endpoints::of(SubscriptionKind::Codex);
        let pkce = Pkce::from_verifier("v".into());
        let u = authorize_url(&ep, "http://localhost:1455/auth/callback", &pkce, "st").unwrap();
        let parsed = url::Url::parse(&u).unwrap();
        let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "app_EMoamEEZ73f0CkXaXp7hrann");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["state"], "st");
        assert_eq!(q["codex_cli_simplified_flow"], "true");
        assert!(u.starts_with("https://auth.openai.com/oauth/authorize?"));
    }

    #[test]
    fn base_override_keeps_paths() {
        let b = Some("http://127.0.0.1:9".to_string());
        assert_eq!(
            at(&b, "https://console.anthropic.com/v1/oauth/token"),
            "http://127.0.0.1:9/v1/oauth/token"
        );
        assert_eq!(at(&None, "https://x/y"), "https://x/y");
    }

    #[test]
    fn refusals_are_classified() {
        assert_eq!(
            refused(400, &json!({"error": "invalid_grant", "error_description": "refresh token was already used"})).status(),
            "revoked"
        );
        assert_eq!(
            refused(400, &json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})).status(),
            "expired"
        );
        assert_eq!(refused(503, &json!({})).status(), "network");
    }

    #[test]
    fn jwt_claims_are_read() {
        let payload = b64url(
            br#"{"email":"a@b.c","https://api.openai.com/auth":{"chatgpt_plan_type":"plus"}}"#,
        );
        let claims = jwt_claims(&format!("x.{payload}.y")).unwrap();
        assert_eq!(claims["email"], "a@b.c");
    }
}
