//! Accounts: credentials for a provider; several per provider are allowed.

use super::{Actor, OpsError};
use crate::catalog::{AuthStyle, Tier};
use crate::gateway::Gateway;
use crate::registry::{Account, AccountOrigin};
use crate::store::{self, now_ms, AccountRow};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An account as reported (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AccountView {
    pub id: String,
    pub provider: String,
    pub label: String,
    /// stored, stored_env (env variable named in the store), env (found in the environment), keyless
    pub origin: String,
    pub env_var: Option<String>,
    pub tier: Tier,
    pub priority: i64,
    pub enabled: bool,
    pub usable: bool,
    pub problem: Option<String>,
    /// Subscription accounts: plan, token expiry and quota windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<super::subscriptions::SubscriptionView>,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> AccountView {
        let (origin, env_var) = match &a.origin {
            AccountOrigin::Stored => ("stored", None),
            AccountOrigin::StoredEnv(v) => ("stored_env", Some(v.clone())),
            AccountOrigin::Env(v) => ("env", Some(v.clone())),
            AccountOrigin::Keyless => ("keyless", None),
            AccountOrigin::OAuth(_) => ("oauth", None),
            AccountOrigin::ClientCredential => ("client_credential", None),
        };
        AccountView {
            id: a.id.clone(),
            provider: a.provider_id.clone(),
            label: a.label.clone(),
            origin: origin.into(),
            env_var,
            tier: a.tier,
            priority: if a.priority == i64::MAX {
                -1
            } else {
                a.priority
            },
            enabled: a.enabled,
            usable: a.usable(),
            problem: a.problem.clone(),
            subscription: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddAccountInput {
    /// Provider id (catalog or custom).
    pub provider: String,
    /// Unique per provider; defaults to "default".
    #[serde(default)]
    pub label: Option<String>,
    /// The upstream key, stored encrypted.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Or the name of an env variable that holds it (never stored).
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub tier: Option<Tier>,
    /// Lower is tried first.
    #[serde(default)]
    pub priority: Option<i64>,
}

pub async fn add_account(
    gw: &Gateway,
    input: AddAccountInput,
    actor: Actor,
) -> Result<AccountView, OpsError> {
    let registry = gw.registry();
    let provider = registry
        .provider(&input.provider)
        .ok_or_else(|| OpsError::NotFound(format!("provider {}", input.provider)))?
        .clone();
    if input.api_key.is_some() && input.api_key_env.is_some() {
        return Err(OpsError::InvalidInput(
            "give api_key or api_key_env, not both".into(),
        ));
    }
    let keyless = provider.spec.auth == AuthStyle::None;
    if !keyless
        && input
            .api_key
            .as_deref()
            .map(str::trim)
            .unwrap_or("")
            .is_empty()
        && input.api_key_env.is_none()
    {
        return Err(OpsError::InvalidInput(format!(
            "provider {} needs a key: give api_key or api_key_env",
            provider.spec.id
        )));
    }
    let label = input.label.unwrap_or_else(|| "default".into());
    if label.trim().is_empty() {
        return Err(OpsError::InvalidInput("label must not be empty".into()));
    }
    let secret_enc = match &input.api_key {
        Some(k) => Some(
            gw.store
                .cipher()
                .encrypt(k.trim())
                .map_err(|e| OpsError::Store(e.into()))?,
        ),
        None => None,
    };
    let row = AccountRow {
        id: store::new_id("acc")?,
        provider_id: provider.spec.id.clone(),
        label: label.clone(),
        secret_enc,
        secret_env: input.api_key_env.clone(),
        tier: input.tier.map(|t| t.as_str().to_string()),
        enabled: true,
        priority: input.priority.unwrap_or(0),
        source: actor.as_str().to_string(),
        created_ms: now_ms(),
    };
    let id = row.id.clone();
    let actor_s = actor.as_str();
    gw.store
        .write(move |tx| {
            if store::find_account(tx, &row.provider_id, &row.label)?.is_some() {
                return Err(store::StoreError::Invalid(format!(
                    "provider {} already has an account labelled {:?}",
                    row.provider_id, row.label
                )));
            }
            store::insert_account(tx, &row)?;
            store::audit(
                tx,
                actor_s,
                "create",
                "account",
                &row.id,
                None,
                Some(&audit_view(&row)),
            )
        })
        .await?;
    gw.reload().await?;
    find_view(gw, &id)
}

pub async fn list_accounts(
    gw: &Gateway,
    provider: Option<&str>,
) -> Result<Vec<AccountView>, OpsError> {
    let registry = gw.registry();
    let mut views: Vec<AccountView> = registry
        .providers()
        .iter()
        .filter(|p| provider.is_none_or(|id| p.spec.id == id))
        .flat_map(|p| {
            registry
                .accounts(&p.spec.id)
                .iter()
                .map(|a| AccountView::from(a.as_ref()))
        })
        .collect();
    super::subscriptions::fill_views(gw, &mut views).await?;
    Ok(views)
}

pub async fn remove_account(gw: &Gateway, id: &str, actor: Actor) -> Result<String, OpsError> {
    if id.starts_with("env-") {
        return Err(OpsError::InvalidInput(format!(
            "{id} comes from the environment; unset its variable instead"
        )));
    }
    let id = id.to_string();
    let actor_s = actor.as_str();
    let removed = gw
        .store
        .write(move |tx| {
            let row = store::delete_account(tx, &id)?;
            store::audit(
                tx,
                actor_s,
                "delete",
                "account",
                &row.id,
                Some(&audit_view(&row)),
                None,
            )?;
            Ok(row.id)
        })
        .await?;
    gw.reload().await?;
    Ok(removed)
}

pub(crate) fn find_view(gw: &Gateway, id: &str) -> Result<AccountView, OpsError> {
    let registry = gw.registry();
    registry
        .providers()
        .iter()
        .flat_map(|p| registry.accounts(&p.spec.id).iter())
        .find(|a| a.id == id)
        .map(|a| AccountView::from(a.as_ref()))
        .ok_or_else(|| OpsError::NotFound(format!("account {id}")))
}

/// What the audit log keeps of an account: never the secret.
pub(crate) fn audit_view(row: &AccountRow) -> serde_json::Value {
    serde_json::json!({
        "id": row.id,
        "provider": row.provider_id,
        "label": row.label,
        "has_key": row.secret_enc.is_some(),
        "key_env": row.secret_env,
        "tier": row.tier,
        "enabled": row.enabled,
        "priority": row.priority,
    })
}
