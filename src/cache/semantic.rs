//! The semantic index: unit-length embeddings of last user turns, one
//! partition per context digest (the rest of the request must match
//! exactly), searched by cosine similarity. A small partition is scanned;
//! past `INDEX_AT` vectors it gets an HNSW graph (`instant-distance`),
//! rebuilt off the async threads as it grows, with the vectors added since
//! the last build scanned beside it. Removed entries are skipped until the
//! next build drops them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Partitions up to this size are scanned; larger ones get a graph.
pub const INDEX_AT: usize = 512;
/// Vectors added since the last build before the graph is rebuilt.
const REBUILD_AFTER: usize = 256;
/// Candidates taken from the graph.
const GRAPH_CANDIDATES: usize = 8;

#[derive(Clone)]
struct Point(Arc<[f32]>);

impl instant_distance::Point for Point {
    fn distance(&self, other: &Self) -> f32 {
        1.0 - dot(&self.0, &other.0)
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `v` scaled to unit length (None for a zero or non-finite vector).
pub fn normalise(mut v: Vec<f32>) -> Option<Vec<f32>> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return None;
    }
    for x in &mut v {
        *x /= norm;
    }
    Some(v)
}

struct Graph {
    map: instant_distance::HnswMap<Point, [u8; 32]>,
    /// How many of the partition's items it covers (a prefix).
    covers: usize,
}

#[derive(Default)]
struct Partition {
    items: Vec<([u8; 32], Point)>,
    removed: HashSet<[u8; 32]>,
    graph: Option<Arc<Graph>>,
    building: bool,
}

impl Partition {
    fn search(&self, q: &Point) -> Vec<([u8; 32], f32)> {
        let mut out: Vec<([u8; 32], f32)> = Vec::new();
        let scan_from = match &self.graph {
            Some(g) => {
                let mut search = instant_distance::Search::default();
                for item in g.map.search(q, &mut search).take(GRAPH_CANDIDATES) {
                    out.push((*item.value, 1.0 - item.distance));
                }
                g.covers
            }
            None => 0,
        };
        for (hash, p) in &self.items[scan_from.min(self.items.len())..] {
            out.push((*hash, dot(&p.0, &q.0)));
        }
        out.retain(|(h, _)| !self.removed.contains(h));
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }

    fn wants_build(&self) -> bool {
        let live = self.items.len() - self.removed.len().min(self.items.len());
        if self.building || live <= INDEX_AT {
            return false;
        }
        match &self.graph {
            None => true,
            Some(g) => {
                self.items.len() - g.covers >= REBUILD_AFTER
                    || self.removed.len() * 4 > self.items.len()
            }
        }
    }
}

#[derive(Default)]
pub struct SemanticIndex {
    parts: Mutex<HashMap<String, Partition>>,
}

impl SemanticIndex {
    /// Add a unit vector for the entry `hash` under `context`; true when the
    /// partition should have its graph (re)built (`build`).
    pub fn add(&self, context: &str, hash: [u8; 32], vector: &[f32]) -> bool {
        let Ok(mut parts) = self.parts.lock() else {
            return false;
        };
        let p = parts.entry(context.to_string()).or_default();
        p.removed.remove(&hash);
        p.items.push((hash, Point(Arc::from(vector))));
        p.wants_build()
    }

    pub fn remove(&self, context: &str, hash: &[u8; 32]) {
        if let Ok(mut parts) = self.parts.lock() {
            if let Some(p) = parts.get_mut(context) {
                p.removed.insert(*hash);
                if p.removed.len() >= p.items.len() {
                    parts.remove(context);
                }
            }
        }
    }

    pub fn clear(&self) {
        if let Ok(mut parts) = self.parts.lock() {
            parts.clear();
        }
    }

    /// Entries under `context` by similarity to `query`, best first.
    pub fn nearest(&self, context: &str, query: &[f32]) -> Vec<([u8; 32], f32)> {
        let q = Point(Arc::from(query));
        match self.parts.lock() {
            Ok(parts) => parts.get(context).map(|p| p.search(&q)).unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// Build the graph of `context`'s partition from its live vectors.
    /// Blocking (CPU): call from a blocking thread.
    pub fn build(&self, context: &str) {
        let items: Vec<([u8; 32], Point)> = {
            let Ok(mut parts) = self.parts.lock() else {
                return;
            };
            let Some(p) = parts.get_mut(context) else {
                return;
            };
            if p.building {
                return;
            }
            p.building = true;
            let removed = std::mem::take(&mut p.removed);
            p.items.retain(|(h, _)| !removed.contains(h));
            p.graph = None;
            p.items.clone()
        };
        let covers = items.len();
        let (values, points): (Vec<[u8; 32]>, Vec<Point>) = items.into_iter().unzip();
        let map = instant_distance::Builder::default()
            .seed(0x6f6d6e69)
            .build(points, values);
        if let Ok(mut parts) = self.parts.lock() {
            if let Some(p) = parts.get_mut(context) {
                p.graph = Some(Arc::new(Graph { map, covers }));
                p.building = false;
            }
        }
    }

    /// Live vectors under `context`.
    pub fn len(&self, context: &str) -> usize {
        self.parts
            .lock()
            .ok()
            .and_then(|p| {
                p.get(context)
                    .map(|p| p.items.len() - p.removed.len().min(p.items.len()))
            })
            .unwrap_or(0)
    }

    /// Is `context`'s partition served by a graph now (tests, figures)?
    pub fn indexed(&self, context: &str) -> bool {
        self.parts
            .lock()
            .ok()
            .and_then(|p| p.get(context).map(|p| p.graph.is_some()))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u64, dims: usize) -> Vec<f32> {
        // A small deterministic generator (xorshift) for test vectors.
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let v = (0..dims)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 2000) as f32 / 1000.0 - 1.0
            })
            .collect();
        normalise(v).unwrap()
    }

    #[test]
    fn scans_small_partitions_and_keeps_them_apart() {
        let idx = SemanticIndex::default();
        idx.add("ctx", [1; 32], &unit(1, 16));
        idx.add("ctx", [2; 32], &unit(2, 16));
        idx.add("other", [3; 32], &unit(1, 16));
        let best = idx.nearest("ctx", &unit(1, 16));
        assert_eq!(best[0].0, [1; 32]);
        assert!((best[0].1 - 1.0).abs() < 1e-5);
        assert_eq!(best.len(), 2);
        idx.remove("ctx", &[1; 32]);
        assert_eq!(idx.nearest("ctx", &unit(1, 16))[0].0, [2; 32]);
        assert!(idx.nearest("none", &unit(1, 16)).is_empty());
    }

    #[test]
    fn a_large_partition_is_searched_through_its_graph() {
        let idx = SemanticIndex::default();
        let mut wants = false;
        for i in 0..(INDEX_AT as u64 + 200) {
            let mut h = [0u8; 32];
            h[..8].copy_from_slice(&i.to_le_bytes());
            wants |= idx.add("big", h, &unit(i + 10, 32));
        }
        assert!(wants);
        idx.build("big");
        assert!(idx.indexed("big"));
        // Added after the build: found by the scan of the tail.
        idx.add("big", [0xAA; 32], &unit(99_999, 32));
        for i in [3u64, 250, 600] {
            let best = idx.nearest("big", &unit(i + 10, 32));
            let mut h = [0u8; 32];
            h[..8].copy_from_slice(&i.to_le_bytes());
            assert_eq!(best[0].0, h, "vector {i}");
            assert!(best[0].1 > 0.999);
        }
        assert_eq!(idx.nearest("big", &unit(99_999, 32))[0].0, [0xAA; 32]);
    }
}
