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
    /// Newest first; default 50, at most 1000.
    #[serde(default)]
    pub limit: Option<u32>,
}

pub async fn audit_log(gw: &Gateway, q: AuditQuery) -> Result<Vec<AuditEntry>, OpsError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    Ok(gw
        .store
        .read(move |c| store::audit_list(c, q.entity.as_deref(), limit))
        .await?)
}
