//! Quotas and budgets: what each account and tier has used, its limit,
//! what remains, when it resets, and cooldowns; and setting budgets.

use super::{Actor, OpsError};
use crate::access::Principal;
use crate::catalog::Tier;
use crate::gateway::Gateway;
use crate::routing::budget::{BudgetRule, BudgetScope, Period, Spend};
use crate::store::{self, now_ms, BudgetRow};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct QuotaQuery {
    /// Only this provider's accounts.
    #[serde(default)]
    pub provider: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BudgetStatus {
    pub rule: BudgetRule,
    pub spent_usd: f64,
    pub spent_tokens: u64,
    pub remaining_usd: Option<f64>,
    pub remaining_tokens: Option<u64>,
    /// When the period ends (ms since epoch, UTC).
    pub resets_at_ms: i64,
    pub exhausted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AccountQuota {
    pub account: String,
    pub provider: String,
    pub label: String,
    pub tier: Tier,
    pub usable: bool,
    pub cooldown_s: Option<f64>,
    pub cooldown_reason: Option<String>,
    /// Remaining requests or tokens as the upstream last reported them.
    pub upstream_remaining: Option<f64>,
    pub upstream_limit: Option<f64>,
    pub upstream_reset_s: Option<f64>,
    pub spent_today_usd: f64,
    pub requests_today: u64,
    pub budgets: Vec<BudgetStatus>,
    /// Subscription accounts: each plan window's used share, reset and burn-rate forecast.
    #[serde(default)]
    pub windows: Vec<crate::quota_windows::WindowReport>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TierQuota {
    pub tier: Tier,
    pub accounts: usize,
    /// Accounts usable now (not cooling down).
    pub available: usize,
    pub spent_today_usd: f64,
    pub budgets: Vec<BudgetStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct QuotaReport {
    pub accounts: Vec<AccountQuota>,
    pub tiers: Vec<TierQuota>,
    /// Every budget with its spend, most used first.
    pub budgets: Vec<BudgetStatus>,
}

fn status(rule: &BudgetRule, spend: &Spend, now: i64) -> BudgetStatus {
    let remaining_usd = rule.limit_usd.map(|l| (l - spend.usd).max(0.0));
    let remaining_tokens = rule.limit_tokens.map(|l| l.saturating_sub(spend.tokens));
    BudgetStatus {
        rule: rule.clone(),
        spent_usd: spend.usd,
        spent_tokens: spend.tokens,
        remaining_usd,
        remaining_tokens,
        resets_at_ms: rule.period.bounds(now).1,
        exhausted: remaining_usd == Some(0.0) || remaining_tokens == Some(0),
    }
}

/// Quota per account and tier. An admin sees every key's spend and every
/// budget; another key sees its own spend and the budgets that apply to it.
pub async fn check_quota(
    gw: &Gateway,
    q: QuotaQuery,
    viewer: &Principal,
) -> Result<QuotaReport, OpsError> {
    let now = now_ms();
    let day_start = Period::Day.bounds(now).0;
    let only = viewer.usage_filter();
    let per_account: Vec<(String, f64, u64)> = gw
        .store
        .read(move |c| {
            let mut stmt = c.prepare(
                "SELECT account_id, COALESCE(SUM(cost_usd), 0), COUNT(*) FROM usage_events
                 WHERE ts_ms >= ?1 AND account_id IS NOT NULL AND (?2 IS NULL OR key_id = ?2)
                 GROUP BY account_id",
            )?;
            let rows = stmt.query_map(rusqlite::params![day_start, only], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    let registry = gw.registry();
    let mut budgets = gw.routing.budgets.rules();
    if let Some(own) = viewer.usage_filter() {
        budgets.retain(|(r, _)| r.scope != BudgetScope::Key || r.scope_id == own);
    }
    let health: std::collections::HashMap<String, crate::routing::health::AccountReport> = gw
        .routing
        .health
        .account_reports()
        .into_iter()
        .map(|a| (a.account.clone(), a))
        .collect();
    let mut accounts = Vec::new();
    for p in registry.providers() {
        if q.provider.as_deref().is_some_and(|id| id != p.spec.id) {
            continue;
        }
        for a in registry.accounts(&p.spec.id) {
            let h = health.get(&a.id);
            let (spent, requests) = per_account
                .iter()
                .find(|(id, _, _)| id == &a.id)
                .map(|(_, s, n)| (*s, *n))
                .unwrap_or((0.0, 0));
            accounts.push(AccountQuota {
                account: a.id.clone(),
                provider: p.spec.id.clone(),
                label: a.label.clone(),
                tier: a.tier,
                usable: a.usable() && h.and_then(|h| h.cooldown_s).is_none(),
                cooldown_s: h.and_then(|h| h.cooldown_s),
                cooldown_reason: h.and_then(|h| h.reason.clone()),
                upstream_remaining: h.and_then(|h| h.quota_remaining),
                upstream_limit: h.and_then(|h| h.quota_limit),
                upstream_reset_s: h.and_then(|h| h.quota_reset_s),
                spent_today_usd: spent,
                requests_today: requests,
                budgets: budgets
                    .iter()
                    .filter(|(r, _)| r.scope == BudgetScope::Account && r.scope_id == a.id)
                    .map(|(r, s)| status(r, s, now))
                    .collect(),
                windows: super::subscriptions::window_reports(gw, &a.id, now),
            });
        }
    }
    let mut tiers = Vec::new();
    for tier in [Tier::Subscription, Tier::ApiKey, Tier::Cheap, Tier::Free] {
        let mine: Vec<&AccountQuota> = accounts.iter().filter(|a| a.tier == tier).collect();
        if mine.is_empty() {
            continue;
        }
        tiers.push(TierQuota {
            tier,
            accounts: mine.len(),
            available: mine.iter().filter(|a| a.usable).count(),
            spent_today_usd: mine.iter().map(|a| a.spent_today_usd).sum(),
            budgets: budgets
                .iter()
                .filter(|(r, _)| r.scope == BudgetScope::Tier && r.scope_id == tier.as_str())
                .map(|(r, s)| status(r, s, now))
                .collect(),
        });
    }
    let mut all: Vec<BudgetStatus> = budgets.iter().map(|(r, s)| status(r, s, now)).collect();
    all.sort_by(|a, b| {
        let share = |s: &BudgetStatus| {
            s.rule
                .limit_usd
                .map(|l| if l > 0.0 { s.spent_usd / l } else { 1.0 })
                .unwrap_or(0.0)
        };
        share(b).total_cmp(&share(a))
    });
    Ok(QuotaReport {
        accounts,
        tiers,
        budgets: all,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetBudgetInput {
    pub scope: BudgetScope,
    /// Key id, account id, tier name or combo name; "*" (or omitted) for global.
    #[serde(default)]
    pub scope_id: Option<String>,
    pub period: Period,
    /// USD limit; omit both limits to remove the budget.
    #[serde(default)]
    pub limit_usd: Option<f64>,
    #[serde(default)]
    pub limit_tokens: Option<u64>,
}

pub async fn set_budget(
    gw: &Gateway,
    input: SetBudgetInput,
    actor: Actor,
) -> Result<BudgetRule, OpsError> {
    let scope_id = match (input.scope, input.scope_id) {
        (BudgetScope::Global, _) => "*".to_string(),
        (_, Some(id)) if !id.trim().is_empty() => id,
        (scope, _) => {
            return Err(OpsError::InvalidInput(format!(
                "a {} budget needs scope_id",
                scope.as_str()
            )))
        }
    };
    if input.limit_usd.is_some_and(|l| l.is_nan() || l < 0.0) {
        return Err(OpsError::InvalidInput(
            "limit_usd must be zero or more".into(),
        ));
    }
    if input.scope == BudgetScope::Tier && Tier::parse(&scope_id).is_none() {
        return Err(OpsError::InvalidInput(format!(
            "unknown tier {scope_id:?}: subscription, api-key, cheap or free"
        )));
    }
    let row = BudgetRow {
        scope: input.scope.as_str().into(),
        scope_id: scope_id.clone(),
        period: input.period.as_str().into(),
        limit_usd: input.limit_usd,
        limit_tokens: input.limit_tokens.map(|t| t.min(i64::MAX as u64) as i64),
    };
    let actor_s = actor.as_str();
    let id = format!("{}:{}:{}", row.scope, row.scope_id, row.period);
    let after = serde_json::json!({"limit_usd": row.limit_usd, "limit_tokens": row.limit_tokens});
    gw.store
        .write(move |tx| {
            let before = store::put_budget(tx, &row)?;
            let before = before.map(
                |b| serde_json::json!({"limit_usd": b.limit_usd, "limit_tokens": b.limit_tokens}),
            );
            store::audit(
                tx,
                actor_s,
                "set",
                "budget",
                &id,
                before.as_ref(),
                Some(&after),
            )
        })
        .await?;
    gw.reload().await?;
    Ok(BudgetRule {
        scope: input.scope,
        scope_id,
        period: input.period,
        limit_usd: input.limit_usd,
        limit_tokens: input.limit_tokens,
    })
}
