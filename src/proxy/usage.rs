//! Token usage as upstreams report it, and what it costs.

use serde::Deserialize;

/// Canonical usage of one call.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
}

impl From<crate::formats::canonical::Usage> for Usage {
    /// Canonical input excludes cache reads and writes; here input is the
    /// whole prompt (OpenAI's meaning), of which `cached_tokens` were reads.
    fn from(u: crate::formats::canonical::Usage) -> Usage {
        Usage {
            input_tokens: u.prompt_total(),
            output_tokens: u.output_tokens,
            cached_tokens: u.cache_read_tokens,
            reasoning_tokens: u.reasoning_tokens,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OpenAiUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    prompt_tokens_details: Option<PromptDetails>,
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PromptDetails {
    cached_tokens: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CompletionDetails {
    reasoning_tokens: u64,
}

impl From<OpenAiUsage> for Usage {
    fn from(u: OpenAiUsage) -> Usage {
        Usage {
            input_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
            cached_tokens: u
                .prompt_tokens_details
                .map(|d| d.cached_tokens)
                .unwrap_or(0),
            reasoning_tokens: u
                .completion_tokens_details
                .map(|d| d.reasoning_tokens)
                .unwrap_or(0),
        }
    }
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

/// Usage from an OpenAI Chat completion body, when present.
pub fn from_openai_body(body: &[u8]) -> Option<Usage> {
    // The one-pass scan finds `usage` without parsing the answer around it;
    // serde reads the whole body only when that scan cannot vouch for it.
    match crate::formats::json::pick_top_level(body, ["usage"]) {
        Some([Some((start, end))]) => {
            serde_json::from_slice::<Option<OpenAiUsage>>(&body[start..end])
                .ok()
                .flatten()
                .map(Usage::from)
        }
        Some([None]) => None,
        None => serde_json::from_slice::<WithUsage>(body)
            .ok()?
            .usage
            .map(Usage::from),
    }
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    usage: Option<OpenAiUsage>,
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
}

/// What one OpenAI stream chunk says about usage.
pub struct ChunkUsage {
    pub usage: Usage,
    /// The chunk carries nothing but usage (`choices: []`).
    pub usage_only: bool,
}

pub fn from_openai_chunk(data: &[u8]) -> Option<ChunkUsage> {
    // Cheap pre-check: most chunks carry no usage at all.
    if !memchr_usage(data) {
        return None;
    }
    let chunk: Chunk = serde_json::from_slice(data).ok()?;
    let usage = chunk.usage?;
    Some(ChunkUsage {
        usage: usage.into(),
        usage_only: chunk.choices.map(|c| c.is_empty()).unwrap_or(true),
    })
}

fn memchr_usage(data: &[u8]) -> bool {
    static USAGE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"usage\""));
    USAGE.find(data).is_some()
}

/// How one request was routed, kept with its usage row for the dashboard's
/// Requests page: the same facts as the `x-omniroute-*` route headers.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(default)]
pub struct RouteTrace {
    pub combo: Option<String>,
    pub strategy: Option<String>,
    /// Tier of the target that answered.
    pub tier: Option<String>,
    /// Targets tried, the one that answered included.
    pub attempts: u32,
    /// Earlier attempts and why each failed.
    pub failed: Vec<String>,
    /// Targets left out and why (breaker, cooldown, budget, context).
    pub skipped: Vec<String>,
    /// `client->upstream` wire formats when either is not OpenAI Chat.
    pub translation: Option<String>,
    /// What the translation could not carry over.
    pub translation_notes: Vec<String>,
    pub context_relay: Option<String>,
    /// Every attempt with its timing, the one that answered last.
    #[serde(default)]
    pub spans: Vec<AttemptSpan>,
}

/// One upstream attempt's place in time.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct AttemptSpan {
    /// provider/account/model
    pub target: String,
    /// When it was sent, in ms after the request arrived.
    pub start_ms: f64,
    /// Until the answer (or, for streams, its head) or the failure.
    pub duration_ms: f64,
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// The spans of failed attempts that carry a timing, then `last`.
pub fn spans(failed: &[super::AttemptError], last: Option<AttemptSpan>) -> Vec<AttemptSpan> {
    failed
        .iter()
        .filter_map(|a| {
            a.timing.map(|(start_ms, duration_ms)| AttemptSpan {
                target: format!("{}/{}/{}", a.provider, a.account_id, a.model),
                start_ms,
                duration_ms,
                status: a.status,
                error: Some(a.message.clone()),
            })
        })
        .chain(last)
        .collect()
}

/// The trace of a served request, as JSON for its usage row.
pub fn trace(route: &super::RouteInfo) -> Option<String> {
    let t = TraceOut {
        combo: route.combo.as_deref(),
        strategy: route.strategy.as_deref(),
        tier: Some(route.tier.as_str()).filter(|t| !t.is_empty()),
        attempts: route.attempts,
        failed: &route.failed,
        skipped: &route.skipped,
        translation: route.translation.as_deref(),
        translation_notes: &route.translation_notes,
        context_relay: route.context_relay.as_deref(),
        spans: &route.spans,
    };
    serde_json::to_string(&t).ok()
}

/// [`RouteTrace`] as written, borrowed from the route (one per usage row:
/// no copy of its strings); the test below keeps the two in step.
/// Absent and empty members are left out (a plain success is half the
/// bytes); [`RouteTrace`] reads them back as absent and empty.
#[derive(serde::Serialize)]
struct TraceOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    combo: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strategy: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tier: Option<&'a str>,
    attempts: u32,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    failed: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    skipped: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    translation: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    translation_notes: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    context_relay: Option<&'a str>,
    spans: &'a [AttemptSpan],
}

/// The trace of a request that no target served.
pub fn failure_trace(e: &super::ProxyError) -> Option<String> {
    use super::ProxyError;
    let (failed, skipped, timed) = match e {
        ProxyError::AllFailed { attempts } | ProxyError::Timeout(_, attempts) => (
            attempts.iter().map(|a| a.to_string()).collect(),
            Vec::new(),
            spans(attempts, None),
        ),
        ProxyError::NoTarget { skipped, .. } => (Vec::new(), skipped.clone(), Vec::new()),
        _ => return None,
    };
    let t = RouteTrace {
        attempts: failed.len() as u32,
        failed,
        skipped,
        spans: timed,
        ..RouteTrace::default()
    };
    serde_json::to_string(&t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_trace_reads_back_as_a_route_trace() {
        let route = crate::proxy::RouteInfo {
            provider: "p".into(),
            account_id: "a".into(),
            model: "m".into(),
            attempts: 2,
            failed: vec!["x: 429".into()],
            combo: Some("c".into()),
            strategy: Some("priority".into()),
            tier: "api-key".into(),
            skipped: vec!["y: breaker open".into()],
            context_relay: Some("relayed".into()),
            translation: Some("anthropic->openai".into()),
            translation_notes: vec!["thinking dropped".into()],
            spans: vec![AttemptSpan {
                target: "p/a/m".into(),
                start_ms: 1.5,
                duration_ms: 2.25,
                status: Some(200),
                error: None,
            }],
            ..Default::default()
        };
        let back: RouteTrace = serde_json::from_str(&trace(&route).unwrap()).unwrap();
        assert_eq!(
            back,
            RouteTrace {
                combo: route.combo.clone(),
                strategy: route.strategy.clone(),
                tier: Some(route.tier.clone()),
                attempts: 2,
                failed: route.failed.clone(),
                skipped: route.skipped.clone(),
                translation: route.translation.clone(),
                translation_notes: route.translation_notes.clone(),
                context_relay: route.context_relay.clone(),
                spans: route.spans.clone(),
            }
        );
        // Every field of RouteTrace is written (a new one must be added to TraceOut).
        let written: serde_json::Value = serde_json::from_str(&trace(&route).unwrap()).unwrap();
        let full = serde_json::to_value(RouteTrace::default()).unwrap();
        let keys =
            |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&written), keys(&full));
        // A plain success leaves the empty members out and reads back the same.
        let plain = crate::proxy::RouteInfo {
            attempts: 1,
            spans: route.spans.clone(),
            ..Default::default()
        };
        let text = trace(&plain).unwrap();
        assert!(
            !text.contains("failed") && !text.contains("combo"),
            "{text}"
        );
        let back: RouteTrace = serde_json::from_str(&text).unwrap();
        assert_eq!(back.attempts, 1);
        assert!(back.failed.is_empty() && back.combo.is_none());
        assert_eq!(back.spans, plain.spans);
    }

    #[test]
    fn reads_body_and_chunk_usage() {
        let body = br#"{"id":"x","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}}"#;
        assert_eq!(
            from_openai_body(body),
            Some(Usage {
                input_tokens: 10,
                output_tokens: 5,
                cached_tokens: 4,
                reasoning_tokens: 2
            })
        );
        assert_eq!(from_openai_body(br#"{"id":"x"}"#), None);
        // Strings holding braces and the word usage do not fool the scan;
        // pretty-printed, null and duplicate-key answers read as serde reads them.
        let tricky =
            br#"{"choices":[{"message":{"content":"\"usage\": {\"prompt_tokens\": 99} }"}}],
            "usage" : {"prompt_tokens": 7, "completion_tokens": 1}}"#;
        assert_eq!(from_openai_body(tricky).map(|u| u.input_tokens), Some(7));
        assert_eq!(from_openai_body(br#"{"usage":null}"#), None);
        let twice = br#"{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}"#;
        assert_eq!(
            from_openai_body(twice),
            serde_json::from_slice::<WithUsage>(twice)
                .ok()
                .and_then(|w| w.usage)
                .map(Usage::from)
        );
        let c = from_openai_chunk(
            br#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
        )
        .unwrap();
        assert!(c.usage_only);
        assert_eq!(c.usage.input_tokens, 3);
        assert!(
            from_openai_chunk(br#"{"choices":[{"delta":{"content":"hi"}}],"usage":null}"#)
                .is_none()
        );
        assert!(from_openai_chunk(br#"{"choices":[{"delta":{"content":"hi"}}]}"#).is_none());
    }
}
