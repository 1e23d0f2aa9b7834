//! Classifying an upstream outcome decides what happens next: move on
//! (cooling the target or account), or stop because the request itself is at fault.

/// Why an attempt failed, as far as routing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Timeouts, connection errors, 5xx: cool the target briefly, try the next.
    Transient,
    /// 429 rate limit: cool the target until Retry-After, try the next.
    RateLimited,
    /// Quota or credit exhausted: cool the whole account until its reset.
    QuotaExhausted,
    /// Credentials refused (401/403): the account is unusable for a while.
    AccountRejected,
    /// The model does not exist there (404): skip this target for a while.
    ModelUnavailable,
    /// The prompt does not fit this target's context: try a larger one.
    ContextOverflow,
    /// The request is at fault (400/413/422): any target would refuse it.
    ClientFault,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Transient => "transient",
            FailureClass::RateLimited => "rate_limited",
            FailureClass::QuotaExhausted => "quota_exhausted",
            FailureClass::AccountRejected => "account_rejected",
            FailureClass::ModelUnavailable => "model_unavailable",
            FailureClass::ContextOverflow => "context_overflow",
            FailureClass::ClientFault => "client_fault",
        }
    }

    /// Does this failure count against the target's breaker?
    pub fn trips_breaker(self) -> bool {
        matches!(self, FailureClass::Transient | FailureClass::RateLimited)
    }
}

const QUOTA_WORDS: &[&str] = &[
    "quota",
    "insufficient_quota",
    "credit",
    "billing",
    "exceeded your current",
    "usage limit",
    "resource_exhausted",
    "out of tokens",
];

/// A subscription answer that says the request would be billed as extra
/// usage instead of the plan (Anthropic: "Third-party apps now draw from your
/// extra usage, not your plan limits", "You're out of extra usage"): the
/// account's plan cannot serve it, another account or tier may.
const OVERAGE_WORDS: &[&str] = &["extra usage"];

/// The one list that recognises context-window overflow in an upstream's
/// error text: routing classifies with it and every codec maps it to its
/// format's "too long" error, so the two can never disagree. Each provider's
/// own wording:
/// - OpenAI Chat: code `context_length_exceeded`, "This model's maximum
///   context length is 8192 tokens … Please reduce the length of the messages."
/// - OpenAI Responses: "Your input exceeds the context window of this model."
/// - Anthropic: "prompt is too long: 210000 tokens > 200000 maximum", and
///   "input length and `max_tokens` exceed context limit".
/// - Gemini: `INVALID_ARGUMENT` "The input token count (1200000) exceeds the
///   maximum number of tokens allowed (1048576)."
/// - OpenAI-compatible servers (vLLM, OpenRouter, Bedrock): "maximum context",
///   "too many tokens", "input is too long".
const CONTEXT_WORDS: &[&str] = &[
    "context_length_exceeded",
    "context length",
    "context window",
    "context limit",
    "prompt is too long",
    "maximum context",
    "too many tokens",
    "reduce the length",
    "exceeds the maximum number of tokens",
    "input is too long",
];

/// Does an upstream's error text say the prompt does not fit the context window?
pub fn is_context_overflow(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    CONTEXT_WORDS.iter().any(|w| lower.contains(w))
}

/// Classify a failed attempt from its status (None: no response) and error text.
pub fn classify(status: Option<u16>, message: &str) -> FailureClass {
    let lower = message.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    match status {
        None => FailureClass::Transient,
        Some(402) => FailureClass::QuotaExhausted,
        Some(429) if has(QUOTA_WORDS) => FailureClass::QuotaExhausted,
        Some(429) => FailureClass::RateLimited,
        Some(401 | 403) => FailureClass::AccountRejected,
        Some(404) => FailureClass::ModelUnavailable,
        Some(400 | 413 | 422) if is_context_overflow(message) => FailureClass::ContextOverflow,
        Some(400) if has(OVERAGE_WORDS) => FailureClass::QuotaExhausted,
        Some(400 | 413 | 415 | 422) => FailureClass::ClientFault,
        Some(408 | 409 | 425) => FailureClass::Transient,
        Some(s) if s >= 500 => FailureClass::Transient,
        Some(_) => FailureClass::ClientFault,
    }
}

/// Parse a Retry-After value (seconds or an HTTP date) into a wait.
pub fn retry_after(value: &str) -> Option<std::time::Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(std::time::Duration::from_secs_f64(secs.min(86_400.0)));
        }
    }
    let when = httpdate_to_unix(v)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(std::time::Duration::from_secs(when.saturating_sub(now)))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` → unix seconds.
fn httpdate_to_unix(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let day: u64 = parts[1].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])? as u64
        + 1;
    let year: u64 = parts[3].parse().ok()?;
    let hms: Vec<u64> = parts[4].split(':').filter_map(|p| p.parse().ok()).collect();
    if hms.len() != 3 {
        return None;
    }
    // days from civil (Howard Hinnant's algorithm)
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use FailureClass::*;

    #[test]
    fn classification_table() {
        let table: &[(Option<u16>, &str, FailureClass)] = &[
            (None, "connection refused", Transient),
            (Some(500), "boom", Transient),
            (Some(502), "", Transient),
            (Some(503), "overloaded", Transient),
            (Some(529), "overloaded_error", Transient),
            (Some(408), "", Transient),
            (Some(429), "Rate limit reached for requests", RateLimited),
            (
                Some(429),
                "You exceeded your current quota, please check your plan",
                QuotaExhausted,
            ),
            (Some(429), "RESOURCE_EXHAUSTED", QuotaExhausted),
            (Some(402), "payment required", QuotaExhausted),
            (Some(401), "Incorrect API key", AccountRejected),
            (Some(403), "forbidden", AccountRejected),
            (Some(404), "model not found", ModelUnavailable),
            (
                Some(400),
                "This model's maximum context length is 8192 tokens",
                ContextOverflow,
            ),
            (
                Some(400),
                "prompt is too long: 210000 tokens > 200000 maximum",
                ContextOverflow,
            ),
            (
                Some(400),
                "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
                ContextOverflow,
            ),
            (
                Some(400),
                "Your input exceeds the context window of this model. Please adjust your input and try again.",
                ContextOverflow,
            ),
            (
                Some(400),
                "input length and `max_tokens` exceed context limit: 189136 + 20000 > 204648",
                ContextOverflow,
            ),
            (Some(400), "messages: must not be empty", ClientFault),
            (
                Some(400),
                "Third-party apps now draw from your extra usage, not your plan limits.",
                QuotaExhausted,
            ),
            (
                Some(400),
                "You're out of extra usage. Add more at claude.ai",
                QuotaExhausted,
            ),
            (Some(422), "unprocessable", ClientFault),
            (Some(413), "request too large", ClientFault),
        ];
        for (status, msg, want) in table {
            assert_eq!(classify(*status, msg), *want, "{status:?} {msg}");
        }
        assert!(Transient.trips_breaker() && RateLimited.trips_breaker());
        assert!(!QuotaExhausted.trips_breaker() && !ClientFault.trips_breaker());
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(retry_after("7"), Some(std::time::Duration::from_secs(7)));
        assert_eq!(
            retry_after("1.5"),
            Some(std::time::Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(std::time::Duration::ZERO)
        );
        assert_eq!(
            httpdate_to_unix("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(retry_after("soon"), None);
    }
}
