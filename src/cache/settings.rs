//! How the cache and idempotency are configured: the `[cache]` and
//! `[idempotency]` sections, a combo's `cache` table and a key's policy;
//! what a client asks for in its headers; and what the answer says back.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
pub const DEFAULT_MAX_ENTRY_BYTES: u64 = 2 * 1024 * 1024;
pub const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(5);
pub const DEFAULT_SIMILARITY: f32 = 0.95;
/// Longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// When answers are cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CacheMode {
    /// Only deterministic requests (temperature 0, or a seed).
    #[default]
    Auto,
    /// Every request, whatever its sampling settings.
    Always,
    /// Never.
    Off,
}

impl CacheMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheMode::Auto => "auto",
            CacheMode::Always => "always",
            CacheMode::Off => "off",
        }
    }

    pub fn parse(s: &str) -> Option<CacheMode> {
        [CacheMode::Auto, CacheMode::Always, CacheMode::Off]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// `[cache]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    /// Set false to turn the answer cache off everywhere (default on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Default mode: `auto` (deterministic requests only: temperature 0 or a
    /// seed), `always` or `off`. Combos and keys may say otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CacheMode>,
    /// How long an answer is kept, e.g. "1h" (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Most bytes of answers kept, in memory and in the store (default 64 MiB);
    /// the least recently used go first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Largest single answer kept, in bytes (default 2 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entry_bytes: Option<u64>,
    /// Identical deterministic requests in flight at once share one upstream
    /// call (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coalesce: Option<bool>,
}

/// `[idempotency]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdempotencySection {
    /// How long after it finished a request's answer is given again to a
    /// repeat under the same `Idempotency-Key`, e.g. "5s" (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Treat a client's `X-Request-Id` as an idempotency key too (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id_header: Option<bool>,
}

impl CacheSection {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(t) = &self.ttl {
            crate::config::parse_duration("cache.ttl", t)?;
        }
        if self.max_bytes == Some(0) {
            return Err(
                "cache.max_bytes must be positive (use enabled = false to turn it off)".into(),
            );
        }
        if self.max_entry_bytes == Some(0) {
            return Err("cache.max_entry_bytes must be positive".into());
        }
        Ok(())
    }
}

impl IdempotencySection {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(w) = &self.window {
            crate::config::parse_duration("idempotency.window", w)?;
        }
        Ok(())
    }
}

/// A combo's `cache` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComboCache {
    /// `auto`, `always` or `off` for requests naming this combo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CacheMode>,
    /// How long this combo's answers are kept, e.g. "10m".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Answer a request whose last user turn means the same as a cached one
    /// (same context otherwise). Opt-in; applies whatever the temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semantic: Option<SemanticOptions>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SemanticOptions {
    /// The embedding model (`prefix/model` or a combo), served through the
    /// router itself: fallback and budgets apply.
    pub embedding_model: String,
    /// Cosine similarity at or above which a cached answer is used (default 0.95).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
}

impl ComboCache {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(t) = &self.ttl {
            crate::config::parse_duration("cache.ttl", t)?;
        }
        if let Some(s) = &self.semantic {
            if s.embedding_model.trim().is_empty() {
                return Err("cache.semantic.embedding_model must not be empty".into());
            }
            if let Some(t) = s.threshold {
                if !(t > 0.0 && t <= 1.0) {
                    return Err(format!(
                        "cache.semantic.threshold = {t}: a cosine similarity in (0, 1]"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What the cache does for one client key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyCachePolicy {
    /// `auto`, `always` or `off` for this key's requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CacheMode>,
    /// Share cached answers with the other keys in this namespace (an admin's
    /// choice); without one a key sees only its own answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl KeyCachePolicy {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(n) = &self.namespace {
            if n.is_empty()
                || n.len() > 64
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(format!(
                    "cache namespace {n:?}: 1-64 letters, digits, '-', '_' or '.'"
                ));
            }
        }
        Ok(())
    }
}

/// The cache and idempotency settings in force.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub enabled: bool,
    pub mode: CacheMode,
    pub ttl: Duration,
    pub max_bytes: u64,
    pub max_entry_bytes: u64,
    pub coalesce: bool,
    pub idempotency_window: Duration,
    pub request_id_header: bool,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            enabled: true,
            mode: CacheMode::Auto,
            ttl: DEFAULT_TTL,
            max_bytes: DEFAULT_MAX_BYTES,
            max_entry_bytes: DEFAULT_MAX_ENTRY_BYTES,
            coalesce: true,
            idempotency_window: DEFAULT_IDEMPOTENCY_WINDOW,
            request_id_header: false,
        }
    }
}

impl CacheSettings {
    /// Settings from the config file's sections (validated before).
    pub fn from_sections(c: &CacheSection, i: &IdempotencySection) -> CacheSettings {
        let d = CacheSettings::default();
        let dur = |v: &Option<String>, default: Duration| {
            v.as_deref()
                .and_then(|s| humantime::parse_duration(s).ok())
                .unwrap_or(default)
        };
        CacheSettings {
            enabled: c.enabled.unwrap_or(d.enabled),
            mode: c.mode.unwrap_or(d.mode),
            ttl: dur(&c.ttl, d.ttl),
            max_bytes: c.max_bytes.unwrap_or(d.max_bytes),
            max_entry_bytes: c.max_entry_bytes.unwrap_or(d.max_entry_bytes),
            coalesce: c.coalesce.unwrap_or(d.coalesce),
            idempotency_window: dur(&i.window, d.idempotency_window),
            request_id_header: i.request_id_header.unwrap_or(d.request_id_header),
        }
    }
}

/// What the client's headers ask of the cache and of idempotency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHints {
    /// `Cache-Control: no-store`: neither answered from nor kept in the cache.
    pub no_store: bool,
    /// `Cache-Control: no-cache` (or `max-age=0`): a fresh answer, which is kept.
    pub no_cache: bool,
    /// `Cache-Control: max-age=N`: only a cached answer at most N seconds old.
    pub max_age_s: Option<u64>,
    /// `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// `X-Request-Id`, an idempotency key when configured so.
    pub request_id: Option<String>,
}

impl RequestHints {
    /// From the header values (already text); `Cache-Control` directives are
    /// case-insensitive and comma-separated (RFC 9111 §5.2).
    pub fn from_headers(
        cache_control: Option<&str>,
        idempotency_key: Option<&str>,
        request_id: Option<&str>,
    ) -> RequestHints {
        let mut h = RequestHints::default();
        for d in cache_control.unwrap_or("").split(',') {
            let d = d.trim().to_ascii_lowercase();
            match d.split_once('=') {
                None if d == "no-store" => h.no_store = true,
                None if d == "no-cache" => h.no_cache = true,
                Some((k, v)) if k.trim() == "max-age" => {
                    if let Ok(n) = v.trim().trim_matches('"').parse::<u64>() {
                        h.max_age_s = Some(n);
                        if n == 0 {
                            h.no_cache = true;
                        }
                    }
                }
                _ => {}
            }
        }
        let clean = |v: Option<&str>| {
            v.map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        h.idempotency_key = clean(idempotency_key);
        h.request_id = clean(request_id);
        h
    }
}

/// Whether the cache answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CacheStatus {
    Hit,
    Miss,
    #[default]
    Bypass,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Bypass => "bypass",
        }
    }
}

/// What answered a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HitKind {
    /// A stored answer to the same request.
    Exact,
    /// A stored answer to a request that means the same.
    Semantic,
    /// The same request was in flight; its one upstream call answered both.
    Coalesced,
}

impl HitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HitKind::Exact => "exact",
            HitKind::Semantic => "semantic",
            HitKind::Coalesced => "coalesced",
        }
    }
}

/// What the cache did for one request (the `x-omniroute-cache*` headers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CacheInfo {
    pub status: CacheStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<HitKind>,
    /// Semantic hits: cosine similarity of the last user turns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f32>,
    /// Seconds since the answer was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_s: Option<u64>,
    /// The first answer given again to a repeat under the same idempotency key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub idempotent_replay: bool,
    /// What the answer cost when it was made, saved this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_usd: Option<f64>,
    /// Why the cache was not used (bypass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl CacheInfo {
    pub fn bypass(reason: &str) -> CacheInfo {
        CacheInfo {
            status: CacheStatus::Bypass,
            reason: Some(reason.to_string()),
            ..CacheInfo::default()
        }
    }

    pub fn miss() -> CacheInfo {
        CacheInfo {
            status: CacheStatus::Miss,
            ..CacheInfo::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_directives() {
        let h = RequestHints::from_headers(Some("No-Store, max-age=30"), None, None);
        assert!(h.no_store && !h.no_cache);
        assert_eq!(h.max_age_s, Some(30));
        let h = RequestHints::from_headers(Some("max-age=0"), Some("  k1 "), Some(""));
        assert!(h.no_cache);
        assert_eq!(h.idempotency_key.as_deref(), Some("k1"));
        assert_eq!(h.request_id, None);
        assert_eq!(
            RequestHints::from_headers(None, None, None),
            RequestHints::default()
        );
    }

    #[test]
    fn sections_validate_and_apply() {
        let c = CacheSection {
            ttl: Some("soon".into()),
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().contains("cache.ttl"));
        let c = CacheSection {
            ttl: Some("10m".into()),
            max_bytes: Some(1000),
            mode: Some(CacheMode::Always),
            ..Default::default()
        };
        c.validate().unwrap();
        let s = CacheSettings::from_sections(
            &c,
            &IdempotencySection {
                window: Some("2s".into()),
                request_id_header: Some(true),
            },
        );
        assert_eq!(s.ttl, Duration::from_secs(600));
        assert_eq!(s.max_bytes, 1000);
        assert_eq!(s.mode, CacheMode::Always);
        assert_eq!(s.idempotency_window, Duration::from_secs(2));
        assert!(s.request_id_header && s.enabled && s.coalesce);
        let bad = ComboCache {
            semantic: Some(SemanticOptions {
                embedding_model: "m".into(),
                threshold: Some(1.5),
            }),
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        assert!(KeyCachePolicy {
            namespace: Some("a b".into()),
            mode: None
        }
        .validate()
        .is_err());
    }
}
