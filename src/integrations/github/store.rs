//! Deliveries and reviews in the database.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::{
    db::{now, Db},
    error::Result,
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
}

/// A project that may link a repository.
#[derive(Clone, Debug, FromRow)]
pub struct LinkedProject {
    pub id: i64,
    pub repo_url: String,
    pub auto_review: bool,
}

/// Verified projects whose `repo_url` may name `repository` (`owner/repo`, lower case),
/// earliest-verified first; the caller checks each URL exactly. Unverified and denied
/// projects never link: naming a repository proves nothing (SPEC §6.2).
pub async fn candidate_projects(db: &Db, repository: &str) -> Result<Vec<LinkedProject>> {
    const SQL: &str = "SELECT id, repo_url, auto_review FROM projects \
                       WHERE repo_access_status = 'verified' AND LOWER(repo_url) LIKE $1 \
                       ORDER BY repo_verified_at, id";
    let pattern = format!("%/{}%", repository.replace(['%', '_'], "%"));
    Ok(with_pool!(db, |pool| sqlx::query_as(SQL)
        .bind(pattern)
        .fetch_all(pool)
        .await)?)
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
                       r.head_sha, r.installation_id, r.status, r.chat_id \
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
