//! `combo-management`: exact edits as a data part validated against the
//! skill's schema, or simple plain-text requests ("use p2c for coding"),
//! decoded into a typed `ComboRequest`. What answers it lives in
//! `a2a::manage`, over `ops::combos`.

use super::decode;
use super::quota::tokens;
use crate::a2a::jsonrpc::RpcError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ComboAction {
    List,
    Show,
    Create,
    Update,
    Delete,
    Rollback,
    SetStrategy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComboRequest {
    pub action: ComboAction,
    /// The combo's name (all actions but list).
    #[serde(default)]
    pub name: Option<String>,
    /// create / update / set-strategy: how the combo orders its targets
    /// (e.g. priority, round-robin, p2c, least-latency, cheapest).
    #[serde(default)]
    pub strategy: Option<String>,
    /// create / update: the targets in order (`prefix/model`).
    #[serde(default)]
    pub targets: Option<Vec<String>>,
    /// rollback: the version to return to (default: the previous one).
    #[serde(default)]
    pub version: Option<u32>,
}

impl ComboRequest {
    fn new(action: ComboAction) -> ComboRequest {
        ComboRequest {
            action,
            name: None,
            strategy: None,
            targets: None,
            version: None,
        }
    }
}

const FILLER: &[&str] = &["combo", "the", "a", "an", "called", "named", "of", "to"];

fn from_text(text: &str) -> Option<ComboRequest> {
    let toks = tokens(text);
    let lower: Vec<String> = toks.iter().map(|t| t.to_lowercase()).collect();
    let pos = |w: &str| lower.iter().position(|t| t == w);
    // The first word after position `i` that is not filler.
    let name_after = |i: usize| {
        toks.iter()
            .zip(&lower)
            .skip(i + 1)
            .find(|(_, l)| !FILLER.contains(&l.as_str()))
            .map(|(t, _)| t.clone())
    };
    let first = |words: &[&str]| words.iter().find_map(|w| pos(w));
    // "use p2c for coding"
    if let (Some(u), Some(f)) = (pos("use"), pos("for")) {
        if u + 1 < f {
            let mut r = ComboRequest::new(ComboAction::SetStrategy);
            r.strategy = Some(toks[u + 1].clone());
            r.name = name_after(f);
            return r.name.is_some().then_some(r);
        }
    }
    // "set the strategy of coding to p2c" / "set coding strategy to p2c"
    if let (Some(s), Some(t)) = (pos("strategy"), pos("to")) {
        let mut r = ComboRequest::new(ComboAction::SetStrategy);
        r.strategy = toks.get(t + 1).cloned();
        r.name = match pos("of").or(pos("for")) {
            Some(o) if o < t => name_after(o),
            _ => s.checked_sub(1).and_then(|i| toks.get(i).cloned()),
        }
        .filter(|n| !["set", "the"].contains(&n.to_lowercase().as_str()));
        return (r.name.is_some() && r.strategy.is_some()).then_some(r);
    }
    if let Some(i) = first(&["rollback", "revert"]).or_else(|| pos("back")) {
        let mut r = ComboRequest::new(ComboAction::Rollback);
        r.name = name_after(i);
        return r.name.is_some().then_some(r);
    }
    if let Some(i) = first(&["delete", "remove"]) {
        let mut r = ComboRequest::new(ComboAction::Delete);
        r.name = name_after(i);
        return r.name.is_some().then_some(r);
    }
    if let Some(i) = first(&["create", "add", "make"]) {
        let mut r = ComboRequest::new(ComboAction::Create);
        r.name = name_after(i);
        let targets: Vec<String> = match pos("with").or(pos("from")) {
            Some(w) => toks[w + 1..]
                .iter()
                .zip(&lower[w + 1..])
                .filter(|(_, l)| !["and", "then"].contains(&l.as_str()))
                .map(|(t, _)| t.clone())
                .collect(),
            None => Vec::new(),
        };
        r.targets = (!targets.is_empty()).then_some(targets);
        return (r.name.is_some() && r.targets.is_some()).then_some(r);
    }
    if let Some(i) = first(&["show", "describe", "explain"]) {
        let name = name_after(i).filter(|n| {
            let n = n.to_lowercase();
            n != "combos" && n != "all" && n != "me"
        });
        if let Some(name) = name {
            let mut r = ComboRequest::new(ComboAction::Show);
            r.name = Some(name);
            return Some(r);
        }
    }
    if lower.iter().any(|t| t == "combos" || t == "list") {
        return Some(ComboRequest::new(ComboAction::List));
    }
    None
}

fn validate(r: &ComboRequest) -> Result<(), String> {
    use ComboAction::*;
    let needs_name = r.action != List;
    if needs_name && r.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        return Err("this action needs `name`".into());
    }
    match r.action {
        SetStrategy if r.strategy.is_none() => Err("set-strategy needs `strategy`".into()),
        Create if r.targets.as_ref().is_none_or(Vec::is_empty) => {
            Err("create needs `targets` (at least one `prefix/model`)".into())
        }
        Update if r.targets.is_none() && r.strategy.is_none() => {
            Err("update needs `targets` or `strategy`".into())
        }
        _ => Ok(()),
    }
}

pub fn parse(text: &str, data: Option<Value>) -> Result<ComboRequest, RpcError> {
    let req = match data {
        Some(d) => decode::<ComboRequest>("combo-management", d)?,
        None => from_text(text).ok_or_else(|| {
            RpcError::InvalidParams(format!(
                "could not read a combo request from {text:?}; try \"list combos\", \"show coding\", \"use p2c for coding\", \"create combo coding with openai/gpt-4o anthropic/claude-x\", \"roll back coding\", \"delete coding\", or send a data part"
            ))
        })?,
    };
    validate(&req).map_err(|e| RpcError::InvalidParams(format!("combo-management: {e}")))?;
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> ComboRequest {
        parse(s, None).unwrap()
    }

    #[test]
    fn plain_text_requests() {
        let r = t("use p2c for coding");
        assert_eq!(r.action, ComboAction::SetStrategy);
        assert_eq!(
            (r.name.as_deref(), r.strategy.as_deref()),
            (Some("coding"), Some("p2c"))
        );
        let r = t("set the strategy of coding to round-robin");
        assert_eq!(
            (r.name.as_deref(), r.strategy.as_deref()),
            (Some("coding"), Some("round-robin"))
        );
        assert_eq!(t("list combos").action, ComboAction::List);
        assert_eq!(t("show me all combos").action, ComboAction::List);
        let r = t("show combo coding");
        assert_eq!(
            (r.action, r.name.as_deref()),
            (ComboAction::Show, Some("coding"))
        );
        let r = t("roll back coding");
        assert_eq!(
            (r.action, r.name.as_deref()),
            (ComboAction::Rollback, Some("coding"))
        );
        let r = t("delete the combo cheap");
        assert_eq!(
            (r.action, r.name.as_deref()),
            (ComboAction::Delete, Some("cheap"))
        );
        let r = t("create combo fast with groq/llama-3 and openai/gpt-4o-mini");
        assert_eq!(r.action, ComboAction::Create);
        assert_eq!(r.targets.unwrap(), ["groq/llama-3", "openai/gpt-4o-mini"]);
        assert_eq!(parse("please do a thing", None).unwrap_err().code(), -32602);
    }

    #[test]
    fn data_parts_are_checked_against_the_schema() {
        let r = parse(
            "",
            Some(json!({"action": "set-strategy", "name": "coding", "strategy": "p2c"})),
        )
        .unwrap();
        assert_eq!(r.action, ComboAction::SetStrategy);
        for bad in [
            json!({"action": "set-strategy", "name": "coding"}),
            json!({"action": "create", "name": "x"}),
            json!({"action": "show"}),
            json!({"action": "list", "extra": 1}),
            json!({"name": "x"}),
        ] {
            assert_eq!(
                parse("", Some(bad.clone())).unwrap_err().code(),
                -32602,
                "{bad}"
            );
        }
    }
}
