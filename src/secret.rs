//! Secrets: a redacting newtype for values in memory, and the cipher that
//! encrypts them at rest with a key kept in the data dir (mode 0600).

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use std::fmt;
use std::io::Write;
use std::path::Path;

/// A secret string that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    /// The raw value, for the one place that must send it upstream.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CipherError {
    #[error("secret key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("secret key file {0} is corrupt (expected 32 bytes)")]
    BadKey(String),
    #[error("a stored secret could not be decrypted (wrong or replaced secret.key?)")]
    Decrypt,
    #[error("random source failed: {0}")]
    Random(String),
}

/// ChaCha20-Poly1305 with a random 96-bit nonce per value: `nonce || ciphertext`.
#[derive(Clone)]
pub struct Cipher {
    aead: ChaCha20Poly1305,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cipher(*****)")
    }
}

impl Cipher {
    /// Load the key from `path`, creating it (0600) when absent.
    pub fn load_or_create(path: &Path) -> Result<Cipher, CipherError> {
        match Cipher::load(path)? {
            Some(c) => Ok(c),
            None => Cipher::create(path),
        }
    }

    /// Load the key from `path`; None when the file does not exist.
    pub fn load(path: &Path) -> Result<Option<Cipher>, CipherError> {
        let key = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CipherError::Io {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        if key.len() != 32 {
            return Err(CipherError::BadKey(path.display().to_string()));
        }
        Ok(Some(Cipher {
            aead: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }))
    }

    /// Write a new random key to `path` (0600; refused if the file exists).
    pub fn create(path: &Path) -> Result<Cipher, CipherError> {
        let io = |source| CipherError::Io {
            path: path.display().to_string(),
            source,
        };
        let key = random_bytes::<32>()?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(io)?;
        f.write_all(&key).map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(Cipher {
            aead: ChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    pub fn encrypt(&self, plaintext: &str) -> Result<Vec<u8>, CipherError> {
        let nonce = random_bytes::<12>()?;
        let mut out = nonce.to_vec();
        let ct = self
            .aead
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .map_err(|_| CipherError::Decrypt)?;
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn decrypt(&self, blob: &[u8]) -> Result<Secret, CipherError> {
        if blob.len() < 12 {
            return Err(CipherError::Decrypt);
        }
        let (nonce, ct) = blob.split_at(12);
        let pt = self
            .aead
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| CipherError::Decrypt)?;
        String::from_utf8(pt)
            .map(Secret)
            .map_err(|_| CipherError::Decrypt)
    }
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N], CipherError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| CipherError::Random(e.to_string()))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_redaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let c = Cipher::load_or_create(&path).unwrap();
        let blob = c.encrypt("upstream-secret").unwrap();
        assert!(!blob.windows(6).any(|w| w == b"secret"));
        let again = Cipher::load_or_create(&path).unwrap();
        assert_eq!(again.decrypt(&blob).unwrap().expose(), "upstream-secret");
        assert_eq!(format!("{:?}", Secret::new("x")), "*****");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut tampered = blob.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(again.decrypt(&tampered).is_err());
    }
}
