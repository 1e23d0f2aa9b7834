//! The cache's rows in the store: entries, figures and key policies.
//! Plain functions over a connection or transaction; callers choose the
//! thread (the store's reader pool or its writer).

use super::exact::{Entry, Semantic};
use super::settings::{CacheMode, KeyCachePolicy};
use crate::catalog::WireFormat;
use crate::proxy::{RouteInfo, Usage};
use crate::store::StoreError;
use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Bumped by a flush from any process; a gateway seeing it move drops what
/// it holds in memory that the store no longer has.
pub const FLUSH_GENERATION: &str = "cache_flush_generation";

fn vector_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn vector_of(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn format_of(s: &str) -> Option<WireFormat> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

pub fn put_entry(tx: &Transaction<'_>, e: &Entry) -> Result<(), StoreError> {
    let route = serde_json::to_string(&e.route).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let (context, model, vector) = match &e.semantic {
        Some(s) => (
            Some(s.context.as_str()),
            Some(s.model.as_str()),
            Some(vector_bytes(&s.vector)),
        ),
        None => (None, None, None),
    };
    tx.prepare_cached(
        "INSERT OR REPLACE INTO cache_entries (hash, namespace, label, format, stream, status, body,
            route, input_tokens, output_tokens, cached_tokens, cost_usd, created_ms, expires_ms,
            context, embed_model, embedding)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?
    .execute(params![
        hex::encode(e.hash),
        e.namespace,
        e.label,
        e.format.as_str(),
        e.stream,
        e.status,
        e.body.as_ref(),
        route,
        e.usage.input_tokens as i64,
        e.usage.output_tokens as i64,
        e.usage.cached_tokens as i64,
        e.cost_usd,
        e.created_ms,
        e.expires_ms,
        context,
        model,
        vector,
    ])?;
    Ok(())
}

pub fn delete_entries(tx: &Transaction<'_>, hashes: &[[u8; 32]]) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached("DELETE FROM cache_entries WHERE hash = ?1")?;
    for h in hashes {
        stmt.execute([hex::encode(h)])?;
    }
    Ok(())
}

/// Live entries, newest first, up to `max_bytes` of bodies; older or
/// expired rows are deleted (they would not fit the bound).
pub fn load_entries(
    tx: &Transaction<'_>,
    now_ms: i64,
    max_bytes: u64,
) -> Result<Vec<Entry>, StoreError> {
    tx.execute("DELETE FROM cache_entries WHERE expires_ms <= ?1", [now_ms])?;
    let mut out = Vec::new();
    let mut drop = Vec::new();
    let mut total = 0u64;
    {
        let mut stmt = tx.prepare(
            "SELECT hash, namespace, label, format, stream, status, body, route, input_tokens,
                output_tokens, cached_tokens, cost_usd, created_ms, expires_ms, context,
                embed_model, embedding
             FROM cache_entries ORDER BY created_ms DESC",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let hash: String = r.get(0)?;
            let Some(h) = hex::decode(&hash)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            else {
                drop.push(hash);
                continue;
            };
            let format: String = r.get(3)?;
            let route: String = r.get(7)?;
            let (Some(format), Ok(route)) = (
                format_of(&format),
                serde_json::from_str::<RouteInfo>(&route),
            ) else {
                drop.push(hash);
                continue;
            };
            let body: Vec<u8> = r.get(6)?;
            let context: Option<String> = r.get(14)?;
            let model: Option<String> = r.get(15)?;
            let vector: Option<Vec<u8>> = r.get(16)?;
            let semantic = match (context, model, vector) {
                (Some(context), Some(model), Some(v)) => Some(Semantic {
                    context,
                    model,
                    vector: vector_of(&v),
                }),
                _ => None,
            };
            let e = Entry {
                hash: h,
                namespace: r.get(1)?,
                label: r.get(2)?,
                format,
                stream: r.get(4)?,
                status: r.get(5)?,
                body: Bytes::from(body),
                route,
                usage: Usage {
                    input_tokens: r.get::<_, i64>(8)?.max(0) as u64,
                    output_tokens: r.get::<_, i64>(9)?.max(0) as u64,
                    cached_tokens: r.get::<_, i64>(10)?.max(0) as u64,
                    reasoning_tokens: 0,
                },
                cost_usd: r.get(11)?,
                created_ms: r.get(12)?,
                expires_ms: r.get(13)?,
                semantic,
            };
            if total + e.size() > max_bytes {
                drop.push(hash);
                continue;
            }
            total += e.size();
            out.push(e);
        }
    }
    let mut stmt = tx.prepare_cached("DELETE FROM cache_entries WHERE hash = ?1")?;
    for h in drop {
        stmt.execute([h])?;
    }
    Ok(out)
}

/// Which entries a flush removes: all, or those of a model/combo, of a namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlushFilter {
    /// Only answers to requests naming this model or combo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combo: Option<String>,
    /// Only answers in this namespace (a key id, or a shared namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl FlushFilter {
    pub fn matches(&self, label: &str, namespace: &str) -> bool {
        self.combo.as_deref().is_none_or(|c| c == label)
            && self.namespace.as_deref().is_none_or(|n| n == namespace)
    }
}

/// Delete the entries `f` picks; (rows, bytes) removed. Tells other
/// processes on this store (a running gateway) to drop them too.
pub fn flush(tx: &Transaction<'_>, f: &FlushFilter) -> Result<(u64, u64), StoreError> {
    let (n, bytes): (i64, i64) = tx.query_row(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM cache_entries
         WHERE (?1 IS NULL OR label = ?1) AND (?2 IS NULL OR namespace = ?2)",
        params![f.combo, f.namespace],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    tx.execute(
        "DELETE FROM cache_entries WHERE (?1 IS NULL OR label = ?1) AND (?2 IS NULL OR namespace = ?2)",
        params![f.combo, f.namespace],
    )?;
    let gen = crate::store::meta_get(tx, FLUSH_GENERATION)?
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    crate::store::meta_set(tx, FLUSH_GENERATION, &(gen + 1).to_string())?;
    // The gateway's watcher polls the config generation.
    tx.execute(
        "UPDATE meta SET value = value + 1 WHERE key = 'config_generation'",
        [],
    )?;
    Ok((n.max(0) as u64, bytes.max(0) as u64))
}

pub fn flush_generation(conn: &Connection) -> Result<i64, StoreError> {
    Ok(crate::store::meta_get(conn, FLUSH_GENERATION)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

pub fn entry_hashes(conn: &Connection) -> Result<std::collections::HashSet<[u8; 32]>, StoreError> {
    let mut stmt = conn.prepare("SELECT hash FROM cache_entries")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = std::collections::HashSet::new();
    for h in rows {
        if let Some(h) = hex::decode(h?)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
        {
            out.insert(h);
        }
    }
    Ok(out)
}

// ---------- figures ----------

/// Counts to add to one (day, key, model/combo) row.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Delta {
    pub hits: u64,
    pub semantic_hits: u64,
    pub coalesced: u64,
    pub misses: u64,
    pub bypasses: u64,
    pub replays: u64,
    pub bytes_served: u64,
    pub bytes_stored: u64,
    pub tokens_saved: u64,
    pub cost_saved_usd: f64,
}

impl Delta {
    pub fn add(&mut self, o: &Delta) {
        self.hits += o.hits;
        self.semantic_hits += o.semantic_hits;
        self.coalesced += o.coalesced;
        self.misses += o.misses;
        self.bypasses += o.bypasses;
        self.replays += o.replays;
        self.bytes_served += o.bytes_served;
        self.bytes_stored += o.bytes_stored;
        self.tokens_saved += o.tokens_saved;
        self.cost_saved_usd += o.cost_saved_usd;
    }
}

pub type StatKey = (String, String, String);

pub fn add_stats(tx: &Transaction<'_>, rows: &[(StatKey, Delta)]) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO cache_stats (day, key_id, label, hits, semantic_hits, coalesced, misses,
            bypasses, replays, bytes_served, bytes_stored, tokens_saved, cost_saved_usd)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT(day, key_id, label) DO UPDATE SET
            hits = hits + excluded.hits, semantic_hits = semantic_hits + excluded.semantic_hits,
            coalesced = coalesced + excluded.coalesced, misses = misses + excluded.misses,
            bypasses = bypasses + excluded.bypasses, replays = replays + excluded.replays,
            bytes_served = bytes_served + excluded.bytes_served,
            bytes_stored = bytes_stored + excluded.bytes_stored,
            tokens_saved = tokens_saved + excluded.tokens_saved,
            cost_saved_usd = cost_saved_usd + excluded.cost_saved_usd",
    )?;
    for ((day, key, label), d) in rows {
        stmt.execute(params![
            day,
            key,
            label,
            d.hits as i64,
            d.semantic_hits as i64,
            d.coalesced as i64,
            d.misses as i64,
            d.bypasses as i64,
            d.replays as i64,
            d.bytes_served as i64,
            d.bytes_stored as i64,
            d.tokens_saved as i64,
            d.cost_saved_usd,
        ])?;
    }
    Ok(())
}

/// One line of cache figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CacheLine {
    /// The model/combo or client key the line is about.
    pub group: String,
    pub hits: u64,
    /// Of the hits: answered by a similar request's answer.
    pub semantic_hits: u64,
    /// Of the hits: joined an identical request in flight.
    pub coalesced: u64,
    pub misses: u64,
    pub bypasses: u64,
    /// Repeats under an idempotency key given the first answer.
    pub idempotent_replays: u64,
    /// hits / (hits + misses), or null without either.
    pub hit_rate: Option<f64>,
    pub bytes_served: u64,
    pub bytes_stored: u64,
    pub tokens_saved: u64,
    pub cost_saved_usd: f64,
}

impl CacheLine {
    pub fn add(&mut self, o: &CacheLine) {
        self.hits += o.hits;
        self.semantic_hits += o.semantic_hits;
        self.coalesced += o.coalesced;
        self.misses += o.misses;
        self.bypasses += o.bypasses;
        self.idempotent_replays += o.idempotent_replays;
        self.bytes_served += o.bytes_served;
        self.bytes_stored += o.bytes_stored;
        self.tokens_saved += o.tokens_saved;
        self.cost_saved_usd += o.cost_saved_usd;
        self.fill_rate();
    }

    pub fn fill_rate(&mut self) {
        let n = self.hits + self.misses;
        self.hit_rate = (n > 0).then(|| self.hits as f64 / n as f64);
    }
}

/// Which column lines are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatGroup {
    Label,
    Key,
}

/// Figures from `since_day` (YYYY-MM-DD, inclusive) grouped by model/combo
/// or key; only key `key`'s when given.
pub fn stats_between(
    conn: &Connection,
    since_day: &str,
    until_day: &str,
    group: StatGroup,
    key: Option<&str>,
) -> Result<Vec<CacheLine>, StoreError> {
    let col = match group {
        StatGroup::Label => "label",
        StatGroup::Key => "CASE key_id WHEN '' THEN '(no key)' ELSE key_id END",
    };
    let sql = format!(
        "SELECT {col} AS g, SUM(hits), SUM(semantic_hits), SUM(coalesced), SUM(misses),
            SUM(bypasses), SUM(replays), SUM(bytes_served), SUM(bytes_stored), SUM(tokens_saved),
            SUM(cost_saved_usd)
         FROM cache_stats WHERE day >= ?1 AND day <= ?2 AND (?3 IS NULL OR key_id = ?3)
         GROUP BY g ORDER BY SUM(hits) DESC, g"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params![since_day, until_day, key], |r| {
        let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
        let mut l = CacheLine {
            group: r.get(0)?,
            hits: n(1)?,
            semantic_hits: n(2)?,
            coalesced: n(3)?,
            misses: n(4)?,
            bypasses: n(5)?,
            idempotent_replays: n(6)?,
            hit_rate: None,
            bytes_served: n(7)?,
            bytes_stored: n(8)?,
            tokens_saved: n(9)?,
            cost_saved_usd: r.get(10)?,
        };
        l.fill_rate();
        Ok(l)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// (entries, bytes) stored now, all or of one namespace.
pub fn stored_totals(conn: &Connection, namespace: Option<&str>) -> Result<(u64, u64), StoreError> {
    let (n, b): (i64, i64) = conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM cache_entries
         WHERE (?1 IS NULL OR namespace = ?1)",
        params![namespace],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((n.max(0) as u64, b.max(0) as u64))
}

// ---------- key policies ----------

pub fn list_policies(conn: &Connection) -> Result<Vec<(String, KeyCachePolicy)>, StoreError> {
    let mut stmt = conn.prepare("SELECT key_id, mode, namespace FROM cache_key_policies")?;
    let rows = stmt.query_map([], |r| {
        let mode: Option<String> = r.get(1)?;
        Ok((
            r.get::<_, String>(0)?,
            KeyCachePolicy {
                mode: mode.as_deref().and_then(CacheMode::parse),
                namespace: r.get(2)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn get_policy(conn: &Connection, key_id: &str) -> Result<Option<KeyCachePolicy>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT mode, namespace FROM cache_key_policies WHERE key_id = ?1",
            [key_id],
            |r| {
                let mode: Option<String> = r.get(0)?;
                Ok(KeyCachePolicy {
                    mode: mode.as_deref().and_then(CacheMode::parse),
                    namespace: r.get(1)?,
                })
            },
        )
        .optional()?)
}

/// Set (or, for an empty policy, remove) a key's policy.
pub fn put_policy(
    tx: &Transaction<'_>,
    key_id: &str,
    p: &KeyCachePolicy,
) -> Result<(), StoreError> {
    if p.mode.is_none() && p.namespace.is_none() {
        tx.execute("DELETE FROM cache_key_policies WHERE key_id = ?1", [key_id])?;
        return Ok(());
    }
    tx.execute(
        "INSERT INTO cache_key_policies (key_id, mode, namespace, updated_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(key_id) DO UPDATE SET mode = excluded.mode, namespace = excluded.namespace,
            updated_ms = excluded.updated_ms",
        params![
            key_id,
            p.mode.map(|m| m.as_str()),
            p.namespace,
            crate::store::now_ms()
        ],
    )?;
    Ok(())
}

/// The usage row the request wrote (its outcome and figures), the latest
/// when several share the id.
/// Only rows from `since_ms` on are looked at (the time index keeps it short).
pub fn usage_of_request(
    conn: &Connection,
    request_id: &str,
    endpoint: &str,
    since_ms: i64,
) -> Result<Option<(String, Usage, Option<f64>)>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT outcome, input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost_usd
             FROM usage_events WHERE ts_ms >= ?3 AND request_id = ?1 AND endpoint = ?2
             ORDER BY id DESC LIMIT 1",
            params![request_id, endpoint, since_ms],
            |r| {
                let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                Ok((
                    r.get::<_, String>(0)?,
                    Usage {
                        input_tokens: n(1)?,
                        output_tokens: n(2)?,
                        cached_tokens: n(3)?,
                        reasoning_tokens: n(4)?,
                    },
                    r.get::<_, Option<f64>>(5)?,
                ))
            },
        )
        .optional()?)
}
