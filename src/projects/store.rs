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

use super::Project;

const COLUMNS: &str = "id, user_id, name, description, repo_url, auto_review, created_at, \
                       updated_at, sync_status, sync_commit, sync_files, sync_skipped, synced_at, \
                       sync_reason";

/// The writable fields of a project, already validated.
pub struct ProjectFields {
    pub name: String,
    pub description: Option<String>,
    pub repo_url: Option<String>,
    pub auto_review: bool,
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
];

pub async fn list(db: &Db, user_id: i64, page: PageRequest) -> Result<page::Page> {
    owned::list::<Project>(db, "projects", COLUMNS, JSON, user_id, page).await
}

pub async fn get(db: &Db, user_id: i64, id: i64) -> Result<Option<Project>> {
    owned::get(db, "projects", COLUMNS, user_id, id).await
}

pub async fn create(db: &Db, user_id: i64, fields: ProjectFields) -> Result<Project> {
    let sql = format!(
        "INSERT INTO projects (user_id, name, description, repo_url, auto_review, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $6, $5, $5) RETURNING {COLUMNS}"
    );
    Ok(with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(user_id)
        .bind(fields.name)
        .bind(fields.description)
        .bind(fields.repo_url)
        .bind(now())
        .bind(fields.auto_review)
        .fetch_one(pool)
        .await)?)
}

pub async fn update(
    db: &Db,
    user_id: i64,
    id: i64,
    fields: ProjectFields,
) -> Result<Option<Project>> {
    let sql = format!(
        "UPDATE projects SET name = $1, description = $2, repo_url = $3, updated_at = $4, \
         auto_review = $7 WHERE id = $5 AND user_id = $6 RETURNING {COLUMNS}"
    );
    Ok(with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(fields.name)
        .bind(fields.description)
        .bind(fields.repo_url)
        .bind(now())
        .bind(id)
        .bind(user_id)
        .bind(fields.auto_review)
        .fetch_optional(pool)
        .await)?)
}

/// Deletes the project; the owner's chats that used it keep their text, unlinked.
pub async fn delete(db: &Db, user_id: i64, id: i64) -> Result<bool> {
    owned::delete(db, "projects", user_id, id).await
}
