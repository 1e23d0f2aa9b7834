//! Stored OpenAI Responses (migrations 0004, 0009), owned by the client key
//! that made them. Each row keeps only its own items (the input its request
//! added and its output) and a link to the response it continues, so a
//! conversation of n turns takes O(n) space; the history is rebuilt by
//! following the links back to the first turn (bounded, and a missing link
//! is named). `root_id`, the first response of the conversation, lets
//! retention delete whole conversations (a kept turn needs every earlier one).

use super::{Store, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::Value;

/// Longest chain of responses followed to rebuild a conversation.
pub const MAX_TURNS: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub id: String,
    pub owner: String,
    /// JSON array of this response's own Responses items: the input its
    /// request added, then its output.
    pub items: String,
    /// JSON of the response object.
    pub response: String,
    pub created_ms: i64,
    /// The response this one continues (`previous_response_id`).
    pub previous_id: Option<String>,
    /// The first response of the conversation (this one's id when it starts one).
    pub root_id: String,
}

pub fn put_response(tx: &Transaction<'_>, r: &StoredResponse) -> Result<(), StoreError> {
    tx.execute(
        "INSERT OR REPLACE INTO responses (id, owner, items, response, created_ms, previous_id, root_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            r.id,
            r.owner,
            r.items,
            r.response,
            r.created_ms,
            r.previous_id,
            r.root_id
        ],
    )?;
    Ok(())
}

const COLUMNS: &str = "id, owner, items, response, created_ms, previous_id, root_id";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredResponse> {
    Ok(StoredResponse {
        id: r.get(0)?,
        owner: r.get(1)?,
        items: r.get(2)?,
        response: r.get(3)?,
        created_ms: r.get(4)?,
        previous_id: r.get(5)?,
        root_id: r.get(6)?,
    })
}

/// The response `id` if `owner` made it.
pub fn get_response(
    conn: &Connection,
    id: &str,
    owner: &str,
) -> Result<Option<StoredResponse>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM responses WHERE id = ?1 AND owner = ?2"),
            params![id, owner],
            row,
        )
        .optional()?)
}

/// A conversation rebuilt from its links.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Every item of every turn up to and including the response asked for, oldest first.
    pub items: Vec<Value>,
    /// The first response of the conversation.
    pub root_id: String,
    /// How many stored responses it spans.
    pub turns: usize,
}

/// Why a conversation could not be rebuilt.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChainError {
    #[error(
        "previous response {0:?} not found (it was not stored, expired, or another key made it)"
    )]
    NotFound(String),
    #[error("the conversation before response {start:?} is incomplete: response {missing:?}, which {after:?} continues, is no longer stored; start a new conversation or send the whole input")]
    Broken {
        start: String,
        missing: String,
        after: String,
    },
    #[error("the conversation before response {start:?} is longer than {MAX_TURNS} turns; start a new conversation or send the whole input")]
    TooLong { start: String },
    #[error("the conversation before response {start:?} is larger than {limit} bytes (the largest request accepted); start a new conversation or send the whole input")]
    TooLarge { start: String, limit: usize },
    #[error("stored response {id:?} is unreadable: {message}")]
    Unreadable { id: String, message: String },
}

/// The conversation up to response `id` of `owner`, following
/// `previous_id` links back to its first turn: at most [`MAX_TURNS`]
/// responses and `max_bytes` of stored items.
pub fn history(
    conn: &Connection,
    id: &str,
    owner: &str,
    max_bytes: usize,
) -> Result<Result<History, ChainError>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT items, previous_id, root_id FROM responses WHERE id = ?1 AND owner = ?2",
    )?;
    let mut turns: Vec<(String, String)> = Vec::new();
    let mut bytes = 0usize;
    let mut root_id = String::new();
    let mut next = Some(id.to_string());
    while let Some(at) = next.take() {
        if turns.len() == MAX_TURNS {
            return Ok(Err(ChainError::TooLong { start: id.into() }));
        }
        let found: Option<(String, Option<String>, String)> = stmt
            .query_row(params![at, owner], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((items, previous, root)) = found else {
            return Ok(Err(match turns.last() {
                None => ChainError::NotFound(id.into()),
                Some((after, _)) => ChainError::Broken {
                    start: id.into(),
                    missing: at,
                    after: after.clone(),
                },
            }));
        };
        bytes += items.len();
        if bytes > max_bytes {
            return Ok(Err(ChainError::TooLarge {
                start: id.into(),
                limit: max_bytes,
            }));
        }
        root_id = root;
        turns.push((at, items));
        next = previous;
    }
    let mut all = Vec::new();
    for (at, items) in turns.iter().rev() {
        match serde_json::from_str::<Vec<Value>>(items) {
            Ok(mut v) => all.append(&mut v),
            Err(e) => {
                return Ok(Err(ChainError::Unreadable {
                    id: at.clone(),
                    message: e.to_string(),
                }))
            }
        }
    }
    Ok(Ok(History {
        items: all,
        root_id,
        turns: turns.len(),
    }))
}

/// The response a new one continues: its id and its conversation's first response.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub id: String,
    pub root_id: String,
}

/// A Responses turn to store once answered: the id the client sees, this
/// turn's input items (the earlier turns stay in the rows `previous` leads to).
#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: String,
    pub owner: String,
    /// The input items this request added.
    pub items: Vec<Value>,
    /// The stored response this one continues.
    pub previous: Option<Link>,
    /// `store: false` from the client: nothing is kept.
    pub store: bool,
}

impl Conversation {
    /// Store `response` (the object as the client got it) with this turn's
    /// own items and the link to the one before.
    pub fn save(&self, store: &Store, response: &Value) {
        if !self.store {
            return;
        }
        let mut items = self.items.clone();
        if let Some(out) = response.get("output").and_then(Value::as_array) {
            items.extend(out.iter().cloned());
        }
        let row = StoredResponse {
            id: self.id.clone(),
            owner: self.owner.clone(),
            items: Value::Array(items).to_string(),
            response: response.to_string(),
            created_ms: super::now_ms(),
            previous_id: self.previous.as_ref().map(|l| l.id.clone()),
            root_id: self
                .previous
                .as_ref()
                .map(|l| l.root_id.clone())
                .unwrap_or_else(|| self.id.clone()),
        };
        store.write_detached("response", move |tx| put_response(tx, &row));
    }
}

/// Migration 0009's data step: rows written before it hold the whole
/// conversation so far. Each is linked to the latest earlier row of the same
/// owner whose items it starts with (its previous turn: same items, same
/// order) and keeps only the items after them; rows that continue nothing
/// stay as they are, the first turn of their conversation.
pub(super) fn link_stored_conversations(tx: &Transaction<'_>) -> Result<(), StoreError> {
    use sha2::{Digest, Sha256};
    use std::collections::HashMap;
    let ids: Vec<(String, String)> = {
        let mut stmt =
            tx.prepare("SELECT id, owner FROM responses ORDER BY owner, created_ms, rowid")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    // The hash of each row's whole item list -> (id, root), for the current owner.
    let mut ends: HashMap<[u8; 32], (String, String)> = HashMap::new();
    let mut owner_seen: Option<String> = None;
    let mut linked = 0usize;
    for (id, owner) in ids {
        if owner_seen.as_deref() != Some(owner.as_str()) {
            ends.clear();
            owner_seen = Some(owner.clone());
        }
        let items: String =
            tx.query_row("SELECT items FROM responses WHERE id = ?1", [&id], |r| {
                r.get(0)
            })?;
        let Ok(items) = serde_json::from_str::<Vec<Value>>(&items) else {
            continue;
        };
        // prefix[k]: the hash of the first k items.
        let mut prefix = Vec::with_capacity(items.len() + 1);
        let mut h = Sha256::new();
        let digest = |h: &Sha256| -> [u8; 32] { h.clone().finalize().into() };
        prefix.push(digest(&h));
        for item in &items {
            h.update(item.to_string().as_bytes());
            h.update([0u8]);
            prefix.push(digest(&h));
        }
        let before = (1..items.len()).rev().find_map(|k| {
            ends.get(&prefix[k])
                .map(|(p, root)| (k, p.clone(), root.clone()))
        });
        let root = match before {
            Some((k, previous, root)) => {
                let own = Value::Array(items[k..].to_vec()).to_string();
                tx.execute(
                    "UPDATE responses SET items = ?2, previous_id = ?3, root_id = ?4 WHERE id = ?1",
                    params![id, own, previous, root],
                )?;
                linked += 1;
                root
            }
            None => id.clone(),
        };
        ends.insert(prefix[items.len()], (id, root));
    }
    if linked > 0 {
        tracing::info!(
            linked,
            "stored responses now keep their own items, linked to the turn before"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut conn = Connection::open(&path).unwrap();
        super::super::migrate::run(&mut conn, &path).unwrap();
        (dir, conn)
    }

    fn put(conn: &mut Connection, id: &str, prev: Option<&str>, root: &str, items: Value) {
        let tx = conn.transaction().unwrap();
        put_response(
            &tx,
            &StoredResponse {
                id: id.into(),
                owner: "k".into(),
                items: items.to_string(),
                response: "{}".into(),
                created_ms: 1,
                previous_id: prev.map(str::to_string),
                root_id: root.into(),
            },
        )
        .unwrap();
        tx.commit().unwrap();
    }

    #[test]
    fn history_follows_the_links_and_names_a_missing_one() {
        let (_dir, mut conn) = db();
        put(&mut conn, "r1", None, "r1", json!(["u1", "a1"]));
        put(&mut conn, "r2", Some("r1"), "r1", json!(["u2", "a2"]));
        put(&mut conn, "r3", Some("r2"), "r1", json!(["u3", "a3"]));
        let h = history(&conn, "r3", "k", 1 << 20).unwrap().unwrap();
        assert_eq!(
            h.items,
            json!(["u1", "a1", "u2", "a2", "u3", "a3"])
                .as_array()
                .unwrap()
                .clone()
        );
        assert_eq!((h.root_id.as_str(), h.turns), ("r1", 3));
        // Another key sees nothing; an unknown id is not found.
        assert_eq!(
            history(&conn, "r3", "other", 1 << 20).unwrap(),
            Err(ChainError::NotFound("r3".into()))
        );
        // Too large for the limit.
        assert!(matches!(
            history(&conn, "r3", "k", 20).unwrap(),
            Err(ChainError::TooLarge { .. })
        ));
        // A missing middle turn breaks the chain, and says where.
        conn.execute("DELETE FROM responses WHERE id = 'r2'", [])
            .unwrap();
        let e = history(&conn, "r3", "k", 1 << 20).unwrap().unwrap_err();
        assert_eq!(
            e,
            ChainError::Broken {
                start: "r3".into(),
                missing: "r2".into(),
                after: "r3".into()
            }
        );
        assert!(e.to_string().contains("\"r2\""), "{e}");
    }

    #[test]
    fn a_chain_longer_than_the_bound_is_refused() {
        let (_dir, conn) = db();
        conn.execute_batch("BEGIN").unwrap();
        for i in 0..=MAX_TURNS {
            let prev = i.checked_sub(1).map(|p| format!("r{p}"));
            conn.execute(
                "INSERT INTO responses (id, owner, items, response, created_ms, previous_id, root_id)
                 VALUES (?1, 'k', '[\"x\"]', '{}', 1, ?2, 'r0')",
                params![format!("r{i}"), prev],
            )
            .unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
        let last = format!("r{MAX_TURNS}");
        assert_eq!(
            history(&conn, &last, "k", usize::MAX).unwrap(),
            Err(ChainError::TooLong {
                start: last.clone()
            })
        );
        let h = history(&conn, &format!("r{}", MAX_TURNS - 1), "k", usize::MAX)
            .unwrap()
            .unwrap();
        assert_eq!(h.turns, MAX_TURNS);
    }

    /// Rows in the 0004 shape (each the whole conversation so far) become
    /// linked rows of their own items; the history read back is the same.
    #[test]
    fn migration_0009_links_rows_that_held_the_whole_conversation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut conn = Connection::open(&path).unwrap();
        super::super::migrate::run_until(&mut conn, &path, 6).unwrap();
        let old = |id: &str, owner: &str, ms: i64, items: Value| {
            conn.execute(
                "INSERT INTO responses (id, owner, items, response, created_ms) VALUES (?1, ?2, ?3, '{}', ?4)",
                params![id, owner, items.to_string(), ms],
            )
            .unwrap();
        };
        let u = |t: &str| json!({"type": "message", "role": "user", "content": t});
        let a = |t: &str| json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": t}]});
        old("c1", "k", 1, json!([u("hi"), a("hello")]));
        old(
            "c2",
            "k",
            2,
            json!([u("hi"), a("hello"), u("name?"), a("Ada")]),
        );
        // A branch from c1, and a new conversation that happens to start alike
        // under another key (never linked across keys).
        old(
            "c3",
            "k",
            3,
            json!([u("hi"), a("hello"), u("other?"), a("no")]),
        );
        old("d1", "k2", 4, json!([u("hi"), a("hello"), u("x"), a("y")]));
        old(
            "c4",
            "k",
            5,
            json!([
                u("hi"),
                a("hello"),
                u("name?"),
                a("Ada"),
                u("sure?"),
                a("yes")
            ]),
        );
        let full = |conn: &Connection, id: &str, owner: &str| -> Vec<Value> {
            let s: String = conn
                .query_row(
                    "SELECT items FROM responses WHERE id = ?1 AND owner = ?2",
                    [id, owner],
                    |r| r.get(0),
                )
                .unwrap();
            serde_json::from_str(&s).unwrap()
        };
        let before: Vec<Vec<Value>> = [
            ("c1", "k"),
            ("c2", "k"),
            ("c3", "k"),
            ("d1", "k2"),
            ("c4", "k"),
        ]
        .iter()
        .map(|(id, o)| full(&conn, id, o))
        .collect();
        super::super::migrate::run(&mut conn, &path).unwrap();
        let link = |id: &str| -> (Option<String>, String, usize) {
            conn.query_row(
                "SELECT previous_id, root_id, json_array_length(items) FROM responses WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
        };
        assert_eq!(link("c1"), (None, "c1".into(), 2));
        assert_eq!(link("c2"), (Some("c1".into()), "c1".into(), 2));
        assert_eq!(link("c3"), (Some("c1".into()), "c1".into(), 2));
        assert_eq!(link("c4"), (Some("c2".into()), "c1".into(), 2));
        assert_eq!(link("d1"), (None, "d1".into(), 4));
        for ((id, owner), want) in [
            ("c1", "k"),
            ("c2", "k"),
            ("c3", "k"),
            ("d1", "k2"),
            ("c4", "k"),
        ]
        .iter()
        .zip(before)
        {
            let h = history(&conn, id, owner, usize::MAX).unwrap().unwrap();
            assert_eq!(h.items, want, "{id}");
        }
    }
}
