//! The exact cache in memory: answers by key hash, bounded in bytes, the
//! least recently used evicted first, expired ones dropped when met. The
//! store keeps the same rows (see `cache::rows`); this index is what a
//! request reads, so a hit never waits for SQLite.

use crate::catalog::WireFormat;
use crate::proxy::{RouteInfo, Usage};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Bytes counted for an entry beyond its body (keys, route, bookkeeping).
const ENTRY_OVERHEAD: u64 = 512;

/// A stored answer, exactly as its client got it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub hash: [u8; 32],
    pub namespace: String,
    pub label: String,
    pub format: WireFormat,
    pub stream: bool,
    pub status: u16,
    /// A whole body, or the stream's SSE bytes.
    pub body: Bytes,
    pub route: RouteInfo,
    pub usage: Usage,
    pub cost_usd: Option<f64>,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub semantic: Option<Semantic>,
}

/// What the semantic cache keeps of an entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Semantic {
    /// Digest of everything but the last user turn.
    pub context: String,
    pub model: String,
    /// Unit-length embedding of the last user turn.
    pub vector: Vec<f32>,
}

impl Entry {
    pub fn size(&self) -> u64 {
        self.body.len() as u64
            + ENTRY_OVERHEAD
            + self
                .semantic
                .as_ref()
                .map_or(0, |s| s.vector.len() as u64 * 4)
    }

    pub fn tokens(&self) -> u64 {
        self.usage.input_tokens + self.usage.output_tokens
    }
}

struct Slot {
    entry: Arc<Entry>,
    tick: u64,
}

#[derive(Default)]
struct Inner {
    map: HashMap<[u8; 32], Slot>,
    /// Use order: tick → hash (the smallest tick is the least recently used).
    order: BTreeMap<u64, [u8; 32]>,
    tick: u64,
    bytes: u64,
}

impl Inner {
    fn remove(&mut self, hash: &[u8; 32]) -> Option<Arc<Entry>> {
        let slot = self.map.remove(hash)?;
        self.order.remove(&slot.tick);
        self.bytes = self.bytes.saturating_sub(slot.entry.size());
        Some(slot.entry)
    }

    fn touch(&mut self, hash: &[u8; 32]) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(slot) = self.map.get_mut(hash) {
            self.order.remove(&slot.tick);
            slot.tick = tick;
            self.order.insert(tick, *hash);
        }
    }
}

/// Entries removed from memory, to be removed from the store (and the
/// semantic index) as well.
pub type Removed = Vec<Arc<Entry>>;

pub struct Exact {
    inner: Mutex<Inner>,
    max_bytes: u64,
}

impl Exact {
    pub fn new(max_bytes: u64) -> Exact {
        Exact {
            inner: Mutex::new(Inner::default()),
            max_bytes,
        }
    }

    /// The live entry for `hash`; an expired one is removed and returned
    /// second, for the store to drop.
    pub fn get(&self, hash: &[u8; 32], now_ms: i64) -> (Option<Arc<Entry>>, Removed) {
        let Ok(mut inner) = self.inner.lock() else {
            return (None, Vec::new());
        };
        let expired = match inner.map.get(hash) {
            None => return (None, Vec::new()),
            Some(slot) => slot.entry.expires_ms <= now_ms,
        };
        if expired {
            let gone = inner.remove(hash);
            return (None, gone.into_iter().collect());
        }
        inner.touch(hash);
        (inner.map.get(hash).map(|s| s.entry.clone()), Vec::new())
    }

    /// Is `hash` stored and live (no use recorded)?
    pub fn peek(&self, hash: &[u8; 32], now_ms: i64) -> Option<Arc<Entry>> {
        let inner = self.inner.lock().ok()?;
        inner
            .map
            .get(hash)
            .filter(|s| s.entry.expires_ms > now_ms)
            .map(|s| s.entry.clone())
    }

    /// Keep `entry` (replacing one with the same hash); returns what had to
    /// go to stay within the byte bound (the least recently used first).
    /// An entry larger than the whole bound is not kept (returned as false).
    pub fn insert(&self, entry: Arc<Entry>) -> (bool, Removed) {
        let size = entry.size();
        let Ok(mut inner) = self.inner.lock() else {
            return (false, Vec::new());
        };
        if size > self.max_bytes {
            return (false, Vec::new());
        }
        let mut removed: Removed = Vec::new();
        if let Some(old) = inner.remove(&entry.hash) {
            // Replaced, not evicted: the store row is overwritten.
            drop(old);
        }
        while inner.bytes + size > self.max_bytes {
            let Some((_, hash)) = inner.order.iter().next().map(|(t, h)| (*t, *h)) else {
                break;
            };
            removed.extend(inner.remove(&hash));
        }
        inner.tick += 1;
        let tick = inner.tick;
        inner.order.insert(tick, entry.hash);
        inner.bytes += size;
        inner.map.insert(entry.hash, Slot { entry, tick });
        (true, removed)
    }

    /// Remove every entry `pred` picks (flush, expiry sweeps).
    pub fn remove_where(&self, pred: impl Fn(&Entry) -> bool) -> Removed {
        let Ok(mut inner) = self.inner.lock() else {
            return Vec::new();
        };
        let picked: Vec<[u8; 32]> = inner
            .map
            .values()
            .filter(|s| pred(&s.entry))
            .map(|s| s.entry.hash)
            .collect();
        picked.iter().filter_map(|h| inner.remove(h)).collect()
    }

    /// (entries, bytes) held now.
    pub fn size(&self) -> (u64, u64) {
        self.inner
            .lock()
            .map(|i| (i.map.len() as u64, i.bytes))
            .unwrap_or((0, 0))
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8, body: usize, expires_ms: i64) -> Arc<Entry> {
        Arc::new(Entry {
            hash: [n; 32],
            namespace: "ns".into(),
            label: "m".into(),
            format: WireFormat::Openai,
            stream: false,
            status: 200,
            body: Bytes::from(vec![b'x'; body]),
            route: RouteInfo::default(),
            usage: Usage::default(),
            cost_usd: None,
            created_ms: 0,
            expires_ms,
            semantic: None,
        })
    }

    #[test]
    fn bounded_in_bytes_least_recently_used_first() {
        // Room for three entries of 488 + 512 bytes.
        let c = Exact::new(3000);
        for n in 1..=3 {
            assert!(c.insert(entry(n, 488, 100)).1.is_empty());
        }
        assert_eq!(c.size(), (3, 3000));
        // Using 1 makes 2 the least recently used.
        assert!(c.get(&[1; 32], 0).0.is_some());
        let (kept, gone) = c.insert(entry(4, 488, 100));
        assert!(kept);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].hash, [2; 32]);
        assert!(c.get(&[2; 32], 0).0.is_none());
        // Too big for the whole bound: not kept, nothing evicted.
        assert!(!c.insert(entry(9, 5000, 100)).0);
        assert_eq!(c.size().0, 3);
    }

    #[test]
    fn expired_entries_are_dropped_when_met() {
        let c = Exact::new(10_000);
        c.insert(entry(1, 10, 50));
        let (hit, gone) = c.get(&[1; 32], 49);
        assert!(hit.is_some() && gone.is_empty());
        let (hit, gone) = c.get(&[1; 32], 50);
        assert!(hit.is_none());
        assert_eq!(gone.len(), 1);
        assert_eq!(c.size(), (0, 0));
    }
}
