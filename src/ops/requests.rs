//! Recent requests with their route explanation (attempts, skips,
//! translation notes, cost), filtered by key, model and status.

use super::OpsError;
use crate::gateway::Gateway;
use crate::proxy::usage::RouteTrace;
use crate::store::{self, UsageFilter};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestsQuery {
    /// Only this client key id.
    #[serde(default)]
    pub key: Option<String>,
    /// A part of the model name asked for, or of the `provider/model` that answered.
    #[serde(default)]
    pub model: Option<String>,
    /// "ok", "error", a status ("429") or a class ("5xx").
    #[serde(default)]
    pub status: Option<String>,
    /// Newest first; default 50, at most 500.
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only requests older than this record id (the next page).
    #[serde(default)]
    pub before: Option<i64>,
    /// How far back to look, e.g. "24h"; default "7d".
    #[serde(default)]
    pub since: Option<String>,
}

/// One finished request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequestRecord {
    /// Record id (for paging with `before`).
    pub id: i64,
    pub ts_ms: i64,
    pub request_id: String,
    pub key_id: Option<String>,
    pub endpoint: String,
    pub requested_model: String,
    pub provider: Option<String>,
    pub account: Option<String>,
    pub model: Option<String>,
    pub stream: bool,
    pub status: u16,
    /// ok | upstream_error | client_gone | error
    pub outcome: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
    pub cost_usd: Option<f64>,
    pub latency_ms: f64,
    pub upstream_ms: Option<f64>,
    pub overhead_ms: Option<f64>,
    pub error: Option<String>,
    pub tier: Option<String>,
    pub combo: Option<String>,
    /// How it was routed; absent for rows written before routes were kept.
    pub route: Option<RouteTrace>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RequestsPage {
    pub requests: Vec<RequestRecord>,
    /// Pass as `before` for the next page; null on the last page.
    pub next_before: Option<i64>,
}

/// A status range and/or an ok flag, as `UsageFilter` takes them.
type StatusFilter = (Option<(u16, u16)>, Option<bool>);

fn status_filter(s: &str) -> Result<StatusFilter, OpsError> {
    let s = s.trim().to_ascii_lowercase();
    match s.as_str() {
        "" | "any" => Ok((None, None)),
        "ok" => Ok((None, Some(true))),
        "error" | "errors" => Ok((None, Some(false))),
        _ => {
            if let Some(class) = s.strip_suffix("xx").and_then(|d| d.parse::<u16>().ok()) {
                if (1..=5).contains(&class) {
                    return Ok((Some((class * 100, class * 100 + 99)), None));
                }
            }
            match s.parse::<u16>() {
                Ok(code) if (100..=599).contains(&code) => Ok((Some((code, code)), None)),
                _ => Err(OpsError::InvalidInput(format!(
                    "status = {s:?}: write ok, error, a status such as 429 or a class such as 5xx"
                ))),
            }
        }
    }
}

pub async fn recent_requests(gw: &Gateway, q: RequestsQuery) -> Result<RequestsPage, OpsError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let (status, ok) = match &q.status {
        Some(s) => status_filter(s)?,
        None => (None, None),
    };
    let since = q.since.as_deref().unwrap_or("7d");
    let since_ms = super::cost::parse_instant("since", since, crate::store::now_ms())?;
    let nonempty = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let filter = UsageFilter {
        key_id: nonempty(q.key),
        model: nonempty(q.model),
        status,
        ok,
        before_id: q.before,
        since_ms,
        limit,
    };
    // Rows still queued for the writer belong in the answer (a caller's own last request).
    gw.store.flush().await?;
    let rows = gw
        .store
        .read(move |c| store::recent_usage(c, &filter))
        .await?;
    let next_before = (rows.len() == limit as usize)
        .then(|| rows.last().map(|(id, _)| *id))
        .flatten();
    let requests = rows
        .into_iter()
        .map(|(id, e)| RequestRecord {
            id,
            ts_ms: e.ts_ms,
            request_id: e.request_id,
            key_id: e.key_id,
            endpoint: e.endpoint,
            requested_model: e.requested_model,
            provider: e.provider_id,
            account: e.account_id,
            model: e.model,
            stream: e.stream,
            status: e.status,
            outcome: e.outcome,
            input_tokens: e.input_tokens,
            output_tokens: e.output_tokens,
            cached_tokens: e.cached_tokens,
            cost_usd: e.cost_usd,
            latency_ms: e.latency_ms,
            upstream_ms: e.upstream_ms,
            overhead_ms: e.overhead_ms,
            error: e.error,
            tier: e.tier,
            combo: e.combo,
            route: e.route.and_then(|r| serde_json::from_str(&r).ok()),
        })
        .collect();
    Ok(RequestsPage {
        requests,
        next_before,
    })
}

#[cfg(test)]
mod tests {
    use super::status_filter;

    #[test]
    fn status_filters() {
        assert_eq!(status_filter("ok").unwrap(), (None, Some(true)));
        assert_eq!(status_filter("error").unwrap(), (None, Some(false)));
        assert_eq!(status_filter("429").unwrap(), (Some((429, 429)), None));
        assert_eq!(status_filter("5xx").unwrap(), (Some((500, 599)), None));
        assert!(status_filter("teapot").is_err());
        assert!(status_filter("9xx").is_err());
    }
}
