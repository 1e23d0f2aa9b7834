//! Answers from upstreams that do not speak OpenAI Chat, turned into OpenAI
//! Chat for the rest of the proxy (relay, usage, the surfaces): a whole body,
//! or a stream event by event as it arrives.

use crate::catalog::WireFormat;
use crate::formats::sse::SseParser;
use crate::formats::{self, ClientContext, StreamDecoder, StreamEncoder};
use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};

fn context(model: &str) -> ClientContext {
    ClientContext {
        model: model.to_string(),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        // Usage always comes back; the relay hides it when the client did not ask.
        include_usage: true,
        custom_tools: Vec::new(),
    }
}

/// A whole answer in `fmt` as an OpenAI Chat completion.
pub fn body(fmt: WireFormat, model: &str, body: &[u8]) -> Result<Bytes, String> {
    let resp = formats::decode_response(fmt, body).map_err(|e| e.to_string())?;
    let out = formats::encode_response(WireFormat::Openai, &resp, &context(model));
    serde_json::to_vec(&out.body)
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

struct State {
    upstream: BoxStream<'static, reqwest::Result<Bytes>>,
    parser: SseParser,
    decoder: StreamDecoder,
    encoder: StreamEncoder,
    ended: bool,
}

impl State {
    fn encode(&mut self, events: Vec<crate::formats::canonical::StreamEvent>, out: &mut BytesMut) {
        for ev in events {
            out.extend_from_slice(&self.encoder.push(&ev));
        }
    }
}

/// An SSE stream in `fmt` as OpenAI Chat chunks (ending in `data: [DONE]`),
/// one upstream read at a time; transport errors pass through.
pub fn stream(
    fmt: WireFormat,
    model: &str,
    upstream: BoxStream<'static, reqwest::Result<Bytes>>,
) -> BoxStream<'static, reqwest::Result<Bytes>> {
    let st = State {
        upstream,
        parser: SseParser::new(),
        decoder: StreamDecoder::new(fmt),
        encoder: StreamEncoder::new(WireFormat::Openai, &context(model)),
        ended: false,
    };
    futures::stream::unfold(st, |mut st| async move {
        loop {
            if st.ended {
                return None;
            }
            let mut out = BytesMut::new();
            match st.upstream.next().await {
                Some(Ok(chunk)) => {
                    for ev in st.parser.push(&chunk) {
                        let decoded = st.decoder.push(ev.event.as_deref(), &ev.data);
                        st.encode(decoded, &mut out);
                    }
                }
                Some(Err(e)) => {
                    st.ended = true;
                    return Some((Err(e), st));
                }
                None => {
                    for ev in st.parser.finish() {
                        let decoded = st.decoder.push(ev.event.as_deref(), &ev.data);
                        st.encode(decoded, &mut out);
                    }
                    let rest = st.decoder.finish();
                    st.encode(rest, &mut out);
                    st.ended = true;
                }
            }
            if !out.is_empty() {
                return Some((Ok(out.freeze()), st));
            }
        }
    })
    .boxed()
}
