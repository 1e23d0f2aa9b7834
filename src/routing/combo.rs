//! Combos: named, ordered routing plans that clients use as a model name.
//! A step is a target (`prefix/model`, optionally pinned to an account, with
//! a weight) or a reference to another combo; cycles are rejected.

use super::strategy::StrategyKind;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Name of the built-in combo spanning every usable model.
pub const AUTO: &str = "auto";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Combo {
    /// What clients send as `model`.
    pub name: String,
    #[serde(default)]
    pub strategy: StrategyKind,
    /// Steps in order: "prefix/model", another combo's name, `{model, account, weight}` or `{combo}`.
    pub models: Vec<Step>,
    /// Keep a session on the target it used while that target is healthy.
    #[serde(default)]
    pub sticky: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub limits: ComboLimits,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fusion: Option<FusionOptions>,
    /// Context relay: a model (or combo) that writes a handoff summary when
    /// the conversation does not fit the target it moves to; the summary and
    /// the recent turns are sent instead of skipping that target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summarizer_model: Option<String>,
    /// The answer cache for requests naming this combo: mode, TTL and the
    /// semantic cache (opt-in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<crate::cache::ComboCache>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Step {
    /// "prefix/model" or the name of another combo.
    Name(String),
    Target(TargetStep),
    Combo(ComboRef),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetStep {
    /// "prefix/model"
    pub model: String,
    /// Pin to one account id of that provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Relative weight for the weighted strategy (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComboRef {
    pub combo: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComboLimits {
    /// Extra tries of the same target, only when no other target remains.
    #[serde(default = "one")]
    pub retries_per_target: u32,
    /// e.g. "60s"; default: the server's upstream_timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_timeout: Option<String>,
    /// e.g. "5m"; default: the server's upstream_timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_timeout: Option<String>,
    /// USD this combo may spend per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    /// May fall through to lower tiers (subscription → api-key → cheap → free).
    #[serde(default = "yes")]
    pub fall_through: bool,
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}

impl Default for ComboLimits {
    fn default() -> Self {
        ComboLimits {
            retries_per_target: 1,
            attempt_timeout: None,
            total_timeout: None,
            budget_usd: None,
            fall_through: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FusionOptions {
    /// How many targets are asked in parallel (default 2).
    #[serde(default = "two")]
    pub fan_out: u32,
    /// A model that merges the answers (non-streaming only); without it the first good answer wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<String>,
}

fn two() -> u32 {
    2
}

/// A step after expansion: one `prefix/model`, maybe pinned, with its weight.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatStep {
    pub model: String,
    pub account: Option<String>,
    pub weight: u32,
    /// Position in the flattened combo (the priority order).
    pub position: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ComboError {
    #[error("combo {0:?}: {1}")]
    Invalid(String, String),
    #[error("combo {0:?} refers to itself through {1}")]
    Cycle(String, String),
    #[error("combo {0:?} refers to unknown combo {1:?}")]
    UnknownCombo(String, String),
}

pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.contains('/')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

impl Combo {
    /// Checks that need no other combo.
    pub fn validate_shape(&self) -> Result<(), ComboError> {
        let bad = |m: String| Err(ComboError::Invalid(self.name.clone(), m));
        if !valid_name(&self.name) {
            return bad("name must be letters, digits, '-', '_', '.' or ':' (no '/')".into());
        }
        if self.models.is_empty() {
            return bad("models must list at least one step".into());
        }
        for step in &self.models {
            match step {
                Step::Name(s) if s.trim().is_empty() => return bad("a step is empty".into()),
                Step::Target(t) if !t.model.contains('/') => {
                    return bad(format!("target {:?} must be prefix/model", t.model))
                }
                Step::Target(TargetStep {
                    weight: Some(0), ..
                }) => return bad("weights must be positive".into()),
                _ => {}
            }
        }
        for (key, v) in [
            ("limits.attempt_timeout", &self.limits.attempt_timeout),
            ("limits.total_timeout", &self.limits.total_timeout),
        ] {
            if let Some(v) = v {
                crate::config::parse_duration(key, v)
                    .map_err(|m| ComboError::Invalid(self.name.clone(), m))?;
            }
        }
        if self
            .limits
            .budget_usd
            .is_some_and(|b| b.is_nan() || b < 0.0)
        {
            return bad("limits.budget_usd must be zero or more".into());
        }
        if let Some(f) = &self.fusion {
            if f.fan_out < 2 {
                return bad("fusion.fan_out must be at least 2".into());
            }
        }
        if let Some(c) = &self.cache {
            c.validate()
                .map_err(|m| ComboError::Invalid(self.name.clone(), m))?;
        }
        Ok(())
    }

    /// Flatten steps, following combo references (cycles are errors).
    pub fn flatten(
        &self,
        lookup: &dyn Fn(&str) -> Option<Combo>,
    ) -> Result<Vec<FlatStep>, ComboError> {
        let mut out = Vec::new();
        let mut stack = vec![self.name.clone()];
        flatten_into(self, lookup, &mut stack, &mut out)?;
        for (i, s) in out.iter_mut().enumerate() {
            s.position = i;
        }
        Ok(out)
    }
}

fn flatten_into(
    combo: &Combo,
    lookup: &dyn Fn(&str) -> Option<Combo>,
    stack: &mut Vec<String>,
    out: &mut Vec<FlatStep>,
) -> Result<(), ComboError> {
    for step in &combo.models {
        let reference = match step {
            Step::Combo(r) => Some(r.combo.clone()),
            Step::Name(s) if !s.contains('/') => Some(s.clone()),
            _ => None,
        };
        if let Some(name) = reference {
            if stack.contains(&name) {
                return Err(ComboError::Cycle(
                    stack[0].clone(),
                    format!("{} -> {name}", stack.join(" -> ")),
                ));
            }
            let inner = lookup(&name)
                .ok_or_else(|| ComboError::UnknownCombo(combo.name.clone(), name.clone()))?;
            stack.push(name);
            flatten_into(&inner, lookup, stack, out)?;
            stack.pop();
            continue;
        }
        let (model, account, weight) = match step {
            Step::Name(s) => (s.clone(), None, 1),
            Step::Target(t) => (t.model.clone(), t.account.clone(), t.weight.unwrap_or(1)),
            Step::Combo(_) => continue,
        };
        out.push(FlatStep {
            model,
            account,
            weight,
            position: 0,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn combo(name: &str, models: &[&str]) -> Combo {
        Combo {
            name: name.into(),
            strategy: StrategyKind::Priority,
            models: models.iter().map(|m| Step::Name(m.to_string())).collect(),
            sticky: false,
            description: None,
            limits: ComboLimits::default(),
            fusion: None,
            summarizer_model: None,
            cache: None,
        }
    }

    #[test]
    fn flattens_references_and_rejects_cycles() {
        let mut all = HashMap::new();
        all.insert(
            "free".to_string(),
            combo("free", &["groq/llama", "ollama/qwen"]),
        );
        all.insert("a".to_string(), combo("a", &["b"]));
        all.insert("b".to_string(), combo("b", &["x/y", "a"]));
        let lookup = |n: &str| all.get(n).cloned();
        let coding = combo("coding", &["openai/gpt-4.1", "free"]);
        let flat = coding.flatten(&lookup).unwrap();
        let models: Vec<&str> = flat.iter().map(|s| s.model.as_str()).collect();
        assert_eq!(models, ["openai/gpt-4.1", "groq/llama", "ollama/qwen"]);
        assert_eq!(flat[2].position, 2);
        assert!(matches!(
            all["a"].flatten(&lookup),
            Err(ComboError::Cycle(..))
        ));
        let missing = combo("m", &["nope"]);
        assert!(matches!(
            missing.flatten(&lookup),
            Err(ComboError::UnknownCombo(..))
        ));
    }

    #[test]
    fn parses_from_toml_in_every_step_form() {
        #[derive(Deserialize)]
        struct F {
            combos: Vec<Combo>,
        }
        let f: F = toml::from_str(
            r#"
[[combos]]
name = "coding"
strategy = "weighted"
models = ["mock/a", { model = "mock/b", weight = 3, account = "acc_1" }, { combo = "free" }]
[combos.limits]
budget_usd = 2.5
"#,
        )
        .unwrap();
        let c = &f.combos[0];
        assert_eq!(c.strategy, StrategyKind::Weighted);
        assert!(matches!(
            &c.models[1],
            Step::Target(TargetStep {
                weight: Some(3),
                ..
            })
        ));
        assert!(matches!(&c.models[2], Step::Combo(_)));
        assert_eq!(c.limits.budget_usd, Some(2.5));
        assert!(c.limits.fall_through);
        c.validate_shape().unwrap();
        let mut bad = c.clone();
        bad.name = "a/b".into();
        assert!(bad.validate_shape().is_err());
    }
}
