//! Client keys: create (shown once), list, revoke. Stored as SHA-256 only.

use super::{Actor, OpsError};
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
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct CreateKeyInput {
    /// A name to recognise the key by.
    #[serde(default)]
    pub label: Option<String>,
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

pub fn row_for(key: &str, label: &str, source: &str) -> Result<ClientKeyRow, OpsError> {
    Ok(ClientKeyRow {
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
    let row = row_for(&key, &label, "generated")?;
    let id = row.id.clone();
    let actor_s = actor.as_str();
    gw.store
        .write(move |tx| {
            store::insert_key(tx, &row)?;
            let after = serde_json::json!({"id": row.id, "hint": row.hint, "label": row.label});
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
    Ok(CreatedKey { id, key, label })
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
    let row = row_for(&key, BOOTSTRAP_LABEL, "generated")?;
    let id = row.id.clone();
    let created = gw
        .store
        .write(move |tx| {
            if store::meta_get(tx, BOOTSTRAP_FLAG)?.is_some() {
                return Ok(false);
            }
            store::insert_key(tx, &row)?;
            store::meta_set(tx, BOOTSTRAP_FLAG, &now_ms().to_string())?;
            let after = serde_json::json!({"id": row.id, "hint": row.hint, "label": row.label});
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
    }))
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
