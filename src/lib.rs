//! omniroute: an AI gateway that routes each request across many providers
//! and accounts and falls back tier by tier so coding work never stops.
//!
//! Layout: `catalog` (providers known at build time), `config` (the config
//! file), `store` (SQLite), `registry` (in-memory routing snapshot),
//! `upstream` (HTTP client), `proxy` (the request core), `ops` (management
//! operations, written once), `http` (the axum surface), `mcp` (the MCP
//! server over stdio and Streamable HTTP), `a2a` (the A2A agent surface),
//! `server` (lifecycle).

pub mod a2a;
pub mod access;
pub mod cache;
pub mod catalog;
pub mod config;
pub mod egress;
pub mod embeddings;
pub mod formats;
pub mod gateway;
pub mod http;
pub mod idempotency;
pub mod mcp;
pub mod metrics;
pub mod ops;
pub mod proxy;
pub mod quota_windows;
pub mod redact;
pub mod registry;
pub mod routing;
pub mod schema;
pub mod secret;
pub mod server;
pub mod store;
pub mod subscription;
pub mod telemetry;
pub mod upstream;
