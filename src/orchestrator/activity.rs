//! An agent's `status` is `processing` while at least one generation uses it, and returns
//! to what it was afterwards — on success, failure, cancellation or a dropped request.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::{agents::Agent, db::now, db::Db, with_pool};

#[derive(Default)]
pub struct AgentActivity {
    /// agent id → (generations in flight, status to return to)
    busy: Mutex<HashMap<i64, (usize, String)>>,
}

/// Held while an agent works; `finish` (or, as a last resort, drop) restores its status.
pub struct Working {
    activity: Arc<AgentActivity>,
    db: Db,
    agent_id: i64,
    done: bool,
}

impl AgentActivity {
    pub async fn begin(self: &Arc<Self>, db: &Db, agent: &Agent) -> Working {
        let first = {
            let mut busy = self.busy.lock().expect("activity lock");
            let entry = busy.entry(agent.id).or_insert_with(|| {
                let resting = if agent.status == "processing" {
                    "active"
                } else {
                    agent.status.as_str()
                };
                (0, resting.to_owned())
            });
            entry.0 += 1;
            entry.0 == 1
        };
        if first {
            set_status(db, agent.id, "processing").await;
        }
        Working {
            activity: self.clone(),
            db: db.clone(),
            agent_id: agent.id,
            done: false,
        }
    }

    /// The status to restore if this was the last generation using the agent.
    fn end(&self, agent_id: i64) -> Option<String> {
        let mut busy = self.busy.lock().expect("activity lock");
        let entry = busy.get_mut(&agent_id)?;
        entry.0 -= 1;
        (entry.0 == 0)
            .then(|| busy.remove(&agent_id).map(|(_, resting)| resting))
            .flatten()
    }
}

impl Working {
    pub async fn finish(mut self) {
        self.done = true;
        if let Some(resting) = self.activity.end(self.agent_id) {
            restore_status(&self.db, self.agent_id, &resting).await;
        }
    }
}

impl Drop for Working {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(resting) = self.activity.end(self.agent_id) {
            let (db, agent_id) = (self.db.clone(), self.agent_id);
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { restore_status(&db, agent_id, &resting).await });
            }
        }
    }
}

/// No generation runs this long; an agent still `processing` after it was left so by a
/// crashed instance.
const STALE_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// Returns agents that a crashed instance left `processing` to `active`.
pub async fn recover_stale(db: &Db) -> Result<u64, sqlx::Error> {
    let now = now();
    with_pool!(db, |pool| sqlx::query(
        "UPDATE agents SET status = 'active', updated_at = $1 \
         WHERE status = 'processing' AND updated_at < $2"
    )
    .bind(now)
    .bind(now - STALE_AFTER)
    .execute(pool)
    .await
    .map(|done| done.rows_affected()))
}

/// Best effort: a failed status write is logged, never fails the chat.
async fn set_status(db: &Db, agent_id: i64, status: &str) {
    write_status(
        db,
        agent_id,
        status,
        "UPDATE agents SET status = $1, updated_at = $2 WHERE id = $3",
    )
    .await
}

/// Compare and set: only an agent still `processing` (as we left it) gets its status back,
/// so a status the user chose meanwhile (`PUT /agents/{id}`) is never overwritten.
async fn restore_status(db: &Db, agent_id: i64, status: &str) {
    write_status(
        db,
        agent_id,
        status,
        "UPDATE agents SET status = $1, updated_at = $2 WHERE id = $3 AND status = 'processing'",
    )
    .await
}

async fn write_status(db: &Db, agent_id: i64, status: &str, sql: &'static str) {
    let result = with_pool!(db, |pool| sqlx::query(sql)
        .bind(status)
        .bind(now())
        .bind(agent_id)
        .execute(pool)
        .await
        .map(drop));
    if let Err(err) = result {
        tracing::warn!(agent_id, error = %err, "could not update agent status");
    }
}
