//! The quota-management and combo-management skills: thin façades over
//! `ops::quota` and `ops::combos` (the routing core's operations).

use super::skills::combos::{ComboAction, ComboRequest};
use super::skills::quota::{BudgetPeriod, QuotaAction, QuotaRequest};
use super::skills::{report, Outcome};
use crate::gateway::Gateway;
use crate::ops::combos::{self as combo_ops, UpsertComboInput};
use crate::ops::quota::{self as quota_ops, AccountQuota, QuotaQuery, SetBudgetInput};
use crate::ops::Actor;
use crate::routing::budget::{BudgetScope, Period};
use crate::routing::combo::{Combo, Step};
use crate::routing::strategy::StrategyKind;
use serde_json::json;

fn fail(what: &str, e: impl std::fmt::Display) -> Outcome {
    Outcome::failed(format!("{what}: {e}"), vec![])
}

/// What is left on an account, 0..1, for ranking (unknown counts as plenty).
fn left(a: &AccountQuota) -> f64 {
    if !a.usable {
        return 0.0;
    }
    let upstream = match (a.upstream_remaining, a.upstream_limit) {
        (Some(r), Some(l)) if l > 0.0 => r / l,
        _ => 1.0,
    };
    // A plan's most used window is what is left of it.
    let plan = a
        .windows
        .iter()
        .map(|w| (1.0 - w.used_pct / 100.0).clamp(0.0, 1.0))
        .fold(1.0, f64::min);
    let upstream = upstream.min(plan);
    let budget = a
        .budgets
        .iter()
        .filter_map(|b| match (b.remaining_usd, b.rule.limit_usd) {
            (Some(r), Some(l)) if l > 0.0 => Some(r / l),
            _ => None,
        })
        .fold(1.0, f64::min);
    upstream.min(budget)
}

fn account_line(a: &AccountQuota) -> String {
    let mut s = format!(
        "- {} ({} {}, {}): {}; today ${:.4} in {} requests",
        a.account,
        a.provider,
        a.label,
        a.tier.as_str(),
        if a.usable {
            "available"
        } else {
            "not available"
        },
        a.spent_today_usd,
        a.requests_today
    );
    if let Some(c) = a.cooldown_s {
        s.push_str(&format!(
            "; cooling down {c:.0}s ({})",
            a.cooldown_reason.clone().unwrap_or_default()
        ));
    }
    if let (Some(r), Some(l)) = (a.upstream_remaining, a.upstream_limit) {
        s.push_str(&format!("; upstream quota {r:.0}/{l:.0}"));
        if let Some(reset) = a.upstream_reset_s {
            s.push_str(&format!(" resets in {reset:.0}s"));
        }
    }
    for w in &a.windows {
        s.push_str(&format!(
            "; {} window {:.0}% used{}: {}",
            w.window,
            w.used_pct,
            w.resets_at
                .as_deref()
                .map(|r| format!(", resets {r}"))
                .unwrap_or_default(),
            w.forecast
        ));
    }
    for b in &a.budgets {
        s.push_str(&format!(
            "; {} budget ${:.4} of {} left",
            b.rule.period.as_str(),
            b.remaining_usd.unwrap_or(0.0),
            b.rule
                .limit_usd
                .map(|l| format!("${l}"))
                .unwrap_or_else(|| "-".into())
        ));
    }
    s
}

pub async fn quota(gw: &Gateway, req: QuotaRequest, who: &crate::access::Principal) -> Outcome {
    if req.action == QuotaAction::SetBudget {
        return set_budget(gw, req).await;
    }
    let report_data = match quota_ops::check_quota(
        gw,
        QuotaQuery {
            provider: req.provider.clone(),
        },
        who,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return fail("quota check failed", e),
    };
    let mut accounts: Vec<AccountQuota> = report_data
        .accounts
        .iter()
        .filter(|a| req.account.as_deref().is_none_or(|id| a.account == id))
        .filter(|a| req.tier.is_none_or(|t| a.tier == t))
        .cloned()
        .collect();
    if req.action == QuotaAction::Rank {
        accounts.sort_by(|a, b| left(b).total_cmp(&left(a)).then(a.tier.cmp(&b.tier)));
        let mut text = String::from("What is left, most first:");
        for (i, a) in accounts.iter().enumerate() {
            text.push_str(&format!(
                "\n{}. {:.0}% left {}",
                i + 1,
                left(a) * 100.0,
                account_line(a).trim_start_matches("- ")
            ));
        }
        let ranked: Vec<_> = accounts.iter().map(|a| json!({"account": a.account, "provider": a.provider, "tier": a.tier, "left": left(a)})).collect();
        return Outcome::completed(
            "Accounts ranked by what is left.",
            vec![report("quota-ranking", text, json!({"ranking": ranked}))],
        );
    }
    let mut text = String::from("Quota summary by tier (subscription → api-key → cheap → free):");
    for t in &report_data.tiers {
        text.push_str(&format!(
            "\n{}: {}/{} accounts available, ${:.4} spent today",
            t.tier.as_str(),
            t.available,
            t.accounts,
            t.spent_today_usd
        ));
    }
    if !accounts.is_empty() {
        text.push_str("\nAccounts:");
        for a in &accounts {
            text.push('\n');
            text.push_str(&account_line(a));
        }
    }
    if !report_data.budgets.is_empty() {
        text.push_str("\nBudgets:");
        for b in &report_data.budgets {
            text.push_str(&format!(
                "\n- {}:{} per {}: ${:.4} spent of {}{}",
                b.rule.scope.as_str(),
                b.rule.scope_id,
                b.rule.period.as_str(),
                b.spent_usd,
                b.rule
                    .limit_usd
                    .map(|l| format!("${l}"))
                    .unwrap_or_else(|| "-".into()),
                if b.exhausted { " (exhausted)" } else { "" }
            ));
        }
    }
    let data =
        json!({"tiers": report_data.tiers, "accounts": accounts, "budgets": report_data.budgets});
    Outcome::completed("Quota summary.", vec![report("quota-summary", text, data)])
}

async fn set_budget(gw: &Gateway, req: QuotaRequest) -> Outcome {
    let Some(usd) = req.budget_usd else {
        return fail("set-budget", "say how much, e.g. budget_usd = 20");
    };
    let period = match req.period.unwrap_or(BudgetPeriod::Month) {
        BudgetPeriod::Day => Period::Day,
        BudgetPeriod::Month => Period::Month,
        BudgetPeriod::Week => return fail("set-budget", "budgets are per day or per month"),
    };
    let registry = gw.registry();
    let (scope, scope_id) = if let Some(a) = req.account.clone() {
        (BudgetScope::Account, Some(a))
    } else if let Some(t) = req.tier {
        (BudgetScope::Tier, Some(t.as_str().to_string()))
    } else if let Some(p) = req.provider.as_deref() {
        // A provider budget is one budget per account of that provider.
        let ids: Vec<String> = registry.accounts(p).iter().map(|a| a.id.clone()).collect();
        if ids.is_empty() {
            return fail("set-budget", format!("provider {p} has no accounts"));
        }
        let mut rules = Vec::new();
        for id in ids {
            let input = SetBudgetInput {
                scope: BudgetScope::Account,
                scope_id: Some(id),
                period,
                limit_usd: Some(usd),
                limit_tokens: None,
            };
            match quota_ops::set_budget(gw, input, Actor::A2a).await {
                Ok(r) => rules.push(r),
                Err(e) => return fail("set-budget", e),
            }
        }
        let text = format!(
            "Set a {} budget of ${usd} on each of the {} accounts of {p}.",
            period.as_str(),
            rules.len()
        );
        return Outcome::completed(
            text.clone(),
            vec![report("budget-set", text, json!({"rules": rules}))],
        );
    } else {
        (BudgetScope::Global, None)
    };
    let input = SetBudgetInput {
        scope,
        scope_id,
        period,
        limit_usd: Some(usd),
        limit_tokens: None,
    };
    match quota_ops::set_budget(gw, input, Actor::A2a).await {
        Ok(rule) => {
            let text = format!(
                "Set a {} budget of ${usd} on {}:{}.",
                rule.period.as_str(),
                rule.scope.as_str(),
                rule.scope_id
            );
            Outcome::completed(
                text.clone(),
                vec![report("budget-set", text, json!({"rule": rule}))],
            )
        }
        Err(e) => fail("set-budget", e),
    }
}

/// Strategy names as people say them, mapped to ours.
fn strategy(name: &str) -> Result<StrategyKind, String> {
    let n = name.trim().to_ascii_lowercase().replace([' ', '_'], "-");
    let alias = match n.as_str() {
        "least-latency" | "fastest" | "latency" | "power-of-two" => "p2c",
        "cheapest" | "cost" | "cheap" => "cost-optimized",
        "rr" | "roundrobin" => "round-robin",
        "fallback" | "ordered" => "priority",
        other => other,
    };
    StrategyKind::parse(alias).ok_or_else(|| {
        let all: Vec<&str> = StrategyKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown strategy {name:?}; one of {}", all.join(", "))
    })
}

pub async fn combos(gw: &Gateway, req: ComboRequest) -> Outcome {
    let need_name = || req.name.clone().ok_or("name the combo");
    let result: Result<(String, serde_json::Value), String> = async {
        match req.action {
            ComboAction::List => {
                let list = combo_ops::list_combos(gw)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut text = format!("{} combos:", list.len());
                for c in &list {
                    text.push_str(&format!(
                        "\n- {} ({}): {}",
                        c.combo.name,
                        c.combo.strategy.as_str(),
                        c.targets.join(", ")
                    ));
                }
                Ok((text, json!({"combos": list})))
            }
            ComboAction::Show => {
                let c = combo_ops::get_combo(gw, &need_name()?)
                    .await
                    .map_err(|e| e.to_string())?;
                let text = format!(
                    "{} (version {}, {}): {}",
                    c.combo.name,
                    c.version,
                    c.combo.strategy.as_str(),
                    c.targets.join(", ")
                );
                Ok((text, serde_json::to_value(c).unwrap_or_default()))
            }
            ComboAction::Create | ComboAction::Update => {
                let name = need_name()?;
                let existing = combo_ops::get_combo(gw, &name)
                    .await
                    .ok()
                    .filter(|c| !c.builtin)
                    .map(|c| c.combo);
                if req.action == ComboAction::Create && existing.is_some() {
                    return Err(format!("combo {name} exists; update it instead"));
                }
                let mut combo = existing.unwrap_or(Combo {
                    name: name.clone(),
                    strategy: StrategyKind::Priority,
                    models: Vec::new(),
                    sticky: false,
                    description: None,
                    limits: Default::default(),
                    fusion: None,
                    summarizer_model: None,
                    cache: None,
                });
                if let Some(s) = &req.strategy {
                    combo.strategy = strategy(s)?;
                }
                if let Some(t) = &req.targets {
                    combo.models = t.iter().cloned().map(Step::Name).collect();
                }
                let r = combo_ops::upsert_combo(
                    gw,
                    UpsertComboInput {
                        combo,
                        dry_run: false,
                    },
                    Actor::A2a,
                )
                .await
                .map_err(|e| e.to_string())?;
                let mut text = format!(
                    "{} {name} (version {}).",
                    if r.created {
                        "Created"
                    } else if r.changed {
                        "Updated"
                    } else {
                        "No change to"
                    },
                    r.version
                );
                for d in &r.diff {
                    text.push_str(&format!("\n- {d}"));
                }
                for w in &r.warnings {
                    text.push_str(&format!("\nwarning: {w}"));
                }
                Ok((text, serde_json::to_value(r).unwrap_or_default()))
            }
            ComboAction::SetStrategy => {
                let name = need_name()?;
                let s = strategy(req.strategy.as_deref().ok_or("say which strategy")?)?;
                let r = combo_ops::set_routing_strategy(
                    gw,
                    combo_ops::SetStrategyInput {
                        name: name.clone(),
                        strategy: s,
                    },
                    Actor::A2a,
                )
                .await
                .map_err(|e| e.to_string())?;
                let before = r
                    .before
                    .as_ref()
                    .map(|c| c.strategy.as_str())
                    .unwrap_or("-");
                let text = format!(
                    "{name} now uses {} (was {before}); version {}.",
                    s.as_str(),
                    r.version
                );
                Ok((text, serde_json::to_value(r).unwrap_or_default()))
            }
            ComboAction::Delete => {
                let name = need_name()?;
                let c = combo_ops::delete_combo(gw, &name, Actor::A2a)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok((format!("Deleted {name}."), json!({"deleted": c})))
            }
            ComboAction::Rollback => {
                let name = need_name()?;
                let r = combo_ops::rollback_combo(gw, &name, Actor::A2a)
                    .await
                    .map_err(|e| e.to_string())?;
                let text = match &r.restored {
                    Some(c) => format!(
                        "Rolled {name} back to its previous version ({}, {} steps).",
                        c.strategy.as_str(),
                        c.models.len()
                    ),
                    None => {
                        format!("Rolled {name} back: it did not exist before, so it is removed.")
                    }
                };
                Ok((text, serde_json::to_value(r).unwrap_or_default()))
            }
        }
    }
    .await;
    match result {
        Ok((text, data)) => Outcome::completed(
            text.lines().next().unwrap_or_default().to_string(),
            vec![report("combo-result", text, data)],
        ),
        Err(e) => fail("combo-management", e),
    }
}
