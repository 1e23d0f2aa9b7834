//! The routing snapshot: effective providers (catalog merged with stored
//! adjustments and custom providers), usable accounts with decrypted secrets,
//! and client key hashes. Rebuilt whenever the store's config generation
//! moves, so the hot path reads memory only.

use crate::catalog::{AuthStyle, ModelInfo, ProviderSpec, Tier, WireFormat};
use crate::secret::{Cipher, Secret};
use crate::store::{AccountRow, ClientKeyRow, ProviderRow};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// Where a provider definition came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderOrigin {
    Catalog,
    /// A catalog entry adjusted by config or CLI.
    Adjusted,
    /// Defined only by config or CLI.
    Custom,
}

#[derive(Debug)]
pub struct Provider {
    pub spec: ProviderSpec,
    pub origin: ProviderOrigin,
    /// `<base_url>/chat/completions`, parsed once per reload rather than per request.
    pub chat_url: Option<http::Uri>,
}

/// Where an account's secret comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum AccountOrigin {
    /// Stored encrypted in the database.
    Stored,
    /// Stored as the name of an env variable, read at load time.
    StoredEnv(String),
    /// Found in the environment under the catalog's variable; never stored.
    Env(String),
    /// A keyless local server.
    Keyless,
    /// Signed in with OAuth (`omniroute login`); its tokens live in the
    /// subscription token book, refreshed there.
    #[serde(rename = "oauth")]
    OAuth(String),
    /// The client's own subscription credential, forwarded (provider mode
    /// `client-credential`); usable only by requests that carry one.
    ClientCredential,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub provider_id: String,
    pub label: String,
    pub secret: Option<Secret>,
    pub origin: AccountOrigin,
    pub tier: Tier,
    pub priority: i64,
    pub enabled: bool,
    /// Why the account cannot be used, when it cannot.
    pub problem: Option<String>,
}

impl Account {
    pub fn usable(&self) -> bool {
        self.enabled && self.problem.is_none()
    }
}

#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub id: String,
    pub label: String,
    pub scopes: crate::access::Scopes,
}

/// One concrete thing a request can be sent to.
#[derive(Debug, Clone)]
pub struct Target {
    pub provider: Arc<Provider>,
    pub account: Arc<Account>,
    /// The model name the upstream expects.
    pub model: String,
}

impl Target {
    pub fn model_info(&self) -> Option<&ModelInfo> {
        self.provider.spec.model(&self.model)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResolveError {
    #[error("model `{model}` does not exist{}", suggest(.suggestions))]
    UnknownModel {
        model: String,
        suggestions: Vec<String>,
    },
    #[error("provider `{provider}` has no usable account: {hint}")]
    NoAccount { provider: String, hint: String },
}

fn suggest(s: &[String]) -> String {
    if s.is_empty() {
        "; GET /v1/models lists the available models".to_string()
    } else {
        format!("; did you mean {}?", s.join(", "))
    }
}

#[derive(Debug, Default)]
pub struct Registry {
    pub generation: i64,
    providers: Vec<Arc<Provider>>,
    by_prefix: HashMap<String, usize>,
    accounts: HashMap<String, Vec<Arc<Account>>>,
    keys: HashMap<[u8; 32], KeyInfo>,
    combos: HashMap<String, crate::routing::combo::Combo>,
    /// Scrubs every account secret of this snapshot from outside text.
    redactor: crate::redact::Redactor,
    /// Problems met while building (bad rows are skipped, not fatal).
    pub warnings: Vec<String>,
}

/// The state of a subscription account's OAuth credential, for the registry.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthState {
    pub account_id: String,
    pub kind: String,
    /// ok | expired | revoked
    pub status: String,
    pub reason: Option<String>,
}

pub struct Inputs<'a> {
    pub generation: i64,
    /// Subscription accounts' credential states, by account id.
    pub oauth: Vec<OAuthState>,
    pub catalog: &'a [ProviderSpec],
    pub providers: Vec<ProviderRow>,
    pub accounts: Vec<AccountRow>,
    pub keys: Vec<ClientKeyRow>,
    pub combos: Vec<crate::routing::combo::Combo>,
    pub cipher: &'a Cipher,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

pub fn hash_key(raw: &str) -> [u8; 32] {
    Sha256::digest(raw.as_bytes()).into()
}

impl Registry {
    pub fn build(input: Inputs<'_>) -> Registry {
        let mut reg = Registry {
            generation: input.generation,
            ..Registry::default()
        };
        let mut specs: Vec<(ProviderSpec, ProviderOrigin)> = input
            .catalog
            .iter()
            .map(|s| (s.clone(), ProviderOrigin::Catalog))
            .collect();
        for row in input.providers {
            match specs.iter_mut().find(|(s, _)| s.id == row.id) {
                Some((spec, origin)) => {
                    apply_row(spec, &row, &mut reg.warnings);
                    *origin = ProviderOrigin::Adjusted;
                }
                None => match custom_spec(&row) {
                    Ok(spec) => specs.push((spec, ProviderOrigin::Custom)),
                    Err(e) => reg.warnings.push(format!("provider {}: {e}", row.id)),
                },
            }
        }
        for (spec, origin) in specs {
            let idx = reg.providers.len();
            reg.by_prefix.insert(spec.prefix().to_string(), idx);
            let chat_url = crate::upstream::parse(&format!(
                "{}/chat/completions",
                spec.base_url.trim_end_matches('/')
            ))
            .ok();
            reg.providers.push(Arc::new(Provider {
                spec,
                origin,
                chat_url,
            }));
        }
        for row in input.accounts {
            let Some(provider) = reg.provider(&row.provider_id).cloned() else {
                reg.warnings.push(format!(
                    "account {} names unknown provider {}",
                    row.id, row.provider_id
                ));
                continue;
            };
            let tier = row
                .tier
                .as_deref()
                .and_then(Tier::parse)
                .unwrap_or(provider.spec.tier);
            let oauth = input.oauth.iter().find(|o| o.account_id == row.id);
            let (secret, origin, problem) = if let Some(o) = oauth {
                let problem = (o.status != "ok").then(|| match &o.reason {
                    Some(r) => format!("{}: {r}", o.status),
                    None => o.status.clone(),
                });
                (None, AccountOrigin::OAuth(o.kind.clone()), problem)
            } else if let Some(blob) = &row.secret_enc {
                match input.cipher.decrypt(blob) {
                    Ok(s) => (Some(s), AccountOrigin::Stored, None),
                    Err(e) => (None, AccountOrigin::Stored, Some(e.to_string())),
                }
            } else if let Some(var) = &row.secret_env {
                match (input.env)(var).filter(|v| !v.is_empty()) {
                    Some(v) => (
                        Some(Secret::new(v)),
                        AccountOrigin::StoredEnv(var.clone()),
                        None,
                    ),
                    None => (
                        None,
                        AccountOrigin::StoredEnv(var.clone()),
                        Some(format!("env variable {var} is not set")),
                    ),
                }
            } else if provider.spec.auth == AuthStyle::None {
                (None, AccountOrigin::Keyless, None)
            } else {
                (
                    None,
                    AccountOrigin::Stored,
                    Some("account has no key".to_string()),
                )
            };
            reg.push_account(Account {
                id: row.id,
                provider_id: row.provider_id,
                label: row.label,
                secret,
                origin,
                tier,
                priority: row.priority,
                enabled: row.enabled,
                problem,
            });
        }
        // Client-credential providers: the client's own credential comes first.
        for provider in reg.providers.clone() {
            if provider.spec.mode == crate::catalog::ProviderMode::ClientCredential {
                reg.push_account(Account {
                    id: format!("client-{}", provider.spec.id),
                    provider_id: provider.spec.id.clone(),
                    label: "client-credential".into(),
                    secret: None,
                    origin: AccountOrigin::ClientCredential,
                    tier: crate::catalog::Tier::Subscription,
                    priority: i64::MIN,
                    enabled: true,
                    problem: None,
                });
            }
        }
        // Catalog providers whose usual key variable is set work at once.
        for provider in reg.providers.clone() {
            if provider.spec.local {
                continue;
            }
            let found = provider
                .spec
                .env
                .iter()
                .find_map(|var| (input.env)(var).filter(|v| !v.is_empty()).map(|v| (var, v)));
            if let Some((var, value)) = found {
                reg.push_account(Account {
                    id: format!("env-{}", provider.spec.id),
                    provider_id: provider.spec.id.clone(),
                    label: format!("env:{var}"),
                    secret: Some(Secret::new(value)),
                    origin: AccountOrigin::Env(var.clone()),
                    tier: provider.spec.tier,
                    // Stored accounts first: the env key is the fallback.
                    priority: i64::MAX,
                    enabled: true,
                    problem: None,
                });
            }
        }
        for accounts in reg.accounts.values_mut() {
            accounts.sort_by_key(|a| a.priority);
        }
        for combo in input.combos {
            reg.combos.insert(combo.name.clone(), combo);
        }
        for key in input.keys.into_iter().filter(|k| k.revoked_ms.is_none()) {
            match hex::decode(&key.hash)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            {
                Some(hash) => {
                    reg.keys.insert(
                        hash,
                        KeyInfo {
                            id: key.id,
                            label: key.label,
                            scopes: key.scopes,
                        },
                    );
                }
                None => reg
                    .warnings
                    .push(format!("client key {} has a bad hash", key.id)),
            }
        }
        reg.redactor = crate::redact::Redactor::new(
            reg.accounts
                .values()
                .flatten()
                .filter_map(|a| a.secret.as_ref().map(|s| s.expose().to_string())),
        );
        reg
    }

    /// Masks this snapshot's secrets (and credential-shaped words) in text
    /// from outside before it is stored, logged or returned.
    pub fn redactor(&self) -> &crate::redact::Redactor {
        &self.redactor
    }

    /// Providers whose base URL the egress policy refuses (a stored row from
    /// before the rule, a catalog entry pointed elsewhere) get every account
    /// marked unusable with the reason.
    pub fn refuse_upstreams(&mut self, egress: &crate::egress::EgressPolicy) {
        for p in &self.providers {
            let Err(why) = egress.check_url(&p.spec.base_url) else {
                continue;
            };
            let reason = format!("base URL refused: {why}");
            self.warnings
                .push(format!("provider {}: {reason}", p.spec.id));
            if let Some(accounts) = self.accounts.get_mut(&p.spec.id) {
                for a in accounts.iter_mut() {
                    let mut refused = (**a).clone();
                    refused.problem = Some(reason.clone());
                    *a = Arc::new(refused);
                }
            }
        }
    }

    fn push_account(&mut self, account: Account) {
        self.accounts
            .entry(account.provider_id.clone())
            .or_default()
            .push(Arc::new(account));
    }

    pub fn providers(&self) -> &[Arc<Provider>] {
        &self.providers
    }

    /// The provider clients name with `prefix/` (hash lookup, for the hot path).
    pub fn provider_by_prefix(&self, prefix: &str) -> Option<&Arc<Provider>> {
        self.by_prefix.get(prefix).map(|&i| &self.providers[i])
    }

    pub fn provider(&self, id: &str) -> Option<&Arc<Provider>> {
        self.providers.iter().find(|p| p.spec.id == id)
    }

    pub fn accounts(&self, provider_id: &str) -> &[Arc<Account>] {
        self.accounts
            .get(provider_id)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn usable_accounts(&self, provider_id: &str) -> impl Iterator<Item = &Arc<Account>> {
        self.accounts(provider_id).iter().filter(|a| a.usable())
    }

    pub fn is_usable(&self, provider_id: &str) -> bool {
        self.usable_accounts(provider_id).next().is_some()
    }

    pub fn authenticate(&self, raw_key: &str) -> Option<&KeyInfo> {
        self.keys.get(&hash_key(raw_key))
    }

    /// The active key with this SHA-256 (a session remembers its key this way).
    pub fn key_by_hash(&self, hash: &[u8; 32]) -> Option<&KeyInfo> {
        self.keys.get(hash)
    }

    pub fn combo(&self, name: &str) -> Option<&crate::routing::combo::Combo> {
        self.combos.get(name)
    }

    /// Combos by name.
    pub fn combos(&self) -> Vec<&crate::routing::combo::Combo> {
        let mut v: Vec<_> = self.combos.values().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Every usable `prefix/model` with its provider.
    pub fn usable_models(&self) -> impl Iterator<Item = (String, &Arc<Provider>)> {
        self.providers
            .iter()
            .filter(|p| self.is_usable(&p.spec.id))
            .flat_map(|p| {
                p.spec
                    .models
                    .iter()
                    .map(move |m| (format!("{}/{}", p.spec.prefix(), m.id), p))
            })
    }

    /// Resolve a client's model name to the targets that can serve it, in order.
    pub fn resolve(&self, model: &str) -> Result<Vec<Target>, ResolveError> {
        if let Some((prefix, bare)) = model.split_once('/') {
            if let Some(&idx) = self.by_prefix.get(prefix) {
                let provider = &self.providers[idx];
                if bare.is_empty() {
                    return Err(self.unknown(model));
                }
                let targets: Vec<Target> = self
                    .usable_accounts(&provider.spec.id)
                    .map(|a| Target {
                        provider: provider.clone(),
                        account: a.clone(),
                        model: bare.to_string(),
                    })
                    .collect();
                if targets.is_empty() {
                    return Err(ResolveError::NoAccount {
                        provider: provider.spec.id.clone(),
                        hint: self.account_hint(provider),
                    });
                }
                return Ok(targets);
            }
        }
        // A bare model name: the first usable provider listing it, best tier first.
        let mut candidates: Vec<&Arc<Provider>> = self
            .providers
            .iter()
            .filter(|p| p.spec.model(model).is_some() && self.is_usable(&p.spec.id))
            .collect();
        candidates.sort_by_key(|p| p.spec.tier);
        let targets: Vec<Target> = candidates
            .into_iter()
            .flat_map(|p| {
                self.usable_accounts(&p.spec.id).map(move |a| Target {
                    provider: p.clone(),
                    account: a.clone(),
                    model: model.to_string(),
                })
            })
            .collect();
        if targets.is_empty() {
            return Err(self.unknown(model));
        }
        Ok(targets)
    }

    fn account_hint(&self, provider: &Provider) -> String {
        let add = format!("`omniroute accounts add {}`", provider.spec.id);
        match provider.spec.env.first() {
            Some(var) => format!("set {var} or run {add}"),
            None => format!("run {add}"),
        }
    }

    fn unknown(&self, model: &str) -> ResolveError {
        let wanted = model.to_ascii_lowercase();
        let bare_wanted = wanted.rsplit('/').next().unwrap_or(&wanted).to_string();
        let mut scored: Vec<(f64, String)> = self
            .usable_models()
            .map(|(name, _)| {
                let lower = name.to_ascii_lowercase();
                let bare = lower.split_once('/').map(|(_, b)| b).unwrap_or(&lower);
                let score = strsim::jaro_winkler(&wanted, &lower)
                    .max(strsim::jaro_winkler(&bare_wanted, bare));
                (score, name)
            })
            .filter(|(s, _)| *s >= 0.8)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        ResolveError::UnknownModel {
            model: model.to_string(),
            suggestions: scored.into_iter().take(3).map(|(_, n)| n).collect(),
        }
    }
}

fn apply_row(spec: &mut ProviderSpec, row: &ProviderRow, warnings: &mut Vec<String>) {
    if let Some(n) = &row.name {
        spec.name = n.clone();
    }
    if let Some(f) = row.format.as_deref() {
        match parse_enum::<WireFormat>(f) {
            Some(f) => spec.format = f,
            None => warnings.push(format!("provider {}: unknown format {f}", row.id)),
        }
    }
    if let Some(u) = &row.base_url {
        spec.base_url = u.clone();
    }
    if let Some(a) = row.auth.as_deref().and_then(parse_enum::<AuthStyle>) {
        spec.auth = a;
    }
    if let Some(t) = row.tier.as_deref().and_then(Tier::parse) {
        spec.tier = t;
    }
    if let Some(m) = row.mode.as_deref() {
        match parse_enum::<crate::catalog::ProviderMode>(m) {
            Some(m) if spec.subscription.is_some() => spec.mode = m,
            Some(_) => warnings.push(format!(
                "provider {}: mode {m} applies to subscription providers only",
                row.id
            )),
            None => warnings.push(format!("provider {}: unknown mode {m}", row.id)),
        }
    }
    if let Some(models) = &row.models {
        // Listed models first; catalog models keep their prices.
        let mut merged: Vec<ModelInfo> = models
            .iter()
            .map(|m| spec.model(m).cloned().unwrap_or_else(|| ModelInfo::bare(m)))
            .collect();
        for m in &spec.models {
            if !models.contains(&m.id) {
                merged.push(m.clone());
            }
        }
        spec.models = merged;
    }
}

fn custom_spec(row: &ProviderRow) -> Result<ProviderSpec, String> {
    let format = row
        .format
        .as_deref()
        .and_then(parse_enum::<WireFormat>)
        .ok_or("a custom provider needs a format")?;
    let base_url = row
        .base_url
        .clone()
        .ok_or("a custom provider needs a base_url")?;
    Ok(ProviderSpec {
        id: row.id.clone(),
        name: row.name.clone().unwrap_or_else(|| row.id.clone()),
        format,
        base_url,
        auth: row
            .auth
            .as_deref()
            .and_then(parse_enum::<AuthStyle>)
            .unwrap_or(match format {
                WireFormat::Anthropic => AuthStyle::XApiKey,
                WireFormat::Gemini => AuthStyle::XGoogApiKey,
                _ => AuthStyle::Bearer,
            }),
        tier: row
            .tier
            .as_deref()
            .and_then(Tier::parse)
            .unwrap_or(Tier::ApiKey),
        env: Vec::new(),
        local: false,
        docs: None,
        prefix: None,
        subscription: None,
        mode: Default::default(),
        models: row
            .models
            .iter()
            .flatten()
            .map(|m| ModelInfo::bare(m))
            .collect(),
    })
}

fn parse_enum<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Vec<ProviderSpec> {
        crate::catalog::parse(
            r#"
[[providers]]
id = "openai"
name = "OpenAI"
format = "openai"
base_url = "https://api.openai.com/v1"
tier = "api-key"
env = ["OPENAI_API_KEY"]
[[providers.models]]
id = "gpt-4o-mini"
[[providers]]
id = "groq"
name = "Groq"
format = "openai"
base_url = "https://api.groq.com/openai/v1"
tier = "free"
env = ["GROQ_API_KEY"]
[[providers.models]]
id = "llama-3.3-70b-versatile"
"#,
        )
        .unwrap()
    }

    fn build(
        env: &dyn Fn(&str) -> Option<String>,
        providers: Vec<ProviderRow>,
        accounts: Vec<AccountRow>,
    ) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let cipher = Cipher::load_or_create(&dir.path().join("k")).unwrap();
        let cat = catalog();
        let accounts = accounts
            .into_iter()
            .map(|mut a| {
                if let Some(plain) = a.secret_enc.take() {
                    a.secret_enc = Some(
                        cipher
                            .encrypt(std::str::from_utf8(&plain).unwrap())
                            .unwrap(),
                    );
                }
                a
            })
            .collect();
        Registry::build(Inputs {
            generation: 1,
            oauth: vec![],
            catalog: &cat,
            providers,
            accounts,
            keys: vec![],
            combos: vec![],
            cipher: &cipher,
            env,
        })
    }

    fn account(provider: &str, secret: &str) -> AccountRow {
        AccountRow {
            id: format!("acc-{provider}"),
            provider_id: provider.into(),
            label: "main".into(),
            secret_enc: Some(secret.as_bytes().to_vec()),
            secret_env: None,
            tier: None,
            enabled: true,
            priority: 0,
            source: "cli".into(),
            created_ms: 0,
        }
    }

    #[test]
    fn env_keys_make_catalog_providers_usable() {
        let env = |v: &str| (v == "OPENAI_API_KEY").then(|| "sk-env".to_string());
        let reg = build(&env, vec![], vec![]);
        let t = reg.resolve("openai/gpt-4o-mini").unwrap();
        assert_eq!(t[0].account.secret.as_ref().unwrap().expose(), "sk-env");
        assert_eq!(t[0].model, "gpt-4o-mini");
        assert!(matches!(
            reg.resolve("groq/x"),
            Err(ResolveError::NoAccount { .. })
        ));
        // bare names resolve to a provider that lists them
        assert_eq!(
            reg.resolve("gpt-4o-mini").unwrap()[0].provider.spec.id,
            "openai"
        );
    }

    #[test]
    fn custom_provider_and_suggestions() {
        let row = ProviderRow {
            id: "mock".into(),
            format: Some("openai".into()),
            base_url: Some("http://127.0.0.1:9/v1".into()),
            models: Some(vec!["gpt-4o-mini".into()]),
            source: "config".into(),
            ..Default::default()
        };
        let reg = build(&|_| None, vec![row], vec![account("mock", "s")]);
        let t = reg.resolve("mock/gpt-4o-mini").unwrap();
        assert_eq!(t[0].provider.origin, ProviderOrigin::Custom);
        // a known prefix forwards any model name: catalogs are never complete
        assert_eq!(
            reg.resolve("mock/newer-model").unwrap()[0].model,
            "newer-model"
        );
        assert!(matches!(
            reg.resolve("nope/x"),
            Err(ResolveError::UnknownModel { .. })
        ));
    }

    #[test]
    fn unknown_model_lists_close_names() {
        let env = |v: &str| (v == "OPENAI_API_KEY").then(|| "sk".to_string());
        let reg = build(&env, vec![], vec![]);
        match reg.resolve("gpt-4o-mni").unwrap_err() {
            ResolveError::UnknownModel { suggestions, .. } => {
                assert_eq!(suggestions, vec!["openai/gpt-4o-mini".to_string()])
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn stored_accounts_come_before_env_ones() {
        let env = |v: &str| (v == "OPENAI_API_KEY").then(|| "sk-env".to_string());
        let reg = build(&env, vec![], vec![account("openai", "sk-stored")]);
        let t = reg.resolve("openai/gpt-4o").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].account.secret.as_ref().unwrap().expose(), "sk-stored");
    }
}
