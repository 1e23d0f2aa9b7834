//! Tool-call ids across formats: Anthropic's character rule and the
//! deterministic ids Gemini needs (it sends none).

use sha2::{Digest, Sha256};

/// Anthropic accepts `^[a-zA-Z0-9_-]+$`: replace anything else with `_`,
/// deterministically, so the same foreign id maps the same way in every turn.
pub fn sanitize_tool_id(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        format!("toolu_{}", short_hash(&[id]))
    } else {
        s
    }
}

/// 16 hex characters of SHA-256 over the parts (separated so "a","bc" ≠ "ab","c").
pub fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..8])
}

/// A deterministic call id for a Gemini functionCall that has none.
pub fn gemini_call_id(seed: &str, index: usize, name: &str) -> String {
    format!("call_{}", short_hash(&[seed, &index.to_string(), name]))
}
