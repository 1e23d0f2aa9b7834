//! Claude Code specifics the proxy applies to canonical requests.

use super::canonical::ChatRequest;

/// The attribution line Claude Code (2.1.69+) puts first in its system prompt.
pub const BILLING_HEADER_PREFIX: &str = "x-anthropic-billing-header:";

/// Removes Claude Code's per-request billing header line from the system
/// prompt. Call it before any non-Anthropic upstream: the line changes with
/// every request and would defeat the upstream's prefix cache. Returns
/// whether anything was removed; blocks left empty are dropped.
pub fn strip_billing_header(req: &mut ChatRequest) -> bool {
    let mut removed = false;
    for block in &mut req.system {
        if !block.text.contains(BILLING_HEADER_PREFIX) {
            continue;
        }
        let kept: Vec<&str> = block
            .text
            .lines()
            .filter(|l| !l.trim_start().starts_with(BILLING_HEADER_PREFIX))
            .collect();
        let kept = kept.join("\n");
        if kept != block.text {
            removed = true;
            block.text = kept.trim_start_matches('\n').to_string();
        }
    }
    req.system
        .retain(|b| !b.text.trim().is_empty() || b.cache.is_some());
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::canonical::SystemBlock;

    fn block(t: &str) -> SystemBlock {
        SystemBlock {
            text: t.into(),
            cache: None,
        }
    }

    #[test]
    fn removes_the_billing_line_and_keeps_the_rest() {
        let mut req = ChatRequest {
            system: vec![
                block("x-anthropic-billing-header: cc_version=2.1.1.abc; cc_entrypoint=cli; cch=1f2e3;"),
                block("You are Claude Code"),
                block("x-anthropic-billing-header: cch=9;\nRules"),
            ],
            ..ChatRequest::default()
        };
        assert!(strip_billing_header(&mut req));
        let texts: Vec<&str> = req.system.iter().map(|b| b.text.as_str()).collect();
        assert_eq!(texts, vec!["You are Claude Code", "Rules"]);
        assert!(!strip_billing_header(&mut req));
    }
}
