//! The audit log of configuration changes.

use super::OpsError;
use crate::gateway::Gateway;
use crate::store::{self, AuditEntry};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct AuditQuery {
    /// Only entries about this kind of entity (provider, account, client_key, combo).
    #[serde(default)]
    pub entity: Option<String>,
    /// Only entries about this one entity (a combo's name, an account's id…).
    #[serde(default)]
    pub entity_id: Option<String>,
    /// Newest first; default 50, at most 1000.
    #[serde(default)]
    pub limit: Option<u32>,
}

pub async fn audit_log(gw: &Gateway, q: AuditQuery) -> Result<Vec<AuditEntry>, OpsError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let Some(id) = q.entity_id else {
        return Ok(gw
            .store
            .read(move |c| store::audit_list(c, q.entity.as_deref(), limit))
            .await?);
    };
    let mut entries = gw
        .store
        .read(move |c| store::audit_list(c, q.entity.as_deref(), 1000))
        .await?;
    entries.retain(|e| e.entity_id == id);
    entries.truncate(limit as usize);
    Ok(entries)
}
