//! Signing a subscription account in from a surface that is not a terminal
//! (the dashboard, scripts on the admin API): the provider's own flow runs
//! inside the gateway, the surface shows its URL or device code and polls;
//! or the credential that the provider's CLI stored on the gateway's
//! machine is imported. The CLI's `omniroute login` uses the same steps.

use super::accounts::AccountView;
use super::subscriptions::{save_sign_in, SaveSignIn};
use super::{Actor, OpsError};
use crate::catalog::SubscriptionKind;
use crate::gateway::Gateway;
use crate::subscription::{import, login};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// How long a started sign-in waits for the user.
const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInInput {
    /// claude | codex | gemini | qwen
    pub kind: String,
    /// Name of the account (default: its email, else "default").
    #[serde(default)]
    pub label: Option<String>,
    /// Use a device code where the provider offers one (codex; qwen always does).
    #[serde(default)]
    pub device: bool,
    /// Accept answers billed as extra usage (default: plan limits only).
    #[serde(default)]
    pub allow_overage: bool,
    /// Lower is tried first among this provider's accounts.
    #[serde(default)]
    pub priority: Option<i64>,
    /// Port of the localhost callback (default: the provider's registered one).
    #[serde(default)]
    pub callback_port: Option<u16>,
}

/// What the user must do to finish a started sign-in.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SignInStarted {
    /// Poll `GET /api/subscriptions/sign-in/{id}` with it.
    pub id: String,
    pub kind: String,
    /// Open this URL in a browser on this machine (its callback is localhost).
    pub url: String,
    /// With a device code: enter it at `url`.
    pub code: Option<String>,
}

/// Where a started sign-in is.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SignInStatus {
    pub id: String,
    /// pending | signed_in | failed
    pub state: String,
    pub account: Option<AccountView>,
    pub error: Option<String>,
}

fn kind_of(text: &str) -> Result<SubscriptionKind, OpsError> {
    SubscriptionKind::parse(text).ok_or_else(|| {
        OpsError::InvalidInput(format!(
            "unknown kind {text:?}: claude, codex, gemini or qwen"
        ))
    })
}

/// The Code Assist base URL (Gemini), from the provider as configured.
fn code_assist_base(gw: &Gateway, kind: SubscriptionKind) -> String {
    gw.registry()
        .provider(kind.provider_id())
        .map(|p| p.spec.base_url.clone())
        .unwrap_or_default()
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportInput {
    /// claude | codex | gemini | qwen
    pub kind: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub allow_overage: bool,
    #[serde(default)]
    pub priority: Option<i64>,
}

/// Import the credential the provider's CLI keeps on this machine (`from`,
/// else where that CLI keeps it: `~/.claude/.credentials.json`,
/// `~/.codex/auth.json`, `~/.gemini/oauth_creds.json`, `~/.qwen/oauth_creds.json`).
pub async fn import_account(
    gw: &Gateway,
    input: ImportInput,
    from: Option<std::path::PathBuf>,
    actor: Actor,
) -> Result<AccountView, OpsError> {
    let kind = kind_of(&input.kind)?;
    let path = match from {
        Some(p) => p,
        None => {
            let env = |k: &str| std::env::var(k).ok();
            import::default_path(kind, &env).ok_or_else(|| {
                OpsError::InvalidInput("HOME is not set: name the credential file".into())
            })?
        }
    };
    let signed = tokio::task::spawn_blocking(move || import::read(kind, &path))
        .await
        .map_err(|e| OpsError::Store(crate::store::StoreError::Join(e.to_string())))?
        .map_err(|e| OpsError::InvalidInput(e.to_string()))?;
    save_sign_in(
        gw,
        signed,
        SaveSignIn {
            label: input.label,
            allow_overage: input.allow_overage,
            priority: input.priority,
            how: "import",
        },
        actor,
    )
    .await
}

/// Start the provider's sign-in inside the gateway; answers once its URL
/// (or device code) is known, and finishes in the background.
pub async fn start_sign_in(
    gw: &Gateway,
    input: SignInInput,
    actor: Actor,
) -> Result<SignInStarted, OpsError> {
    let kind = kind_of(&input.kind)?;
    let gw: Arc<Gateway> = gw
        .handle()
        .ok_or_else(|| OpsError::InvalidInput("the gateway is stopping".into()))?;
    let id = format!(
        "signin_{}",
        hex::encode(crate::secret::random_bytes::<8>().map_err(|e| OpsError::Store(e.into()))?)
    );
    let opts = login::LoginOptions {
        no_browser: false,
        device: input.device,
        port: input.callback_port,
        timeout: SIGN_IN_TIMEOUT,
        code_assist_base: code_assist_base(&gw, kind),
        read_stdin: false,
    };
    gw.subscriptions.set_sign_in(&id, pending(&id));
    let (tx, rx) = tokio::sync::oneshot::channel::<SignInStarted>();
    let started = {
        let (id, kind_s) = (id.clone(), kind.as_str().to_string());
        let mut tx = Some(tx);
        move |p: login::Prompt| {
            let (url, code) = match p {
                login::Prompt::Open { url, .. } | login::Prompt::Paste { url } => (url, None),
                login::Prompt::Device { url, code } => (url, Some(code)),
            };
            if let Some(tx) = tx.take() {
                let _ = tx.send(SignInStarted {
                    id: id.clone(),
                    kind: kind_s.clone(),
                    url,
                    code,
                });
            }
        }
    };
    let task_id = id.clone();
    let task_gw = gw.clone();
    let task = tokio::spawn(async move {
        let gw = task_gw;
        let mut notify = started;
        let status = match login::login(gw.upstream.client(), kind, &opts, &mut notify).await {
            Ok(signed) => {
                let saved = save_sign_in(
                    &gw,
                    signed,
                    SaveSignIn {
                        label: input.label,
                        allow_overage: input.allow_overage,
                        priority: input.priority,
                        how: "login",
                    },
                    actor,
                )
                .await;
                match saved {
                    Ok(view) => SignInStatus {
                        id: task_id.clone(),
                        state: "signed_in".into(),
                        account: Some(view),
                        error: None,
                    },
                    Err(e) => failed(&task_id, e.to_string()),
                }
            }
            Err(e) => failed(&task_id, e.to_string()),
        };
        gw.subscriptions.set_sign_in(&task_id, status);
    });
    match tokio::time::timeout(Duration::from_secs(30), rx).await {
        Ok(Ok(s)) => Ok(s),
        // The flow ended (or stalled) before it had a URL to show.
        _ => {
            if !task.is_finished() {
                task.abort();
                gw.subscriptions
                    .set_sign_in(&id, failed(&id, "the provider gave no sign-in URL".into()));
            }
            let status = sign_in_status(&gw, &id)?;
            Err(OpsError::InvalidInput(format!(
                "sign-in did not start: {}",
                status
                    .error
                    .unwrap_or_else(|| "no answer from the provider".into())
            )))
        }
    }
}

fn pending(id: &str) -> SignInStatus {
    SignInStatus {
        id: id.to_string(),
        state: "pending".into(),
        account: None,
        error: None,
    }
}

fn failed(id: &str, error: String) -> SignInStatus {
    SignInStatus {
        id: id.to_string(),
        state: "failed".into(),
        account: None,
        error: Some(error),
    }
}

pub fn sign_in_status(gw: &Gateway, id: &str) -> Result<SignInStatus, OpsError> {
    gw.subscriptions
        .sign_in(id)
        .ok_or_else(|| OpsError::NotFound(format!("sign-in {id}")))
}
