//! Input and output types of the MCP tools that are not ops types themselves:
//! object wrappers around lists (MCP structured content is an object on the
//! handshake revisions) and the input of tools still waiting on the routing core.

use crate::ops::models::ModelView;
use crate::ops::providers::ProviderView;
use crate::store::AuditEntry;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ProvidersOutput {
    pub providers: Vec<ProviderView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ModelsOutput {
    pub models: Vec<ModelView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AuditOutput {
    /// Newest first.
    pub entries: Vec<AuditEntry>,
}

/// Arguments of a tool that waits on the routing core: any object for now.
pub type PendingInput = rmcp::model::JsonObject;
