//! Subscription accounts: storing a sign-in (login or import) as an account,
//! and what is known of each (plan, token expiry, quota windows).

use super::accounts::{audit_view, find_view, AccountView};
use super::{Actor, OpsError};
use crate::catalog::SubscriptionKind;
use crate::gateway::Gateway;
use crate::quota_windows::{self, Sample, WindowReport};
use crate::store::subscriptions::{self as sql, OAuthRow};
use crate::store::{self, now_ms, AccountRow};
use crate::subscription::login::SignedIn;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A subscription account's sign-in, as reported (never a token).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SubscriptionView {
    /// claude | codex | gemini | qwen
    pub kind: String,
    pub plan: Option<String>,
    pub email: Option<String>,
    /// When the access token expires (RFC 3339); it is refreshed before then.
    pub token_expires_at: Option<String>,
    pub token_expires_in_s: Option<f64>,
    pub has_refresh_token: bool,
    /// ok | expired | revoked
    pub status: String,
    pub status_reason: Option<String>,
    /// Answers billed as extra usage are accepted (default: plan limits only).
    pub allow_overage: bool,
    pub refreshed_at: Option<String>,
    pub refresh_count: i64,
    /// A refresh was cut short before its new token was stored.
    pub refresh_interrupted: bool,
    pub windows: Vec<WindowReport>,
}

fn rfc(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The windows of an account as reports at `now`.
pub fn window_reports(gw: &Gateway, account_id: &str, now: i64) -> Vec<WindowReport> {
    gw.subscriptions
        .windows_of(account_id)
        .iter()
        .map(|w| {
            quota_windows::report(
                &w.window,
                w.status.as_deref(),
                &Sample {
                    used_pct: w.used_pct,
                    observed_ms: w.observed_ms,
                    first_pct: w.first_pct,
                    first_ms: w.first_ms,
                    resets_ms: w.resets_ms,
                    window_minutes: w.window_minutes,
                },
                now,
            )
        })
        .collect()
}

fn view_of(gw: &Gateway, r: &OAuthRow, now: i64) -> SubscriptionView {
    // The book knows refreshes this process made before the store says so.
    let live = gw.subscriptions.tokens.snapshot(&r.account_id);
    let expires = live.as_ref().map(|c| c.expires_ms).unwrap_or(r.expires_ms);
    SubscriptionView {
        kind: r.kind.clone(),
        plan: r.plan.clone(),
        email: r.email.clone(),
        token_expires_at: expires.and_then(rfc),
        token_expires_in_s: expires.map(|e| (e - now) as f64 / 1000.0),
        has_refresh_token: r.refresh_enc.is_some(),
        status: live
            .as_ref()
            .map(|c| c.status.clone())
            .unwrap_or_else(|| r.status.clone()),
        status_reason: live
            .as_ref()
            .and_then(|c| c.reason.clone())
            .or_else(|| r.status_reason.clone()),
        allow_overage: r.allow_overage,
        refreshed_at: r.refreshed_ms.and_then(rfc),
        refresh_count: r.refresh_count,
        refresh_interrupted: r.inflight_enc.is_some(),
        windows: window_reports(gw, &r.account_id, now),
    }
}

/// Add the subscription part to the views of subscription accounts.
pub async fn fill_views(gw: &Gateway, views: &mut [AccountView]) -> Result<(), OpsError> {
    if !views.iter().any(|v| v.origin == "oauth") {
        return Ok(());
    }
    let rows = gw.store.read(sql::list_oauth).await?;
    let now = now_ms();
    for v in views.iter_mut() {
        if let Some(r) = rows.iter().find(|r| r.account_id == v.id) {
            v.subscription = Some(view_of(gw, r, now));
        }
    }
    Ok(())
}

/// How a sign-in is stored.
#[derive(Debug, Clone, Default)]
pub struct SaveSignIn {
    /// Unique per provider; a second sign-in with the same label replaces the first.
    pub label: Option<String>,
    pub allow_overage: bool,
    pub priority: Option<i64>,
    /// login | import (for the audit log).
    pub how: &'static str,
}

/// Store a sign-in as a subscription account (new, or the same label's again).
pub async fn save_sign_in(
    gw: &Gateway,
    signed: SignedIn,
    opts: SaveSignIn,
    actor: Actor,
) -> Result<AccountView, OpsError> {
    let kind: SubscriptionKind = signed.kind;
    let provider = kind.provider_id().to_string();
    if gw.registry().provider(&provider).is_none() {
        return Err(OpsError::NotFound(format!("provider {provider}")));
    }
    let label = opts
        .label
        .clone()
        .or_else(|| signed.email.clone())
        .unwrap_or_else(|| "default".into());
    if label.trim().is_empty() {
        return Err(OpsError::InvalidInput("label must not be empty".into()));
    }
    let cipher = gw.store.cipher().clone();
    let enc = |s: &str| cipher.encrypt(s).map_err(|e| OpsError::Store(e.into()));
    let now = now_ms();
    let mut row = OAuthRow {
        account_id: String::new(),
        kind: kind.as_str().into(),
        access_enc: enc(signed.access.expose())?,
        refresh_enc: match &signed.refresh {
            Some(r) => Some(enc(r.expose())?),
            None => None,
        },
        inflight_enc: None,
        expires_ms: signed.expires_ms,
        plan: signed.plan.clone(),
        email: signed.email.clone(),
        account_ref: signed.account_ref.clone(),
        allow_overage: opts.allow_overage,
        status: "ok".into(),
        status_reason: None,
        refreshed_ms: None,
        refresh_count: 0,
        updated_ms: now,
    };
    let new_id = store::new_id("acc")?;
    let actor_s = actor.as_str();
    let how = opts.how;
    let priority = opts.priority;
    let id = gw
        .store
        .write(move |tx| {
            let existing = store::find_account(tx, &provider, &label)?;
            let account = match existing {
                Some(mut a) => {
                    a.secret_enc = None;
                    a.secret_env = None;
                    a.enabled = true;
                    if let Some(p) = priority {
                        a.priority = p;
                    }
                    store::update_account(tx, &a)?;
                    a
                }
                None => {
                    let a = AccountRow {
                        id: new_id,
                        provider_id: provider.clone(),
                        label: label.clone(),
                        secret_enc: None,
                        secret_env: None,
                        tier: None,
                        enabled: true,
                        priority: priority.unwrap_or(0),
                        source: actor_s.to_string(),
                        created_ms: now,
                    };
                    store::insert_account(tx, &a)?;
                    a
                }
            };
            row.account_id = account.id.clone();
            sql::put_oauth(tx, &row)?;
            let mut after = audit_view(&account);
            after["sign_in"] = serde_json::json!({
                "kind": row.kind, "how": how, "plan": row.plan, "email": row.email,
                "expires_ms": row.expires_ms, "has_refresh_token": row.refresh_enc.is_some(),
            });
            store::audit(
                tx,
                actor_s,
                "sign_in",
                "account",
                &account.id,
                None,
                Some(&after),
            )?;
            Ok(account.id)
        })
        .await?;
    gw.reload().await?;
    let mut view = find_view(gw, &id)?;
    let rows = gw.store.read(sql::list_oauth).await?;
    if let Some(r) = rows.iter().find(|r| r.account_id == id) {
        view.subscription = Some(view_of(gw, r, now_ms()));
    }
    Ok(view)
}
