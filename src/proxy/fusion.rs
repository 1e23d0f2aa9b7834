//! Fusion: several targets answer the same request at once; the first good
//! answer wins, or a judge model merges them.

use super::attempt::{try_target, Attempt, Tried};
use super::{attempt_all, native, AttemptError, ChatCall, ChatOutcome, ProxyError};
use crate::catalog::WireFormat;
use crate::routing::classify::FailureClass;
use crate::routing::plan::Planned;
use futures::StreamExt;
use serde_json::{Map, Value};

/// Race the first `fan_out` targets; the first good answer wins, or with
/// a `judge`, the answers are merged by it.
pub(super) async fn run_fusion(
    ctx: &Attempt<'_>,
    targets: &[Planned],
    fan_out: usize,
    judge: Option<String>,
    attempts: &mut Vec<AttemptError>,
    skipped: &mut Vec<String>,
) -> Result<Option<ChatOutcome>, ProxyError> {
    use futures::stream::FuturesUnordered;
    let mut racing: FuturesUnordered<_> = targets
        .iter()
        .take(fan_out)
        .map(|p| async move { (p, try_target(ctx, p, &[], &[]).await) })
        .collect();
    let mut answers: Vec<(String, ChatOutcome)> = Vec::new();
    while let Some((p, tried)) = racing.next().await {
        match tried {
            Tried::Done(outcome) => {
                if judge.is_none() {
                    // first good answer wins; the others are cancelled
                    return Ok(Some(outcome));
                }
                answers.push((p.key.clone(), outcome));
            }
            Tried::Skipped(reason) => skipped.push(format!("{}: {reason}", p.key)),
            Tried::Failed(err, class, _) => {
                if class == FailureClass::ClientFault {
                    return Err(ProxyError::Rejected {
                        provider: err.provider,
                        status: err.status.unwrap_or(400),
                        message: err.message,
                    });
                }
                attempts.push(err);
            }
        }
    }
    drop(racing);
    let Some(judge) = judge else { return Ok(None) };
    if answers.len() < 2 {
        return Ok(answers.pop().map(|(_, o)| o));
    }
    let native = ctx.call.native.as_deref();
    let mut texts = Vec::new();
    for (key, outcome) in &answers {
        if let ChatOutcome::Complete { body, .. } = outcome {
            let text = match native {
                Some(n) => native::answer_text(n.format, body),
                None => {
                    let v: Value = serde_json::from_slice(body).unwrap_or_default();
                    v.pointer("/choices/0/message/content")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                }
            };
            texts.push(format!("Answer from {key}:\n{text}"));
        }
    }
    let source = match native {
        Some(n) => n.openai_body(&judge),
        None => {
            serde_json::from_slice::<Map<String, Value>>(&ctx.call.raw).map_err(|e| e.to_string())
        }
    };
    let Ok(mut judge_body) = source else {
        return Ok(answers.into_iter().next().map(|(_, o)| o));
    };
    let mut messages = judge_body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    messages.push(serde_json::json!({
        "role": "user",
        "content": format!("Several assistants answered the request above. Merge them into the single best answer; reply with that answer only.\n\n{}", texts.join("\n\n")),
    }));
    judge_body.insert("messages".into(), Value::Array(messages));
    judge_body.insert("model".into(), Value::String(judge.clone()));
    judge_body.insert("stream".into(), Value::Bool(false));
    let Ok(judge_call) = ChatCall::from_map(
        ctx.call.request_id.clone(),
        ctx.call.key_id.clone(),
        ctx.call.endpoint,
        &judge_body,
        ctx.call.started,
    ) else {
        return Ok(answers.into_iter().next().map(|(_, o)| o));
    };
    match Box::pin(attempt_all(ctx.gw, &judge_call, &judge, false)).await {
        Ok(ChatOutcome::Complete {
            status,
            body,
            mut route,
            usage,
        }) => {
            route.failed.push(format!(
                "fusion: merged {} answers with {judge}",
                answers.len()
            ));
            // The judge answered in OpenAI Chat; the client may speak something else.
            let (body, usage) = match native {
                Some(n) => {
                    let mode = native::Mode::Translate {
                        client: n.format,
                        ctx: n.ctx.clone(),
                    };
                    let conversation = n.conversation.as_ref().map(|c| (c, &ctx.gw.store));
                    match native::answer(&mode, WireFormat::Openai, body, conversation) {
                        Ok((b, u)) => (b, u.or(usage)),
                        Err(_) => return Ok(answers.into_iter().next().map(|(_, o)| o)),
                    }
                }
                None => (body, usage),
            };
            Ok(Some(ChatOutcome::Complete {
                status,
                body,
                route,
                usage,
            }))
        }
        // the judge failed: the first answer still stands
        _ => Ok(answers.into_iter().next().map(|(_, o)| o)),
    }
}
