//! Running tasks: each runs in its own tokio task, publishes status and
//! artifact events to subscribers (streams), writes its state to the store
//! at every status change, and can be canceled. A task outlives the request
//! that started it (a dropped stream does not stop it).
//!
//! A task waiting for input runs nothing, yet a client may subscribe to it
//! (A2A 1.0 §3.1.6: any task not in a terminal state): such subscribers
//! wait here until a message resumes the task (they get the new run's
//! events from its first one) or a cancel ends it.

use super::skills::{self, Input};
use super::wire::TaskEvent;
use crate::gateway::Gateway;
use crate::ops::tasks::{self, Artifact, Message, Part, Task, TaskState, TaskStatus};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

const EVENT_BUFFER: usize = 1024;

/// What a subscriber waiting on a paused task hears next.
pub enum Resumed {
    /// A message resumed it: the new run, its first snapshot and every event after.
    Run(Arc<LiveTask>, Task, broadcast::Receiver<TaskEvent>),
    /// It ended without running (canceled while waiting for input).
    Ended(Task),
}

/// Subscribers waiting for a paused task, by (owner, task id).
type Waiters = HashMap<(String, String), Vec<mpsc::UnboundedSender<Resumed>>>;

/// The running tasks of this process.
#[derive(Default)]
pub struct Live {
    tasks: Mutex<HashMap<String, Arc<LiveTask>>>,
    waiters: Mutex<Waiters>,
}

impl Live {
    /// The running task `id` of `owner`.
    pub fn get(&self, owner: &str, id: &str) -> Option<Arc<LiveTask>> {
        self.tasks
            .lock()
            .ok()?
            .get(id)
            .filter(|t| t.owner == owner)
            .cloned()
    }

    /// Be told each time task `id` of `owner` runs again or ends without
    /// running, for as long as the receiver lives.
    pub fn follow(&self, owner: &str, id: &str) -> mpsc::UnboundedReceiver<Resumed> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut w) = self.waiters.lock() {
            w.retain(|_, list| {
                list.retain(|t| !t.is_closed());
                !list.is_empty()
            });
            w.entry((owner.to_string(), id.to_string()))
                .or_default()
                .push(tx);
        }
        rx
    }

    fn tell(&self, owner: &str, id: &str, news: impl Fn() -> Resumed) {
        if let Ok(mut w) = self.waiters.lock() {
            if let Some(list) = w.get_mut(&(owner.to_string(), id.to_string())) {
                list.retain(|t| t.send(news()).is_ok());
            }
        }
    }

    /// A paused task ended without running: tell its subscribers.
    pub fn ended(&self, owner: &str, t: &Task) {
        self.tell(owner, &t.id, || Resumed::Ended(t.clone()));
    }

    /// Register a run before it starts (its subscribers then see every
    /// event from the first), then tell those following the task.
    fn insert(&self, t: Arc<LiveTask>) {
        if let Ok(mut m) = self.tasks.lock() {
            m.insert(t.id.clone(), t.clone());
        }
        self.tell(&t.owner, &t.id, || {
            let (first, rx) = t.subscribe();
            Resumed::Run(t.clone(), first, rx)
        });
    }

    fn remove(&self, id: &str) {
        if let Ok(mut m) = self.tasks.lock() {
            m.remove(id);
        }
    }
}

pub struct LiveTask {
    pub id: String,
    pub owner: String,
    task: Mutex<Task>,
    events: broadcast::Sender<TaskEvent>,
    cancel: CancellationToken,
    done: watch::Sender<bool>,
    streaming: bool,
}

impl LiveTask {
    /// The task as it stands and the events after it, taken together so
    /// none is missed or seen twice.
    pub fn subscribe(&self) -> (Task, broadcast::Receiver<TaskEvent>) {
        let t = self.task.lock().unwrap_or_else(|e| e.into_inner());
        (t.clone(), self.events.subscribe())
    }

    pub fn snapshot(&self) -> Task {
        self.task.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Apply a change and publish its event under one lock.
    fn publish(&self, change: impl FnOnce(&mut Task) -> TaskEvent) -> Task {
        let mut t = self.task.lock().unwrap_or_else(|e| e.into_inner());
        let ev = change(&mut t);
        let _ = self.events.send(ev);
        t.clone()
    }

    /// Ask the task to stop, and wait (bounded) until it has.
    pub async fn cancel_and_wait(&self, limit: Duration) {
        self.cancel.cancel();
        self.wait(limit).await;
    }

    /// Wait (bounded) until the task reaches its final state.
    pub async fn wait(&self, limit: Duration) {
        let mut rx = self.done.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|d| *d)).await;
    }
}

/// What skills write their streamed output through.
pub struct Sink {
    live: Arc<LiveTask>,
}

impl Sink {
    /// Whether the task was started by a streaming request.
    pub fn streaming(&self) -> bool {
        self.live.streaming
    }

    /// Add to (or start) an artifact and tell subscribers.
    pub async fn artifact(&self, chunk: Artifact, append: bool, last_chunk: bool) {
        self.live.publish(|t| {
            merge_artifact(&mut t.artifacts, &chunk, append);
            TaskEvent::Artifact {
                artifact: chunk,
                append,
                last_chunk,
            }
        });
    }
}

/// Fold a chunk into the task's artifacts: appended text joins the last text part.
fn merge_artifact(artifacts: &mut Vec<Artifact>, chunk: &Artifact, append: bool) {
    match artifacts
        .iter_mut()
        .find(|a| a.artifact_id == chunk.artifact_id)
    {
        Some(a) if append => {
            for p in &chunk.parts {
                match (a.parts.last_mut(), &p.text) {
                    (
                        Some(Part {
                            text: Some(prev), ..
                        }),
                        Some(more),
                    ) => prev.push_str(more),
                    _ => a.parts.push(p.clone()),
                }
            }
        }
        Some(a) => *a = chunk.clone(),
        None => artifacts.push(chunk.clone()),
    }
}

/// A started task: the live handle, its first snapshot and its events.
pub struct Started {
    pub live: Arc<LiveTask>,
    pub first: Task,
    pub events: broadcast::Receiver<TaskEvent>,
}

/// Save the task as submitted, then run `input` on it in the background.
pub async fn start(
    gw: Arc<Gateway>,
    live_set: Arc<Live>,
    owner: String,
    who: crate::access::Principal,
    task: Task,
    input: Input,
    streaming: bool,
) -> Result<Started, crate::ops::OpsError> {
    tasks::save_task(&gw, &owner, &task).await?;
    let (events, rx) = broadcast::channel(EVENT_BUFFER);
    let live = Arc::new(LiveTask {
        id: task.id.clone(),
        owner: owner.clone(),
        task: Mutex::new(task.clone()),
        events,
        cancel: CancellationToken::new(),
        done: watch::channel(false).0,
        streaming,
    });
    live_set.insert(live.clone());
    tokio::spawn(run(gw, live_set, live.clone(), who, input));
    Ok(Started {
        live,
        first: task,
        events: rx,
    })
}

async fn save(gw: &Gateway, live: &LiveTask, t: &Task) {
    if let Err(e) = tasks::save_task(gw, &live.owner, t).await {
        tracing::error!(task = %t.id, error = %e, "could not save A2A task");
    }
}

async fn run(
    gw: Arc<Gateway>,
    live_set: Arc<Live>,
    live: Arc<LiveTask>,
    who: crate::access::Principal,
    input: Input,
) {
    let working = live.publish(|t| {
        t.status = TaskStatus::now(TaskState::Working, None);
        TaskEvent::Status {
            status: t.status.clone(),
            is_final: false,
        }
    });
    save(&gw, &live, &working).await;
    let sink = Sink { live: live.clone() };
    let outcome = tokio::select! {
        _ = live.cancel.cancelled() => None,
        o = skills::run(gw.clone(), who, input, &sink) => Some(o),
    };
    // Artifacts the skill returned whole are published before the final status.
    if let Some(o) = &outcome {
        for a in &o.artifacts {
            sink.artifact(a.clone(), false, true).await;
        }
    }
    let mut final_task = live.snapshot();
    let (state, note) = match &outcome {
        Some(o) => (o.state, o.note.clone()),
        None => (TaskState::Canceled, "canceled by the client".to_string()),
    };
    let msg = Message::agent(&final_task, vec![Part::text(note)]);
    final_task.history.push(msg.clone());
    final_task.status = TaskStatus::now(state, Some(msg));
    // Stored before subscribers hear of it, so a GetTask after the final
    // event sees the final state.
    save(&gw, &live, &final_task).await;
    live.publish(|t| {
        *t = final_task.clone();
        TaskEvent::Status {
            status: t.status.clone(),
            is_final: true,
        }
    });
    live_set.remove(&live.id);
    let _ = live.done.send(true);
}

/// A task left submitted or working by a process that is gone (a restart)
/// can never finish: mark it failed, once, when it is next looked at.
pub async fn settle(gw: &Gateway, live_set: &Live, owner: &str, mut t: Task) -> Task {
    let stuck = matches!(t.status.state, TaskState::Submitted | TaskState::Working);
    if stuck && live_set.get(owner, &t.id).is_none() {
        let msg = Message::agent(
            &t,
            vec![Part::text(
                "interrupted: the gateway stopped before this task finished; send the request again",
            )],
        );
        t.history.push(msg.clone());
        t.status = TaskStatus::now(TaskState::Failed, Some(msg));
        if let Err(e) = tasks::save_task(gw, owner, &t).await {
            tracing::warn!(task = %t.id, error = %e, "could not settle an interrupted task");
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_text_chunks_fold_into_one_part() {
        let mut arts = Vec::new();
        let chunk = |parts| Artifact {
            artifact_id: "a".into(),
            name: None,
            description: None,
            parts,
            metadata: None,
        };
        merge_artifact(&mut arts, &chunk(vec![Part::text("Hel")]), false);
        merge_artifact(&mut arts, &chunk(vec![Part::text("lo")]), true);
        merge_artifact(
            &mut arts,
            &chunk(vec![Part::data(serde_json::json!({"x": 1}))]),
            true,
        );
        assert_eq!(arts.len(), 1);
        assert_eq!(arts[0].parts.len(), 2);
        assert_eq!(arts[0].parts[0].text.as_deref(), Some("Hello"));
    }
}
