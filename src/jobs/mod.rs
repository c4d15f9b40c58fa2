//! The durable job queue (SPEC §6.1): work that must survive a crash — pull-request
//! reviews, WhatsApp replies, repository syncs — is a row in `jobs`, claimed by workers in
//! every instance under a lease. The queue knows nothing about what a job does.
//!
//! How a slice uses it:
//!
//! 1. **Enqueue in your own transaction**, so the job exists exactly when your record does:
//!    ```text
//!    let enqueued = in_transaction!(&state.db, |tx| {
//!        /* insert your rows with &mut *tx */
//!        jobs::enqueue(&mut *tx, &NewJob::new("github.review", json!({"review_id": id}))
//!            .dedupe_key(format!("review:{id}")))
//!            .await?
//!    })?;
//!    state.jobs.wake(&enqueued);   // after the commit: a local worker starts at once
//!    ```
//!    `enqueue` takes `&mut SqliteConnection` or `&mut PgConnection` (both arms of
//!    `in_transaction!` / `with_pool!`). A dedupe key makes the job unique per kind for
//!    as long as the job is kept (finished jobs go after `RETENTION_DAYS`, see 4.):
//!    [`Enqueued::Duplicate`] tells you it was already queued. `run_at` delays it.
//!    A serial key (`NewJob::serial_key`) makes jobs with that key run one at a time, on
//!    any instance, in the order they were queued (a pull request's reviews, a number's
//!    replies). Outside a transaction, [`Queue::enqueue`] does the same and wakes.
//! 2. **Register one handler per kind** at start-up (`app::run`) with its concurrency:
//!    `workers.register("github.review", 4, MyHandler { state })`, where `MyHandler`
//!    implements [`Handler`]. Other instances' jobs are found by polling
//!    (`JOB_POLL_INTERVAL_MS`); local ones start at once through [`Queue::wake`].
//! 3. **Answer an [`Outcome`]**: `Done`; `Retry` (backoff from ~2 s doubling to 10 min,
//!    with jitter, or exactly `after` — Retry-After, x-ratelimit-reset); `Failed(reason)`.
//!    After `JOB_MAX_ATTEMPTS` a retry becomes a failure. [`Handler::failed`] is called
//!    once before a job is marked failed, to update the slice's own record. Errors become
//!    outcomes through [`Stop`] (transient, permanent or skipped), never case by case.
//! 4. **Declare what your tables shed**: records that only dedupe or expire (deliveries,
//!    messages, codes) are deleted by the hourly [`RETENTION_JOB`] ([`retention`]). Give
//!    `workers.prune(…)` a [`Prune`] — the table, how long its rows are kept ([`Keep`])
//!    and the statement deleting one batch — in your `register_jobs`.
//!
//! Operators list, retry and cancel jobs with `codesherpa jobs` ([`admin`]); a slice
//! whose own record mirrors its job's state hears of it through [`Handler::failed`] and
//! [`Handler::retried`].
//!
//! Delivery is **at least once**: a handler may run again after a crash or a lost lease,
//! so every side effect must be idempotent. A running job's lease (`JOB_LEASE_SECONDS`)
//! is renewed while the handler works; if it is lost the handler is dropped mid-way.

pub mod admin;
mod backoff;
pub mod retention;
pub mod settings;
mod stop;
mod store;
mod worker;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio::sync::Notify;

pub use retention::{Keep, Prune, RETENTION_JOB};
pub use settings::Settings;
pub use stop::Stop;
pub use store::{enqueue, JobConnection};
pub use worker::{RunningWorkers, Workers};

use crate::{db::Db, http::metrics::Metrics};

/// The states `/metrics` counts for every kind.
const GAUGED_STATES: [&str; 3] = ["queued", "running", "failed"];

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A job to be queued.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub kind: String,
    pub payload: Value,
    pub dedupe_key: Option<String>,
    pub serial_key: Option<String>,
    pub run_at: Option<DateTime<Utc>>,
}

impl NewJob {
    pub fn new(kind: impl Into<String>, payload: Value) -> Self {
        NewJob {
            kind: kind.into(),
            payload,
            dedupe_key: None,
            serial_key: None,
            run_at: None,
        }
    }

    pub fn dedupe_key(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }

    /// Jobs with the same serial key never run at the same time and run in queue order.
    pub fn serial_key(mut self, key: impl Into<String>) -> Self {
        self.serial_key = Some(key.into());
        self
    }

    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }
}

/// Whether `enqueue` created a job or found the same (kind, dedupe key) already queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Enqueued {
    New { id: i64, kind: String },
    Duplicate { id: i64 },
}

impl Enqueued {
    pub fn id(&self) -> i64 {
        match self {
            Enqueued::New { id, .. } | Enqueued::Duplicate { id } => *id,
        }
    }

    pub fn is_new(&self) -> bool {
        matches!(self, Enqueued::New { .. })
    }
}

/// A claimed job, as a handler sees it.
#[derive(Clone, Debug)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: Value,
    pub dedupe_key: Option<String>,
    pub serial_key: Option<String>,
    /// 1 on the first run.
    pub attempt: u32,
    pub max_attempts: u32,
}

impl Job {
    /// True when a `Retry` from this run would end the job as failed instead.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}

/// What a handler reports about one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Try again later: after `after` when the remote said when, else with backoff.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Never retried; the reason is stored with the job.
    Failed(String),
}

impl Outcome {
    pub fn retry(reason: impl Into<String>) -> Self {
        Outcome::Retry {
            reason: reason.into(),
            after: None,
        }
    }

    pub fn retry_after(reason: impl Into<String>, after: Duration) -> Self {
        Outcome::Retry {
            reason: reason.into(),
            after: Some(after),
        }
    }

    pub fn failed(reason: impl Into<String>) -> Self {
        Outcome::Failed(reason.into())
    }
}

/// The work behind one job kind.
pub trait Handler: Send + Sync + 'static {
    fn run(&self, job: Job) -> BoxFuture<'static, Outcome>;

    /// Called once when the job is about to end as failed (a permanent failure or its
    /// last attempt), so the slice can record why.
    fn failed(&self, _job: Job, _reason: String) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }

    /// Called when an operator queues a failed job again, so the slice can reset its own
    /// record before the job runs.
    fn retried(&self, _job: Job) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// Registers the queue's own retention: finished jobs older than `RETENTION_DAYS`.
pub fn register_jobs(workers: &mut Workers) {
    workers.prune(store::PRUNE_FINISHED);
}

/// The queue as the rest of the application holds it (`state.jobs`).
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    config: Settings,
    metrics: Arc<Metrics>,
    /// Identifies this process's claims (with the attempt number, one claim exactly).
    worker_id: String,
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
    /// The kinds registered here, exported by `/metrics` even when no job of them exists.
    kinds: Mutex<BTreeSet<String>>,
}

impl Queue {
    pub fn new(db: Db, config: Settings, metrics: Arc<Metrics>) -> Self {
        Queue {
            inner: Arc::new(Inner {
                db,
                config,
                metrics,
                worker_id: uuid::Uuid::new_v4().to_string(),
                wakers: Mutex::default(),
                kinds: Mutex::default(),
            }),
        }
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn config(&self) -> &Settings {
        &self.inner.config
    }

    /// Queues a job in a transaction of its own and wakes a local worker.
    pub async fn enqueue(&self, job: &NewJob) -> Result<Enqueued, sqlx::Error> {
        let enqueued = crate::with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            let enqueued = enqueue(&mut *tx, job).await?;
            tx.commit().await?;
            enqueued
        });
        self.wake(&enqueued);
        Ok(enqueued)
    }

    /// Tells this instance's workers of a new job; call it after the enqueuing commit.
    pub fn wake(&self, enqueued: &Enqueued) {
        if let Enqueued::New { kind, .. } = enqueued {
            self.waker(kind).notify_one();
        }
    }

    fn waker(&self, kind: &str) -> Arc<Notify> {
        lock(&self.inner.wakers)
            .entry(kind.to_owned())
            .or_default()
            .clone()
    }

    fn know(&self, kind: &str) {
        lock(&self.inner.kinds).insert(kind.to_owned());
    }

    /// The `/metrics` registry the queue reports to.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Sets the `/metrics` gauges of queued, running and failed jobs for every kind and
    /// state, zeros included, so that a series never vanishes.
    pub async fn refresh_metrics(&self) -> Result<(), sqlx::Error> {
        let rows = store::counts(self.db()).await?;
        let mut kinds = lock(&self.inner.kinds).clone();
        kinds.extend(rows.iter().map(|(kind, _, _)| kind.clone()));
        let mut counts: BTreeMap<(String, String), i64> = kinds
            .iter()
            .flat_map(|kind| GAUGED_STATES.map(|state| ((kind.clone(), state.to_owned()), 0)))
            .collect();
        counts.extend(rows.into_iter().map(|(kind, state, n)| ((kind, state), n)));
        self.metrics()
            .set_jobs(counts.into_iter().map(|((k, s), n)| (k, s, n)));
        Ok(())
    }
}
