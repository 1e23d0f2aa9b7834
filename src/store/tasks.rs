//! A2A task rows: one JSON document per task, scoped to the client key that
//! created it. The document's shape belongs to `ops::tasks`; the store only
//! keeps it and the columns used to filter and sort.

use super::StoreError;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    pub id: String,
    pub owner: String,
    pub context_id: String,
    pub skill: String,
    pub state: String,
    pub body: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// Which tasks a list asks for, newest update first.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub context_id: Option<String>,
    pub state: Option<String>,
    pub updated_after_ms: Option<i64>,
    /// Cursor: only rows strictly after this (updated_ms, id) in the order.
    pub before: Option<(i64, String)>,
    pub limit: usize,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TaskRow> {
    Ok(TaskRow {
        id: r.get(0)?,
        owner: r.get(1)?,
        context_id: r.get(2)?,
        skill: r.get(3)?,
        state: r.get(4)?,
        body: r.get(5)?,
        created_ms: r.get(6)?,
        updated_ms: r.get(7)?,
    })
}

const COLUMNS: &str = "id, owner, context_id, skill, state, body, created_ms, updated_ms";

/// Insert or replace a task; the owner of an existing row never changes.
pub fn save_task(tx: &Transaction<'_>, t: &TaskRow) -> Result<(), StoreError> {
    let changed = tx.execute(
        "INSERT INTO a2a_tasks (id, owner, context_id, skill, state, body, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET context_id = ?3, skill = ?4, state = ?5, body = ?6, updated_ms = ?8
         WHERE owner = ?2",
        params![
            t.id,
            t.owner,
            t.context_id,
            t.skill,
            t.state,
            t.body,
            t.created_ms,
            t.updated_ms
        ],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("task {}", t.id)));
    }
    Ok(())
}

/// A task as its owner sees it; another owner's task is `None`.
pub fn get_task(conn: &Connection, owner: &str, id: &str) -> Result<Option<TaskRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM a2a_tasks WHERE id = ?1 AND owner = ?2"),
            params![id, owner],
            row,
        )
        .optional()?)
}

/// One page of an owner's tasks and the number matching the filter overall.
pub fn list_tasks(
    conn: &Connection,
    owner: &str,
    f: &TaskFilter,
) -> Result<(Vec<TaskRow>, u64), StoreError> {
    let mut filter = String::from("owner = ?1");
    let mut args: Vec<rusqlite::types::Value> = vec![owner.to_string().into()];
    if let Some(c) = &f.context_id {
        args.push(c.clone().into());
        filter.push_str(&format!(" AND context_id = ?{}", args.len()));
    }
    if let Some(s) = &f.state {
        args.push(s.clone().into());
        filter.push_str(&format!(" AND state = ?{}", args.len()));
    }
    if let Some(after) = f.updated_after_ms {
        args.push(after.into());
        filter.push_str(&format!(" AND updated_ms > ?{}", args.len()));
    }
    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM a2a_tasks WHERE {filter}"),
        rusqlite::params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let mut page_filter = filter;
    if let Some((ms, id)) = &f.before {
        args.push((*ms).into());
        let a = args.len();
        args.push(id.clone().into());
        page_filter.push_str(&format!(
            " AND (updated_ms < ?{a} OR (updated_ms = ?{a} AND id < ?{}))",
            a + 1
        ));
    }
    args.push((f.limit as i64).into());
    let sql = format!(
        "SELECT {COLUMNS} FROM a2a_tasks WHERE {page_filter} ORDER BY updated_ms DESC, id DESC LIMIT ?{}",
        args.len()
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        super::super::migrate::run(&mut c, std::path::Path::new(":memory:")).unwrap();
        c
    }

    fn task(id: &str, owner: &str, ctx: &str, ms: i64) -> TaskRow {
        TaskRow {
            id: id.into(),
            owner: owner.into(),
            context_id: ctx.into(),
            skill: "health".into(),
            state: "completed".into(),
            body: "{}".into(),
            created_ms: ms,
            updated_ms: ms,
        }
    }

    #[test]
    fn tasks_are_scoped_to_their_owner_and_paged_newest_first() {
        let mut c = db();
        let tx = c.transaction().unwrap();
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            save_task(&tx, &task(id, "k1", "ctx1", i as i64)).unwrap();
        }
        save_task(&tx, &task("d", "k2", "ctx1", 9)).unwrap();
        // Another owner cannot overwrite a task it does not own.
        assert!(save_task(&tx, &task("a", "k2", "ctx1", 10)).is_err());
        tx.commit().unwrap();
        assert!(get_task(&c, "k2", "a").unwrap().is_none());
        assert_eq!(get_task(&c, "k1", "a").unwrap().unwrap().updated_ms, 0);
        let f = TaskFilter {
            limit: 2,
            ..Default::default()
        };
        let (page, total) = list_tasks(&c, "k1", &f).unwrap();
        assert_eq!(total, 3);
        assert_eq!(
            page.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            ["c", "b"]
        );
        let f = TaskFilter {
            limit: 2,
            before: Some((1, "b".into())),
            ..Default::default()
        };
        let (page, _) = list_tasks(&c, "k1", &f).unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].id, "a");
    }
}
