//! Providers: the catalog merged with custom ones, with which are usable.

use super::{Actor, OpsError};
use crate::catalog::{AuthStyle, Tier, WireFormat};
use crate::config::ProviderEntry;
use crate::gateway::Gateway;
use crate::registry::ProviderOrigin;
use crate::store::{self, ProviderRow};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ProviderView {
    pub id: String,
    pub name: String,
    /// Clients ask for `prefix/model`.
    pub prefix: String,
    pub format: WireFormat,
    pub base_url: String,
    pub auth: AuthStyle,
    pub tier: Tier,
    pub origin: String,
    pub env: Vec<String>,
    pub local: bool,
    pub usable: bool,
    /// How many of its accounts are usable.
    pub accounts: usize,
    /// Every account of this provider, without secrets.
    pub account_list: Vec<super::accounts::AccountView>,
    pub models: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ListProvidersInput {
    /// Only providers with a usable account.
    #[serde(default)]
    pub usable_only: bool,
}

pub async fn list_providers(
    gw: &Gateway,
    input: ListProvidersInput,
) -> Result<Vec<ProviderView>, OpsError> {
    let registry = gw.registry();
    Ok(registry
        .providers()
        .iter()
        .map(|p| ProviderView {
            id: p.spec.id.clone(),
            name: p.spec.name.clone(),
            prefix: p.spec.prefix().to_string(),
            format: p.spec.format,
            base_url: p.spec.base_url.clone(),
            auth: p.spec.auth,
            tier: p.spec.tier,
            origin: match p.origin {
                ProviderOrigin::Catalog => "catalog",
                ProviderOrigin::Adjusted => "adjusted",
                ProviderOrigin::Custom => "custom",
            }
            .into(),
            env: p.spec.env.clone(),
            local: p.spec.local,
            usable: registry.is_usable(&p.spec.id),
            accounts: registry.usable_accounts(&p.spec.id).count(),
            account_list: registry
                .accounts(&p.spec.id)
                .iter()
                .map(|a| super::accounts::AccountView::from(a.as_ref()))
                .collect(),
            models: p.spec.models.iter().map(|m| m.id.clone()).collect(),
        })
        .filter(|v| !input.usable_only || v.usable)
        .collect())
}

/// Add a custom provider or adjust a catalog one (an upsert). Returns whether it changed.
pub async fn upsert_provider(
    gw: &Gateway,
    entry: &ProviderEntry,
    actor: Actor,
) -> Result<bool, OpsError> {
    let row = provider_row(gw, entry, actor)?;
    let Some(row) = row else { return Ok(false) };
    let actor_s = actor.as_str();
    let changed = gw
        .store
        .write(move |tx| {
            let (before, changed) = store::upsert_provider(tx, &row)?;
            if changed {
                let before = before.map(|b| serde_json::to_value(b).unwrap_or_default());
                let after = serde_json::to_value(&row).unwrap_or_default();
                store::audit(
                    tx,
                    actor_s,
                    "upsert",
                    "provider",
                    &row.id,
                    before.as_ref(),
                    Some(&after),
                )?;
            }
            Ok(changed)
        })
        .await?;
    if changed {
        gw.reload().await?;
    }
    Ok(changed)
}

/// The stored adjustment an entry describes, or None when it adjusts nothing.
pub(crate) fn provider_row(
    gw: &Gateway,
    e: &ProviderEntry,
    actor: Actor,
) -> Result<Option<ProviderRow>, OpsError> {
    let in_catalog = gw.catalog().iter().any(|p| p.id == e.id);
    let adjusts = e.name.is_some()
        || e.format.is_some()
        || e.base_url.is_some()
        || e.auth.is_some()
        || e.tier.is_some()
        || e.models.is_some()
        || e.mode.is_some();
    if in_catalog && !adjusts {
        return Ok(None);
    }
    if !in_catalog && (e.format.is_none() || e.base_url.is_none()) {
        return Err(OpsError::InvalidInput(format!(
            "provider {:?} is not in the catalog: a custom provider needs `format` and `base_url`",
            e.id
        )));
    }
    if let Some(url) = &e.base_url {
        crate::config::validate_base_url(url)
            .and_then(|()| gw.egress.check_url(url))
            .map_err(|m| OpsError::InvalidInput(format!("base_url {m}")))?;
    }
    let enum_str = |v: serde_json::Value| v.as_str().map(str::to_string);
    Ok(Some(ProviderRow {
        id: e.id.clone(),
        name: e.name.clone(),
        format: e.format.map(|f| f.as_str().to_string()),
        base_url: e.base_url.clone(),
        auth: e
            .auth
            .and_then(|a| enum_str(serde_json::to_value(a).unwrap_or_default())),
        tier: e.tier.map(|t| t.as_str().to_string()),
        models: e.models.clone(),
        source: actor.as_str().to_string(),
        mode: e
            .mode
            .and_then(|m| enum_str(serde_json::to_value(m).unwrap_or_default())),
    }))
}
