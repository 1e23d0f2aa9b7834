//! Apply a config file into the store: an idempotent upsert in one
//! transaction, audited, so the same file can be applied at every start.

use super::{accounts::audit_view, providers::provider_row, Actor, OpsError};
use crate::config::FileConfig;
use crate::gateway::Gateway;
use crate::store::{self, now_ms, AccountRow, StoreError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const CONFIG_ACCOUNT_LABEL: &str = "config";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApplyReport {
    pub providers_changed: Vec<String>,
    pub accounts_changed: Vec<String>,
    pub keys_added: usize,
    /// Config keys whose scopes the file changed.
    #[serde(default)]
    pub keys_changed: usize,
    pub combos_changed: Vec<String>,
}

impl ApplyReport {
    pub fn is_empty(&self) -> bool {
        self.providers_changed.is_empty()
            && self.accounts_changed.is_empty()
            && self.keys_added == 0
            && self.keys_changed == 0
    }
}

/// The file's combos in an order where each comes after the combos it
/// refers to, so a later one never meets an "unknown" earlier one; a cycle
/// among them (or through stored combos) is an error that says so.
async fn combo_order<'a>(
    gw: &Gateway,
    combos: &'a [crate::routing::combo::Combo],
) -> Result<Vec<(usize, &'a crate::routing::combo::Combo)>, OpsError> {
    use crate::routing::combo::ComboError;
    let stored = gw.store.read(store::list_combos).await?;
    let lookup = |n: &str| {
        combos.iter().find(|c| c.name == n).cloned().or_else(|| {
            stored
                .iter()
                .find(|r| r.name == n)
                .and_then(|r| serde_json::from_str(&r.definition).ok())
        })
    };
    for (i, c) in combos.iter().enumerate() {
        if let Err(e @ ComboError::Cycle(..)) = c.flatten(&lookup) {
            return Err(OpsError::InvalidInput(format!("combos[{i}]: {e}")));
        }
    }
    let refers = |c: &crate::routing::combo::Combo, name: &str| {
        c.models.iter().any(|step| match step {
            crate::routing::combo::Step::Combo(r) => r.combo == name,
            crate::routing::combo::Step::Name(s) => s == name,
            _ => false,
        })
    };
    let mut placed: Vec<(usize, &crate::routing::combo::Combo)> = Vec::new();
    let mut left: Vec<(usize, &crate::routing::combo::Combo)> = combos.iter().enumerate().collect();
    while !left.is_empty() {
        // Ready: refers to no file combo still left (there is one: no cycles).
        let ready = left
            .iter()
            .position(|(_, c)| {
                !left
                    .iter()
                    .any(|(_, o)| o.name != c.name && refers(c, &o.name))
            })
            .unwrap_or(0);
        placed.push(left.remove(ready));
    }
    Ok(placed)
}

pub async fn apply_config(gw: &Gateway, cfg: &FileConfig) -> Result<ApplyReport, OpsError> {
    let actor = Actor::Config.as_str();
    let mut provider_rows = Vec::new();
    let mut accounts = Vec::new();
    for (i, entry) in cfg.providers.iter().enumerate() {
        let row = provider_row(gw, entry, Actor::Config)
            .map_err(|e| OpsError::InvalidInput(format!("providers[{i}]: {e}")))?;
        provider_rows.extend(row);
        if entry.api_key.is_some() || entry.api_key_env.is_some() {
            accounts.push((
                entry.id.clone(),
                entry.api_key.clone(),
                entry.api_key_env.clone(),
                entry.tier,
            ));
        }
    }
    let mut key_rows = Vec::new();
    let mut key_policies = Vec::new();
    for key in &cfg.server.api_keys {
        let row = super::keys::row_for(key.value(), key.label(), "config", key.scopes())?;
        key_policies.push((row.hash.clone(), key.cache().cloned()));
        key_rows.push(row);
    }
    let cipher = gw.store.cipher().clone();
    let report = gw
        .store
        .write(move |tx| {
            let mut report = ApplyReport::default();
            for row in &provider_rows {
                let (before, changed) = store::upsert_provider(tx, row)?;
                if changed {
                    let before = before.map(|b| serde_json::to_value(b).unwrap_or_default());
                    let after = serde_json::to_value(row).unwrap_or_default();
                    store::audit(
                        tx,
                        actor,
                        "upsert",
                        "provider",
                        &row.id,
                        before.as_ref(),
                        Some(&after),
                    )?;
                    report.providers_changed.push(row.id.clone());
                }
            }
            for (provider, key, env, tier) in accounts {
                let existing = store::find_account(tx, &provider, CONFIG_ACCOUNT_LABEL)?;
                let tier = tier.map(|t| t.as_str().to_string());
                let same_secret = |a: &AccountRow| match (&a.secret_enc, &key) {
                    (Some(blob), Some(k)) => cipher
                        .decrypt(blob)
                        .map(|s| s.expose() == k)
                        .unwrap_or(false),
                    (None, None) => true,
                    _ => false,
                };
                if let Some(a) = &existing {
                    if same_secret(a) && a.secret_env == env && a.tier == tier {
                        continue;
                    }
                }
                let secret_enc = key.as_deref().map(|k| cipher.encrypt(k)).transpose()?;
                let row = AccountRow {
                    id: existing
                        .as_ref()
                        .map(|a| a.id.clone())
                        .unwrap_or(store::new_id("acc")?),
                    provider_id: provider.clone(),
                    label: CONFIG_ACCOUNT_LABEL.into(),
                    secret_enc,
                    secret_env: env,
                    tier,
                    enabled: true,
                    priority: existing.as_ref().map(|a| a.priority).unwrap_or(0),
                    source: actor.into(),
                    created_ms: existing.as_ref().map(|a| a.created_ms).unwrap_or(now_ms()),
                };
                match &existing {
                    Some(_) => store::update_account(tx, &row)?,
                    None => store::insert_account(tx, &row)?,
                }
                let before = existing.as_ref().map(audit_view);
                store::audit(
                    tx,
                    actor,
                    "upsert",
                    "account",
                    &row.id,
                    before.as_ref(),
                    Some(&audit_view(&row)),
                )?;
                report.accounts_changed.push(row.id.clone());
            }
            for row in &key_rows {
                // The file is the truth for the scopes of the keys it names.
                if let Some(stored) = store::key_by_hash(tx, &row.hash)? {
                    if stored.source == "config" && stored.scopes != row.scopes {
                        store::set_key_scopes(tx, &stored.id, row.scopes)?;
                        let before = serde_json::json!({"id": stored.id, "scopes": stored.scopes});
                        let after = serde_json::json!({"id": stored.id, "scopes": row.scopes});
                        store::audit(
                            tx,
                            actor,
                            "scope",
                            "client_key",
                            &stored.id,
                            Some(&before),
                            Some(&after),
                        )?;
                        report.keys_changed += 1;
                    }
                    continue;
                }
                if store::insert_key(tx, row)? {
                    let after = serde_json::json!({"id": row.id, "hint": row.hint, "label": row.label, "scopes": row.scopes});
                    store::audit(
                        tx,
                        actor,
                        "create",
                        "client_key",
                        &row.id,
                        None,
                        Some(&after),
                    )?;
                    report.keys_added += 1;
                }
            }
            // A key's cache policy, when the file gives one (changed only when it differs).
            for (hash, policy) in &key_policies {
                let Some(policy) = policy else { continue };
                let Some(stored) = store::key_by_hash(tx, hash)? else {
                    continue;
                };
                let before = crate::cache::rows::get_policy(tx, &stored.id)?;
                if before.as_ref() != Some(policy) {
                    crate::cache::rows::put_policy(tx, &stored.id, policy)?;
                    store::audit(
                        tx,
                        actor,
                        "cache_policy",
                        "client_key",
                        &stored.id,
                        before.map(|b| serde_json::to_value(b).unwrap_or_default()).as_ref(),
                        Some(&serde_json::to_value(policy).unwrap_or_default()),
                    )?;
                    report.keys_changed += 1;
                }
            }
            Ok::<_, StoreError>(report)
        })
        .await?;
    if !report.is_empty() {
        gw.reload().await?;
    }
    // Combos last: they name providers the file may have just defined.
    let mut report = report;
    for (i, combo) in combo_order(gw, &cfg.combos).await? {
        let r = super::combos::upsert_combo(
            gw,
            super::combos::UpsertComboInput {
                combo: combo.clone(),
                dry_run: false,
            },
            Actor::Config,
        )
        .await
        .map_err(|e| OpsError::InvalidInput(format!("combos[{i}]: {e}")))?;
        for w in &r.warnings {
            tracing::warn!(combo = %r.name, "{w}");
        }
        if r.saved {
            report.combos_changed.push(r.name);
        }
    }
    Ok(report)
}
