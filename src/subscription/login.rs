//! Interactive sign-in: authorization code + PKCE with a localhost callback
//! (Claude, Codex, Gemini), with a pasted code or redirect URL when no browser
//! can reach this machine (`--no-browser`), and device code where the
//! provider offers it (Qwen always, Codex with `--device`). The library does
//! not print: it tells the caller what to show through `Prompt`s.

use super::oauth::{self, DeviceCode, Endpoints, OAuthError, Pkce, TokenSet};
use crate::catalog::SubscriptionKind;
use crate::secret::Secret;
use serde_json::Value;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// What a sign-in produced.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub kind: SubscriptionKind,
    pub access: Secret,
    pub refresh: Option<Secret>,
    pub expires_ms: Option<i64>,
    pub plan: Option<String>,
    pub email: Option<String>,
    /// chatgpt account id (codex), Code Assist project (gemini), resource URL (qwen).
    pub account_ref: Option<String>,
}

/// Something the person signing in must see.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// Open this URL (the caller may start a browser when `open` is true).
    Open { url: String, open: bool },
    /// Open this URL and paste back the code or the URL it ends on.
    Paste { url: String },
    /// Open this URL and enter the code.
    Device { url: String, code: String },
}

#[derive(Debug, Clone)]
pub struct LoginOptions {
    pub no_browser: bool,
    pub device: bool,
    /// Callback port (default: the provider's registered one, else any).
    pub port: Option<u16>,
    /// Give up after this long.
    pub timeout: Duration,
    /// Code Assist base URL (Gemini), to find the account's project.
    pub code_assist_base: String,
    /// Also take a pasted code or URL from stdin (a terminal's login; not
    /// the gateway's, whose stdin is not the user's).
    pub read_stdin: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error("the callback server could not start on port {port}: {message}")]
    Bind { port: u16, message: String },
    #[error("sign-in was refused: {0}")]
    Denied(String),
    #[error("the sign-in answer's state does not match this login (a stale or forged callback)")]
    State,
    #[error("no sign-in within {0:?}")]
    Timeout(Duration),
}

/// Sign in with the provider's own flow.
pub async fn login(
    client: &reqwest::Client,
    kind: SubscriptionKind,
    opts: &LoginOptions,
    notify: &mut (dyn FnMut(Prompt) + Send),
) -> Result<SignedIn, LoginError> {
    let ep = Endpoints::of(kind);
    let tokens = match tokio::time::timeout(opts.timeout, async {
        if kind == SubscriptionKind::Qwen || (opts.device && ep.device_url.is_some()) {
            device_flow(client, &ep, notify).await
        } else {
            code_flow(client, &ep, opts, notify).await
        }
    })
    .await
    {
        Ok(r) => r?,
        Err(_) => return Err(LoginError::Timeout(opts.timeout)),
    };
    Ok(finish(client, kind, tokens, &opts.code_assist_base).await)
}

/// What the callback or a paste carried.
struct Answer {
    code: String,
    state: Option<String>,
}

/// `https://…?code=C&state=S`, `C#S` (Anthropic's code page) or a bare code.
fn parse_paste(text: &str) -> Option<Answer> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(u) = url::Url::parse(t) {
        let q: std::collections::HashMap<String, String> = u.query_pairs().into_owned().collect();
        return q.get("code").map(|c| Answer {
            code: c.clone(),
            state: q.get("state").cloned(),
        });
    }
    match t.split_once('#') {
        Some((c, s)) => Some(Answer {
            code: c.to_string(),
            state: Some(s.to_string()),
        }),
        None => Some(Answer {
            code: t.to_string(),
            state: None,
        }),
    }
}

/// A line pasted on stdin; never resolves at end of input (a login run
/// without a terminal waits for its callback instead).
async fn pasted() -> Option<Answer> {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => {
                if let Some(a) = parse_paste(&line) {
                    return Some(a);
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
}

async fn code_flow(
    client: &reqwest::Client,
    ep: &Endpoints,
    opts: &LoginOptions,
    notify: &mut (dyn FnMut(Prompt) + Send),
) -> Result<TokenSet, LoginError> {
    let pkce = Pkce::new()?;
    let state = oauth::random_state()?;
    // Without a browser here, the provider's own code page (when it has one)
    // shows the code to paste; the localhost callback could not be reached.
    if opts.no_browser {
        if let Some(redirect) = ep.manual_redirect.clone() {
            let url = oauth::authorize_url(ep, &redirect, &pkce, &state)?;
            notify(Prompt::Paste { url });
            let a = pasted()
                .await
                .ok_or_else(|| LoginError::Denied("no code".into()))?;
            if a.state.as_deref().is_some_and(|s| s != state) {
                return Err(LoginError::State);
            }
            return Ok(oauth::exchange_code(client, ep, &a.code, &state, &redirect, &pkce).await?);
        }
    }
    let port = opts.port.unwrap_or(ep.callback_port);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| LoginError::Bind {
            port,
            message: e.to_string(),
        })?;
    let actual = listener
        .local_addr()
        .map_err(|e| LoginError::Bind {
            port,
            message: e.to_string(),
        })?
        .port();
    let redirect = format!("http://{}:{actual}{}", ep.callback_host, ep.callback_path);
    let url = oauth::authorize_url(ep, &redirect, &pkce, &state)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Answer, String>>(4);
    let app = axum::Router::new().route(
        ep.callback_path,
        axum::routing::get(
            move |axum::extract::Query(q): axum::extract::Query<
                std::collections::HashMap<String, String>,
            >| {
                let tx = tx.clone();
                async move {
                    let answer = match (q.get("code"), q.get("error")) {
                        (_, Some(e)) => Err(format!(
                            "{e}{}",
                            q.get("error_description")
                                .map(|d| format!(": {d}"))
                                .unwrap_or_default()
                        )),
                        (Some(c), None) => Ok(Answer {
                            code: c.clone(),
                            state: q.get("state").cloned(),
                        }),
                        (None, None) => Err("the callback carried no code".into()),
                    };
                    let ok = answer.is_ok();
                    let _ = tx.send(answer).await;
                    axum::response::Html(if ok {
                        "<html><body><h1>Signed in</h1><p>omniroute has the account. You can close this tab.</p></body></html>"
                    } else {
                        "<html><body><h1>Sign-in failed</h1><p>See the terminal for the reason.</p></body></html>"
                    })
                }
            },
        ),
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn({
        let stop = stop.clone();
        async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        }
    });
    notify(Prompt::Open {
        url,
        open: !opts.no_browser,
    });
    let paste = async {
        if opts.read_stdin {
            pasted().await
        } else {
            std::future::pending().await
        }
    };
    let answer = tokio::select! {
        a = rx.recv() => a.unwrap_or_else(|| Err("the callback server stopped".into())),
        a = paste => a.ok_or_else(|| "no code".to_string()),
    };
    stop.cancel();
    let _ = server.await;
    let a = answer.map_err(LoginError::Denied)?;
    if a.state.as_deref() != Some(state.as_str()) {
        return Err(LoginError::State);
    }
    Ok(oauth::exchange_code(client, ep, &a.code, &state, &redirect, &pkce).await?)
}

async fn device_flow(
    client: &reqwest::Client,
    ep: &Endpoints,
    notify: &mut (dyn FnMut(Prompt) + Send),
) -> Result<TokenSet, LoginError> {
    let dc: DeviceCode = oauth::start_device(client, ep).await?;
    notify(Prompt::Device {
        url: dc.verification_url.clone(),
        code: dc.user_code.clone(),
    });
    let mut interval = dc.interval;
    loop {
        tokio::time::sleep(interval).await;
        match oauth::poll_device(client, ep, &dc).await {
            Ok(ts) => return Ok(ts),
            Err(OAuthError::Pending { slow_down }) => {
                if slow_down {
                    interval = (interval * 3 / 2).min(Duration::from_secs(10));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Who signed in and on what plan, from the token answer.
async fn finish(
    client: &reqwest::Client,
    kind: SubscriptionKind,
    ts: TokenSet,
    code_assist_base: &str,
) -> SignedIn {
    let id_claims = ts.id_token.as_deref().and_then(oauth::jwt_claims);
    let claim = |p: &str| {
        id_claims
            .as_ref()
            .and_then(|c| c.pointer(p))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let extra = |p: &str| {
        ts.extra
            .pointer(p)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let (mut plan, email, mut account_ref) = match kind {
        SubscriptionKind::Claude => (None, extra("/account/email_address"), None),
        SubscriptionKind::Codex => (
            claim("/https:~1~1api.openai.com~1auth/chatgpt_plan_type"),
            claim("/email"),
            claim("/https:~1~1api.openai.com~1auth/chatgpt_account_id"),
        ),
        SubscriptionKind::Gemini => (None, claim("/email"), None),
        SubscriptionKind::Qwen => (None, None, extra("/resource_url")),
    };
    if kind == SubscriptionKind::Gemini {
        if let Ok(Some((project, tier))) =
            load_code_assist(client, code_assist_base, ts.access.expose()).await
        {
            account_ref = project;
            plan = tier;
        }
    }
    SignedIn {
        kind,
        access: ts.access,
        refresh: ts.refresh,
        expires_ms: ts.expires_ms,
        plan,
        email,
        account_ref,
    }
}

/// Code Assist's `loadCodeAssist`: the account's project and tier.
async fn load_code_assist(
    client: &reqwest::Client,
    base: &str,
    token: &str,
) -> Result<Option<(Option<String>, Option<String>)>, String> {
    let resp = client
        .post(format!(
            "{}/v1internal:loadCodeAssist",
            base.trim_end_matches('/')
        ))
        .bearer_auth(token)
        .timeout(Duration::from_secs(30))
        .json(&serde_json::json!({"metadata": {"ideType": "IDE_UNSPECIFIED", "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"}}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Ok(None);
    }
    let v: Value = resp.json().await.map_err(|e| e.to_string())?;
    let project = v
        .get("cloudaicompanionProject")
        .and_then(|p| p.as_str().or_else(|| p.get("id").and_then(Value::as_str)))
        .map(str::to_string);
    let tier = v
        .pointer("/currentTier/id")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(Some((project, tier)))
}

/// The Code Assist project of the token's account, when it has one.
pub async fn code_assist_project(
    client: &reqwest::Client,
    base: &str,
    token: &str,
) -> Result<Option<String>, String> {
    Ok(load_code_assist(client, base, token)
        .await?
        .and_then(|(p, _)| p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_codes_in_each_shape() {
        let a = parse_paste("http://localhost:1455/auth/callback?code=abc&state=xyz").unwrap();
        assert_eq!((a.code.as_str(), a.state.as_deref()), ("abc", Some("xyz")));
        let a = parse_paste(" code123#state9 ").unwrap();
        assert_eq!(
            (a.code.as_str(), a.state.as_deref()),
            ("code123", Some("state9"))
        );
        let a = parse_paste("4/0AbC").unwrap();
        assert_eq!((a.code.as_str(), a.state), ("4/0AbC", None));
        assert!(parse_paste("   ").is_none());
    }
}
