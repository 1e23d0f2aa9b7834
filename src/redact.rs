//! Secret redaction for text that came from outside: an upstream's error
//! message may echo the key it was sent (`Authorization: Bearer sk-…`).
//! Every such text passes through `Redactor::redact` before it is stored,
//! logged or returned: each configured secret is replaced wherever it
//! appears, and so is anything shaped like a credential (a word after
//! `Bearer`/`Basic`, a word with a well-known key prefix, a long random-
//! looking token).

use std::borrow::Cow;

pub const MASK: &str = "[REDACTED]";

/// Secrets shorter than this are not searched for (they would match
/// ordinary words); the shape rules still apply.
const MIN_SECRET_LEN: usize = 8;
/// A run of letters and digits this long with both kinds in it is taken for a token.
const MIN_OPAQUE_TOKEN_LEN: usize = 32;
/// Prefixes of well-known credential formats (OpenAI, Anthropic, Groq, xAI,
/// Google API keys and OAuth tokens, GitHub, Stripe-style, JWTs, omniroute's own).
const KEY_PREFIXES: &[&str] = &[
    "sk-",
    "sk_",
    "rk_",
    "pk_",
    "gsk_",
    "xai-",
    "AIza",
    "ya29.",
    "ghp_",
    "gho_",
    "ghu_",
    "github_pat_",
    "eyJ",
    "sess-",
    "omr-local-",
    "sk-omni-",
    "sk-ant-",
    "hf_",
    "pplx-",
];
const MIN_PREFIXED_LEN: usize = 16;

/// The configured secrets to scrub, longest first (so a secret containing
/// another is masked whole).
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: std::sync::Arc<[String]>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor {
            secrets: secrets.into(),
        }
    }

    /// `text` with every configured secret and credential-shaped word masked.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out: Cow<'a, str> = Cow::Borrowed(text);
        for s in self.secrets.iter() {
            if out.contains(s.as_str()) {
                out = Cow::Owned(out.replace(s.as_str(), MASK));
            }
        }
        match redact_shapes(&out) {
            Cow::Borrowed(_) => out,
            Cow::Owned(o) => Cow::Owned(o),
        }
    }

    /// Owned convenience for messages kept in errors and rows.
    pub fn clean(&self, text: &str) -> String {
        self.redact(text).into_owned()
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '+' | '/' | '=')
}

fn looks_opaque(word: &str) -> bool {
    word.len() >= MIN_OPAQUE_TOKEN_LEN
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && word.chars().any(|c| c.is_ascii_digit())
        && word.chars().any(|c| c.is_ascii_alphabetic())
}

fn has_key_prefix(word: &str) -> bool {
    word.len() >= MIN_PREFIXED_LEN && KEY_PREFIXES.iter().any(|p| word.starts_with(p))
}

/// Mask credential-shaped words; borrowed when nothing matched.
pub fn redact_shapes(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut last = 0;
    let mut after_scheme = false;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        let c = text[i..].chars().next().unwrap_or(' ');
        if !is_token_char(c) {
            i += c.len_utf8();
            continue;
        }
        let start = i;
        while i < bytes.len() {
            let c = text[i..].chars().next().unwrap_or(' ');
            if !is_token_char(c) {
                break;
            }
            i += c.len_utf8();
        }
        let word = text[start..i].trim_end_matches(['.', ',']);
        let end = start + word.len();
        let secret = (after_scheme && word.len() >= MIN_SECRET_LEN)
            || has_key_prefix(word)
            || looks_opaque(word);
        after_scheme = word.eq_ignore_ascii_case("bearer") || word.eq_ignore_ascii_case("basic");
        if secret {
            out.push_str(&text[last..start]);
            out.push_str(MASK);
            last = end;
        }
    }
    if last == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_secrets_are_masked_anywhere() {
        let r = Redactor::new(["upstream-secret".to_string(), "short".into()]);
        assert_eq!(
            r.redact("bad key upstream-secret!"),
            format!("bad key {MASK}!")
        );
        assert_eq!(r.redact("key=xupstream-secretx"), format!("key=x{MASK}x"));
        // Short configured values are left alone (they are ordinary words).
        assert_eq!(r.redact("a short note"), "a short note");
    }

    #[test]
    fn credential_shapes_are_masked() {
        let r = Redactor::default();
        for (input, want) in [
            (
                "Authorization: Bearer abcdefgh12345",
                format!("Authorization: Bearer {MASK}"),
            ),
            (
                "invalid x-api-key sk-ant-api03-AbCdEf0123456789",
                format!("invalid x-api-key {MASK}"),
            ),
            (
                "key AIzaSyA1234567890abcdefghijklmnop.",
                format!("key {MASK}."),
            ),
            (
                "token 3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c",
                format!("token {MASK}"),
            ),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
                format!("jwt {MASK}"),
            ),
        ] {
            assert_eq!(r.redact(input), want, "{input}");
        }
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        let r = Redactor::new(["upstream-secret".to_string()]);
        for text in [
            "model claude-3-5-sonnet-20241022 is overloaded",
            "see https://api.openai.com/v1/chat/completions for details",
            "Rate limit reached for gpt-4o-mini in organization org-abc on tokens per min",
            "prompt is too long: 210000 tokens > 200000 maximum",
        ] {
            assert!(matches!(r.redact(text), Cow::Borrowed(_)), "{text}");
        }
    }
}
