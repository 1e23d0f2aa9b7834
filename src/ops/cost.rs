//! Spend for a period, broken down by provider, model, client key and day.

use super::OpsError;
use crate::gateway::Gateway;
use crate::store::{self, now_ms, UsageGroup, UsageLine};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CostQuery {
    /// Start of the period: a duration back from now ("24h", "7d", "30d") or a
    /// UTC date/time ("2025-06-01", "2025-06-01T12:00:00Z"). Default "30d".
    #[serde(default = "default_since")]
    pub since: String,
    /// End of the period (exclusive), same forms as `since`; default now.
    #[serde(default)]
    pub until: Option<String>,
}

fn default_since() -> String {
    "30d".into()
}

impl Default for CostQuery {
    fn default() -> Self {
        CostQuery {
            since: default_since(),
            until: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CostReport {
    pub since_ms: i64,
    pub until_ms: i64,
    pub total_requests: u64,
    pub total_errors: u64,
    pub total_input_tokens: u64,
    pub total_output_tokens: u64,
    /// USD; requests to models without a known price count as 0.
    pub total_cost_usd: f64,
    /// Most expensive first.
    pub by_provider: Vec<UsageLine>,
    pub by_model: Vec<UsageLine>,
    pub by_key: Vec<UsageLine>,
    pub by_day: Vec<UsageLine>,
}

/// A point in time as ms since the epoch: a duration back from `now` or a UTC date/time.
pub fn parse_instant(field: &str, s: &str, now: i64) -> Result<i64, OpsError> {
    let s = s.trim();
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now - d.as_millis() as i64);
    }
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    match humantime::parse_rfc3339_weak(&full) {
        Ok(t) => Ok(t
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)),
        Err(_) => Err(OpsError::InvalidInput(format!(
            "{field} = {s:?}: write a duration back from now (\"24h\", \"7d\") or a UTC date (\"2025-06-01\" or \"2025-06-01T12:00:00Z\")"
        ))),
    }
}

pub async fn cost_report(gw: &Gateway, q: CostQuery) -> Result<CostReport, OpsError> {
    let now = now_ms();
    let since_ms = parse_instant("since", &q.since, now)?;
    let until_ms = match &q.until {
        Some(u) => parse_instant("until", u, now)?,
        None => now + 1,
    };
    if until_ms <= since_ms {
        return Err(OpsError::InvalidInput(format!(
            "the period is empty: until ({until_ms}) is not after since ({since_ms})"
        )));
    }
    let (by_provider, by_model, by_key, by_day) = gw
        .store
        .read(move |c| {
            let g = |group| store::usage_between(c, since_ms, until_ms, group);
            Ok((
                g(UsageGroup::Provider)?,
                g(UsageGroup::Model)?,
                g(UsageGroup::Key)?,
                g(UsageGroup::Day)?,
            ))
        })
        .await?;
    let sum = |f: fn(&UsageLine) -> u64| by_provider.iter().map(f).sum::<u64>();
    Ok(CostReport {
        since_ms,
        until_ms,
        total_requests: sum(|l| l.requests),
        total_errors: sum(|l| l.errors),
        total_input_tokens: sum(|l| l.input_tokens),
        total_output_tokens: sum(|l| l.output_tokens),
        total_cost_usd: by_provider.iter().map(|l| l.cost_usd).sum(),
        by_day: {
            let mut d = by_day;
            d.sort_by(|a, b| a.group.cmp(&b.group));
            d
        },
        by_provider,
        by_model,
        by_key,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_instant;

    #[test]
    fn instants_from_durations_and_dates() {
        let now = 1_750_000_000_000;
        assert_eq!(parse_instant("since", "1h", now).unwrap(), now - 3_600_000);
        assert_eq!(
            parse_instant("since", "2025-06-01", now).unwrap(),
            1_748_736_000_000
        );
        assert_eq!(
            parse_instant("since", "2025-06-01T00:00:10Z", now).unwrap(),
            1_748_736_010_000
        );
        let err = parse_instant("until", "yesterday", now)
            .unwrap_err()
            .to_string();
        assert!(err.contains("until") && err.contains("7d"), "{err}");
    }
}
