//! Cursor pagination of the MCP list methods (tools, prompts, resources,
//! resource templates): `settings.mcp_page_size` items per page and a
//! `nextCursor` while more remain. A cursor is opaque to clients; here it
//! carries the offset of the next page. A cursor this server did not issue
//! is invalid params (-32602), as the spec asks.

use rmcp::ErrorData;

const PREFIX: &str = "next:";

/// The page of `items` that `cursor` names, and the cursor of the next one.
pub fn page<T>(
    mut items: Vec<T>,
    cursor: Option<&str>,
    size: usize,
) -> Result<(Vec<T>, Option<String>), ErrorData> {
    let size = size.max(1);
    let start = match cursor {
        None => 0,
        Some(c) => c
            .strip_prefix(PREFIX)
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| {
                ErrorData::invalid_params(
                    format!("invalid cursor {c:?}: pass back a nextCursor this server returned"),
                    None,
                )
            })?,
    };
    let end = start.saturating_add(size).min(items.len());
    let next = (end < items.len()).then(|| format!("{PREFIX}{end}"));
    items.truncate(end);
    Ok((items.split_off(start), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_cursors_to_the_end() {
        let items: Vec<u32> = (0..7).collect();
        let (p1, c1) = page(items.clone(), None, 3).unwrap();
        assert_eq!((p1, c1.as_deref()), (vec![0, 1, 2], Some("next:3")));
        let (p2, c2) = page(items.clone(), c1.as_deref(), 3).unwrap();
        assert_eq!(p2, vec![3, 4, 5]);
        let (p3, c3) = page(items.clone(), c2.as_deref(), 3).unwrap();
        assert_eq!((p3, c3), (vec![6], None));
        let (all, none) = page(items.clone(), None, 100).unwrap();
        assert_eq!((all.len(), none), (7, None));
        for bad in ["", "3", "next:x", "next:8"] {
            let e = page(items.clone(), Some(bad), 3).unwrap_err();
            assert_eq!(e.code, rmcp::model::ErrorCode::INVALID_PARAMS, "{bad}");
        }
    }
}
