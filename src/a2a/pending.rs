//! The answers that wait for the routing core (issue 3: combos, strategies,
//! breakers, budgets, quotas). Each skill request that needs it lands in one
//! function here; when the core's operations exist, these bodies become calls
//! to `ops::combos` and `ops::quota`, and nothing else in `a2a` changes.

use super::skills::combos::ComboRequest;
use super::skills::quota::{QuotaAction, QuotaRequest};
use super::skills::{report, Outcome};
use crate::gateway::Gateway;
use crate::ops::usage::{usage_summary, UsageQuery};
use crate::store::UsageGroup;
use serde_json::json;

pub const NEEDS_CORE: &str = "needs the routing core (issue 3), not built yet";

/// A failed outcome that says what was understood and why it cannot run yet.
fn not_yet(skill: &str, what: &str, request: serde_json::Value) -> Outcome {
    let note = format!("{skill}: {what} {NEEDS_CORE}");
    Outcome::failed(
        note.clone(),
        vec![report(
            "request-understood",
            format!("{note}. This is the request as understood; send it again once the routing core lands."),
            json!({ "status": "not-implemented", "needs": "routing core (issue 3)", "request": request }),
        )],
    )
}

/// combo-management: every action needs the core's combo operations.
pub async fn combos(_gw: &Gateway, req: ComboRequest) -> Outcome {
    let what = format!(
        "{} of combos",
        serde_json::to_value(req.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    );
    not_yet(
        "combo-management",
        &what,
        serde_json::to_value(&req).unwrap_or_default(),
    )
}

/// quota-management: ranking and budgets need the core; the summary answers
/// now with what exists (usage and cost per provider, and the accounts),
/// labelled as such.
pub async fn quota(gw: &Gateway, req: QuotaRequest) -> Outcome {
    let request = serde_json::to_value(&req).unwrap_or_default();
    match req.action {
        QuotaAction::Rank => return not_yet("quota-management", "ranking what is left", request),
        QuotaAction::SetBudget => return not_yet("quota-management", "setting a budget", request),
        QuotaAction::Summary => {}
    }
    let q = |since: &str| UsageQuery {
        since: since.into(),
        group_by: UsageGroup::Provider,
    };
    let (day, month, accounts) = match (
        usage_summary(gw, q("24h")).await,
        usage_summary(gw, q("30d")).await,
        crate::ops::accounts::list_accounts(gw, req.provider.as_deref()).await,
    ) {
        (Ok(d), Ok(m), Ok(a)) => (d, m, a),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            return Outcome::failed(format!("quota summary failed: {e}"), vec![])
        }
    };
    let only = |lines: Vec<crate::store::UsageLine>| -> Vec<crate::store::UsageLine> {
        lines
            .into_iter()
            .filter(|l| req.provider.as_deref().is_none_or(|p| l.group == p))
            .collect()
    };
    let accounts: Vec<_> = accounts
        .into_iter()
        .filter(|a| req.account.as_deref().is_none_or(|id| a.id == id))
        .filter(|a| req.tier.is_none_or(|t| a.tier == t))
        .collect();
    let label = format!(
        "Quota and budget limits {NEEDS_CORE}; until then this is the usage and cost per provider and the configured accounts."
    );
    let mut text = format!(
        "{label}\nLast 24h: {} requests, ${:.4}. Last 30d: {} requests, ${:.4}.",
        day.total_requests,
        day.total_cost_usd + 0.0,
        month.total_requests,
        month.total_cost_usd + 0.0
    );
    for l in &month.lines {
        if req.provider.as_deref().is_some_and(|p| l.group != p) {
            continue;
        }
        text.push_str(&format!(
            "\n- {}: {} requests ({} errors), {} in / {} out tokens, ${:.4} (30d)",
            l.group, l.requests, l.errors, l.input_tokens, l.output_tokens, l.cost_usd
        ));
    }
    text.push_str(&format!("\nAccounts ({}):", accounts.len()));
    for a in &accounts {
        text.push_str(&format!(
            "\n- {} {} [{}] {}{}",
            a.provider,
            a.label,
            a.tier.as_str(),
            if a.usable { "usable" } else { "not usable" },
            a.problem
                .as_deref()
                .map(|p| format!(": {p}"))
                .unwrap_or_default()
        ));
    }
    let data = json!({
        "kind": "usage-summary",
        "note": label,
        "quotas": null,
        "usage_24h": { "total_requests": day.total_requests, "total_cost_usd": day.total_cost_usd, "by_provider": only(day.lines) },
        "usage_30d": { "total_requests": month.total_requests, "total_cost_usd": month.total_cost_usd, "by_provider": only(month.lines) },
        "accounts": accounts,
    });
    Outcome::completed(
        "Usage summary (quota tracking arrives with the routing core).",
        vec![report("quota-summary", text, data)],
    )
}
