//! Client keys: create (shown once) with scopes, list, change scopes,
//! revoke. Stored as SHA-256 only.

use super::{Actor, OpsError};
use crate::access::Scopes;
use crate::gateway::Gateway;
use crate::store::{self, now_ms, ClientKeyRow};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

const BOOTSTRAP_FLAG: &str = "bootstrap_key_created";
/// The label of the key created at first start (the admin key until key scopes land).
pub const BOOTSTRAP_LABEL: &str = "first-start";

/// A newly created key: the only time its value is shown.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CreatedKey {
    pub id: String,
    pub key: String,
    pub label: String,
    pub scopes: Scopes,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct CreateKeyInput {
    /// A name to recognise the key by.
    #[serde(default)]
    pub label: Option<String>,
    /// What the key may do (default `inference`).
    #[serde(default)]
    pub scopes: Option<Scopes>,
}

/// The scopes a key is given instead of the ones it has.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetScopesInput {
    pub scopes: Scopes,
}

pub fn generate() -> Result<String, OpsError> {
    let bytes = crate::secret::random_bytes::<24>().map_err(|e| OpsError::Store(e.into()))?;
    Ok(format!("sk-omni-{}", hex::encode(bytes)))
}

fn hint(key: &str) -> String {
    let n = (key.len() / 2).min(12);
    format!(
        "{}…",
        &key[..key
            .char_indices()
            .nth(n)
            .map(|(i, _)| i)
            .unwrap_or(key.len())]
    )
}

pub fn row_for(
    key: &str,
    label: &str,
    source: &str,
    scopes: Scopes,
) -> Result<ClientKeyRow, OpsError> {
    if scopes.is_empty() {
        return Err(OpsError::InvalidInput(
            "a key needs at least one scope: inference, read or admin".into(),
        ));
    }
    Ok(ClientKeyRow {
        scopes,
        id: store::new_id("key")?,
        hint: hint(key),
        label: label.to_string(),
        source: source.to_string(),
        created_ms: now_ms(),
        revoked_ms: None,
        hash: hex::encode(crate::registry::hash_key(key)),
    })
}

pub async fn create_key(
    gw: &Gateway,
    input: CreateKeyInput,
    actor: Actor,
) -> Result<CreatedKey, OpsError> {
    let label = input
        .label
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "default".into());
    if label == BOOTSTRAP_LABEL {
        return Err(OpsError::InvalidInput(format!(
            "the label {BOOTSTRAP_LABEL:?} is reserved for the key made at first start"
        )));
    }
    let key = generate()?;
    let scopes = input.scopes.unwrap_or_else(Scopes::inference);
    let row = row_for(&key, &label, "generated", scopes)?;
    let id = row.id.clone();
    let actor_s = actor.as_str();
    gw.store
        .write(move |tx| {
            store::insert_key(tx, &row)?;
            let after = serde_json::json!({"id": row.id, "hint": row.hint, "label": row.label, "scopes": row.scopes});
            store::audit(
                tx,
                actor_s,
                "create",
                "client_key",
                &row.id,
                None,
                Some(&after),
            )
        })
        .await?;
    gw.reload().await?;
    Ok(CreatedKey {
        id,
        key,
        label,
        scopes,
    })
}

/// On the very first start, create a key so the gateway is usable at once.
pub async fn ensure_bootstrap_key(gw: &Gateway) -> Result<Option<CreatedKey>, OpsError> {
    let done = gw
        .store
        .read(|c| store::meta_get(c, BOOTSTRAP_FLAG))
        .await?;
    if done.is_some() {
        return Ok(None);
    }
    let key = generate()?;
    // The first key is the operator's: it may manage the gateway.
    let row = row_for(&key, BOOTSTRAP_LABEL, "generated", Scopes::admin())?;
    let id = row.id.clone();
    let created = gw
        .store
        .write(move |tx| {
            if store::meta_get(tx, BOOTSTRAP_FLAG)?.is_some() {
                return Ok(false);
            }
            store::insert_key(tx, &row)?;
            store::meta_set(tx, BOOTSTRAP_FLAG, &now_ms().to_string())?;
            let after = serde_json::json!({"id": row.id, "hint": row.hint, "label": row.label, "scopes": row.scopes});
            store::audit(
                tx,
                "gateway",
                "create",
                "client_key",
                &row.id,
                None,
                Some(&after),
            )?;
            Ok(true)
        })
        .await?;
    if !created {
        return Ok(None);
    }
    gw.reload().await?;
    Ok(Some(CreatedKey {
        id,
        key,
        label: BOOTSTRAP_LABEL.into(),
        scopes: Scopes::admin(),
    }))
}

/// Replace the scopes of a key (by id or hint).
pub async fn set_key_scopes(
    gw: &Gateway,
    id: &str,
    scopes: Scopes,
    actor: Actor,
) -> Result<ClientKeyRow, OpsError> {
    if scopes.is_empty() {
        return Err(OpsError::InvalidInput(
            "a key needs at least one scope: inference, read or admin".into(),
        ));
    }
    let id = id.to_string();
    let actor_s = actor.as_str();
    let row = gw
        .store
        .write(move |tx| {
            let mut row = store::find_key(tx, &id)?;
            let admin = crate::access::Scope::Admin;
            if row.scopes.allows(admin) && !scopes.allows(admin) {
                let another = store::list_keys(tx)?
                    .iter()
                    .any(|k| k.id != row.id && k.revoked_ms.is_none() && k.scopes.allows(admin));
                if !another {
                    return Err(store::StoreError::Invalid(format!(
                        "{} is the only admin key: give another key admin first (`omniroute keys create --scope admin`), or nobody could change the configuration or log in to the dashboard",
                        row.id
                    )));
                }
            }
            let before = serde_json::json!({"id": row.id, "hint": row.hint, "scopes": row.scopes});
            store::set_key_scopes(tx, &row.id, scopes)?;
            row.scopes = scopes;
            let after = serde_json::json!({"id": row.id, "hint": row.hint, "scopes": row.scopes});
            store::audit(
                tx,
                actor_s,
                "scope",
                "client_key",
                &row.id,
                Some(&before),
                Some(&after),
            )?;
            Ok(row)
        })
        .await?;
    gw.reload().await?;
    Ok(row)
}

pub async fn list_keys(gw: &Gateway) -> Result<Vec<ClientKeyRow>, OpsError> {
    Ok(gw.store.read(store::list_keys).await?)
}

pub async fn revoke_key(gw: &Gateway, id: &str, actor: Actor) -> Result<ClientKeyRow, OpsError> {
    let id = id.to_string();
    let actor_s = actor.as_str();
    let row = gw
        .store
        .write(move |tx| {
            let row = store::revoke_key(tx, &id)?;
            let before = serde_json::json!({"id": row.id, "hint": row.hint, "revoked": row.revoked_ms.is_some()});
            let after = serde_json::json!({"id": row.id, "hint": row.hint, "revoked": true});
            store::audit(tx, actor_s, "revoke", "client_key", &row.id, Some(&before), Some(&after))?;
            Ok(row)
        })
        .await?;
    gw.reload().await?;
    Ok(row)
}
