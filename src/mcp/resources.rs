//! Resources: `omniroute://health` (the health report as JSON) and the
//! template `omniroute://combos/{name}`.

use super::tool_error;
use crate::gateway::Gateway;
use rmcp::model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate};
use rmcp::ErrorData;

pub const HEALTH_URI: &str = "omniroute://health";
pub const COMBO_PREFIX: &str = "omniroute://combos/";
pub const COMBO_TEMPLATE: &str = "omniroute://combos/{name}";

pub fn list() -> Vec<Resource> {
    vec![Resource::new(HEALTH_URI, "health")
        .with_title("omniroute health")
        .with_description("The gateway's health report (same as omniroute_get_health), as JSON")
        .with_mime_type("application/json")]
}

pub fn templates() -> Vec<ResourceTemplate> {
    vec![ResourceTemplate::new(COMBO_TEMPLATE, "combo")
        .with_title("omniroute combo")
        .with_description("A combo (named routing plan) by name, as JSON")
        .with_mime_type("application/json")]
}

pub async fn read(gw: &Gateway, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    if uri == HEALTH_URI {
        let health = crate::ops::health::health(gw)
            .await
            .map_err(|e| ErrorData::internal_error(tool_error(e), None))?;
        let text = serde_json::to_string_pretty(&health)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        return Ok(ReadResourceResult::new(vec![ResourceContents::text(
            text, uri,
        )
        .with_mime_type("application/json")]));
    }
    if let Some(name) = uri.strip_prefix(COMBO_PREFIX).filter(|n| !n.is_empty()) {
        let combo = crate::ops::combos::get_combo(gw, name)
            .await
            .map_err(|e| match e {
                crate::ops::OpsError::NotFound(_) => ErrorData::resource_not_found(
                    format!("combo {name:?} not found; omniroute_list_combos lists them"),
                    None,
                ),
                e => ErrorData::internal_error(tool_error(e), None),
            })?;
        let text = serde_json::to_string_pretty(&combo)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        return Ok(ReadResourceResult::new(vec![ResourceContents::text(
            text, uri,
        )
        .with_mime_type("application/json")]));
    }
    Err(ErrorData::resource_not_found(
        format!("unknown resource {uri:?}: known are {HEALTH_URI} and {COMBO_PREFIX}{{name}}"),
        None,
    ))
}
