//! Agent queries; every one is scoped to its owner.

use chrono::TimeDelta;

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

use super::Agent;

const COLUMNS: &str =
    "id, user_id, name, description, status, role, system_prompt, model, created_at, updated_at";

/// The writable fields of an agent, already validated.
pub struct AgentFields {
    pub name: String,
    pub description: Option<String>,
    pub status: &'static str,
    pub role: String,
    pub system_prompt: Option<String>,
    pub model: Option<String>,
}

/// An [`Agent`] as its `Serialize` derive writes it, for SQLite's list pages.
const JSON: page::Fields = &[
    ("id", Value::Column("id")),
    ("user_id", Value::Column("user_id")),
    ("name", Value::Column("name")),
    ("description", Value::Column("description")),
    ("status", Value::Column("status")),
    ("role", Value::Column("role")),
    ("system_prompt", Value::Column("system_prompt")),
    ("model", Value::Column("model")),
    ("created_at", Value::Time("created_at")),
    ("updated_at", Value::Time("updated_at")),
];

pub async fn list(db: &Db, user_id: i64, page: PageRequest) -> Result<page::Page> {
    owned::list::<Agent>(db, "agents", COLUMNS, JSON, user_id, page).await
}

pub async fn get(db: &Db, user_id: i64, id: i64) -> Result<Option<Agent>> {
    owned::get(db, "agents", COLUMNS, user_id, id).await
}

/// The user's first agent with `role` (the built-in one unless they made another).
pub async fn by_role(db: &Db, user_id: i64, role: &str) -> Result<Option<Agent>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM agents WHERE user_id = $1 AND role = $2 ORDER BY id LIMIT 1"
    );
    Ok(with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(user_id)
        .bind(role)
        .fetch_optional(pool)
        .await)?)
}

/// The ids and names of the user's agents, for picking one by name.
pub async fn names(db: &Db, user_id: i64) -> Result<Vec<(i64, String)>> {
    Ok(with_pool!(db, |pool| sqlx::query_as(
        "SELECT id, name FROM agents WHERE user_id = $1"
    )
    .bind(user_id)
    .fetch_all(pool)
    .await)?)
}

/// Sets an agent's status (`processing` while it generates).
pub async fn set_status(db: &Db, id: i64, status: &str) -> Result<()> {
    let sql = "UPDATE agents SET status = $1, updated_at = $2 WHERE id = $3";
    write_status(db, id, status, sql).await
}

/// Compare and set: only an agent still `processing` gets `status`, so one the user chose
/// meanwhile (`PUT /agents/{id}`) is never overwritten.
pub async fn restore_status(db: &Db, id: i64, status: &str) -> Result<()> {
    let sql =
        "UPDATE agents SET status = $1, updated_at = $2 WHERE id = $3 AND status = 'processing'";
    write_status(db, id, status, sql).await
}

async fn write_status(db: &Db, id: i64, status: &str, sql: &'static str) -> Result<()> {
    Ok(with_pool!(db, |pool| sqlx::query(sql)
        .bind(status)
        .bind(now())
        .bind(id)
        .execute(pool)
        .await
        .map(drop))?)
}

/// Every agent `processing` for longer than `stale_after` becomes `active` again; returns
/// how many did.
pub async fn reset_processing(db: &Db, stale_after: TimeDelta) -> Result<u64> {
    let now = now();
    Ok(with_pool!(db, |pool| sqlx::query(
        "UPDATE agents SET status = 'active', updated_at = $1 \
         WHERE status = 'processing' AND updated_at < $2"
    )
    .bind(now)
    .bind(now - stale_after)
    .execute(pool)
    .await
    .map(|done| done.rows_affected()))?)
}

pub async fn create(db: &Db, user_id: i64, fields: AgentFields) -> Result<Agent> {
    let sql = format!(
        "INSERT INTO agents (user_id, name, description, status, role, system_prompt, model, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {COLUMNS}"
    );
    Ok(with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(user_id)
        .bind(fields.name)
        .bind(fields.description)
        .bind(fields.status)
        .bind(fields.role)
        .bind(fields.system_prompt)
        .bind(fields.model)
        .bind(now())
        .fetch_one(pool)
        .await)?)
}

/// `status_sent`: the status is written only when the request named one, so an edit of
/// other fields never writes back a `processing` read before a generation restored it.
pub async fn update(
    db: &Db,
    user_id: i64,
    id: i64,
    fields: AgentFields,
    status_sent: bool,
) -> Result<Option<Agent>> {
    let sql = format!(
        "UPDATE agents SET name = $1, description = $2, \
         status = CASE WHEN $10 THEN $3 ELSE status END, role = $4, \
         system_prompt = $5, model = $6, updated_at = $7 WHERE id = $8 AND user_id = $9 \
         RETURNING {COLUMNS}"
    );
    Ok(with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(fields.name)
        .bind(fields.description)
        .bind(fields.status)
        .bind(fields.role)
        .bind(fields.system_prompt)
        .bind(fields.model)
        .bind(now())
        .bind(id)
        .bind(user_id)
        .bind(status_sent)
        .fetch_optional(pool)
        .await)?)
}

pub async fn delete(db: &Db, user_id: i64, id: i64) -> Result<bool> {
    owned::delete(db, "agents", user_id, id).await
}
