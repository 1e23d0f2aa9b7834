//! The agent's skills: each a file in `skills/` (embedded at build time) and
//! a façade over the operations layer. A skill is chosen by name
//! (`metadata.skill`, `params.skill`, a data part's `skill`) or else by a
//! deterministic keyword match on the text; its structured input (a data
//! part) is decoded into a typed request whose JSON Schema is the one in the
//! skill's file (a test keeps the two equal).

pub mod combos;
pub mod conformance;
pub mod cost;
pub mod health;
pub mod quota;
pub mod routing;

use super::jsonrpc::RpcError;
use super::runner::Sink;
use crate::access::{Principal, Scope};
use crate::gateway::Gateway;
use crate::ops::tasks::{Artifact, Part, Role, TaskState};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// A skill as its file describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SkillFile {
    pub id: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub examples: Vec<String>,
    pub input_modes: Vec<String>,
    pub output_modes: Vec<String>,
    /// Words that select this skill from plain text.
    pub keywords: Vec<String>,
    /// JSON Schema of the structured input (a `data` part).
    pub input_schema: Value,
}

/// The skill files, in the card's order.
pub const FILES: &[(&str, &str)] = &[
    (
        "quota-management",
        include_str!("../../../skills/quota-management.json"),
    ),
    (
        "combo-management",
        include_str!("../../../skills/combo-management.json"),
    ),
    ("health", include_str!("../../../skills/health.json")),
    (
        "smart-routing",
        include_str!("../../../skills/smart-routing.json"),
    ),
    (
        "cost-analysis",
        include_str!("../../../skills/cost-analysis.json"),
    ),
];

/// Every skill whose file parses (a test checks that all do).
pub fn all() -> Vec<SkillFile> {
    FILES
        .iter()
        .filter_map(|(id, text)| match serde_json::from_str::<SkillFile>(text) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(skill = id, error = %e, "skill file is invalid");
                None
            }
        })
        .collect()
}

pub fn ids() -> Vec<String> {
    all().into_iter().map(|s| s.id).collect()
}

fn unknown(name: &str) -> RpcError {
    RpcError::InvalidParams(format!(
        "unknown skill {name:?}; this agent's skills are: {}",
        ids().join(", ")
    ))
}

/// How a skill was chosen, recorded in the task's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub skill: String,
    /// `explicit` (named by the client), `classifier` or `default`.
    pub by: &'static str,
    /// The classifier's score per skill (empty when named).
    pub scores: Vec<(String, f64)>,
}

impl Selection {
    pub fn to_json(&self) -> Value {
        let scores: serde_json::Map<String, Value> = self
            .scores
            .iter()
            .map(|(id, s)| (id.clone(), serde_json::json!((s * 100.0).round() / 100.0)))
            .collect();
        let mut v = serde_json::json!({ "skill": self.skill, "by": self.by });
        if !scores.is_empty() {
            v["scores"] = Value::Object(scores);
        }
        v
    }
}

/// The skill plain messages go to when the classifier is not sure: the
/// message is then taken as a prompt to route.
pub const DEFAULT_SKILL: &str = "smart-routing";

/// The least score that lets the classifier pick a skill over the default.
const MIN_SCORE: f64 = 2.5;

/// Pick the skill: a name given explicitly wins; else the intent classifier
/// over the skill files; else the default skill.
pub fn select(named: Option<&str>, text: &str) -> Result<Selection, RpcError> {
    let skills = all();
    if let Some(name) = named {
        return skills
            .iter()
            .find(|s| s.id == name)
            .map(|s| Selection {
                skill: s.id.clone(),
                by: "explicit",
                scores: Vec::new(),
            })
            .ok_or_else(|| unknown(name));
    }
    let scores = classify::scores(&skills, text);
    // Highest score wins; ties go to the earlier skill in the card's order.
    let best = scores
        .iter()
        .fold(None::<&(String, f64)>, |best, cur| match best {
            Some(b) if b.1 >= cur.1 => best,
            _ => Some(cur),
        })
        .filter(|(_, s)| *s >= MIN_SCORE);
    Ok(match best {
        Some((id, _)) => Selection {
            skill: id.clone(),
            by: "classifier",
            scores,
        },
        None => Selection {
            skill: DEFAULT_SKILL.to_string(),
            by: "default",
            scores,
        },
    })
}

/// The intent classifier: each skill file is a weighted bag of word stems
/// (keywords and tags weigh most, then the name, the examples and the
/// description); a message scores, per skill, the sum over its distinct
/// stems of the stem's weight in that skill times its inverse document
/// frequency across skills, so words every skill shares count for little.
pub mod classify {
    use super::SkillFile;
    use std::collections::{HashMap, HashSet};

    const STOP: &[&str] = &[
        "a", "an", "the", "and", "or", "of", "to", "in", "on", "for", "by", "with", "is", "are",
        "be", "me", "my", "i", "we", "our", "you", "your", "it", "this", "that", "what", "how",
        "much", "do", "did", "does", "can", "could", "please", "show", "give", "tell", "per", "at",
        "from", "as", "all", "any", "there", "here", "hello", "hi",
    ];

    /// A crude English stem: enough to join plurals and verb forms.
    pub fn stem(w: &str) -> String {
        let w = w.trim_matches('-');
        for (suffix, keep) in [("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")] {
            if let Some(root) = w.strip_suffix(suffix) {
                if root.len() >= 3 && !w.ends_with("ss") {
                    return format!("{root}{keep}");
                }
            }
        }
        w.to_string()
    }

    pub fn words(text: &str) -> Vec<String> {
        text.to_lowercase()
            .split(|c: char| !c.is_alphanumeric() && c != '-')
            .flat_map(|w| {
                // "round-robin" counts as itself and as its halves.
                let mut v = vec![w.to_string()];
                if w.contains('-') {
                    v.extend(w.split('-').map(str::to_string));
                }
                v
            })
            .filter(|w| w.len() > 1 && !STOP.contains(&w.as_str()))
            .map(|w| stem(&w))
            .filter(|w| !w.is_empty())
            .collect()
    }

    fn bag(s: &SkillFile) -> HashMap<String, f64> {
        let mut bag: HashMap<String, f64> = HashMap::new();
        let mut add = |text: &str, weight: f64| {
            // Within one field a stem counts once.
            let seen: HashSet<String> = words(text).into_iter().collect();
            for w in seen {
                *bag.entry(w).or_default() += weight;
            }
        };
        for k in &s.keywords {
            add(k, 3.0);
        }
        for t in &s.tags {
            add(t, 2.0);
        }
        add(&s.name, 2.0);
        for e in s
            .examples
            .iter()
            .filter(|e| !e.trim_start().starts_with('{'))
        {
            add(e, 1.0);
        }
        add(&s.description, 1.0);
        bag
    }

    /// Each skill's score for `text`, in the skills' order.
    pub fn scores(skills: &[SkillFile], text: &str) -> Vec<(String, f64)> {
        let bags: Vec<HashMap<String, f64>> = skills.iter().map(bag).collect();
        let n = bags.len() as f64;
        let query: HashSet<String> = words(text).into_iter().collect();
        skills
            .iter()
            .zip(&bags)
            .map(|(s, b)| {
                let score = query
                    .iter()
                    .filter_map(|w| {
                        let weight = b.get(w)?;
                        let df = bags.iter().filter(|o| o.contains_key(w)).count() as f64;
                        Some(weight.min(6.0) * (n / df).ln().max(0.1))
                    })
                    .sum::<f64>();
                (s.id.clone(), score)
            })
            .collect()
    }
}

/// The structured input of a data part without its `skill` selector.
pub fn data_input(data: Option<&Value>) -> Option<Value> {
    let mut d = data?.clone();
    if let Value::Object(o) = &mut d {
        o.remove("skill");
        if o.is_empty() {
            return None;
        }
    }
    Some(d)
}

/// Decode a data part into a skill's typed input; errors name the skill.
pub fn decode<T: serde::de::DeserializeOwned>(skill: &str, data: Value) -> Result<T, RpcError> {
    serde_json::from_value(data).map_err(|e| {
        RpcError::InvalidParams(format!(
            "the data part does not match the {skill} input schema: {e}"
        ))
    })
}

/// A decoded request for one skill.
#[derive(Debug, Clone)]
pub enum Input {
    Health,
    Routing(routing::RoutingInput),
    Cost(crate::ops::cost::CostQuery),
    Quota(quota::QuotaRequest),
    Combo(combos::ComboRequest),
    /// A TCK scenario (only with `--conformance-fixtures`), by message id.
    Conformance(String),
}

impl Input {
    /// The scope this request needs: reading needs `read`, changing needs `admin`.
    pub fn scope(&self) -> Scope {
        match self {
            // The conformance suites' fixture tasks touch nothing of the gateway's.
            Input::Routing(_) | Input::Conformance(_) => Scope::Inference,
            Input::Health | Input::Cost(_) => Scope::Read,
            Input::Quota(q) if q.action == quota::QuotaAction::SetBudget => Scope::Admin,
            Input::Quota(_) => Scope::Read,
            Input::Combo(c) => match c.action {
                combos::ComboAction::List | combos::ComboAction::Show => Scope::Read,
                _ => Scope::Admin,
            },
        }
    }

    /// The action, for messages.
    pub fn action(&self) -> String {
        fn wire_name<T: Serialize>(v: &T) -> String {
            serde_json::to_value(v)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        }
        match self {
            Input::Health => "status".into(),
            Input::Routing(_) => "route".into(),
            Input::Conformance(_) => "fixture".into(),
            Input::Cost(_) => "report".into(),
            Input::Quota(q) => wire_name(&q.action),
            Input::Combo(c) => wire_name(&c.action),
        }
    }
}

/// What the skill was given.
#[derive(Debug, Clone)]
pub struct Request {
    pub text: String,
    pub data: Option<Value>,
    pub prior: Vec<(Role, String)>,
    /// Message and request metadata, merged.
    pub metadata: Value,
}

/// Decode the request for `skill`; errors are invalid params.
pub fn parse(skill: &str, req: &Request) -> Result<Input, RpcError> {
    let data = req.data.clone();
    Ok(match skill {
        "health" => {
            if let Some(d) = data {
                decode::<health::HealthInput>(skill, d)?;
            }
            Input::Health
        }
        "smart-routing" => Input::Routing(routing::parse(req)?),
        "cost-analysis" => Input::Cost(cost::parse(&req.text, data)?),
        "quota-management" => Input::Quota(quota::parse(&req.text, data)?),
        "combo-management" => Input::Combo(combos::parse(&req.text, data)?),
        other => return Err(unknown(other)),
    })
}

/// How a skill ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub state: TaskState,
    /// The agent's status message.
    pub note: String,
    /// Artifacts not already streamed through the sink.
    pub artifacts: Vec<Artifact>,
}

impl Outcome {
    pub fn completed(note: impl Into<String>, artifacts: Vec<Artifact>) -> Outcome {
        Outcome {
            state: TaskState::Completed,
            note: note.into(),
            artifacts,
        }
    }

    pub fn failed(note: impl Into<String>, artifacts: Vec<Artifact>) -> Outcome {
        Outcome {
            state: TaskState::Failed,
            note: note.into(),
            artifacts,
        }
    }
}

/// An artifact of a text summary and the JSON behind it.
pub fn report(name: &str, text: String, data: Value) -> Artifact {
    Artifact {
        artifact_id: crate::ops::tasks::new_id(),
        name: Some(name.to_string()),
        description: None,
        parts: vec![Part::text(text), Part::data(data)],
        metadata: None,
    }
}

/// Run a decoded request.
pub async fn run(gw: Arc<Gateway>, who: Principal, input: Input, sink: &Sink) -> Outcome {
    match input {
        Input::Health => health::run(&gw).await,
        Input::Routing(r) => routing::run(&gw, who.key_id, r, sink).await,
        Input::Cost(q) => cost::run(&gw, q, &who).await,
        Input::Quota(q) => super::manage::quota(&gw, q, &who).await,
        Input::Combo(c) => super::manage::combos(&gw, c).await,
        Input::Conformance(message_id) => conformance::run(&message_id, sink).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_skill_file_parses_and_ids_match() {
        let all = all();
        assert_eq!(all.len(), FILES.len());
        for (s, (id, _)) in all.iter().zip(FILES) {
            assert_eq!(&s.id, id);
            assert!(!s.examples.is_empty() && !s.tags.is_empty() && !s.keywords.is_empty());
        }
    }

    #[test]
    fn selection_by_name_then_classifier_then_default() {
        let pick = |t: &str| select(None, t).unwrap();
        assert_eq!(select(Some("health"), "anything").unwrap().by, "explicit");
        let e = select(Some("nope"), "").unwrap_err();
        assert_eq!(e.code(), -32602);
        assert!(e.to_string().contains("quota-management"), "{e}");
        for (text, want) in [
            ("Give me a short quota summary.", "quota-management"),
            (
                "How much budget is left on my accounts?",
                "quota-management",
            ),
            ("use p2c for coding", "combo-management"),
            ("list my combos", "combo-management"),
            ("How much did we spend last week?", "cost-analysis"),
            ("where could we save money on models", "cost-analysis"),
            ("are the breakers ok? health please", "health"),
            ("is the gateway healthy", "health"),
            ("route this prompt: hello", "smart-routing"),
        ] {
            let s = pick(text);
            assert_eq!(s.skill, want, "{text}: {s:?}");
            assert_eq!(s.by, "classifier", "{text}");
        }
        for text in [
            "hello there",
            "Write a haiku about the sea.",
            "Hello from TCK",
            "",
        ] {
            let s = pick(text);
            assert_eq!(
                (s.skill.as_str(), s.by),
                (DEFAULT_SKILL, "default"),
                "{text}: {s:?}"
            );
        }
        let v = pick("quota left").to_json();
        assert_eq!(v["skill"], "quota-management");
        assert!(v["scores"]["quota-management"].as_f64().unwrap() > 0.0);
    }
}
