//! The models a client can ask for right now.

use super::OpsError;
use crate::gateway::Gateway;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ModelView {
    /// The name clients send (`prefix/model`).
    pub id: String,
    pub provider: String,
    pub tier: crate::catalog::Tier,
    pub context: Option<u32>,
    /// USD per million input tokens.
    pub input_price: Option<f64>,
    /// USD per million output tokens.
    pub output_price: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ListModelsInput {
    /// Only models of this provider.
    #[serde(default)]
    pub provider: Option<String>,
}

pub async fn list_models(gw: &Gateway, input: ListModelsInput) -> Result<Vec<ModelView>, OpsError> {
    let registry = gw.registry();
    Ok(registry
        .providers()
        .iter()
        .filter(|p| registry.is_usable(&p.spec.id))
        .filter(|p| input.provider.as_deref().is_none_or(|id| id == p.spec.id))
        .flat_map(|p| {
            p.spec.models.iter().map(move |m| ModelView {
                id: format!("{}/{}", p.spec.prefix(), m.id),
                provider: p.spec.id.clone(),
                tier: p.spec.tier,
                context: m.context,
                input_price: m.input,
                output_price: m.output,
            })
        })
        .collect())
}
