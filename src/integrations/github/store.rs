//! Deliveries and reviews in the database.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::FromRow;
use tokio::sync::oneshot;
use utoipa::ToSchema;

use super::REVIEW_JOB;
use crate::{
    db::{now, together::Together, Db},
    error::{Error, Result},
    in_transaction,
    jobs::{self, Enqueued, Keep, NewJob, Prune},
    pagination::PageRequest,
    with_pool,
};

/// One review of a pull request, as the owner of the project sees it.
#[derive(Clone, Debug, Serialize, FromRow, ToSchema)]
#[schema(as = PullRequestReview)]
pub struct PullReview {
    pub id: i64,
    #[schema(example = "acme/payments-service")]
    pub repository: String,
    pub pull_number: i64,
    /// The head commit reviewed (empty until known for a `/codesherpa review` request).
    pub head_sha: String,
    #[schema(pattern = "^(queued|running|done|skipped|failed)$", example = "done")]
    pub status: String,
    #[schema(minimum = 0)]
    pub attempts: i32,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    pub comment_url: Option<String>,
    pub chat_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, repository, pull_number, head_sha, status, attempts, reason, \
                       comment_url, chat_id, created_at, updated_at";

/// What the review job needs besides the public fields.
#[derive(Clone, Debug, FromRow)]
pub struct ReviewTask {
    pub id: i64,
    pub project_id: i64,
    pub user_id: i64,
    pub repository: String,
    pub pull_number: i64,
    pub head_sha: String,
    pub installation_id: Option<i64>,
    pub status: String,
    pub chat_id: Option<i64>,
    /// `full` or `incremental` (the commits since the last review, when it is an ancestor).
    pub scope: String,
}

/// A pull request to review, as a delivery asks for it.
#[derive(Clone, Debug)]
pub struct Wanted {
    pub repository: String,
    pub pull_number: i64,
    /// Empty for a `/codesherpa review` comment: the job reads the current head.
    pub head_sha: String,
    pub installation_id: Option<i64>,
    /// `full` (opened, reopened, ready, `/codesherpa full review`) or `incremental`.
    pub scope: &'static str,
}

const INSERT_DELIVERY: &str = "INSERT INTO github_deliveries (delivery_id, event, received_at) \
                               VALUES ($1, $2, $3) ON CONFLICT (delivery_id) DO NOTHING";

/// Deliveries older than any redelivery: GitHub redelivers only on request, and only
/// deliveries of the last 3 days (7 on GitHub Enterprise Server).
pub const PRUNE_DELIVERIES: Prune = Prune {
    table: "github_deliveries",
    keep: Keep::Dedupe,
    sql: "DELETE FROM github_deliveries WHERE received_at < $1 AND delivery_id IN \
          (SELECT delivery_id FROM github_deliveries WHERE received_at < $1 \
          ORDER BY received_at LIMIT $2)",
};

/// Stores a delivery that asks for nothing more; true when this is the first time it is
/// seen.
pub async fn insert_delivery(db: &Db, delivery_id: &str, event: &str) -> Result<bool> {
    // On SQLite `in_transaction!` is IMMEDIATE: concurrent deliveries queue for the write
    // lock instead of failing with "database is locked".
    let inserted = in_transaction!(db, |tx| sqlx::query(INSERT_DELIVERY)
        .bind(delivery_id)
        .bind(event)
        .bind(now())
        .execute(&mut *tx)
        .await?
        .rows_affected())?;
    Ok(inserted == 1)
}

/// What [`write_review`] answers: the review and its job, or `None` for a repeated
/// delivery.
type Written = Option<(i64, Enqueued)>;

/// A delivery asking for a review, waiting to be written, and where its answer goes.
struct Asked {
    delivery_id: String,
    event: String,
    project_id: i64,
    wanted: Wanted,
    answer: oneshot::Sender<Result<Written>>,
}

/// Reviews written together, per database ([`Db::kept`]).
#[derive(Default)]
struct Writes(Together<Asked>);

/// How long a delivery waits for its write: a database that does not answer gets a 503,
/// well within GitHub's 10 s.
const WRITE_TIMEOUT: Duration = Duration::from_secs(8);
/// The most deliveries one transaction writes.
const WRITES_PER_TRANSACTION: usize = 256;

/// The delivery, the review and its job together; `None` for a repeated delivery.
///
/// Deliveries that arrive while a transaction is being written are written together by
/// the next one, in order: a burst of pushes is one commit (one flush of the log) per
/// round rather than one per delivery, and on PostgreSQL the reviews of one pull request
/// queue behind one lock per round (see `jobs::enqueue`). Each delivery is still written
/// once, with its review and job, atomically; a transaction that fails is written again
/// one delivery at a time, so that one bad delivery fails alone.
pub async fn write_review(
    db: &Db,
    delivery_id: &str,
    event: &str,
    project_id: i64,
    wanted: &Wanted,
) -> Result<Written> {
    let writes = db.kept(Writes::default);
    let (answer, written) = oneshot::channel();
    let asked = Asked {
        delivery_id: delivery_id.to_owned(),
        event: event.to_owned(),
        project_id,
        wanted: wanted.clone(),
        answer,
    };
    let db = db.clone();
    writes.0.ask(asked, WRITES_PER_TRANSACTION, move |batch| {
        let db = db.clone();
        async move { write_round(&db, batch).await }
    });
    match tokio::time::timeout(WRITE_TIMEOUT, written).await {
        Ok(answer) => answer.map_err(|_| Error::internal("the review writer stopped"))?,
        Err(_) => Err(Error::Unavailable("Service temporarily unavailable")),
    }
}

/// One round: the deliveries asked so far in one transaction, or one by one if it fails.
async fn write_round(db: &Db, batch: Vec<Asked>) {
    match write_together(db, &batch).await {
        Ok(written) => {
            for (asked, written) in batch.into_iter().zip(written) {
                // A request that went away meanwhile needs no answer.
                let _ = asked.answer.send(Ok(written));
            }
        }
        Err(err) if batch.len() == 1 => {
            if let Some(asked) = batch.into_iter().next() {
                let _ = asked.answer.send(Err(err));
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, deliveries = batch.len(),
                "writing deliveries together failed; writing them one by one");
            for asked in batch {
                let written = write_together(db, std::slice::from_ref(&asked))
                    .await
                    .map(|mut written| written.pop().flatten());
                let _ = asked.answer.send(written);
            }
        }
    }
}

/// The deliveries of `batch` in one transaction, each with its review and job. They are
/// written by pull request (in order of arrival within one), so that transactions lock
/// pull requests' queues in one order and never wait on each other in a circle.
async fn write_together(db: &Db, batch: &[Asked]) -> Result<Vec<Written>> {
    let keys: Vec<String> = batch
        .iter()
        .map(|asked| review_serial_key(&asked.wanted.repository, asked.wanted.pull_number))
        .collect();
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
    let deliveries_sql = format!(
        "INSERT INTO github_deliveries (delivery_id, event, received_at) VALUES {} \
         ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id",
        db.values(batch.len(), 3)
    );
    in_transaction!(db, |tx| {
        let now = now();
        let inserted: Vec<String> = batch
            .iter()
            .fold(sqlx::query_scalar(&deliveries_sql), |query, asked| {
                query.bind(&asked.delivery_id).bind(&asked.event).bind(now)
            })
            .fetch_all(&mut *tx)
            .await?;
        // A delivery repeated within the batch is new once, the first time it was asked.
        let mut inserted: HashSet<String> = inserted.into_iter().collect();
        let new: Vec<bool> = batch
            .iter()
            .map(|asked| inserted.remove(&asked.delivery_id))
            .collect();
        let reviewed: Vec<usize> = order.iter().copied().filter(|&at| new[at]).collect();
        let mut written: Vec<Written> = vec![None; batch.len()];
        if !reviewed.is_empty() {
            let reviews_sql = format!(
                "INSERT INTO reviews (project_id, delivery_id, repository, pull_number, \
                 head_sha, installation_id, scope, created_at, updated_at, status, attempts) \
                 VALUES {} RETURNING id, delivery_id",
                db.values(reviewed.len(), 11)
            );
            let rows: Vec<(i64, String)> = reviewed
                .iter()
                .map(|&at| &batch[at])
                .fold(sqlx::query_as(&reviews_sql), |query, asked| {
                    let wanted = &asked.wanted;
                    query
                        .bind(asked.project_id)
                        .bind(&asked.delivery_id)
                        .bind(&wanted.repository)
                        .bind(wanted.pull_number)
                        .bind(&wanted.head_sha)
                        .bind(wanted.installation_id)
                        .bind(wanted.scope)
                        .bind(now)
                        .bind(now)
                        .bind("queued")
                        .bind(0_i32)
                })
                .fetch_all(&mut *tx)
                .await?;
            let ids: HashMap<String, i64> = rows.into_iter().map(|(id, d)| (d, id)).collect();
            for &at in &reviewed {
                let review_id = *ids
                    .get(&batch[at].delivery_id)
                    .ok_or_else(|| Error::internal("a review missing from its insert"))?;
                // One review of a pull request at a time, in order: two can never both post.
                let job = NewJob::new(REVIEW_JOB, json!({ "review_id": review_id }))
                    .dedupe_key(format!("review:{review_id}"))
                    .serial_key(keys[at].clone());
                let enqueued = jobs::enqueue(&mut *tx, &job).await?;
                written[at] = Some((review_id, enqueued));
            }
        }
        written
    })
}

/// The delivery and a job it asks for together; `None` for a repeated delivery.
pub async fn write_job(
    db: &Db,
    delivery_id: &str,
    event: &str,
    job: &NewJob,
) -> Result<Option<Enqueued>> {
    in_transaction!(db, |tx| {
        let first = sqlx::query(INSERT_DELIVERY)
            .bind(delivery_id)
            .bind(event)
            .bind(now())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if first {
            Some(jobs::enqueue(&mut *tx, job).await?)
        } else {
            None
        }
    })
}

/// The serial key of a pull request's reviews, `github:{owner}/{repo}#{n}` (GitHub's
/// names are case-insensitive).
pub fn review_serial_key(repository: &str, pull_number: i64) -> String {
    format!("github:{}#{pull_number}", repository.to_ascii_lowercase())
}

/// The ids of the comments earlier reviews of this pull request posted (from their
/// `comment_url`, `…#issuecomment-{id}`).
pub async fn posted_comments(db: &Db, repository: &str, pull_number: i64) -> Result<Vec<i64>> {
    const SQL: &str = "SELECT comment_url FROM reviews WHERE LOWER(repository) = LOWER($1) \
                       AND pull_number = $2 AND comment_url IS NOT NULL";
    let urls: Vec<String> = with_pool!(db, |pool| sqlx::query_scalar(SQL)
        .bind(repository)
        .bind(pull_number)
        .fetch_all(pool)
        .await)?;
    Ok(urls
        .iter()
        .filter_map(|url| url.rsplit_once("#issuecomment-")?.1.parse().ok())
        .collect())
}

pub async fn task(db: &Db, id: i64) -> Result<Option<ReviewTask>> {
    const SQL: &str = "SELECT r.id, r.project_id, p.user_id, r.repository, r.pull_number, \
                       r.head_sha, r.installation_id, r.status, r.chat_id, r.scope \
                       FROM reviews r JOIN projects p ON p.id = r.project_id WHERE r.id = $1";
    Ok(with_pool!(db, |pool| sqlx::query_as(SQL)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

/// Changes of a review's row; `None` leaves a column as it is.
#[derive(Default)]
pub struct Update<'a> {
    pub status: Option<&'a str>,
    pub attempts: Option<i32>,
    pub reason: Option<Option<&'a str>>,
    pub head_sha: Option<&'a str>,
    pub comment_url: Option<&'a str>,
    pub chat_id: Option<i64>,
}

pub async fn update(db: &Db, id: i64, change: Update<'_>) -> Result<()> {
    const SQL: &str = "UPDATE reviews SET status = COALESCE($2, status), \
                       attempts = COALESCE($3, attempts), \
                       reason = CASE WHEN $4 THEN $5 ELSE reason END, \
                       head_sha = COALESCE($6, head_sha), \
                       comment_url = COALESCE($7, comment_url), \
                       chat_id = COALESCE($8, chat_id), updated_at = $9 WHERE id = $1";
    with_pool!(db, |pool| sqlx::query(SQL)
        .bind(id)
        .bind(change.status)
        .bind(change.attempts)
        .bind(change.reason.is_some())
        .bind(change.reason.flatten())
        .bind(change.head_sha)
        .bind(change.comment_url)
        .bind(change.chat_id)
        .bind(now())
        .execute(pool)
        .await
        .map(drop))?;
    Ok(())
}

/// The review is done, its comment at `comment_url`; `then` (the owner's WhatsApp
/// notification) is queued in the same transaction, so it exists exactly when the review
/// is done, also after a crash and a re-run.
pub async fn finish(
    db: &Db,
    id: i64,
    comment_url: &str,
    then: Option<&NewJob>,
) -> Result<Option<Enqueued>> {
    const SQL: &str = "UPDATE reviews SET status = 'done', reason = NULL, comment_url = $2, \
                       updated_at = $3 WHERE id = $1";
    in_transaction!(db, |tx| {
        sqlx::query(SQL)
            .bind(id)
            .bind(comment_url)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        match then {
            Some(job) => Some(jobs::enqueue(&mut *tx, job).await?),
            None => None,
        }
    })
}

pub async fn list(db: &Db, project_id: i64, page: PageRequest) -> Result<(Vec<PullReview>, i64)> {
    let sql = format!(
        "SELECT {COLUMNS} FROM reviews WHERE project_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3"
    );
    const COUNT: &str = "SELECT COUNT(*) FROM reviews WHERE project_id = $1";
    let (items, total) = with_pool!(db, |pool| {
        let items: Vec<PullReview> = sqlx::query_as(&sql)
            .bind(project_id)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(pool)
            .await?;
        let total: i64 = sqlx::query_scalar(COUNT)
            .bind(project_id)
            .fetch_one(pool)
            .await?;
        (items, total)
    });
    Ok((items, total))
}

/// The fingerprints of the findings already posted inline on this pull request.
pub async fn posted_fingerprints(
    db: &Db,
    repository: &str,
    pull_number: i64,
) -> Result<std::collections::HashSet<String>> {
    const SQL: &str =
        "SELECT fingerprint FROM review_findings WHERE repository = $1 AND pull_number = $2";
    let prints: Vec<String> = with_pool!(db, |pool| sqlx::query_scalar(SQL)
        .bind(repository.to_ascii_lowercase())
        .bind(pull_number)
        .fetch_all(pool)
        .await)?;
    Ok(prints.into_iter().collect())
}

/// Records findings posted inline by review `review_id` (again is harmless).
pub async fn record_fingerprints(
    db: &Db,
    repository: &str,
    pull_number: i64,
    review_id: i64,
    fingerprints: &[String],
) -> Result<()> {
    const SQL: &str = "INSERT INTO review_findings (repository, pull_number, fingerprint, \
                       review_id, created_at) VALUES ($1, $2, $3, $4, $5) \
                       ON CONFLICT (repository, pull_number, fingerprint) DO NOTHING";
    let repository = repository.to_ascii_lowercase();
    in_transaction!(db, |tx| {
        let now = now();
        for print in fingerprints {
            sqlx::query(SQL)
                .bind(&repository)
                .bind(pull_number)
                .bind(print)
                .bind(review_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
    })?;
    Ok(())
}

/// The delivery of `/codesherpa pause` (true) or `resume` (false) and its effect
/// together: automatic reviews of the pull request off or on. False for a repeated
/// delivery, which changes nothing (an old pause redelivered never undoes a resume).
pub async fn write_pause(
    db: &Db,
    delivery_id: &str,
    event: &str,
    (repository, pull_number): (&str, i64),
    paused: bool,
) -> Result<bool> {
    const PAUSE: &str = "INSERT INTO paused_pulls (repository, pull_number, paused_at) \
                         VALUES ($1, $2, $3) ON CONFLICT (repository, pull_number) DO NOTHING";
    const RESUME: &str = "DELETE FROM paused_pulls WHERE repository = $1 AND pull_number = $2";
    let repository = repository.to_ascii_lowercase();
    in_transaction!(db, |tx| {
        let now = now();
        let first = sqlx::query(INSERT_DELIVERY)
            .bind(delivery_id)
            .bind(event)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if first {
            let query = if paused {
                sqlx::query(PAUSE)
                    .bind(&repository)
                    .bind(pull_number)
                    .bind(now)
            } else {
                sqlx::query(RESUME).bind(&repository).bind(pull_number)
            };
            query.execute(&mut *tx).await?;
        }
        first
    })
}

/// Whether automatic reviews of the pull request are paused.
pub async fn is_paused(db: &Db, repository: &str, pull_number: i64) -> Result<bool> {
    const SQL: &str =
        "SELECT COUNT(*) FROM paused_pulls WHERE repository = $1 AND pull_number = $2";
    let count: i64 = with_pool!(db, |pool| sqlx::query_scalar(SQL)
        .bind(repository.to_ascii_lowercase())
        .bind(pull_number)
        .fetch_one(pool)
        .await)?;
    Ok(count > 0)
}

/// The head the last finished review of this pull request before review `before` read.
pub async fn last_reviewed_head(
    db: &Db,
    repository: &str,
    pull_number: i64,
    before: i64,
) -> Result<Option<String>> {
    const SQL: &str = "SELECT head_sha FROM reviews WHERE LOWER(repository) = LOWER($1) \
                       AND pull_number = $2 AND id < $3 AND status = 'done' AND head_sha <> '' \
                       ORDER BY id DESC LIMIT 1";
    Ok(with_pool!(db, |pool| sqlx::query_scalar(SQL)
        .bind(repository)
        .bind(pull_number)
        .bind(before)
        .fetch_optional(pool)
        .await)?)
}
