//! Management operations, each written once over the core with typed,
//! schema-described inputs and outputs. The CLI, MCP, A2A and admin API are
//! thin façades over these functions; none touches the store directly.

pub mod accounts;
pub mod apply;
pub mod audit;
pub mod cache;
pub mod combos;
pub mod cost;
pub mod explain;
pub mod health;
pub mod keys;
pub mod metrics;
pub mod models;
pub mod overview;
pub mod providers;
pub mod quota;
pub mod requests;
pub mod route;
pub mod sign_in;
pub mod subscriptions;
pub mod tasks;
pub mod usage;

use crate::store::StoreError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which surface asked for a change; written to the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    Config,
    Cli,
    Mcp,
    A2a,
    Api,
    Gateway,
}

impl Actor {
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Config => "config",
            Actor::Cli => "cli",
            Actor::Mcp => "mcp",
            Actor::A2a => "a2a",
            Actor::Api => "api",
            Actor::Gateway => "gateway",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for OpsError {
    fn from(e: StoreError) -> OpsError {
        match e {
            StoreError::NotFound(what) => OpsError::NotFound(what),
            StoreError::Invalid(msg) => OpsError::InvalidInput(msg),
            other => OpsError::Store(other),
        }
    }
}
