//! OAuth credentials of subscription accounts and the quota windows their
//! providers report. Secrets stay encrypted in these rows.

use super::{now_ms, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

/// One subscription account's stored tokens (still encrypted).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OAuthRow {
    pub account_id: String,
    pub kind: String,
    pub access_enc: Vec<u8>,
    pub refresh_enc: Option<Vec<u8>>,
    pub inflight_enc: Option<Vec<u8>>,
    pub expires_ms: Option<i64>,
    pub plan: Option<String>,
    pub email: Option<String>,
    pub account_ref: Option<String>,
    pub allow_overage: bool,
    pub status: String,
    pub status_reason: Option<String>,
    pub refreshed_ms: Option<i64>,
    pub refresh_count: i64,
    pub updated_ms: i64,
}

const COLUMNS: &str =
    "account_id, kind, access_enc, refresh_enc, inflight_enc, expires_ms, plan, email, \
     account_ref, allow_overage, status, status_reason, refreshed_ms, refresh_count, updated_ms";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OAuthRow> {
    Ok(OAuthRow {
        account_id: r.get(0)?,
        kind: r.get(1)?,
        access_enc: r.get(2)?,
        refresh_enc: r.get(3)?,
        inflight_enc: r.get(4)?,
        expires_ms: r.get(5)?,
        plan: r.get(6)?,
        email: r.get(7)?,
        account_ref: r.get(8)?,
        allow_overage: r.get(9)?,
        status: r.get(10)?,
        status_reason: r.get(11)?,
        refreshed_ms: r.get(12)?,
        refresh_count: r.get(13)?,
        updated_ms: r.get(14)?,
    })
}

pub fn list_oauth(conn: &Connection) -> Result<Vec<OAuthRow>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM oauth_credentials ORDER BY account_id"
    ))?;
    let rows = stmt.query_map([], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn get_oauth(conn: &Connection, account_id: &str) -> Result<Option<OAuthRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM oauth_credentials WHERE account_id = ?1"),
            [account_id],
            row,
        )
        .optional()?)
}

/// Insert or replace the whole row (a login or an import).
pub fn put_oauth(tx: &Transaction<'_>, r: &OAuthRow) -> Result<(), StoreError> {
    tx.execute(
        &format!(
            "INSERT INTO oauth_credentials ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             ON CONFLICT(account_id) DO UPDATE SET kind = excluded.kind, access_enc = excluded.access_enc,
                refresh_enc = excluded.refresh_enc, inflight_enc = NULL, expires_ms = excluded.expires_ms,
                plan = excluded.plan, email = excluded.email, account_ref = excluded.account_ref,
                allow_overage = excluded.allow_overage, status = excluded.status,
                status_reason = excluded.status_reason, refreshed_ms = excluded.refreshed_ms,
                updated_ms = excluded.updated_ms"
        ),
        params![
            r.account_id,
            r.kind,
            r.access_enc,
            r.refresh_enc,
            r.inflight_enc,
            r.expires_ms,
            r.plan,
            r.email,
            r.account_ref,
            r.allow_overage,
            r.status,
            r.status_reason,
            r.refreshed_ms,
            r.refresh_count,
            r.updated_ms,
        ],
    )?;
    Ok(())
}

/// Before a refresh call: remember which refresh token it spends.
pub fn mark_refresh_inflight(
    tx: &Transaction<'_>,
    account_id: &str,
    inflight_enc: &[u8],
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE oauth_credentials SET inflight_enc = ?2 WHERE account_id = ?1",
        params![account_id, inflight_enc],
    )?;
    Ok(())
}

/// A refresh's answer: the new tokens, the in-flight marker cleared in the
/// same transaction. A missing refresh token keeps the stored one.
pub fn store_refreshed(
    tx: &Transaction<'_>,
    account_id: &str,
    access_enc: &[u8],
    refresh_enc: Option<&[u8]>,
    expires_ms: Option<i64>,
) -> Result<(), StoreError> {
    let now = now_ms();
    tx.execute(
        "UPDATE oauth_credentials SET access_enc = ?2, refresh_enc = COALESCE(?3, refresh_enc),
            inflight_enc = NULL, expires_ms = ?4, status = 'ok', status_reason = NULL,
            refreshed_ms = ?5, refresh_count = refresh_count + 1, updated_ms = ?5
         WHERE account_id = ?1",
        params![account_id, access_enc, refresh_enc, expires_ms, now],
    )?;
    Ok(())
}

/// A refresh the provider refused: the account is unusable until a new login.
pub fn set_oauth_status(
    tx: &Transaction<'_>,
    account_id: &str,
    status: &str,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE oauth_credentials SET status = ?2, status_reason = ?3, inflight_enc = NULL, updated_ms = ?4
         WHERE account_id = ?1",
        params![account_id, status, reason, now_ms()],
    )?;
    Ok(())
}

/// Extra facts learnt after login (the Code Assist project, a plan name).
pub fn set_oauth_facts(
    tx: &Transaction<'_>,
    account_id: &str,
    plan: Option<&str>,
    account_ref: Option<&str>,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE oauth_credentials SET plan = COALESCE(?2, plan), account_ref = COALESCE(?3, account_ref)
         WHERE account_id = ?1",
        params![account_id, plan, account_ref],
    )?;
    Ok(())
}

/// One plan window as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowRow {
    pub account_id: String,
    pub window: String,
    pub used_pct: f64,
    pub resets_ms: Option<i64>,
    pub window_minutes: Option<i64>,
    pub status: Option<String>,
    pub observed_ms: i64,
    pub first_pct: f64,
    pub first_ms: i64,
}

pub fn list_windows(conn: &Connection) -> Result<Vec<WindowRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT account_id, window, used_pct, resets_ms, window_minutes, status, observed_ms, first_pct, first_ms
         FROM quota_windows ORDER BY account_id, window",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(WindowRow {
            account_id: r.get(0)?,
            window: r.get(1)?,
            used_pct: r.get(2)?,
            resets_ms: r.get(3)?,
            window_minutes: r.get(4)?,
            status: r.get(5)?,
            observed_ms: r.get(6)?,
            first_pct: r.get(7)?,
            first_ms: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn put_windows(tx: &Transaction<'_>, rows: &[WindowRow]) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO quota_windows (account_id, window, used_pct, resets_ms, window_minutes, status, observed_ms, first_pct, first_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT(account_id, window) DO UPDATE SET used_pct = excluded.used_pct, resets_ms = excluded.resets_ms,
            window_minutes = excluded.window_minutes, status = excluded.status, observed_ms = excluded.observed_ms,
            first_pct = excluded.first_pct, first_ms = excluded.first_ms",
    )?;
    for w in rows {
        stmt.execute(params![
            w.account_id,
            w.window,
            w.used_pct,
            w.resets_ms,
            w.window_minutes,
            w.status,
            w.observed_ms,
            w.first_pct,
            w.first_ms
        ])?;
    }
    Ok(())
}
