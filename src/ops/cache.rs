//! The answer cache's figures, flushes and per-key policies.

use super::{Actor, OpsError};
use crate::access::Principal;
use crate::cache::rows::{self, CacheLine, FlushFilter, StatGroup};
use crate::cache::stats::day_of;
use crate::cache::{CacheMode, KeyCachePolicy};
use crate::gateway::Gateway;
use crate::store::{self, now_ms};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheStatsQuery {
    /// Start of the period: a duration back from now ("24h", "7d") or a UTC
    /// date ("2025-06-01"); figures are kept per day. Default "30d".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Only this model or combo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combo: Option<String>,
}

/// Hits, misses, bytes, hit rate, tokens and cost saved, over a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CacheFigures {
    pub totals: CacheLine,
    /// By the model or combo the requests named, most hits first.
    pub by_combo: Vec<CacheLine>,
    /// By client key, most hits first.
    pub by_key: Vec<CacheLine>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CacheReport {
    pub enabled: bool,
    /// Default mode: auto (deterministic requests only), always or off.
    pub mode: CacheMode,
    pub ttl_s: u64,
    pub max_bytes: u64,
    /// The first day counted (UTC).
    pub since_day: String,
    /// Answers stored now (the caller's namespace unless an admin).
    pub entries: u64,
    pub stored_bytes: u64,
    pub totals: CacheLine,
    pub by_combo: Vec<CacheLine>,
    pub by_key: Vec<CacheLine>,
}

/// The figures from `since_ms` to `until_ms`, every key's for an admin.
pub async fn figures(
    gw: &Gateway,
    since_ms: i64,
    until_ms: i64,
    viewer: &Principal,
    combo: Option<String>,
) -> Result<CacheFigures, OpsError> {
    let (since, until) = (day_of(since_ms), day_of(until_ms));
    let only = viewer.usage_filter();
    let (mut by_combo, by_key) = gw
        .store
        .read(move |c| {
            Ok((
                rows::stats_between(c, &since, &until, StatGroup::Label, only.as_deref())?,
                rows::stats_between(c, &since, &until, StatGroup::Key, only.as_deref())?,
            ))
        })
        .await?;
    if let Some(c) = &combo {
        by_combo.retain(|l| &l.group == c);
    }
    let mut totals = CacheLine {
        group: "total".into(),
        ..CacheLine::default()
    };
    for l in &by_combo {
        totals.add(l);
    }
    totals.fill_rate();
    Ok(CacheFigures {
        totals,
        by_combo,
        by_key,
    })
}

pub async fn cache_stats(
    gw: &Gateway,
    q: CacheStatsQuery,
    viewer: &Principal,
) -> Result<CacheReport, OpsError> {
    let now = now_ms();
    let since_ms = super::cost::parse_instant("since", q.since.as_deref().unwrap_or("30d"), now)?;
    let f = figures(gw, since_ms, now, viewer, q.combo.clone()).await?;
    let namespace = viewer.usage_filter().map(|key| {
        gw.cache
            .policy(&key)
            .and_then(|p| p.namespace)
            .unwrap_or(key)
    });
    let (entries, stored_bytes) = gw
        .store
        .read(move |c| rows::stored_totals(c, namespace.as_deref()))
        .await?;
    let s = &gw.cache.settings;
    Ok(CacheReport {
        enabled: s.enabled,
        mode: s.mode,
        ttl_s: s.ttl.as_secs(),
        max_bytes: s.max_bytes,
        since_day: day_of(since_ms),
        entries,
        stored_bytes,
        totals: f.totals,
        by_combo: f.by_combo,
        by_key: f.by_key,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FlushReport {
    /// Answers removed.
    pub entries: u64,
    pub bytes: u64,
}

/// Remove stored answers: all, or one model/combo's, or one namespace's.
pub async fn cache_flush(
    gw: &Gateway,
    filter: FlushFilter,
    actor: Actor,
) -> Result<FlushReport, OpsError> {
    let f = filter.clone();
    let actor_s = actor.as_str();
    let (entries, bytes) = gw
        .store
        .write(move |tx| {
            let (n, bytes) = rows::flush(tx, &f)?;
            let after =
                serde_json::json!({"combo": f.combo, "namespace": f.namespace, "entries": n});
            store::audit(tx, actor_s, "flush", "cache", "answers", None, Some(&after))?;
            Ok((n, bytes))
        })
        .await?;
    gw.cache.forget_where(&filter);
    Ok(FlushReport { entries, bytes })
}

/// Set a client key's cache policy (by id or hint); an empty one removes it.
pub async fn set_key_cache(
    gw: &Gateway,
    key: &str,
    policy: KeyCachePolicy,
    actor: Actor,
) -> Result<(String, KeyCachePolicy), OpsError> {
    policy.validate().map_err(OpsError::InvalidInput)?;
    let key = key.to_string();
    let actor_s = actor.as_str();
    let p = policy.clone();
    let id = gw
        .store
        .write(move |tx| {
            let row = store::find_key(tx, &key)?;
            let before = rows::get_policy(tx, &row.id)?;
            rows::put_policy(tx, &row.id, &p)?;
            store::audit(
                tx,
                actor_s,
                "cache_policy",
                "client_key",
                &row.id,
                before
                    .map(|b| serde_json::to_value(b).unwrap_or_default())
                    .as_ref(),
                Some(&serde_json::to_value(&p).unwrap_or_default()),
            )?;
            Ok(row.id)
        })
        .await?;
    gw.reload().await?;
    Ok((id, policy))
}
