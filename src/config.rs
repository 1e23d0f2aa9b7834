//! The config file (`--config gateway.toml`): parsed strictly (unknown keys are
//! errors naming the key and line), validated, then applied into the store.

use crate::catalog::{AuthStyle, Tier, WireFormat};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const DEFAULT_PORT: u16 = 20128;
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// The whole config file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub server: ServerSection,
    /// Upstream providers: overrides of catalog entries or custom providers.
    #[serde(default)]
    pub providers: Vec<ProviderEntry>,
    /// Combos: named routing plans clients use as a model name.
    #[serde(default)]
    pub combos: Vec<crate::routing::combo::Combo>,
    /// Model names clients send, mapped to a model or combo
    /// (`"claude-sonnet-*" = "coding"`); a key ending in `*` matches by prefix,
    /// the longest match wins, an exact key beats any pattern.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub model_map: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub store: StoreSection,
    /// OpenTelemetry trace export (off unless `otlp_endpoint` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<TelemetrySection>,
    /// The answer cache: on by default for deterministic requests.
    #[serde(default)]
    pub cache: crate::cache::CacheSection,
    /// Idempotency keys: the window a finished answer is given again.
    #[serde(default)]
    pub idempotency: crate::cache::IdempotencySection,
}

/// `[telemetry]`: each request as an OTLP trace (a span for the request, one
/// per upstream attempt), sent over OTLP/HTTP with protobuf.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySection {
    /// The collector's traces URL, e.g. "http://127.0.0.1:4318/v1/traces".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the spans (default "omniroute").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Extra headers for the collector (e.g. an API key).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
    /// How long spans wait to be sent in a batch, e.g. "5s" (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_delay: Option<String>,
}

/// `[store]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// Largest size the database may grow to, in bytes; past it the gateway
    /// behaves as on a full disk (usage rows kept in memory and retried,
    /// `/health` degraded). Unset: no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_db_bytes: Option<u64>,
    #[serde(default)]
    pub retention: RetentionSection,
}

/// `[store.retention]`: how long rows are kept, each a duration ("30d",
/// "12h", "90s") or "forever"; a background task deletes older ones every
/// `sweep_every`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// Stored Responses (`previous_response_id`, `GET /v1/responses/{id}`): a
    /// conversation is deleted once its newest turn is older (default "30d").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responses: Option<String>,
    /// Usage rows (usage and cost reports; monthly budgets need at least
    /// "31d") (default "400d").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<String>,
    /// Audit entries; the newest entry of each entity is kept whatever its
    /// age, so `combos rollback` keeps working (default "365d").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<String>,
    /// A2A tasks, by their last update (default "30d").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<String>,
    /// How often old rows are looked for (default "1h").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_every: Option<String>,
}

impl RetentionSection {
    /// The limits this section sets, defaults for what it leaves out.
    pub fn resolve(&self) -> Result<crate::store::retention::Retention, String> {
        let mut r = crate::store::retention::Retention::default();
        let limit = |key: &str, v: &Option<String>, default: Option<std::time::Duration>| match v
            .as_deref()
            .map(str::trim)
        {
            None => Ok(default),
            Some("forever") => Ok(None),
            Some(s) => {
                let d = parse_duration(&format!("store.retention.{key}"), s)?;
                if d.is_zero() {
                    return Err(format!(
                            "store.retention.{key} = {s:?} would delete rows as soon as they are written; give a positive duration or \"forever\""
                        ));
                }
                Ok(Some(d))
            }
        };
        r.responses = limit("responses", &self.responses, r.responses)?;
        r.usage = limit("usage", &self.usage, r.usage)?;
        r.audit = limit("audit", &self.audit, r.audit)?;
        r.tasks = limit("tasks", &self.tasks, r.tasks)?;
        if let Some(s) = &self.sweep_every {
            let d = parse_duration("store.retention.sweep_every", s)?;
            if d.is_zero() {
                return Err("store.retention.sweep_every must be positive".into());
            }
            r.sweep_every = d;
        }
        Ok(r)
    }
}

/// Looks a client's model name up in a model map: the exact key, else the
/// longest `prefix*` key that matches.
pub fn map_model<'a>(
    map: &'a std::collections::BTreeMap<String, String>,
    model: &str,
) -> Option<&'a str> {
    if let Some(v) = map.get(model) {
        return Some(v);
    }
    map.iter()
        .filter_map(|(k, v)| {
            let prefix = k.strip_suffix('*')?;
            model
                .starts_with(prefix)
                .then_some((prefix.len(), v.as_str()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, v)| v)
}

/// `[server]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Port to listen on (default 20128; `--port`/`PORT` win over this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Serve the dashboard, admin API and /metrics on this port instead of `port`
    /// (split-port mode; `--dashboard-port`/`DASHBOARD_PORT` win over this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_port: Option<u16>,
    /// Address to bind (default 127.0.0.1; `--host` wins over this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Client keys accepted in addition to generated ones (stored hashed):
    /// a string (scope `inference`) or `{ key = "...", scopes = ["admin"], label = "..." }`.
    #[serde(default)]
    pub api_keys: Vec<KeyEntry>,
    /// Set false to accept requests without a client key; only allowed when bound to loopback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_api_key: Option<bool>,
    /// Largest request body accepted, in bytes (default 32 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<usize>,
    /// How long in-flight requests may take to finish on shutdown, e.g. "30s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_grace: Option<String>,
    /// Upper bound for one upstream call, e.g. "10m".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_timeout: Option<String>,
    /// Time allowed to connect to an upstream, e.g. "10s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<String>,
    /// Interval of SSE keep-alive comments while an upstream stream is silent, e.g. "15s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<String>,
    /// Host names (besides localhost and loopback addresses) requests may be
    /// addressed to; `*.example.com` matches subdomains. Guards against DNS rebinding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// Browser origins (besides pages on localhost and this gateway's own)
    /// allowed to call the gateway, e.g. "https://app.example.com".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
    /// Private, shared or link-local upstreams providers may point at
    /// (refused otherwise; loopback is always allowed): CIDR ranges,
    /// addresses or host names, e.g. ["192.168.1.0/24", "gpu-box.lan"].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_upstreams: Vec<String>,
}

/// A client key in `server.api_keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum KeyEntry {
    /// The key alone: scope `inference`.
    Plain(String),
    /// The key with its scopes and a label.
    Scoped {
        key: String,
        /// `inference`, `read`, `admin` (admin implies the others).
        scopes: Vec<crate::access::Scope>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        /// This key's cache policy: its mode, or a namespace it shares with other keys.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache: Option<crate::cache::KeyCachePolicy>,
    },
}

impl KeyEntry {
    pub fn value(&self) -> &str {
        match self {
            KeyEntry::Plain(k) | KeyEntry::Scoped { key: k, .. } => k.trim(),
        }
    }

    pub fn scopes(&self) -> crate::access::Scopes {
        match self {
            KeyEntry::Plain(_) => crate::access::Scopes::inference(),
            KeyEntry::Scoped { scopes, .. } => crate::access::Scopes::of(scopes),
        }
    }

    pub fn cache(&self) -> Option<&crate::cache::KeyCachePolicy> {
        match self {
            KeyEntry::Scoped { cache, .. } => cache.as_ref(),
            KeyEntry::Plain(_) => None,
        }
    }

    pub fn label(&self) -> &str {
        match self {
            KeyEntry::Scoped { label: Some(l), .. } => l,
            _ => "config",
        }
    }
}

impl From<String> for KeyEntry {
    fn from(k: String) -> KeyEntry {
        KeyEntry::Plain(k)
    }
}

/// `[[providers]]`: a catalog provider to adjust or a custom one (any base URL).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderEntry {
    /// Provider id, also the model prefix (`id/model`).
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Wire format of the upstream (required for custom providers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<WireFormat>,
    /// Base URL (required for custom providers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Upstream key, stored encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Name of an env variable holding the upstream key (never stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthStyle>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// Models served; clients ask for `id/model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// `client-credential`: forward the client's own subscription credential
    /// (Claude Code's OAuth bearer, Codex's ChatGPT token) first, as tier 1,
    /// then use the gateway's own accounts. Subscription providers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<crate::catalog::ProviderMode>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config file {path}: {message}")]
    Invalid { path: String, message: String },
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let cfg = FileConfig::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.display().to_string(),
            message,
        })?;
        cfg.validate().map_err(|message| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        })?;
        Ok(cfg)
    }

    /// Parse TOML; the message names the offending key with its line and column.
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str::<FileConfig>(text).map_err(|e| {
            let mut msg = e.message().to_string();
            if let Some(span) = e.span() {
                let (line, col) = line_col(text, span.start);
                msg = format!("line {line}, column {col}: {msg}");
            }
            msg
        })
    }

    /// Checks serde cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(t) = &self.telemetry {
            if let Some(url) = &t.otlp_endpoint {
                validate_base_url(url).map_err(|m| format!("telemetry.otlp_endpoint {m}"))?;
            }
            if let Some(d) = &t.batch_delay {
                humantime::parse_duration(d)
                    .map_err(|e| format!("telemetry.batch_delay = {d:?}: {e}"))?;
            }
        }
        for (k, v) in &self.model_map {
            if k.trim().is_empty() || v.trim().is_empty() {
                return Err(format!(
                    "model_map: {k:?} = {v:?}: both the client's name and the target must be non-empty"
                ));
            }
        }
        if let Some(s) = &self.server.shutdown_grace {
            parse_duration("server.shutdown_grace", s)?;
        }
        if let Some(s) = &self.server.upstream_timeout {
            parse_duration("server.upstream_timeout", s)?;
        }
        if let Some(s) = &self.server.connect_timeout {
            parse_duration("server.connect_timeout", s)?;
        }
        if let Some(s) = &self.server.keep_alive {
            parse_duration("server.keep_alive", s)?;
        }
        self.store.retention.resolve()?;
        crate::egress::EgressPolicy::new(&self.server.allowed_upstreams)?;
        self.cache.validate()?;
        self.idempotency.validate()?;
        if self.server.max_body_bytes == Some(0) {
            return Err("server.max_body_bytes must be positive".into());
        }
        for (i, key) in self.server.api_keys.iter().enumerate() {
            if key.value().len() < 8 {
                return Err(format!(
                    "server.api_keys[{i}] is too short (at least 8 characters)"
                ));
            }
            if key.scopes().is_empty() {
                return Err(format!(
                    "server.api_keys[{i}]: scopes is empty; name at least one of inference, read, admin"
                ));
            }
            if let Some(c) = key.cache() {
                c.validate()
                    .map_err(|m| format!("server.api_keys[{i}].cache: {m}"))?;
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, c) in self.combos.iter().enumerate() {
            c.validate_shape()
                .map_err(|e| format!("combos[{i}]: {e}"))?;
            if !names.insert(c.name.as_str()) {
                return Err(format!("combos[{i}]: duplicate combo name {:?}", c.name));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.providers.iter().enumerate() {
            let at = format!("providers[{i}] (id = {:?})", p.id);
            if !crate::catalog::valid_id(&p.id) {
                return Err(format!(
                    "{at}: id must be lowercase letters, digits, '-' or '_'"
                ));
            }
            if !seen.insert(p.id.as_str()) {
                return Err(format!("{at}: duplicate provider id"));
            }
            if p.api_key.is_some() && p.api_key_env.is_some() {
                return Err(format!("{at}: set api_key or api_key_env, not both"));
            }
            if let Some(url) = &p.base_url {
                validate_base_url(url).map_err(|m| format!("{at}: base_url {m}"))?;
            }
            if let Some(models) = &p.models {
                if models.iter().any(|m| m.trim().is_empty()) {
                    return Err(format!("{at}: models contains an empty name"));
                }
            }
        }
        Ok(())
    }
}

/// A base URL must be http(s) with a host; no credentials or query in it.
pub fn validate_base_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must start with http:// or https://".into());
    }
    if parsed.host_str().is_none() {
        return Err("has no host".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials (use api_key)".into());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    Ok(())
}

pub fn parse_duration(key: &str, s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{key} = {s:?} is not a duration ({e}); write e.g. \"30s\" or \"5m\""))
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_map_exact_beats_the_longest_prefix() {
        let cfg = FileConfig::parse(
            "[model_map]\n\"claude-*\" = \"auto\"\n\"claude-sonnet-*\" = \"coding\"\n\"claude-sonnet-4-5\" = \"mock/gpt-4o-mini\"\n",
        )
        .unwrap();
        let m = &cfg.model_map;
        assert_eq!(map_model(m, "claude-sonnet-4-5"), Some("mock/gpt-4o-mini"));
        assert_eq!(map_model(m, "claude-sonnet-4-5-20250929"), Some("coding"));
        assert_eq!(map_model(m, "claude-haiku-4-5"), Some("auto"));
        assert_eq!(map_model(m, "gpt-4o"), None);
    }

    const ISSUE_EXAMPLE: &str = r#"[server]
port = 20128
api_keys = ["sk-test-123"]          # client keys accepted in addition to generated ones

[[providers]]
id = "mock"                         # also the model prefix: clients ask for "mock/gpt-4o-mini"
format = "openai"                   # wire format of the upstream
base_url = "http://127.0.0.1:9100/v1"
api_key = "upstream-secret"         # or api_key_env = "MOCK_API_KEY"
tier = "api-key"                    # subscription | api-key | cheap | free
models = ["gpt-4o-mini"]
"#;

    #[test]
    fn parses_the_documented_example() {
        let cfg = FileConfig::parse(ISSUE_EXAMPLE).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.server.port, Some(20128));
        assert_eq!(cfg.providers[0].format, Some(WireFormat::Openai));
        assert_eq!(cfg.providers[0].tier, Some(Tier::ApiKey));
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = ISSUE_EXAMPLE.replace("tier = \"api-key\"", "teir = \"api-key\"");
        let err = FileConfig::parse(&text).unwrap_err();
        assert!(err.contains("teir"), "{err}");
        assert!(err.contains("line 10"), "{err}");
    }

    #[test]
    fn bad_toml_names_line() {
        let err = FileConfig::parse("[server]\nport = = 3\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn validation_catches_bad_values() {
        let mut cfg = FileConfig::parse(ISSUE_EXAMPLE).unwrap();
        cfg.providers[0].api_key_env = Some("X".into());
        assert!(cfg.validate().unwrap_err().contains("not both"));
        let mut cfg = FileConfig::parse(ISSUE_EXAMPLE).unwrap();
        cfg.providers[0].base_url = Some("ftp://x".into());
        assert!(cfg.validate().is_err());
        let mut cfg = FileConfig::parse(ISSUE_EXAMPLE).unwrap();
        cfg.server.shutdown_grace = Some("soon".into());
        assert!(cfg.validate().unwrap_err().contains("shutdown_grace"));
    }

    #[test]
    fn retention_has_defaults_durations_and_forever() {
        use std::time::Duration;
        let day = Duration::from_secs(86_400);
        let r = FileConfig::parse("")
            .unwrap()
            .store
            .retention
            .resolve()
            .unwrap();
        assert_eq!(r.responses, Some(day * 30));
        assert_eq!(r.usage, Some(day * 400));
        assert_eq!(r.audit, Some(day * 365));
        assert_eq!(r.tasks, Some(day * 30));
        assert_eq!(r.sweep_every, Duration::from_secs(3600));
        let cfg = FileConfig::parse(
            "[store.retention]\nresponses = \"7d\"\nusage = \"forever\"\ntasks = \"90s\"\nsweep_every = \"10m\"\n",
        )
        .unwrap();
        cfg.validate().unwrap();
        let r = cfg.store.retention.resolve().unwrap();
        assert_eq!(r.responses, Some(day * 7));
        assert_eq!(r.usage, None);
        assert_eq!(r.audit, Some(day * 365));
        assert_eq!(r.tasks, Some(Duration::from_secs(90)));
        assert_eq!(r.sweep_every, Duration::from_secs(600));
        for (bad, says) in [
            ("audit = \"soon\"", "store.retention.audit"),
            ("usage = \"0s\"", "forever"),
            ("sweep_every = \"0s\"", "sweep_every"),
        ] {
            let cfg = FileConfig::parse(&format!("[store.retention]\n{bad}\n")).unwrap();
            let e = cfg.validate().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(FileConfig::parse("[store.retention]\nkeep = \"1d\"\n")
            .unwrap_err()
            .contains("keep"));
    }
}
