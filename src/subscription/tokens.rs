//! The token book: each subscription account's current access token, kept
//! in memory, refreshed before it expires, one refresh at a time per account
//! (every concurrent request waits on the account's lock and then reads the
//! fresh token). The order of a refresh is what makes it crash-safe:
//!
//! 1. commit the refresh token about to be spent as "in flight";
//! 2. call the token endpoint;
//! 3. commit the new tokens and clear the marker in one transaction;
//! 4. only then use the new access token.
//!
//! A provider that rotates refresh tokens (Anthropic, OpenAI) therefore never
//! leaves a committed state whose refresh token was spent without its
//! successor stored — except across a crash between 2 and 3, which the marker
//! makes visible (`accounts list` says so) instead of silently dead.

use super::oauth::{self, Endpoints, OAuthError};
use crate::catalog::SubscriptionKind;
use crate::secret::{Cipher, Secret};
use crate::store::subscriptions::{self as sql, OAuthRow};
use crate::store::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Refresh this long before the access token expires.
pub const REFRESH_SKEW_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone)]
pub struct Credential {
    pub kind: SubscriptionKind,
    pub access: Secret,
    pub refresh: Option<Secret>,
    pub expires_ms: Option<i64>,
    /// chatgpt account id (codex), Code Assist project (gemini), resource URL (qwen).
    pub account_ref: Option<String>,
    pub allow_overage: bool,
    /// ok | expired | revoked
    pub status: String,
    pub reason: Option<String>,
    pub updated_ms: i64,
    /// A refresh was cut short before its answer was stored.
    pub interrupted: bool,
}

/// What a request needs to authenticate with an account.
#[derive(Debug, Clone)]
pub struct Bearer {
    pub token: Secret,
    pub account_ref: Option<String>,
    pub allow_overage: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no stored credential for this account")]
    Missing,
    /// The account cannot be used until a new login.
    #[error("{0}")]
    Unusable(String),
    /// The refresh did not get through; the account may work again soon.
    #[error("token refresh failed: {0}")]
    Network(String),
    #[error("token store: {0}")]
    Store(String),
}

#[derive(Default)]
pub struct TokenBook {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Credential>>>>,
    refreshes: AtomicU64,
}

impl TokenBook {
    /// Refresh calls made by this process (tests, health).
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// Take stored rows in: new accounts, and rows another process changed
    /// (a new login) since this book last saw them. A row being refreshed
    /// right now is left to that refresh.
    pub fn load(&self, rows: &[OAuthRow], cipher: &Cipher) {
        let Ok(mut slots) = self.slots.lock() else {
            return;
        };
        slots.retain(|id, _| rows.iter().any(|r| &r.account_id == id));
        for r in rows {
            let Some(kind) = SubscriptionKind::parse(&r.kind) else {
                continue;
            };
            let fresh = match decode(r, kind, cipher) {
                Some(c) => c,
                None => continue,
            };
            match slots.get(&r.account_id) {
                Some(slot) => {
                    if let Ok(mut c) = slot.try_lock() {
                        if r.updated_ms > c.updated_ms || (c.status != r.status) {
                            *c = fresh;
                        }
                    }
                }
                None => {
                    slots.insert(
                        r.account_id.clone(),
                        Arc::new(tokio::sync::Mutex::new(fresh)),
                    );
                }
            }
        }
    }

    fn slot(&self, account_id: &str) -> Option<Arc<tokio::sync::Mutex<Credential>>> {
        self.slots.lock().ok()?.get(account_id).cloned()
    }

    /// Credentials as they are now (reports).
    pub fn snapshot(&self, account_id: &str) -> Option<Credential> {
        let slot = self.slot(account_id)?;
        let c = slot.try_lock().ok()?;
        Some(c.clone())
    }

    /// A valid access token for the account, refreshing it first when it
    /// expires within `REFRESH_SKEW_MS` (one refresh at a time per account).
    pub async fn bearer(
        &self,
        account_id: &str,
        client: &reqwest::Client,
        store: &Store,
    ) -> Result<Bearer, TokenError> {
        let slot = self.slot(account_id).ok_or(TokenError::Missing)?;
        let mut c = slot.lock().await;
        if c.status != "ok" {
            return Err(TokenError::Unusable(match &c.reason {
                Some(r) => format!("{}: {r}", c.status),
                None => c.status.clone(),
            }));
        }
        let now = crate::store::now_ms();
        let due = c.expires_ms.is_some_and(|e| e - now <= REFRESH_SKEW_MS);
        if !due {
            return Ok(bearer_of(&c));
        }
        let Some(refresh) = c.refresh.clone() else {
            if c.expires_ms.is_some_and(|e| e <= now) {
                return Err(TokenError::Unusable(
                    "expired: the access token expired and there is no refresh token; run `omniroute login` again".into(),
                ));
            }
            return Ok(bearer_of(&c));
        };
        self.refresh_locked(account_id, &mut c, &refresh, client, store)
            .await?;
        Ok(bearer_of(&c))
    }

    /// Remember a fact learnt on first use (Gemini's Code Assist project).
    pub fn set_account_ref(&self, account_id: &str, value: &str) {
        if let Some(slot) = self.slot(account_id) {
            if let Ok(mut c) = slot.try_lock() {
                c.account_ref = Some(value.to_string());
            }
        }
    }

    /// Force the next `bearer` call to refresh (the upstream refused the token).
    pub fn expire(&self, account_id: &str) {
        if let Some(slot) = self.slot(account_id) {
            if let Ok(mut c) = slot.try_lock() {
                c.expires_ms = Some(0);
            }
        }
    }

    async fn refresh_locked(
        &self,
        account_id: &str,
        c: &mut Credential,
        refresh: &Secret,
        client: &reqwest::Client,
        store: &Store,
    ) -> Result<(), TokenError> {
        let cipher = store.cipher().clone();
        let spent = cipher
            .encrypt(refresh.expose())
            .map_err(|e| TokenError::Store(e.to_string()))?;
        let id = account_id.to_string();
        store
            .write(move |tx| sql::mark_refresh_inflight(tx, &id, &spent))
            .await
            .map_err(|e| TokenError::Store(e.to_string()))?;
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let ep = Endpoints::of(c.kind);
        match oauth::refresh(client, &ep, refresh.expose()).await {
            Ok(ts) => {
                let access_enc = cipher
                    .encrypt(ts.access.expose())
                    .map_err(|e| TokenError::Store(e.to_string()))?;
                let refresh_enc = match &ts.refresh {
                    Some(r) => Some(
                        cipher
                            .encrypt(r.expose())
                            .map_err(|e| TokenError::Store(e.to_string()))?,
                    ),
                    None => None,
                };
                let (id, expires) = (account_id.to_string(), ts.expires_ms);
                store
                    .write(move |tx| {
                        sql::store_refreshed(tx, &id, &access_enc, refresh_enc.as_deref(), expires)
                    })
                    .await
                    .map_err(|e| TokenError::Store(e.to_string()))?;
                c.access = ts.access;
                if let Some(r) = ts.refresh {
                    c.refresh = Some(r);
                }
                c.expires_ms = ts.expires_ms;
                c.interrupted = false;
                c.updated_ms = crate::store::now_ms();
                tracing::info!(account = account_id, "subscription token refreshed");
                Ok(())
            }
            Err(OAuthError::Network(m)) | Err(OAuthError::Local(m)) => {
                // Nothing was spent that we know of; the marker stays for the next try.
                Err(TokenError::Network(m))
            }
            Err(e) => {
                let status = e.status();
                let mut reason = e.to_string();
                reason = reason
                    .strip_prefix(&format!("{status}: "))
                    .unwrap_or(&reason)
                    .to_string();
                if c.interrupted {
                    reason = format!(
                        "{reason} (an earlier refresh was interrupted before its new token was stored)"
                    );
                }
                reason.push_str("; run `omniroute login` again");
                let (id, r) = (account_id.to_string(), reason.clone());
                store
                    .write(move |tx| sql::set_oauth_status(tx, &id, status, Some(&r)))
                    .await
                    .map_err(|e| TokenError::Store(e.to_string()))?;
                c.status = status.to_string();
                c.reason = Some(reason.clone());
                c.updated_ms = crate::store::now_ms();
                tracing::warn!(
                    account = account_id,
                    status,
                    "subscription token refresh refused"
                );
                Err(TokenError::Unusable(format!("{status}: {reason}")))
            }
        }
    }
}

fn bearer_of(c: &Credential) -> Bearer {
    Bearer {
        token: c.access.clone(),
        account_ref: c.account_ref.clone(),
        allow_overage: c.allow_overage,
    }
}

fn decode(r: &OAuthRow, kind: SubscriptionKind, cipher: &Cipher) -> Option<Credential> {
    let access = match cipher.decrypt(&r.access_enc) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(account = %r.account_id, error = %e, "stored access token unreadable");
            return None;
        }
    };
    let refresh = r.refresh_enc.as_ref().and_then(|b| cipher.decrypt(b).ok());
    Some(Credential {
        kind,
        access,
        refresh,
        expires_ms: r.expires_ms,
        account_ref: r.account_ref.clone(),
        allow_overage: r.allow_overage,
        status: r.status.clone(),
        reason: r.status_reason.clone(),
        updated_ms: r.updated_ms,
        interrupted: r.inflight_enc.is_some(),
    })
}
