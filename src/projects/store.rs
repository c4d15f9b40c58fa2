//! Project queries; every one is scoped to its owner.

use crate::{
    db::{
        now, owned,
        page::{self, Value},
        Db,
    },
    error::Result,
    pagination::PageRequest,
    with_pool,
};

use super::{Project, RepoAccess};

const COLUMNS: &str = "id, user_id, name, description, repo_url, auto_review, created_at, \
                       updated_at, sync_status, sync_commit, sync_files, sync_skipped, synced_at, \
                       sync_reason, repo_access_status, repo_access_login, \
                       repo_access_checked_at, repo_access_reason";

/// The writable fields of a project, already validated.
pub struct ProjectFields {
    pub name: String,
    pub description: Option<String>,
    pub repo_url: Option<String>,
    pub auto_review: bool,
    /// Whether `repo_url` names a GitHub repository (its access starts unverified).
    pub on_github: bool,
}

/// A [`Project`] as its `Serialize` derive writes it, for SQLite's list pages.
const JSON: page::Fields = &[
    ("id", Value::Column("id")),
    ("user_id", Value::Column("user_id")),
    ("name", Value::Column("name")),
    ("description", Value::Column("description")),
    ("repo_url", Value::Column("repo_url")),
    ("auto_review", Value::Bool("auto_review")),
    ("created_at", Value::Time("created_at")),
    ("updated_at", Value::Time("updated_at")),
    (
        "sync",
        Value::Object(&[
            ("status", Value::Column("sync_status")),
            ("commit", Value::Column("sync_commit")),
            ("files", Value::Column("sync_files")),
            ("skipped", Value::Json("sync_skipped")),
            ("synced_at", Value::Time("synced_at")),
            ("reason", Value::Column("sync_reason")),
        ]),
    ),
    (
        "repo_access",
        Value::NullableObject(&[
            ("status", Value::Column("repo_access_status")),
            ("login", Value::Column("repo_access_login")),
            ("checked_at", Value::Time("repo_access_checked_at")),
            ("reason", Value::Column("repo_access_reason")),
        ]),
    ),
];

pub async fn list(db: &Db, user_id: i64, page: PageRequest) -> Result<page::Page> {
    owned::list::<Project>(db, "projects", COLUMNS, JSON, user_id, page).await
}

pub async fn get(db: &Db, user_id: i64, id: i64) -> Result<Option<Project>> {
    owned::get(db, "projects", COLUMNS, user_id, id).await
}

/// The access a new or changed `repo_url` starts with.
fn fresh_access(fields: &ProjectFields) -> Option<&'static str> {
    fields.on_github.then_some(RepoAccess::UNVERIFIED)
}

/// The user's project, or 404: another user's id is simply not found.
pub async fn owned(db: &Db, user_id: i64, id: i64) -> Result<Project> {
    get(db, user_id, id)
        .await?
        .ok_or(crate::error::Error::NotFound("Project"))
}

pub async fn create(db: &Db, user_id: i64, fields: ProjectFields) -> Result<Project> {
    let sql = format!(
        "INSERT INTO projects (user_id, name, description, repo_url, auto_review, created_at, \
         updated_at, repo_access_status) VALUES ($1, $2, $3, $4, $6, $5, $5, $7) \
         RETURNING {COLUMNS}"
    );
    let access = fresh_access(&fields);
    Ok(with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(user_id)
        .bind(&fields.name)
        .bind(&fields.description)
        .bind(&fields.repo_url)
        .bind(now())
        .bind(fields.auto_review)
        .bind(access)
        .fetch_one(pool)
        .await)?)
}

pub async fn update(
    db: &Db,
    user_id: i64,
    id: i64,
    fields: ProjectFields,
) -> Result<Option<Project>> {
    // A changed repo_url starts over: whatever was proven was proven for another URL.
    let sql = format!(
        "UPDATE projects SET name = $1, description = $2, updated_at = $4, auto_review = $7, \
         repo_access_status = CASE WHEN {same} THEN COALESCE(repo_access_status, $8) ELSE $8 END, \
         repo_access_login = CASE WHEN {same} THEN repo_access_login END, \
         repo_access_checked_at = CASE WHEN {same} THEN repo_access_checked_at END, \
         repo_access_reason = CASE WHEN {same} THEN repo_access_reason END, \
         repo_verified_at = CASE WHEN {same} THEN repo_verified_at END, \
         repo_url = $3 WHERE id = $5 AND user_id = $6 RETURNING {COLUMNS}",
        same = "repo_url IS NOT DISTINCT FROM $3"
    );
    let access = fresh_access(&fields);
    let sql = match db {
        // SQLite spells "not distinct" as IS.
        Db::Sqlite(..) => sql.replace("IS NOT DISTINCT FROM", "IS"),
        Db::Postgres(..) => sql,
    };
    Ok(with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(&fields.name)
        .bind(&fields.description)
        .bind(&fields.repo_url)
        .bind(now())
        .bind(id)
        .bind(user_id)
        .bind(fields.auto_review)
        .bind(access)
        .fetch_optional(pool)
        .await)?)
}

/// The outcome of a repository access check.
pub struct AccessCheck<'a> {
    pub status: &'static str,
    pub login: Option<&'a str>,
    pub reason: Option<&'a str>,
}

/// Records a check of `repo_url`'s access, unless the project's URL changed meanwhile
/// (then the check was for another repository and is dropped). The first verification is
/// kept as `repo_verified_at`: the earliest-verified project of a repository gets its
/// reviews.
pub async fn record_access(
    db: &Db,
    project_id: i64,
    repo_url: &str,
    check: AccessCheck<'_>,
) -> Result<Option<Project>> {
    let sql = format!(
        "UPDATE projects SET repo_access_status = $3, repo_access_login = $4, \
         repo_access_reason = $5, repo_access_checked_at = $6, \
         repo_verified_at = CASE WHEN $3 = 'verified' THEN COALESCE(repo_verified_at, $6) END \
         WHERE id = $1 AND repo_url = $2 RETURNING {COLUMNS}"
    );
    Ok(with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(project_id)
        .bind(repo_url)
        .bind(check.status)
        .bind(check.login)
        .bind(check.reason)
        .bind(now())
        .fetch_optional(pool)
        .await)?)
}

/// Withdraws every verification of the user's projects (their GitHub identity is gone).
pub async fn unverify_all(db: &Db, user_id: i64, reason: &str) -> Result<()> {
    const SQL: &str = "UPDATE projects SET repo_access_status = 'unverified', \
                       repo_access_reason = $2, repo_access_login = NULL, \
                       repo_verified_at = NULL WHERE user_id = $1 AND repo_access_status IS NOT NULL";
    with_pool!(db, |pool| sqlx::query(SQL)
        .bind(user_id)
        .bind(reason)
        .execute(pool)
        .await
        .map(drop))?;
    Ok(())
}

/// A project by id alone, for background work that acts for its owner.
pub async fn find(db: &Db, id: i64) -> Result<Option<Project>> {
    let sql = format!("SELECT {COLUMNS} FROM projects WHERE id = $1");
    Ok(with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

/// A verified project that may link a repository.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LinkedProject {
    pub id: i64,
    pub repo_url: String,
    pub auto_review: bool,
}

/// Verified projects whose `repo_url` may name `repository` (`owner/repo`, lower case),
/// earliest-verified first; the caller checks each URL exactly. Unverified and denied
/// projects never link: naming a repository proves nothing (SPEC §6.2).
pub async fn verified_linking(db: &Db, repository: &str) -> Result<Vec<LinkedProject>> {
    const SQL: &str = "SELECT id, repo_url, auto_review FROM projects \
                       WHERE repo_access_status = 'verified' AND LOWER(repo_url) LIKE $1 \
                       ORDER BY repo_verified_at, id";
    let pattern = format!("%/{}%", repository.replace(['%', '_'], "%"));
    Ok(with_pool!(db, |pool| sqlx::query_as(SQL)
        .bind(pattern)
        .fetch_all(pool)
        .await)?)
}

/// The user's projects that name a GitHub repository.
pub async fn on_github(db: &Db, user_id: i64) -> Result<Vec<Project>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM projects WHERE user_id = $1 AND repo_access_status IS NOT NULL \
         ORDER BY id"
    );
    Ok(with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(user_id)
        .fetch_all(pool)
        .await)?)
}

/// Deletes the project; the owner's chats that used it keep their text, unlinked.
pub async fn delete(db: &Db, user_id: i64, id: i64) -> Result<bool> {
    owned::delete(db, "projects", user_id, id).await
}
