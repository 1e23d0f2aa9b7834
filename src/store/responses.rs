//! Stored OpenAI Responses (migration 0004): the conversation items and the
//! response object per response id, owned by the client key that made it.

use super::StoreError;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub id: String,
    pub owner: String,
    /// JSON array of Responses input items (the whole conversation so far).
    pub items: String,
    /// JSON of the response object.
    pub response: String,
    pub created_ms: i64,
}

pub fn put_response(tx: &Transaction<'_>, r: &StoredResponse) -> Result<(), StoreError> {
    tx.execute(
        "INSERT OR REPLACE INTO responses (id, owner, items, response, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![r.id, r.owner, r.items, r.response, r.created_ms],
    )?;
    Ok(())
}

/// The response `id` if `owner` made it.
pub fn get_response(
    conn: &Connection,
    id: &str,
    owner: &str,
) -> Result<Option<StoredResponse>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id, owner, items, response, created_ms FROM responses WHERE id = ?1 AND owner = ?2",
            params![id, owner],
            |r| {
                Ok(StoredResponse {
                    id: r.get(0)?,
                    owner: r.get(1)?,
                    items: r.get(2)?,
                    response: r.get(3)?,
                    created_ms: r.get(4)?,
                })
            },
        )
        .optional()?)
}
