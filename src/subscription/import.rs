//! `omniroute login KIND --import`: the credential the provider's own CLI
//! already stored on this machine. Locations and shapes (sources in
//! docs/subscriptions.md):
//!
//! | kind | file | shape |
//! |---|---|---|
//! | claude | `$CLAUDE_CONFIG_DIR/.credentials.json`, else `~/.claude/.credentials.json` (macOS keeps it in the Keychain instead) | `{"claudeAiOauth":{"accessToken","refreshToken","expiresAt"(ms),"scopes","subscriptionType"}}` |
//! | codex | `$CODEX_HOME/auth.json`, else `~/.codex/auth.json` | `{"tokens":{"id_token","access_token","refresh_token","account_id"},"last_refresh"}` |
//! | gemini | `~/.gemini/oauth_creds.json` | `{"access_token","refresh_token","expiry_date"(ms),"id_token","scope","token_type"}` |
//! | qwen | `~/.qwen/oauth_creds.json` | `{"access_token","refresh_token","expiry_date"(ms),"resource_url","token_type"}` |

use super::login::SignedIn;
use super::oauth::jwt_claims;
use crate::catalog::SubscriptionKind;
use crate::secret::Secret;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "no credential file at {0}: sign in with the provider's own CLI first, or give --from PATH"
    )]
    NotFound(String),
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path} is not a {kind} credential file: {message}")]
    Shape {
        path: String,
        kind: &'static str,
        message: String,
    },
}

/// Where the provider's CLI keeps its credential, given the environment.
pub fn default_path(
    kind: SubscriptionKind,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<PathBuf> {
    let home = env("HOME").map(PathBuf::from);
    match kind {
        SubscriptionKind::Claude => env("CLAUDE_CONFIG_DIR")
            .map(PathBuf::from)
            .or_else(|| home.map(|h| h.join(".claude")))
            .map(|d| d.join(".credentials.json")),
        SubscriptionKind::Codex => env("CODEX_HOME")
            .map(PathBuf::from)
            .or_else(|| home.map(|h| h.join(".codex")))
            .map(|d| d.join("auth.json")),
        SubscriptionKind::Gemini => home.map(|h| h.join(".gemini").join("oauth_creds.json")),
        SubscriptionKind::Qwen => home.map(|h| h.join(".qwen").join("oauth_creds.json")),
    }
}

/// Read and decode a credential file of `kind`.
pub fn read(kind: SubscriptionKind, path: &Path) -> Result<SignedIn, ImportError> {
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ImportError::NotFound(shown))
        }
        Err(e) => {
            return Err(ImportError::Read {
                path: shown,
                message: e.to_string(),
            })
        }
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| ImportError::Shape {
        path: shown.clone(),
        kind: kind.as_str(),
        message: format!("not JSON: {e}"),
    })?;
    parse(kind, &v).map_err(|message| ImportError::Shape {
        path: shown,
        kind: kind.as_str(),
        message,
    })
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(Value::as_str)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
}

fn ms(v: &Value, k: &str) -> Option<i64> {
    v.get(k).and_then(Value::as_f64).map(|x| x as i64)
}

pub fn parse(kind: SubscriptionKind, v: &Value) -> Result<SignedIn, String> {
    match kind {
        SubscriptionKind::Claude => {
            let o = v
                .get("claudeAiOauth")
                .ok_or("no claudeAiOauth object (an API-key login has no OAuth credential)")?;
            Ok(SignedIn {
                kind,
                access: Secret::new(s(o, "accessToken").ok_or("no accessToken")?),
                refresh: s(o, "refreshToken").map(Secret::new),
                expires_ms: ms(o, "expiresAt"),
                plan: s(o, "subscriptionType"),
                email: None,
                account_ref: None,
            })
        }
        SubscriptionKind::Codex => {
            let t = v
                .get("tokens")
                .filter(|t| t.is_object())
                .ok_or("no tokens object (an API-key login has no ChatGPT credential)")?;
            let access = s(t, "access_token").ok_or("no tokens.access_token")?;
            let id_claims = s(t, "id_token").and_then(|t| jwt_claims(&t));
            let auth_claim = |c: &Option<Value>, k: &str| {
                c.as_ref()
                    .and_then(|c| c.pointer(&format!("/https:~1~1api.openai.com~1auth/{k}")))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            let expires_ms = jwt_claims(&access)
                .and_then(|c| c.get("exp").and_then(Value::as_f64))
                .map(|e| (e * 1000.0) as i64);
            Ok(SignedIn {
                kind,
                plan: auth_claim(&id_claims, "chatgpt_plan_type"),
                email: id_claims.as_ref().and_then(|c| s(c, "email")),
                account_ref: s(t, "account_id")
                    .or_else(|| auth_claim(&id_claims, "chatgpt_account_id")),
                access: Secret::new(access),
                refresh: s(t, "refresh_token").map(Secret::new),
                expires_ms,
            })
        }
        SubscriptionKind::Gemini | SubscriptionKind::Qwen => {
            let email = s(v, "id_token")
                .and_then(|t| jwt_claims(&t))
                .and_then(|c| s(&c, "email"));
            Ok(SignedIn {
                kind,
                access: Secret::new(s(v, "access_token").ok_or("no access_token")?),
                refresh: s(v, "refresh_token").map(Secret::new),
                expires_ms: ms(v, "expiry_date"),
                plan: None,
                email,
                account_ref: if kind == SubscriptionKind::Qwen {
                    s(v, "resource_url")
                } else {
                    None
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_paths_follow_each_clis_variables() {
        let env = |k: &str| match k {
            "HOME" => Some("/home/u".to_string()),
            "CODEX_HOME" => Some("/opt/codex".to_string()),
            _ => None,
        };
        assert_eq!(
            default_path(SubscriptionKind::Claude, &env).unwrap(),
            PathBuf::from("/home/u/.claude/.credentials.json")
        );
        assert_eq!(
            default_path(SubscriptionKind::Codex, &env).unwrap(),
            PathBuf::from("/opt/codex/auth.json")
        );
        assert_eq!(
            default_path(SubscriptionKind::Qwen, &env).unwrap(),
            PathBuf::from("/home/u/.qwen/oauth_creds.json")
        );
    }

    #[test]
    fn shapes_are_read_and_wrong_ones_explained() {
        let c = parse(
            SubscriptionKind::Claude,
            &json!({"claudeAiOauth": {"accessToken": "sk-ant-oat01-a", "refreshToken": "sk-ant-ort01-r", "expiresAt": 1_700_000_000_000i64, "subscriptionType": "max"}}),
        )
        .unwrap();
        assert_eq!(c.plan.as_deref(), Some("max"));
        assert_eq!(c.expires_ms, Some(1_700_000_000_000));
        let e = parse(
            SubscriptionKind::Codex,
            &json!({"OPENAI_API_KEY": "sk-x", "tokens": null}),
        )
        .unwrap_err();
        assert!(e.contains("API-key"), "{e}");
        let q = parse(
            SubscriptionKind::Qwen,
            &json!({"access_token": "a", "refresh_token": "r", "expiry_date": 5, "resource_url": "portal.qwen.ai"}),
        )
        .unwrap();
        assert_eq!(q.account_ref.as_deref(), Some("portal.qwen.ai"));
    }
}
