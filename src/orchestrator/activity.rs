//! An agent's `status` is `processing` while at least one generation uses it, and returns
//! to what it was afterwards — on success, failure, cancellation or a dropped request.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::watch;

use crate::{
    agents::{self, Agent},
    db::Db,
    error::Result,
};

#[derive(Default)]
pub struct AgentActivity {
    busy: Mutex<HashMap<i64, Busy>>,
}

/// An agent in use: its generations in flight, the status to return to, and the write
/// that marked it `processing` (its channel closes when the write is done).
struct Busy {
    generations: usize,
    resting: String,
    marked: watch::Receiver<()>,
}

/// Held while an agent works; `finish` (or, as a last resort, drop) restores its status.
pub struct Working {
    activity: Arc<AgentActivity>,
    db: Db,
    agent_id: i64,
    marked: watch::Receiver<()>,
    done: bool,
}

impl AgentActivity {
    /// Counts a generation in. The first marks the agent `processing` on a task of its own,
    /// so the provider is asked while the write commits (on PostgreSQL a commit waits for
    /// the disk); `Working::marked` waits for it before anything is shown to a client.
    pub fn begin(self: &Arc<Self>, db: &Db, agent: &Agent) -> Working {
        let mut busy = self.busy.lock().expect("activity lock");
        let entry = busy.entry(agent.id).or_insert_with(|| {
            let (written, marked) = watch::channel(());
            let (db, agent_id) = (db.clone(), agent.id);
            tokio::spawn(async move {
                set_status(&db, agent_id, "processing").await;
                drop(written);
            });
            let resting = if agent.status == "processing" {
                "active"
            } else {
                agent.status.as_str()
            };
            Busy {
                generations: 0,
                resting: resting.to_owned(),
                marked,
            }
        });
        entry.generations += 1;
        Working {
            activity: self.clone(),
            db: db.clone(),
            agent_id: agent.id,
            marked: entry.marked.clone(),
            done: false,
        }
    }

    /// The status to restore if this was the last generation using the agent.
    fn end(&self, agent_id: i64) -> Option<String> {
        let mut busy = self.busy.lock().expect("activity lock");
        let entry = busy.get_mut(&agent_id)?;
        entry.generations -= 1;
        (entry.generations == 0)
            .then(|| busy.remove(&agent_id).map(|busy| busy.resting))
            .flatten()
    }
}

impl Working {
    /// Returns once the agent's `processing` status is stored (or its write has failed).
    pub async fn marked(&self) {
        wait_written(self.marked.clone()).await;
    }

    pub async fn finish(mut self) {
        self.done = true;
        self.marked().await;
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
            let (db, agent_id, marked) = (self.db.clone(), self.agent_id, self.marked.clone());
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    wait_written(marked).await;
                    restore_status(&db, agent_id, &resting).await;
                });
            }
        }
    }
}

/// Nothing is ever sent on the channel, so `changed` returns only when it closes: when
/// the write is over.
async fn wait_written(mut marked: watch::Receiver<()>) {
    let _ = marked.changed().await;
}

/// No generation runs this long; an agent still `processing` after it was left so by a
/// crashed instance.
const STALE_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// Returns agents that a crashed instance left `processing` to `active`.
pub async fn recover_stale(db: &Db) -> Result<u64> {
    agents::store::reset_processing(db, STALE_AFTER).await
}

async fn set_status(db: &Db, agent_id: i64, status: &str) {
    logged(
        agent_id,
        agents::store::set_status(db, agent_id, status).await,
    );
}

/// Only an agent still `processing` (as we left it) gets its status back.
async fn restore_status(db: &Db, agent_id: i64, status: &str) {
    logged(
        agent_id,
        agents::store::restore_status(db, agent_id, status).await,
    );
}

/// Best effort: a failed status write is logged, never fails the chat.
fn logged(agent_id: i64, written: Result<()>) {
    if let Err(err) = written {
        tracing::warn!(agent_id, error = %err, "could not update agent status");
    }
}
