//! SSE framing shared by the codecs: writing frames, and splitting an
//! upstream byte stream into (`event:`, `data:`) pairs for the decoders.

use bytes::Bytes;

/// `event: NAME\ndata: JSON\n\n`.
pub fn named(event: &str, data: &serde_json::Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

/// `data: JSON\n\n`.
pub fn data(data: &serde_json::Value) -> String {
    format!("data: {data}\n\n")
}

/// One parsed SSE event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Incremental SSE parser: feed bytes as they arrive, get whole events.
/// Handles CRLF, `data:` with or without a space, multi-line data and comments.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.line(&String::from_utf8_lossy(&line), &mut out);
        }
        out
    }

    /// Flushes an event left without its blank line at EOF.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            let line = String::from_utf8_lossy(&rest)
                .trim_end_matches('\r')
                .to_string();
            self.line(&line, &mut out);
        }
        self.dispatch(&mut out);
        out
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => self.data.push(value.to_string()),
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.data.is_empty() {
            self.event = None;
            return;
        }
        out.push(SseEvent {
            event: self.event.take(),
            data: std::mem::take(&mut self.data).join("\n"),
        });
    }
}

pub fn to_bytes(frames: Vec<String>) -> Bytes {
    Bytes::from(frames.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_split_crlf_and_multiline_events() {
        let input = b"event: ping\r\ndata: {}\r\n\r\n: keep-alive\n\ndata:{\"a\":\ndata: 1}\n\ndata: [DONE]\n\n";
        for split in 0..input.len() {
            let mut p = SseParser::new();
            let mut got = p.push(&input[..split]);
            got.extend(p.push(&input[split..]));
            got.extend(p.finish());
            assert_eq!(got.len(), 3, "split at {split}");
            assert_eq!(got[0].event.as_deref(), Some("ping"));
            assert_eq!(got[1].data, "{\"a\":\n1}");
            assert_eq!(got[2].data, "[DONE]");
        }
    }

    #[test]
    fn flushes_unterminated_event_at_eof() {
        let mut p = SseParser::new();
        assert!(p.push(b"data: x").is_empty());
        assert_eq!(p.finish()[0].data, "x");
    }
}
