//! The queue's SQL. A claim is fenced by (id, locked_by, attempts): only the run that
//! claimed a job can renew, finish or hand it back, even after its lease was taken over.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::Value;
use sqlx::{types::Json, FromRow, PgConnection, SqliteConnection};

use super::{Enqueued, Keep, NewJob, Prune};
use crate::db::{now, Db};

/// A connection inside a write transaction, of either backend, that can change jobs:
/// `&mut *tx` of `in_transaction!` queues a job in the caller's own transaction.
pub trait JobConnection: Send {
    fn insert_job<'c>(
        &'c mut self,
        job: &'c NewJob,
    ) -> BoxFuture<'c, Result<Enqueued, sqlx::Error>>;

    /// Ends or hands back a claimed job; false when the claim is no longer ours.
    fn end_claim<'c>(
        &'c mut self,
        claim: &'c Claim,
        transition: &'c Transition<'c>,
    ) -> BoxFuture<'c, Result<bool, sqlx::Error>>;

    /// An operator's retry or cancel of job `id`; `None` when there is no such job.
    fn operate(
        &mut self,
        id: i64,
        operation: Operation,
    ) -> BoxFuture<'_, Result<Option<Operated>, sqlx::Error>>;
}

/// Queues `job` on `conn` (normally inside the caller's transaction). A (kind, dedupe key)
/// already present — also one being inserted by a concurrent transaction, which this
/// waits for — answers `Duplicate`.
pub async fn enqueue<C: JobConnection + ?Sized>(
    conn: &mut C,
    job: &NewJob,
) -> Result<Enqueued, sqlx::Error> {
    conn.insert_job(job).await
}

/// Orders everything done to one serial key's jobs on PostgreSQL (queueing, ending, an
/// operator's retry or cancel) until the transaction ends. Without it a job queued while
/// its predecessor ends could be held with nothing left to free it. SQLite's write
/// transactions (`BEGIN IMMEDIATE`) already run one at a time.
const LOCK_SERIAL_PG: &str = "SELECT pg_advisory_xact_lock(1786017, hashtext($1))";

/// Whether another job of the key waits or runs: a job queued (or retried) then is held
/// behind it. Two probes of the partial indexes.
fn key_busy(key: &str, own_id: &str) -> String {
    let other = |status| {
        format!(
            "EXISTS (SELECT 1 FROM jobs AS other WHERE other.serial_key = {key} \
             AND other.status = '{status}' AND other.id <> {own_id})"
        )
    };
    format!("({} OR {})", other("queued"), other("running"))
}

fn insert_sql() -> String {
    format!(
        "INSERT INTO jobs (serial_key, kind, payload, dedupe_key, status, attempts, run_at, \
         created_at, updated_at, held) VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $6, {}) \
         ON CONFLICT (kind, dedupe_key) DO NOTHING RETURNING id",
        key_busy("$1", "0")
    )
}
const FIND_DUPLICATE: &str = "SELECT id FROM jobs WHERE kind = $1 AND dedupe_key = $2";

/// Frees the key's next waiting job once the one before it has ended.
const FREE_NEXT: &str = "UPDATE jobs SET held = FALSE, updated_at = $2 WHERE id = \
                         (SELECT id FROM jobs WHERE serial_key = $1 AND status = 'queued' \
                         AND held ORDER BY id LIMIT 1)";

const FENCE: &str = "id = $1 AND locked_by = $2 AND attempts = $3 AND status = 'running'";
const END: &str = "UPDATE jobs SET status = $4, run_at = COALESCE($5, run_at), last_error = $6, \
                   attempts = attempts - $7, locked_by = NULL, locked_until = NULL, \
                   updated_at = $8 WHERE ";

const JOB_COLUMNS: &str = "id, kind, payload, dedupe_key, serial_key, status, attempts, held, \
                           run_at, last_error";
fn operation_sql(operation: Operation) -> String {
    match operation {
        Operation::Cancel => format!(
            "UPDATE jobs SET status = 'failed', last_error = $2, updated_at = $3 \
             WHERE id = $1 AND status = 'queued' RETURNING {JOB_COLUMNS}"
        ),
        Operation::Retry => format!(
            "UPDATE jobs SET status = 'queued', attempts = 0, run_at = $2, updated_at = $2, \
             held = (jobs.serial_key IS NOT NULL AND {}) WHERE id = $1 AND status = 'failed' \
             RETURNING {JOB_COLUMNS}",
            key_busy("jobs.serial_key", "jobs.id")
        ),
    }
}

/// The reason a job cancelled by an operator ends with.
pub const CANCELLED: &str = "cancelled by an operator";

macro_rules! impl_job_connection {
    ($connection:ty, $lock:expr) => {
        impl JobConnection for $connection {
            fn insert_job<'c>(
                &'c mut self,
                job: &'c NewJob,
            ) -> BoxFuture<'c, Result<Enqueued, sqlx::Error>> {
                Box::pin(async move {
                    if let (Some(lock), Some(key)) = ($lock, &job.serial_key) {
                        sqlx::query(lock).bind(key).execute(&mut *self).await?;
                    }
                    let now = now();
                    let inserted: Option<i64> = sqlx::query_scalar(&insert_sql())
                        .bind(&job.serial_key)
                        .bind(&job.kind)
                        .bind(Json(&job.payload))
                        .bind(&job.dedupe_key)
                        .bind(job.run_at.unwrap_or(now))
                        .bind(now)
                        .fetch_optional(&mut *self)
                        .await?;
                    if let Some(id) = inserted {
                        return Ok(Enqueued::New {
                            id,
                            kind: job.kind.clone(),
                        });
                    }
                    let id: i64 = sqlx::query_scalar(FIND_DUPLICATE)
                        .bind(&job.kind)
                        .bind(&job.dedupe_key)
                        .fetch_one(&mut *self)
                        .await?;
                    Ok(Enqueued::Duplicate { id })
                })
            }

            fn end_claim<'c>(
                &'c mut self,
                claim: &'c Claim,
                transition: &'c Transition<'c>,
            ) -> BoxFuture<'c, Result<bool, sqlx::Error>> {
                Box::pin(async move {
                    if let (Some(lock), Some(key)) = ($lock, &claim.serial_key) {
                        sqlx::query(lock).bind(key).execute(&mut *self).await?;
                    }
                    let now = now();
                    let (status, run_at, reason, uncount) = transition.columns(now);
                    let ended = sqlx::query(&format!("{END}{FENCE}"))
                        .bind(claim.id)
                        .bind(&claim.worker_id)
                        .bind(claim.attempts)
                        .bind(status)
                        .bind(run_at)
                        .bind(reason)
                        .bind(uncount)
                        .bind(now)
                        .execute(&mut *self)
                        .await?
                        .rows_affected()
                        == 1;
                    if let (true, true, Some(key)) =
                        (ended, transition.is_final(), &claim.serial_key)
                    {
                        sqlx::query(FREE_NEXT)
                            .bind(key)
                            .bind(now)
                            .execute(&mut *self)
                            .await?;
                    }
                    Ok(ended)
                })
            }

            fn operate(
                &mut self,
                id: i64,
                operation: Operation,
            ) -> BoxFuture<'_, Result<Option<Operated>, sqlx::Error>> {
                Box::pin(async move {
                    let select = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
                    let find = || sqlx::query_as::<_, JobRow>(&select).bind(id);
                    let Some(found) = find().fetch_optional(&mut *self).await? else {
                        return Ok(None);
                    };
                    if let (Some(lock), Some(key)) = ($lock, &found.serial_key) {
                        sqlx::query(lock).bind(key).execute(&mut *self).await?;
                    }
                    let now = now();
                    let sql = operation_sql(operation);
                    let query = sqlx::query_as::<_, JobRow>(&sql).bind(id);
                    let query = match operation {
                        Operation::Cancel => query.bind(CANCELLED).bind(now),
                        Operation::Retry => query.bind(now),
                    };
                    let changed = query.fetch_optional(&mut *self).await?;
                    let Some(job) = changed else {
                        // Read again under the key's lock: it may have moved meanwhile.
                        let job = find().fetch_one(&mut *self).await?;
                        return Ok(Some(Operated {
                            changed: false,
                            job,
                        }));
                    };
                    if let (Operation::Cancel, Some(key), false) =
                        (operation, &job.serial_key, job.held)
                    {
                        sqlx::query(FREE_NEXT)
                            .bind(key)
                            .bind(now)
                            .execute(&mut *self)
                            .await?;
                    }
                    Ok(Some(Operated { changed: true, job }))
                })
            }
        }
    };
}

impl_job_connection!(SqliteConnection, None::<&str>);
impl_job_connection!(PgConnection, Some(LOCK_SERIAL_PG));

/// Runs `$body` with `$conn`, a write transaction's connection of either backend, and
/// commits when it returns. (`in_transaction!` answers the API's error; the queue keeps
/// sqlx's, which its callers log.)
macro_rules! in_write_transaction {
    ($db:expr, |$conn:ident| $body:expr) => {
        match $db {
            Db::Sqlite(pool, ..) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let value = {
                    let $conn = &mut *tx;
                    $body
                };
                tx.commit().await?;
                value
            }
            Db::Postgres(pool, _) => {
                let mut tx = pool.begin().await?;
                let value = {
                    let $conn = &mut *tx;
                    $body
                };
                tx.commit().await?;
                value
            }
        }
    };
}

/// A job as operators see it.
#[derive(Clone, Debug, FromRow)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub payload: Json<Value>,
    pub dedupe_key: Option<String>,
    pub serial_key: Option<String>,
    pub status: String,
    pub attempts: i32,
    pub held: bool,
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// What an operator can do to a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A failed job queued again, its attempts reset.
    Retry,
    /// A queued job ended as failed.
    Cancel,
}

/// An operator's change: `changed` false when the job was not in the state it needs, and
/// `job` as it is now.
#[derive(Debug)]
pub struct Operated {
    pub changed: bool,
    pub job: JobRow,
}

/// Applies `operation` to job `id` in a transaction of its own.
pub async fn operate(
    db: &Db,
    id: i64,
    operation: Operation,
) -> Result<Option<Operated>, sqlx::Error> {
    Ok(in_write_transaction!(db, |conn| conn
        .operate(id, operation)
        .await?))
}

/// Job `id`, if there is one.
pub async fn find(db: &Db, id: i64) -> Result<Option<JobRow>, sqlx::Error> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
    crate::with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await)
}

/// Jobs newest first, filtered by state and kind.
pub async fn list(
    db: &Db,
    state: Option<&str>,
    kind: Option<&str>,
    limit: i64,
) -> Result<Vec<JobRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE ($1 IS NULL OR status = $1) \
         AND ($2 IS NULL OR kind = $2) ORDER BY id DESC LIMIT $3"
    );
    crate::with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(state)
        .bind(kind)
        .bind(limit)
        .fetch_all(pool)
        .await)
}

/// The identity of one claim of one job.
#[derive(Clone, Debug)]
pub struct Claim {
    pub id: i64,
    pub worker_id: String,
    pub attempts: i32,
    pub serial_key: Option<String>,
}

#[derive(FromRow)]
pub struct ClaimedRow {
    pub id: i64,
    pub kind: String,
    pub payload: Json<Value>,
    pub dedupe_key: Option<String>,
    pub serial_key: Option<String>,
    pub attempts: i32,
}

/// Which jobs a claim takes, in which order: first a running job whose lease ran out (its
/// worker died), then the oldest due job that is free to run. Each reads a partial index.
const CLAIMABLE: [(&str, &str); 2] = [
    (
        "status = 'running' AND locked_until < $2",
        "locked_until, id",
    ),
    (
        "status = 'queued' AND NOT held AND run_at <= $2",
        "run_at, id",
    ),
];

fn claim_sql((which, order): (&str, &str), lock: &str) -> String {
    format!(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = $3, \
         locked_until = $4, updated_at = $2 WHERE id = (SELECT id FROM jobs \
         WHERE kind = $1 AND {which} ORDER BY {order} LIMIT 1{lock}) \
         RETURNING id, kind, payload, dedupe_key, serial_key, attempts"
    )
}

/// Claims a job of `kind` for `lease`: one whose lease ran out, else the oldest due one.
pub async fn claim(
    db: &Db,
    kind: &str,
    worker_id: &str,
    lease: Duration,
) -> Result<Option<ClaimedRow>, sqlx::Error> {
    let now = now();
    let until = now + lease;
    match db {
        Db::Postgres(pool, _) => {
            for claimable in CLAIMABLE {
                let row = sqlx::query_as(&claim_sql(claimable, " FOR UPDATE SKIP LOCKED"))
                    .bind(kind)
                    .bind(now)
                    .bind(worker_id)
                    .bind(until)
                    .fetch_optional(pool)
                    .await?;
                if row.is_some() {
                    return Ok(row);
                }
            }
            Ok(None)
        }
        Db::Sqlite(pool, ..) => {
            // IMMEDIATE takes the write lock up front (waiting on busy_timeout), so the
            // claim never fails half-way with "database is locked".
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            let mut row = None;
            for claimable in CLAIMABLE {
                row = sqlx::query_as(&claim_sql(claimable, ""))
                    .bind(kind)
                    .bind(now)
                    .bind(worker_id)
                    .bind(until)
                    .fetch_optional(&mut *tx)
                    .await?;
                if row.is_some() {
                    break;
                }
            }
            tx.commit().await?;
            Ok(row)
        }
    }
}

/// Extends the lease; false when the claim is no longer ours.
pub async fn renew(db: &Db, claim: &Claim, lease: Duration) -> Result<bool, sqlx::Error> {
    let now = now();
    let sql = format!("UPDATE jobs SET locked_until = $4, updated_at = $5 WHERE {FENCE}");
    let done = crate::with_pool!(db, |pool| sqlx::query(&sql)
        .bind(claim.id)
        .bind(&claim.worker_id)
        .bind(claim.attempts)
        .bind(now + lease)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done == 1)
}

/// How a claim ends.
pub enum Transition<'a> {
    Done,
    Retry {
        at: DateTime<Utc>,
        reason: &'a str,
    },
    Failed(&'a str),
    /// Back to the queue at once, the attempt not counted (shutdown).
    HandBack,
}

impl Transition<'_> {
    /// (status, run_at, last_error, attempts given back) of the job after it.
    fn columns(
        &self,
        now: DateTime<Utc>,
    ) -> (&'static str, Option<DateTime<Utc>>, Option<&str>, i32) {
        match *self {
            Transition::Done => ("done", None, None, 0),
            Transition::Retry { at, reason } => ("queued", Some(at), Some(reason), 0),
            Transition::Failed(reason) => ("failed", None, Some(reason), 0),
            Transition::HandBack => ("queued", Some(now), None, 1),
        }
    }

    /// Whether the job has ended, so the next job of its serial key may run.
    fn is_final(&self) -> bool {
        matches!(self, Transition::Done | Transition::Failed(_))
    }
}

/// Applies `transition` to the claimed job; false when the claim is no longer ours.
pub async fn finish(
    db: &Db,
    claim: &Claim,
    transition: Transition<'_>,
) -> Result<bool, sqlx::Error> {
    Ok(in_write_transaction!(db, |conn| conn
        .end_claim(claim, &transition)
        .await?))
}

/// (kind, status, count) of queued, running and failed jobs.
pub async fn counts(db: &Db) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    const SQL: &str = "SELECT kind, status, COUNT(*) FROM jobs \
                       WHERE status IN ('queued', 'running', 'failed') GROUP BY kind, status";
    crate::with_pool!(db, |pool| sqlx::query_as(SQL).fetch_all(pool).await)
}

/// Finished jobs, by when they finished; queued and running ones are never touched.
pub const PRUNE_FINISHED: Prune = Prune {
    table: "jobs",
    keep: Keep::Retention,
    sql: "DELETE FROM jobs WHERE status IN ('done', 'failed') AND updated_at < $1 \
          AND id IN (SELECT id FROM jobs WHERE status IN ('done', 'failed') \
          AND updated_at < $1 ORDER BY updated_at LIMIT $2)",
};
