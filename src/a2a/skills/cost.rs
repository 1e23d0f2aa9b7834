//! `cost-analysis`: spend by provider, model, key and day with savings
//! suggestions, from `ops::cost`.

use super::{decode, report, Outcome};
use crate::a2a::jsonrpc::RpcError;
use crate::gateway::Gateway;
use crate::ops::cost::{cost_report, CostQuery};
use serde_json::Value;

/// The period named in plain text ("last 7 days", "24h", "this month"), else 30 days.
pub fn period_from_text(text: &str) -> Option<String> {
    let t = text.to_lowercase();
    let words: Vec<&str> = t
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    for (i, w) in words.iter().enumerate() {
        // "24h", "7d"
        if let Ok(d) = humantime::parse_duration(w) {
            if d.as_secs() > 0 {
                return Some((*w).to_string());
            }
        }
        if let Ok(n) = w.parse::<u64>() {
            let unit = words.get(i + 1).copied().unwrap_or("");
            let u = match unit.trim_end_matches('s') {
                "hour" => "h",
                "day" => "d",
                "week" => "w",
                "month" => "M",
                _ => continue,
            };
            return Some(match u {
                "w" => format!("{}d", n * 7),
                "M" => format!("{}d", n * 30),
                _ => format!("{n}{u}"),
            });
        }
    }
    if t.contains("today") || t.contains("yesterday") || t.contains("day") {
        return Some("24h".into());
    }
    if t.contains("week") {
        return Some("7d".into());
    }
    if t.contains("month") {
        return Some("30d".into());
    }
    None
}

pub fn parse(text: &str, data: Option<Value>) -> Result<CostQuery, RpcError> {
    let q = match data {
        Some(d) => decode::<CostQuery>("cost-analysis", d)?,
        None => CostQuery {
            since: period_from_text(text).unwrap_or_else(|| CostQuery::default().since),
            until: None,
            max_suggestions: None,
        },
    };
    if humantime::parse_duration(&q.since).is_err() {
        return Err(RpcError::InvalidParams(format!(
            "since = {:?} is not a duration; write e.g. \"24h\" or \"7d\"",
            q.since
        )));
    }
    Ok(q)
}

pub async fn run(gw: &Gateway, q: CostQuery, who: &crate::access::Principal) -> Outcome {
    match cost_report(gw, q, who).await {
        Ok(r) => {
            let mut text = format!(
                "Spend over the last {}: ${:.4} across {} requests.",
                r.since,
                r.total_cost_usd + 0.0,
                r.total_requests
            );
            if let Some(top) = r
                .by_provider
                .iter()
                .max_by(|a, b| a.cost_usd.total_cmp(&b.cost_usd))
                .filter(|l| l.cost_usd > 0.0)
            {
                text.push_str(&format!(
                    " Largest provider: {} (${:.4}).",
                    top.group, top.cost_usd
                ));
            }
            let c = &r.cache.totals;
            if c.hits + c.misses + c.idempotent_replays > 0 {
                text.push_str(&format!(
                    " The cache answered {} of {} cacheable requests ({:.0}%), saving {} tokens and ${:.4}.",
                    c.hits,
                    c.hits + c.misses,
                    c.hit_rate.unwrap_or(0.0) * 100.0,
                    c.tokens_saved,
                    c.cost_saved_usd
                ));
            }
            if r.suggestions.is_empty() {
                text.push_str(" No cheaper usable target found for the models used.");
            }
            for s in &r.suggestions {
                text.push_str(&format!(
                    " Use {} instead of {} ({}): about ${:.4} instead of ${:.4}.",
                    s.alternative, s.model, s.kind, s.estimated_cost_usd, s.spent_usd
                ));
            }
            let data = serde_json::to_value(&r).unwrap_or_default();
            Outcome::completed(text.clone(), vec![report("cost-analysis", text, data)])
        }
        Err(e) => Outcome::failed(format!("cost analysis failed: {e}"), vec![]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_come_from_text_or_data() {
        assert_eq!(
            period_from_text("spend in the last 7 days"),
            Some("7d".into())
        );
        assert_eq!(period_from_text("cost for 24h"), Some("24h".into()));
        assert_eq!(period_from_text("2 weeks of spend"), Some("14d".into()));
        assert_eq!(period_from_text("this month"), Some("30d".into()));
        assert_eq!(parse("what did we spend?", None).unwrap().since, "30d");
        let q = parse("", Some(serde_json::json!({"since": "3d"}))).unwrap();
        assert_eq!(q.since, "3d");
        assert_eq!(
            parse("", Some(serde_json::json!({"since": "soon"})))
                .unwrap_err()
                .code(),
            -32602
        );
        assert_eq!(
            parse("", Some(serde_json::json!({"bogus": 1})))
                .unwrap_err()
                .code(),
            -32602
        );
    }
}
