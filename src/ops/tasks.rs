//! Agent tasks (A2A): a version-neutral model of tasks, messages, parts and
//! artifacts, kept in the store and scoped to the client key that created
//! them. The A2A surface renders these in either protocol version.

use super::OpsError;
use crate::gateway::Gateway;
use crate::store;
use crate::store::tasks::{self as rows, TaskRow};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TaskState {
    Submitted,
    Working,
    InputRequired,
    Completed,
    Canceled,
    Failed,
    Rejected,
    AuthRequired,
}

impl TaskState {
    pub const ALL: [TaskState; 8] = [
        TaskState::Submitted,
        TaskState::Working,
        TaskState::InputRequired,
        TaskState::Completed,
        TaskState::Canceled,
        TaskState::Failed,
        TaskState::Rejected,
        TaskState::AuthRequired,
    ];

    /// The 0.3 spelling, also the store's.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Submitted => "submitted",
            TaskState::Working => "working",
            TaskState::InputRequired => "input-required",
            TaskState::Completed => "completed",
            TaskState::Canceled => "canceled",
            TaskState::Failed => "failed",
            TaskState::Rejected => "rejected",
            TaskState::AuthRequired => "auth-required",
        }
    }

    pub fn parse(s: &str) -> Option<TaskState> {
        TaskState::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// No further change can happen to a task in this state.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Completed | TaskState::Canceled | TaskState::Failed | TaskState::Rejected
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Agent,
}

/// One piece of content: exactly one of `text`, `data`, `url`, `raw`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Part {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Base64 of the bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

impl Part {
    pub fn text(t: impl Into<String>) -> Part {
        Part {
            text: Some(t.into()),
            ..Part::default()
        }
    }

    pub fn data(v: Value) -> Part {
        Part {
            data: Some(v),
            media_type: Some("application/json".into()),
            ..Part::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Message {
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    pub role: Role,
    pub parts: Vec<Part>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_task_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<String>,
}

impl Message {
    /// An agent message in a task.
    pub fn agent(task: &Task, parts: Vec<Part>) -> Message {
        Message {
            message_id: new_id(),
            context_id: Some(task.context_id.clone()),
            task_id: Some(task.id.clone()),
            role: Role::Agent,
            parts,
            metadata: None,
            reference_task_ids: Vec::new(),
            extensions: Vec::new(),
        }
    }

    /// All text parts joined by newlines.
    pub fn text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| p.text.as_deref())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Artifact {
    pub artifact_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub parts: Vec<Part>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskStatus {
    pub state: TaskState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    /// RFC 3339, UTC.
    pub timestamp: String,
}

impl TaskStatus {
    pub fn now(state: TaskState, message: Option<Message>) -> TaskStatus {
        TaskStatus {
            state,
            message,
            timestamp: timestamp_now(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Task {
    pub id: String,
    pub context_id: String,
    pub status: TaskStatus,
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    #[serde(default)]
    pub history: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// The skill serving this task.
    pub skill: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl Task {
    pub fn new(context_id: String, skill: &str) -> Task {
        let now = store::now_ms();
        Task {
            id: new_id(),
            context_id,
            status: TaskStatus::now(TaskState::Submitted, None),
            artifacts: Vec::new(),
            history: Vec::new(),
            metadata: Some(serde_json::json!({ "skill": skill })),
            skill: skill.to_string(),
            created_ms: now,
            updated_ms: now,
        }
    }

    /// The last `n` messages of the history (`None`: all).
    pub fn with_history(mut self, n: Option<usize>) -> Task {
        if let Some(n) = n {
            let len = self.history.len();
            self.history.drain(..len.saturating_sub(n));
        }
        self
    }
}

/// A random RFC 4122 version-4 id.
pub fn new_id() -> String {
    let mut b = crate::secret::random_bytes::<16>().unwrap_or_else(|_| {
        let n = store::now_ms().to_le_bytes();
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&n);
        b
    });
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub fn timestamp_now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Write a task (create or update) for its owner.
pub async fn save_task(gw: &Gateway, owner: &str, task: &Task) -> Result<(), OpsError> {
    let mut task = task.clone();
    task.updated_ms = store::now_ms().max(task.updated_ms);
    let row = TaskRow {
        id: task.id.clone(),
        owner: owner.to_string(),
        context_id: task.context_id.clone(),
        skill: task.skill.clone(),
        state: task.status.state.as_str().to_string(),
        body: serde_json::to_string(&task)
            .map_err(|e| OpsError::InvalidInput(format!("task is not serializable: {e}")))?,
        created_ms: task.created_ms,
        updated_ms: task.updated_ms,
    };
    gw.store.write(move |tx| rows::save_task(tx, &row)).await?;
    Ok(())
}

fn decode(row: TaskRow) -> Result<Task, OpsError> {
    serde_json::from_str(&row.body)
        .map_err(|e| OpsError::InvalidInput(format!("stored task {} is unreadable: {e}", row.id)))
}

/// A task of this owner; another owner's task is not found.
pub async fn get_task(gw: &Gateway, owner: &str, id: &str) -> Result<Task, OpsError> {
    let (owner_s, id_s) = (owner.to_string(), id.to_string());
    match gw
        .store
        .read(move |c| rows::get_task(c, &owner_s, &id_s))
        .await?
    {
        Some(row) => decode(row),
        None => Err(OpsError::NotFound(format!("task {id}"))),
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct TaskQuery {
    #[serde(default)]
    pub context_id: Option<String>,
    #[serde(default)]
    pub state: Option<TaskState>,
    /// 1..=100, default 50.
    #[serde(default)]
    pub page_size: Option<u32>,
    #[serde(default)]
    pub page_token: Option<String>,
    /// Only tasks updated after this time (ms since the epoch).
    #[serde(default)]
    pub updated_after_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TaskPage {
    pub tasks: Vec<Task>,
    /// Empty on the last page.
    pub next_page_token: String,
    pub page_size: u32,
    pub total_size: u64,
}

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 100;

/// An owner's tasks, most recently updated first, by cursor pages.
pub async fn list_tasks(gw: &Gateway, owner: &str, q: TaskQuery) -> Result<TaskPage, OpsError> {
    let page_size = q.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    if page_size == 0 || page_size > MAX_PAGE_SIZE {
        return Err(OpsError::InvalidInput(format!(
            "pageSize must be between 1 and {MAX_PAGE_SIZE}"
        )));
    }
    let before = match q.page_token.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(parse_token(t).ok_or_else(|| {
            OpsError::InvalidInput(format!("pageToken {t:?} is not one this agent issued"))
        })?),
    };
    let filter = rows::TaskFilter {
        context_id: q.context_id.filter(|c| !c.is_empty()),
        state: q.state.map(|s| s.as_str().to_string()),
        updated_after_ms: q.updated_after_ms,
        before,
        limit: page_size as usize + 1,
    };
    let owner = owner.to_string();
    let (mut page, total) = gw
        .store
        .read(move |c| rows::list_tasks(c, &owner, &filter))
        .await?;
    let more = page.len() > page_size as usize;
    page.truncate(page_size as usize);
    let next_page_token = match (more, page.last()) {
        (true, Some(last)) => hex::encode(format!("{}:{}", last.updated_ms, last.id)),
        _ => String::new(),
    };
    Ok(TaskPage {
        tasks: page.into_iter().map(decode).collect::<Result<_, _>>()?,
        next_page_token,
        page_size,
        total_size: total,
    })
}

fn parse_token(t: &str) -> Option<(i64, String)> {
    let raw = String::from_utf8(hex::decode(t).ok()?).ok()?;
    let (ms, id) = raw.split_once(':')?;
    Some((ms.parse().ok()?, id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_v4_and_history_keeps_the_latest() {
        let id = new_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        let mut t = Task::new("c".into(), "health");
        for i in 0..5 {
            t.history.push(Message {
                message_id: i.to_string(),
                context_id: None,
                task_id: None,
                role: Role::User,
                parts: vec![Part::text(i.to_string())],
                metadata: None,
                reference_task_ids: vec![],
                extensions: vec![],
            });
        }
        let t2 = t.clone().with_history(Some(2));
        assert_eq!(
            t2.history
                .iter()
                .map(|m| m.message_id.as_str())
                .collect::<Vec<_>>(),
            ["3", "4"]
        );
        assert!(t.clone().with_history(Some(0)).history.is_empty());
        assert_eq!(t.with_history(None).history.len(), 5);
        assert_eq!(
            parse_token(&hex::encode("12:abc")),
            Some((12, "abc".into()))
        );
        assert!(TaskState::Canceled.is_terminal() && !TaskState::Working.is_terminal());
    }
}
