//! The A2A TCK's executor scenarios, served only with `--conformance-fixtures`.
//!
//! The 1.0 TCK (a2aproject/a2a-tck, `scenarios/*.feature`) drives the agent
//! under test by the prefix of each message's `messageId` (`tck-…`): complete,
//! add a text/file/data artifact, ask for input, reject, stream chunks. This
//! module does what each scenario says, through the same runner, store and
//! wire code as the real skills, so the TCK tests the agent's protocol
//! handling (task lifecycle, streaming, history, errors) rather than these
//! fixed answers. It is never reachable without the flag.

use super::Outcome;
use crate::a2a::runner::Sink;
use crate::ops::tasks::{Artifact, Part, TaskState};
use base64::Engine;
use serde_json::json;
use std::time::Duration;

/// The skill id tasks served here carry.
pub const SKILL: &str = "tck-conformance";

/// Does a message with this id belong to a TCK scenario?
pub fn applies(message_id: &str) -> bool {
    message_id.starts_with("tck-") || message_id.starts_with("test-resubscribe-message-id")
}

/// The text of the message-only scenario's answer (no task is made).
pub fn direct_reply(message_id: &str) -> Option<&'static str> {
    message_id
        .starts_with("tck-message-response")
        .then_some("Direct message response")
}

fn artifact(parts: Vec<Part>) -> Artifact {
    Artifact {
        artifact_id: crate::ops::tasks::new_id(),
        name: None,
        description: None,
        parts,
        metadata: None,
    }
}

fn file_part() -> Part {
    Part {
        raw: Some(base64::engine::general_purpose::STANDARD.encode("TCK file content")),
        filename: Some("output.txt".into()),
        media_type: Some("text/plain".into()),
        ..Part::default()
    }
}

/// Run the scenario the message id names (longest prefix first); any other
/// `tck-` message completes, as the kit's default scenario does.
pub async fn run(message_id: &str, sink: &Sink) -> Outcome {
    let is = |p: &str| message_id.starts_with(p);
    let text = |t: &str| vec![artifact(vec![Part::text(t)])];
    if is("tck-artifact-file-url") {
        let p = Part {
            url: Some("https://example.com/output.txt".into()),
            filename: Some("output.txt".into()),
            media_type: Some("text/plain".into()),
            ..Part::default()
        };
        Outcome::completed("completed", vec![artifact(vec![p])])
    } else if is("tck-artifact-file") {
        Outcome::completed("completed", vec![artifact(vec![file_part()])])
    } else if is("tck-artifact-text") {
        Outcome::completed("completed", text("Generated text content"))
    } else if is("tck-artifact-data") {
        let data = Part::data(json!({"key": "value", "count": 42}));
        Outcome::completed("completed", vec![artifact(vec![data])])
    } else if is("tck-input-required") {
        Outcome {
            state: TaskState::InputRequired,
            note: "input required: send another message to continue".into(),
            artifacts: Vec::new(),
        }
    } else if is("tck-reject-task") {
        Outcome {
            state: TaskState::Rejected,
            note: "rejected".into(),
            artifacts: Vec::new(),
        }
    } else if is("tck-stream-artifact-chunked") {
        let id = crate::ops::tasks::new_id();
        let chunk = |t: &str| Artifact {
            artifact_id: id.clone(),
            ..artifact(vec![Part::text(t)])
        };
        sink.artifact(chunk("chunk-1 "), false, false).await;
        sink.artifact(chunk("chunk-2"), true, true).await;
        Outcome::completed("completed", Vec::new())
    } else if is("tck-stream-artifact-file") {
        Outcome::completed("completed", vec![artifact(vec![file_part()])])
    } else if is("tck-stream-artifact-text") {
        Outcome::completed("completed", text("Streamed text content"))
    } else if is("tck-stream-ordering-001") {
        Outcome::completed("completed", text("Ordered output"))
    } else if is("tck-stream-001") {
        Outcome::completed("completed", text("Stream hello from TCK"))
    } else if is("tck-stream-002") {
        Outcome::completed("completed", Vec::new())
    } else if is("tck-stream-003") {
        Outcome::completed("completed", text("Stream task lifecycle"))
    } else if is("test-resubscribe-message-id") {
        // Long enough for a client to drop its stream and subscribe again.
        tokio::time::sleep(Duration::from_secs(3)).await;
        Outcome::completed("completed", Vec::new())
    } else {
        Outcome::completed("Hello from TCK", Vec::new())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_tck_ids_apply() {
        assert!(super::applies("tck-complete-task-abc"));
        assert!(super::applies("test-resubscribe-message-id-1"));
        assert!(!super::applies("0b8f5a0e-2d6c-4c1e-9d53-5c2c8f7e7d10"));
    }
}
