//! The provider catalog: real providers known at build time, embedded from
//! `providers.toml` and validated by a unit test.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

const EMBEDDED: &str = include_str!("providers.toml");

/// Wire format an upstream speaks on its chat endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WireFormat {
    /// OpenAI Chat Completions (`/chat/completions`).
    Openai,
    /// Anthropic Messages (`/v1/messages`).
    Anthropic,
    /// Google Gemini `generateContent`.
    Gemini,
    /// OpenAI Responses (`/responses`).
    OpenaiResponses,
}

impl WireFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            WireFormat::Openai => "openai",
            WireFormat::Anthropic => "anthropic",
            WireFormat::Gemini => "gemini",
            WireFormat::OpenaiResponses => "openai-responses",
        }
    }
}

/// How the upstream expects its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AuthStyle {
    /// `Authorization: Bearer KEY`
    #[default]
    Bearer,
    /// `x-api-key: KEY`
    XApiKey,
    /// `x-goog-api-key: KEY`
    XGoogApiKey,
    /// No key (local servers).
    None,
}

impl AuthStyle {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthStyle::Bearer => "bearer",
            AuthStyle::XApiKey => "x-api-key",
            AuthStyle::XGoogApiKey => "x-goog-api-key",
            AuthStyle::None => "none",
        }
    }
}

/// Fallback tier, walked in this order when quota or budget runs out.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    Subscription,
    ApiKey,
    Cheap,
    Free,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Subscription => "subscription",
            Tier::ApiKey => "api-key",
            Tier::Cheap => "cheap",
            Tier::Free => "free",
        }
    }

    pub fn parse(s: &str) -> Option<Tier> {
        match s {
            "subscription" => Some(Tier::Subscription),
            "api-key" => Some(Tier::ApiKey),
            "cheap" => Some(Tier::Cheap),
            "free" => Some(Tier::Free),
            _ => None,
        }
    }
}

/// A subscription plan's provider: its accounts sign in with OAuth
/// (`omniroute login`) and are served at the endpoint the provider gives
/// its subscribers (see `crate::subscription`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SubscriptionKind {
    /// Claude Pro/Max (Claude Code's sign-in): Anthropic Messages with an OAuth bearer.
    Claude,
    /// ChatGPT Plus/Pro (Codex CLI's sign-in): the ChatGPT Codex Responses backend.
    Codex,
    /// Google account (Gemini CLI's sign-in): Gemini Code Assist.
    Gemini,
    /// qwen.ai account (Qwen Code's sign-in): Qwen's OpenAI-compatible endpoint.
    Qwen,
}

impl SubscriptionKind {
    pub const ALL: [SubscriptionKind; 4] = [
        SubscriptionKind::Claude,
        SubscriptionKind::Codex,
        SubscriptionKind::Gemini,
        SubscriptionKind::Qwen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionKind::Claude => "claude",
            SubscriptionKind::Codex => "codex",
            SubscriptionKind::Gemini => "gemini",
            SubscriptionKind::Qwen => "qwen",
        }
    }

    pub fn parse(s: &str) -> Option<SubscriptionKind> {
        SubscriptionKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s || k.provider_id() == s)
    }

    /// The catalog provider whose accounts this kind signs in.
    pub fn provider_id(self) -> &'static str {
        match self {
            SubscriptionKind::Claude => "claude-code",
            SubscriptionKind::Codex => "codex",
            SubscriptionKind::Gemini => "gemini-cli",
            SubscriptionKind::Qwen => "qwen-code",
        }
    }
}

/// How a provider's requests are authenticated beyond its own accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderMode {
    /// The gateway's own accounts only.
    #[default]
    Accounts,
    /// The client's own subscription credential (Claude Code's OAuth bearer,
    /// Codex's ChatGPT token) is tried first, as tier 1, then the gateway's accounts.
    ClientCredential,
}

/// A model a provider serves, with its public price where known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    pub id: String,
    /// Context window in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output: Option<u32>,
    /// USD per million input tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<f64>,
    /// USD per million output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<f64>,
    /// USD per million cached input tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<f64>,
}

impl ModelInfo {
    pub fn bare(id: &str) -> ModelInfo {
        ModelInfo {
            id: id.to_string(),
            context: None,
            max_output: None,
            input: None,
            output: None,
            cached_input: None,
        }
    }

    /// Cost in USD of one call, when the price is known.
    pub fn cost(&self, input_tokens: u64, cached_tokens: u64, output_tokens: u64) -> Option<f64> {
        let input = self.input?;
        let output = self.output?;
        let cached = cached_tokens.min(input_tokens);
        let cached_price = self.cached_input.unwrap_or(input);
        Some(
            ((input_tokens - cached) as f64 * input
                + cached as f64 * cached_price
                + output_tokens as f64 * output)
                / 1_000_000.0,
        )
    }
}

/// One provider as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    pub id: String,
    pub name: String,
    pub format: WireFormat,
    pub base_url: String,
    #[serde(default)]
    pub auth: AuthStyle,
    pub tier: Tier,
    /// Environment variables that usually hold its key, preferred first.
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub local: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default)]
    pub models: Vec<ModelInfo>,
    /// Set for subscription providers (accounts signed in with `omniroute login`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<SubscriptionKind>,
    #[serde(default, skip_serializing_if = "is_default_mode")]
    pub mode: ProviderMode,
}

fn is_default_mode(m: &ProviderMode) -> bool {
    *m == ProviderMode::Accounts
}

impl ProviderSpec {
    /// The model prefix clients use (`prefix/model`).
    pub fn prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or(&self.id)
    }

    pub fn model(&self, id: &str) -> Option<&ModelInfo> {
        self.models.iter().find(|m| m.id == id)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    providers: Vec<ProviderSpec>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog is not valid TOML: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("catalog entry {0}: {1}")]
    Invalid(String, String),
}

/// Parse and validate a catalog document.
pub fn parse(text: &str) -> Result<Vec<ProviderSpec>, CatalogError> {
    let file: CatalogFile = toml::from_str(text)?;
    validate(&file.providers)?;
    Ok(file.providers)
}

fn validate(providers: &[ProviderSpec]) -> Result<(), CatalogError> {
    let mut ids = HashSet::new();
    let mut prefixes = HashSet::new();
    for p in providers {
        let bad = |msg: &str| CatalogError::Invalid(p.id.clone(), msg.to_string());
        if !valid_id(&p.id) {
            return Err(bad("id must be lowercase [a-z0-9-]"));
        }
        if !ids.insert(p.id.as_str()) {
            return Err(bad("duplicate id"));
        }
        if !prefixes.insert(p.prefix()) {
            return Err(bad("duplicate prefix"));
        }
        if !(p.base_url.starts_with("https://") || (p.local && p.base_url.starts_with("http://"))) {
            return Err(bad("base_url must be https (http only for local servers)"));
        }
        if p.local != (p.auth == AuthStyle::None) {
            return Err(bad("local servers and only they use auth = none"));
        }
        if !p.local && p.env.is_empty() && p.subscription.is_none() {
            return Err(bad("a remote provider names the env variable of its key"));
        }
        let mut models = HashSet::new();
        for m in &p.models {
            if !models.insert(m.id.as_str()) {
                return Err(bad(&format!("duplicate model {}", m.id)));
            }
            for price in [m.input, m.output, m.cached_input].into_iter().flatten() {
                if !(0.0..1000.0).contains(&price) {
                    return Err(bad(&format!("implausible price for {}", m.id)));
                }
            }
        }
    }
    Ok(())
}

pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The embedded catalog. Validity is guaranteed by the `embedded_catalog_is_valid` test.
pub fn embedded() -> Vec<ProviderSpec> {
    match parse(EMBEDDED) {
        Ok(list) => list,
        Err(e) => {
            tracing::error!(error = %e, "embedded catalog is invalid");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_is_valid() {
        let list = parse(EMBEDDED).unwrap();
        assert!(list.len() >= 30, "only {} providers", list.len());
        for id in [
            "openai",
            "anthropic",
            "gemini",
            "deepseek",
            "groq",
            "mistral",
            "xai",
            "openrouter",
        ] {
            assert!(list.iter().any(|p| p.id == id), "missing {id}");
        }
        let anthropic = list.iter().find(|p| p.id == "anthropic").unwrap();
        assert_eq!(anthropic.format, WireFormat::Anthropic);
        assert_eq!(anthropic.auth, AuthStyle::XApiKey);
        let priced = list
            .iter()
            .flat_map(|p| &p.models)
            .filter(|m| m.input.is_some())
            .count();
        assert!(priced >= 40, "only {priced} priced models");
    }

    #[test]
    fn rejects_duplicates_and_unknown_keys() {
        let dup = r#"
[[providers]]
id = "a"
name = "A"
format = "openai"
base_url = "https://a"
tier = "free"
env = ["A"]
[[providers]]
id = "a"
name = "A2"
format = "openai"
base_url = "https://a"
tier = "free"
env = ["A"]
"#;
        assert!(matches!(parse(dup), Err(CatalogError::Invalid(..))));
        let unknown = "[[providers]]\nid='a'\nname='A'\nformat='openai'\nbase_url='https://a'\ntier='free'\nenv=['A']\ncolour='red'\n";
        assert!(matches!(parse(unknown), Err(CatalogError::Parse(_))));
    }

    #[test]
    fn cost_uses_cached_price() {
        let m = ModelInfo {
            input: Some(1.0),
            output: Some(2.0),
            cached_input: Some(0.5),
            ..ModelInfo::bare("m")
        };
        let c = m.cost(1_000_000, 500_000, 1_000_000).unwrap();
        assert!((c - (0.5 + 0.25 + 2.0)).abs() < 1e-9);
        assert_eq!(ModelInfo::bare("x").cost(1, 0, 1), None);
    }
}
