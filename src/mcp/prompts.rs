//! Prompts that help an agent choose where to send work.

use super::{tool_error, OmnirouteMcp};
use crate::ops;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{GetPromptResult, PromptMessage, Role};
use rmcp::{prompt, prompt_router, ErrorData};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PickModelArgs {
    /// What the model will be asked to do (e.g. "refactor a 2,000-line Rust module").
    pub task: String,
    /// Highest acceptable USD price per million output tokens (optional).
    #[serde(default)]
    pub max_output_price: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ReviewSpendArgs {
    /// Period to review: a duration back from now, e.g. "7d" (default) or "30d".
    #[serde(default)]
    pub since: Option<String>,
}

fn price(p: Option<f64>) -> String {
    p.map_or_else(|| "?".into(), |p| format!("${p}"))
}

#[prompt_router(vis = "pub(super)")]
impl OmnirouteMcp {
    #[prompt(
        name = "pick_model",
        description = "Choose the omniroute model or combo for a task: lists every usable model \
                       with its tier, context window and prices, and every combo with its strategy \
                       and targets, and asks for one pick with a fallback."
    )]
    async fn pick_model(
        &self,
        Parameters(args): Parameters<PickModelArgs>,
    ) -> Result<GetPromptResult, ErrorData> {
        let models = ops::models::list_models(&self.gw, Default::default())
            .await
            .map_err(|e| ErrorData::internal_error(tool_error(e), None))?;
        let cap: Option<f64> = match args.max_output_price.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(s.trim_start_matches('$').parse().map_err(|_| {
                ErrorData::invalid_params(
                    format!("max_output_price = {s:?}: write a number such as 2.5"),
                    None,
                )
            })?),
        };
        let mut table = String::new();
        for m in models.iter().filter(|m| match (cap, m.output_price) {
            (Some(cap), Some(p)) => p <= cap,
            _ => true,
        }) {
            let _ = writeln!(
                table,
                "- {} (tier {}, context {}, input {}/Mtok, output {}/Mtok)",
                m.id,
                m.tier.as_str(),
                m.context.map_or_else(|| "?".into(), |c| c.to_string()),
                price(m.input_price),
                price(m.output_price),
            );
        }
        if table.is_empty() {
            table = "(no usable model matches: add a provider key, see omniroute_list_providers)\n"
                .into();
        }
        let combos = ops::combos::list_combos(&self.gw)
            .await
            .map_err(|e| ErrorData::internal_error(tool_error(e), None))?;
        let mut combo_table = String::new();
        for c in &combos {
            let _ = writeln!(
                combo_table,
                "- {} (strategy {}, targets: {}){}",
                c.combo.name,
                c.combo.strategy.as_str(),
                if c.targets.is_empty() {
                    "none usable".to_string()
                } else {
                    c.targets.join(", ")
                },
                c.combo
                    .description
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default(),
            );
        }
        let text = format!(
            "Task: {}\n\nModels usable through omniroute right now:\n{table}\n\
             Combos (named routing plans that fall back across targets when one fails or runs \
             out of quota):\n{combo_table}\n\
             Pick the one model or combo best suited to this task, weighing capability, context \
             window, price (cheaper tiers when the task is simple) and resilience (a combo keeps \
             long work going). Answer with the exact name, one fallback, and one sentence on why. \
             Then send the work with the omniroute_route_request tool using that name, or check \
             the order a combo would take with omniroute_explain_route.",
            args.task
        );
        Ok(
            GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
                .with_description("Pick a model for a task from the usable omniroute models"),
        )
    }

    #[prompt(
        name = "review_spend",
        description = "Review omniroute spend for a period (by provider, model, key and day) and \
                       suggest cheaper routing."
    )]
    async fn review_spend(
        &self,
        Parameters(args): Parameters<ReviewSpendArgs>,
        ctx: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<GetPromptResult, ErrorData> {
        let who = super::access::principal(&ctx);
        who.require(crate::access::Scope::Read, "the review_spend prompt")
            .map_err(|e| ErrorData::invalid_request(e.to_string(), None))?;
        let since = args.since.unwrap_or_else(|| "7d".into());
        let report = ops::cost::cost_report(
            &self.gw,
            ops::cost::CostQuery {
                since: since.clone(),
                until: None,
                max_suggestions: None,
            },
            &who,
        )
        .await
        .map_err(|e| ErrorData::invalid_params(tool_error(e), None))?;
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let text = format!(
            "Here is omniroute's cost report for the last {since} (USD; lines most expensive first):\n\
             ```json\n{json}\n```\n\
             Summarise where the money goes, point out models or keys with high error rates, and \
             suggest cheaper models (see omniroute_list_models) for the heaviest traffic."
        );
        Ok(
            GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
                .with_description("Review spend and suggest cheaper routing"),
        )
    }
}
