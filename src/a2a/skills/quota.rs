//! `quota-management`: the request (a data part or plain text) decoded into a
//! typed `QuotaRequest`; what answers it lives in `a2a::manage`, over `ops::quota`; the
//! routing core's quota and budget operations exist.

use super::decode;
use crate::a2a::jsonrpc::RpcError;
use crate::catalog::Tier;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum QuotaAction {
    /// Used, remaining, reset time and cooldowns per provider, account and tier.
    #[default]
    Summary,
    /// What is left, most first.
    Rank,
    /// Set a spending budget.
    SetBudget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BudgetPeriod {
    Day,
    Week,
    Month,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaRequest {
    #[serde(default)]
    pub action: QuotaAction,
    /// Only this provider (or, for set-budget, the provider the budget is for).
    #[serde(default)]
    pub provider: Option<String>,
    /// Only this account id.
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub tier: Option<Tier>,
    /// set-budget: the limit in USD.
    #[serde(default)]
    pub budget_usd: Option<f64>,
    /// set-budget: the period the limit covers (default month).
    #[serde(default)]
    pub period: Option<BudgetPeriod>,
}

/// Tokens of the text with surrounding punctuation trimmed, case kept.
pub fn tokens(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| ",.;:!?\"'()[]{}".contains(c))
                .to_string()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

fn amount(tokens: &[String]) -> Option<f64> {
    tokens.iter().find_map(|t| {
        t.trim_start_matches('$')
            .trim_end_matches("usd")
            .trim_end_matches("USD")
            .parse::<f64>()
            .ok()
    })
}

fn from_text(text: &str) -> QuotaRequest {
    let toks = tokens(text);
    let lower: Vec<String> = toks.iter().map(|t| t.to_lowercase()).collect();
    let has = |w: &str| lower.iter().any(|t| t == w);
    let after = |w: &str| {
        lower
            .iter()
            .position(|t| t == w)
            .and_then(|i| toks.get(i + 1))
            .cloned()
    };
    let mut req = QuotaRequest::default();
    if (has("budget") || has("limit")) && (has("set") || amount(&toks).is_some()) {
        req.action = QuotaAction::SetBudget;
        req.budget_usd = amount(&toks);
        req.period = Some(if has("day") || has("daily") || has("per-day") {
            BudgetPeriod::Day
        } else if has("week") || has("weekly") {
            BudgetPeriod::Week
        } else {
            BudgetPeriod::Month
        });
        req.provider = after("for").filter(|p| p.parse::<f64>().is_err());
    } else if has("rank") || has("ranking") || has("left") || has("remaining") {
        req.action = QuotaAction::Rank;
    }
    if req.provider.is_none() && req.action != QuotaAction::SetBudget {
        req.provider = after("provider");
    }
    req
}

pub fn parse(text: &str, data: Option<Value>) -> Result<QuotaRequest, RpcError> {
    let req = match data {
        Some(d) => decode::<QuotaRequest>("quota-management", d)?,
        None => from_text(text),
    };
    if req.action == QuotaAction::SetBudget && !req.budget_usd.is_some_and(|b| b > 0.0) {
        return Err(RpcError::InvalidParams(
            "set-budget needs budget_usd, a positive amount in USD".into(),
        ));
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_and_data_decode_to_the_same_requests() {
        assert_eq!(
            parse("Give me a short quota summary.", None).unwrap(),
            QuotaRequest::default()
        );
        assert_eq!(
            parse("rank what is left", None).unwrap().action,
            QuotaAction::Rank
        );
        let b = parse("set a budget of $20 per day for openai", None).unwrap();
        assert_eq!(b.action, QuotaAction::SetBudget);
        assert_eq!(b.budget_usd, Some(20.0));
        assert_eq!(b.period, Some(BudgetPeriod::Day));
        assert_eq!(b.provider.as_deref(), Some("openai"));
        let d = parse(
            "",
            Some(json!({"action": "set-budget", "budget_usd": 5, "provider": "openai"})),
        )
        .unwrap();
        assert_eq!(d.budget_usd, Some(5.0));
        assert_eq!(
            parse("", Some(json!({"action": "set-budget"})))
                .unwrap_err()
                .code(),
            -32602
        );
        assert_eq!(
            parse("", Some(json!({"action": "explode"})))
                .unwrap_err()
                .code(),
            -32602
        );
    }
}
