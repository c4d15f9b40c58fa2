//! The queue's SQL. A claim is fenced by (id, locked_by, attempts): only the run that
//! claimed a job can renew, finish or hand it back, even after its lease was taken over.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::Value;
use sqlx::{types::Json, FromRow, PgConnection, SqliteConnection};

use super::{Enqueued, Keep, NewJob, Prune};
use crate::db::{now, Db};

/// A connection that can queue a job: `&mut *tx` of either backend's transaction.
pub trait JobConnection: Send {
    fn insert_job<'c>(
        &'c mut self,
        job: &'c NewJob,
    ) -> BoxFuture<'c, Result<Enqueued, sqlx::Error>>;
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

const INSERT: &str = "INSERT INTO jobs (kind, payload, dedupe_key, status, attempts, run_at, \
                      created_at, updated_at) VALUES ($1, $2, $3, 'queued', 0, $4, $5, $5) \
                      ON CONFLICT (kind, dedupe_key) DO NOTHING RETURNING id";
const FIND_DUPLICATE: &str = "SELECT id FROM jobs WHERE kind = $1 AND dedupe_key = $2";

macro_rules! impl_job_connection {
    ($connection:ty) => {
        impl JobConnection for $connection {
            fn insert_job<'c>(
                &'c mut self,
                job: &'c NewJob,
            ) -> BoxFuture<'c, Result<Enqueued, sqlx::Error>> {
                Box::pin(async move {
                    let now = now();
                    let inserted: Option<i64> = sqlx::query_scalar(INSERT)
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
        }
    };
}

impl_job_connection!(SqliteConnection);
impl_job_connection!(PgConnection);

/// The identity of one claim of one job.
#[derive(Clone, Debug)]
pub struct Claim {
    pub id: i64,
    pub worker_id: String,
    pub attempts: i32,
}

#[derive(FromRow)]
pub struct ClaimedRow {
    pub id: i64,
    pub kind: String,
    pub payload: Json<Value>,
    pub dedupe_key: Option<String>,
    pub attempts: i32,
}

const CLAIMABLE: &str = "kind = $1 AND ((status = 'queued' AND run_at <= $2) \
                         OR (status = 'running' AND locked_until < $2))";

/// Claims the oldest due job of `kind` (or one whose lease ran out) for `lease`.
pub async fn claim(
    db: &Db,
    kind: &str,
    worker_id: &str,
    lease: Duration,
) -> Result<Option<ClaimedRow>, sqlx::Error> {
    let now = now();
    let until = now + lease;
    match db {
        Db::Postgres(pool) => {
            let sql = format!(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = $3, \
                 locked_until = $4, updated_at = $2 WHERE id = (SELECT id FROM jobs \
                 WHERE {CLAIMABLE} ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, kind, payload, dedupe_key, attempts"
            );
            sqlx::query_as(&sql)
                .bind(kind)
                .bind(now)
                .bind(worker_id)
                .bind(until)
                .fetch_optional(pool)
                .await
        }
        Db::Sqlite(pool, _) => {
            // IMMEDIATE takes the write lock up front (waiting on busy_timeout), so the
            // claim never fails half-way with "database is locked".
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            let sql = format!(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = $3, \
                 locked_until = $4, updated_at = $2 WHERE id = (SELECT id FROM jobs \
                 WHERE {CLAIMABLE} ORDER BY run_at, id LIMIT 1) \
                 RETURNING id, kind, payload, dedupe_key, attempts"
            );
            let row = sqlx::query_as(&sql)
                .bind(kind)
                .bind(now)
                .bind(worker_id)
                .bind(until)
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(row)
        }
    }
}

const FENCE: &str = "id = $1 AND locked_by = $2 AND attempts = $3 AND status = 'running'";

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

/// Applies `transition` to the claimed job; false when the claim is no longer ours.
pub async fn finish(
    db: &Db,
    claim: &Claim,
    transition: Transition<'_>,
) -> Result<bool, sqlx::Error> {
    let now = now();
    let (status, run_at, error, uncount) = match transition {
        Transition::Done => ("done", None, None, 0),
        Transition::Retry { at, reason } => ("queued", Some(at), Some(reason), 0),
        Transition::Failed(reason) => ("failed", None, Some(reason), 0),
        Transition::HandBack => ("queued", Some(now), None, 1),
    };
    let sql = format!(
        "UPDATE jobs SET status = $4, run_at = COALESCE($5, run_at), last_error = $6, \
         attempts = attempts - $7, locked_by = NULL, locked_until = NULL, updated_at = $8 \
         WHERE {FENCE}"
    );
    let done = crate::with_pool!(db, |pool| sqlx::query(&sql)
        .bind(claim.id)
        .bind(&claim.worker_id)
        .bind(claim.attempts)
        .bind(status)
        .bind(run_at)
        .bind(error)
        .bind(uncount)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done == 1)
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
