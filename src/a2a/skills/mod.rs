//! The agent's skills: each a file in `skills/` (embedded at build time) and
//! a façade over the operations layer. A skill is chosen by name
//! (`metadata.skill`, `params.skill`, a data part's `skill`) or else by a
//! deterministic keyword match on the text; its structured input (a data
//! part) is decoded into a typed request whose JSON Schema is the one in the
//! skill's file (a test keeps the two equal).

pub mod combos;
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

/// Pick the skill: a name given explicitly wins, else the keyword match.
pub fn select(named: Option<&str>, text: &str) -> Result<String, RpcError> {
    let skills = all();
    if let Some(name) = named {
        return skills
            .iter()
            .find(|s| s.id == name)
            .map(|s| s.id.clone())
            .ok_or_else(|| unknown(name));
    }
    let words: Vec<String> = text
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    let joined = format!(" {} ", words.join(" "));
    let score = |s: &SkillFile| {
        s.keywords
            .iter()
            .filter(|k| joined.contains(&format!(" {} ", k.to_lowercase())))
            .count()
    };
    // Highest score wins; ties go to the earlier skill in the card's order.
    let best = skills
        .iter()
        .map(|s| (score(s), s))
        .filter(|(n, _)| *n > 0)
        .fold(None::<(usize, &SkillFile)>, |best, (n, s)| match best {
            Some((b, _)) if b >= n => best,
            _ => Some((n, s)),
        });
    best.map(|(_, s)| s.id.clone()).ok_or_else(|| {
        RpcError::InvalidParams(format!(
            "could not tell which skill this message is for; name one in metadata.skill (or params.skill): {}",
            ids().join(", ")
        ))
    })
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
}

impl Input {
    /// The scope this request needs: reading needs `read`, changing needs `admin`.
    pub fn scope(&self) -> Scope {
        match self {
            Input::Routing(_) => Scope::Inference,
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
    fn selection_by_name_then_keywords() {
        assert_eq!(select(Some("health"), "anything").unwrap(), "health");
        let e = select(Some("nope"), "").unwrap_err();
        assert_eq!(e.code(), -32602);
        assert!(e.to_string().contains("quota-management"), "{e}");
        assert_eq!(
            select(None, "Give me a short quota summary.").unwrap(),
            "quota-management"
        );
        assert_eq!(
            select(None, "use p2c for coding").unwrap(),
            "combo-management"
        );
        assert_eq!(
            select(None, "How much did we spend last week?").unwrap(),
            "cost-analysis"
        );
        assert_eq!(
            select(None, "are the breakers ok? health please").unwrap(),
            "health"
        );
        assert_eq!(
            select(None, "route this prompt: hello").unwrap(),
            "smart-routing"
        );
        assert_eq!(select(None, "hello there").unwrap_err().code(), -32602);
    }
}
