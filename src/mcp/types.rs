//! Input and output types of the MCP tools that are not ops types themselves:
//! object wrappers around lists (MCP structured content is an object on the
//! handshake revisions).

use crate::ops::combos::ComboView;
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

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CombosOutput {
    pub combos: Vec<ComboView>,
}
