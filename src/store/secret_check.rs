//! `secret.key` and the database must belong together. A key file that was
//! deleted or replaced would otherwise be regenerated in silence and every
//! stored secret would become undecryptable; instead the store refuses to
//! open and says how to recover. A check value encrypted with the key is
//! kept in `meta` to tell a wrong key from a right one.

use super::{meta_get, meta_set, StoreError};
use crate::secret::Cipher;
use rusqlite::{Connection, OptionalExtension};
use std::path::Path;

const CHECK_KEY: &str = "secret_key_check";
const CHECK_TEXT: &str = "omniroute secret.key check";

fn encrypted_secrets(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT (SELECT COUNT(*) FROM accounts WHERE secret_enc IS NOT NULL)
              + (SELECT COUNT(*) FROM oauth_credentials)",
        [],
        |r| r.get(0),
    )?)
}

fn recovery(key: &Path) -> String {
    format!(
        "put the original {} back (from a backup of the data dir), or run `omniroute secrets reset --yes` \
         to drop the stored secrets (the accounts stay, without keys) and start over with a new key",
        key.display()
    )
}

fn write_check(conn: &Connection, cipher: &Cipher) -> Result<(), StoreError> {
    let blob = cipher.encrypt(CHECK_TEXT)?;
    let tx = conn.unchecked_transaction()?;
    meta_set(&tx, CHECK_KEY, &hex::encode(blob))?;
    tx.commit()?;
    Ok(())
}

/// The cipher for this database: the key file's, checked against the
/// database; a new key only when the database holds no secret yet.
pub fn cipher_for(conn: &Connection, key: &Path, db: &Path) -> Result<Cipher, StoreError> {
    let check = meta_get(conn, CHECK_KEY)?;
    let secrets = encrypted_secrets(conn)?;
    let cipher = match Cipher::load(key)? {
        Some(c) => c,
        None if check.is_none() && secrets == 0 => {
            let c = Cipher::create(key)?;
            write_check(conn, &c)?;
            return Ok(c);
        }
        None => {
            return Err(StoreError::SecretKey(format!(
                "{} is missing, but {} holds {secrets} secret(s) encrypted with it; {}",
                key.display(),
                db.display(),
                recovery(key)
            )))
        }
    };
    let matches = match &check {
        Some(hex_blob) => hex::decode(hex_blob)
            .ok()
            .is_some_and(|b| cipher.decrypt(&b).is_ok_and(|s| s.expose() == CHECK_TEXT)),
        // A database from before the check: a stored secret tells.
        None => {
            let blob: Option<Vec<u8>> = conn
                .query_row(
                    "SELECT secret_enc FROM accounts WHERE secret_enc IS NOT NULL LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            blob.is_none_or(|b| cipher.decrypt(&b).is_ok())
        }
    };
    if !matches {
        return Err(StoreError::SecretKey(format!(
            "{} does not match {} (was it replaced?): its {secrets} stored secret(s) cannot be decrypted; {}",
            key.display(),
            db.display(),
            recovery(key)
        )));
    }
    if check.is_none() {
        write_check(conn, &cipher)?;
    }
    Ok(cipher)
}

/// `omniroute secrets reset`: set a wrong or missing key aside, make a new
/// one and drop the secrets the old one encrypted. Returns how many.
pub fn reset(conn: &Connection, key: &Path) -> Result<usize, StoreError> {
    if key.exists() {
        let aside = key.with_extension(format!("key.replaced-{}", super::now_ms()));
        std::fs::rename(key, &aside).map_err(|e| StoreError::Open {
            path: key.display().to_string(),
            message: format!("cannot set the old key aside: {e}"),
        })?;
        tracing::warn!(old = %aside.display(), "the old secret.key was set aside");
    }
    let cipher = Cipher::create(key)?;
    let tx = conn.unchecked_transaction()?;
    let n = tx.execute(
        "UPDATE accounts SET secret_enc = NULL WHERE secret_enc IS NOT NULL",
        [],
    )?;
    // Subscription tokens cannot be read either: those accounts sign in again.
    let n = n + tx.execute("DELETE FROM oauth_credentials", [])?;
    tx.execute(
        "INSERT INTO audit_log (ts_ms, actor, action, entity, entity_id, before, after)
         VALUES (?1, 'cli', 'reset', 'secret_key', 'secret.key', NULL, ?2)",
        rusqlite::params![super::now_ms(), format!("{{\"secrets_dropped\": {n}}}")],
    )?;
    tx.commit()?;
    write_check(conn, &cipher)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(dir: &Path) -> Connection {
        let path = dir.join("omniroute.sqlite");
        let mut c = super::super::open_connection(&path).unwrap();
        super::super::migrate::run(&mut c, &path).unwrap();
        c
    }

    #[test]
    fn a_missing_or_replaced_key_is_refused_and_reset_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let (key, dbp) = (
            dir.path().join("secret.key"),
            dir.path().join("omniroute.sqlite"),
        );
        let conn = db(dir.path());
        let cipher = cipher_for(&conn, &key, &dbp).unwrap();
        conn.execute(
            "INSERT INTO accounts (id, provider_id, label, secret_enc, enabled, priority, source, created_ms, updated_ms)
             VALUES ('a1', 'openai', 'x', ?1, 1, 0, 'cli', 0, 0)",
            [cipher.encrypt("sk-x").unwrap()],
        )
        .unwrap();
        // Same key again: fine.
        cipher_for(&conn, &key, &dbp).unwrap();
        std::fs::remove_file(&key).unwrap();
        let e = cipher_for(&conn, &key, &dbp).unwrap_err().to_string();
        assert!(
            e.contains("is missing") && e.contains("1 secret") && e.contains("secrets reset"),
            "{e}"
        );
        assert!(!key.exists(), "no key was made behind the user's back");
        Cipher::create(&key).unwrap();
        let e = cipher_for(&conn, &key, &dbp).unwrap_err().to_string();
        assert!(e.contains("does not match"), "{e}");
        assert_eq!(reset(&conn, &key).unwrap(), 1);
        cipher_for(&conn, &key, &dbp).unwrap();
    }
}
