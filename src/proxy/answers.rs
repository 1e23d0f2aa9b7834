//! What an upstream answered: an API answer or not (HTML pages answered
//! with 200 are failures), its first whole stream event, its own error
//! message, and how a transport failure is told.

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;

/// The most of an error body that is read.
pub(super) const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Most bytes held back while waiting for the first whole stream event.
const FIRST_EVENT_LIMIT: usize = 256 * 1024;

/// Read on until `first` holds a complete SSE event with data (comment
/// lines before it, such as keep-alives, do not count).
pub(super) async fn first_event(
    first: Bytes,
    rest: &mut crate::upstream::BodyStream,
) -> Result<Bytes, String> {
    if has_data_event(&first) {
        return Ok(first);
    }
    let mut buf = first.to_vec();
    while buf.len() < FIRST_EVENT_LIMIT {
        match rest.next().await {
            Some(Ok(chunk)) => {
                buf.extend_from_slice(&chunk);
                if has_data_event(&buf) {
                    break;
                }
            }
            Some(Err(e)) => {
                return Err(format!(
                    "stream failed before its first event: {}",
                    e.describe()
                ))
            }
            // Ended early: what arrived is judged as it is.
            None => break,
        }
    }
    Ok(Bytes::from(buf))
}

/// Does `buf` hold a whole event carrying a `data:` line (or is it plainly not SSE)?
fn has_data_event(buf: &[u8]) -> bool {
    let text = match buf.iter().position(|b| !b.is_ascii_whitespace()) {
        Some(i) => &buf[i..],
        None => return false,
    };
    // Not an event stream at all (HTML, a JSON error body): nothing to wait for.
    if !(text.starts_with(b"data:")
        || text.starts_with(b"event:")
        || text.starts_with(b":")
        || text.starts_with(b"id:")
        || text.starts_with(b"retry:"))
    {
        return true;
    }
    let mut start = 0;
    let mut i = 0;
    while i < text.len() {
        let sep = if text[i..].starts_with(b"\n\n") {
            2
        } else if text[i..].starts_with(b"\r\n\r\n") {
            4
        } else {
            i += 1;
            continue;
        };
        let event = &text[start..i];
        if event
            .split(|b| *b == b'\n')
            .any(|l| l.starts_with(b"data:"))
        {
            return true;
        }
        i += sep;
        start = i;
    }
    false
}

fn first_bytes(body: &[u8]) -> &[u8] {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    &body[start..]
}

pub(super) fn looks_like_html(content_type: Option<&str>, body: &[u8]) -> bool {
    content_type.is_some_and(|c| c.starts_with("text/html")) || first_bytes(body).starts_with(b"<")
}

/// Is a 200 body an API answer: a JSON object, not declared as HTML?
/// (Some local servers label JSON `text/plain`, so only HTML is refused by
/// its label.)
pub(super) fn is_json_answer(content_type: Option<&str>, body: &[u8]) -> bool {
    !looks_like_html(content_type, body) && first_bytes(body).starts_with(b"{")
}

pub(super) fn not_an_api_answer(content_type: Option<&str>, body: &[u8]) -> String {
    let snippet: String =
        String::from_utf8_lossy(&first_bytes(body)[..first_bytes(body).len().min(80)])
            .chars()
            .filter(|c| !c.is_control())
            .collect();
    format!(
        "the upstream answered 200 with {} instead of an API answer: {snippet:?}",
        content_type.unwrap_or("no content type")
    )
}

/// The upstream's own error message when its body says one.
pub(crate) fn upstream_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let found = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("message"))
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    found.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let t = text.trim();
        if t.is_empty() {
            "no error message".to_string()
        } else {
            t.chars().take(500).collect()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_messages_are_extracted() {
        assert_eq!(
            upstream_message(br#"{"error":{"message":"slow down"}}"#),
            "slow down"
        );
        assert_eq!(upstream_message(br#"{"message":"bad"}"#), "bad");
        assert_eq!(upstream_message(b"  plain text "), "plain text");
        assert_eq!(upstream_message(b""), "no error message");
    }
}
