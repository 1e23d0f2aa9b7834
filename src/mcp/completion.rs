//! `completion/complete`: suggestions for prompt arguments and resource
//! template variables: combo names for `omniroute://combos/{name}`, periods
//! for `review_spend`'s `since`, price caps (the usable models' output
//! prices) for `pick_model`'s `max_output_price`.

use super::{fixtures, resources, tool_error};
use crate::gateway::Gateway;
use crate::ops;
use rmcp::model::{CompleteRequestParams, CompleteResult, CompletionInfo, Reference};
use rmcp::ErrorData;

/// The periods `review_spend` takes, shortest first.
const PERIODS: &[&str] = &["1h", "24h", "7d", "30d", "90d"];

/// The candidates for one argument; `None` when the prompt or template is unknown.
async fn candidates(
    gw: &Gateway,
    fixtures_on: bool,
    reference: &Reference,
    argument: &str,
) -> Result<Vec<String>, ErrorData> {
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (kind, name) = match reference {
        Reference::Prompt(p) => ("prompt", p.name.as_str()),
        Reference::Resource(r) => ("resource template", r.uri.as_str()),
        _ => {
            return Err(ErrorData::invalid_params(
                "completion needs a ref/prompt or ref/resource reference",
                None,
            ))
        }
    };
    if fixtures_on {
        if let Some(v) = fixtures::complete(name, argument) {
            return Ok(owned(&v));
        }
    }
    let unknown_arg = || {
        ErrorData::invalid_params(
            format!("{kind} {name:?} has no argument {argument:?}"),
            None,
        )
    };
    match (kind, name) {
        ("prompt", "review_spend") => match argument {
            "since" => Ok(owned(PERIODS)),
            _ => Err(unknown_arg()),
        },
        ("prompt", "pick_model") => match argument {
            // Free text: nothing to suggest.
            "task" => Ok(vec![]),
            "max_output_price" => {
                let models = ops::models::list_models(gw, Default::default())
                    .await
                    .map_err(|e| ErrorData::internal_error(tool_error(e), None))?;
                let mut prices: Vec<f64> = models.iter().filter_map(|m| m.output_price).collect();
                prices.sort_by(f64::total_cmp);
                prices.dedup();
                Ok(prices.into_iter().map(|p| p.to_string()).collect())
            }
            _ => Err(unknown_arg()),
        },
        ("resource template", t) if t == resources::COMBO_TEMPLATE => match argument {
            "name" => {
                let combos = ops::combos::list_combos(gw)
                    .await
                    .map_err(|e| ErrorData::internal_error(tool_error(e), None))?;
                Ok(combos.into_iter().map(|c| c.combo.name).collect())
            }
            _ => Err(unknown_arg()),
        },
        _ => Err(ErrorData::invalid_params(
            format!("no {kind} {name:?} to complete an argument of"),
            None,
        )),
    }
}

/// Values that start with `typed` first, then those that contain it
/// (case-insensitive), each group in the candidates' order; at most
/// `CompletionInfo::MAX_VALUES`, with `total` and `hasMore`.
pub fn rank(candidates: Vec<String>, typed: &str) -> CompletionInfo {
    let needle = typed.to_lowercase();
    let (mut starts, mut contains) = (Vec::new(), Vec::new());
    for c in candidates {
        let lower = c.to_lowercase();
        if lower.starts_with(&needle) {
            starts.push(c);
        } else if lower.contains(&needle) {
            contains.push(c);
        }
    }
    starts.append(&mut contains);
    let total = starts.len();
    starts.truncate(CompletionInfo::MAX_VALUES);
    let more = total > starts.len();
    // Cannot fail: the values were cut to the maximum just above.
    CompletionInfo::with_pagination(starts, u32::try_from(total).ok(), more).unwrap_or_default()
}

pub async fn complete(
    gw: &Gateway,
    fixtures_on: bool,
    req: CompleteRequestParams,
) -> Result<CompleteResult, ErrorData> {
    let values = candidates(gw, fixtures_on, &req.r#ref, &req.argument.name).await?;
    Ok(CompleteResult::new(rank(values, &req.argument.value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_matches_come_before_substring_matches() {
        let c = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let r = rank(c(&["cheap-fast", "fast", "Fastest", "slow"]), "fa");
        assert_eq!(r.values, c(&["fast", "Fastest", "cheap-fast"]));
        assert_eq!((r.total, r.has_more), (Some(3), Some(false)));
        let many: Vec<String> = (0..150).map(|i| format!("c{i}")).collect();
        let r = rank(many, "c");
        assert_eq!(r.values.len(), 100);
        assert_eq!((r.total, r.has_more), (Some(150), Some(true)));
        assert!(rank(c(&["a"]), "").values == c(&["a"]));
    }
}
