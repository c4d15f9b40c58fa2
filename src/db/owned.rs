//! Queries shared by every resource that belongs to one user (agents, projects): the
//! owner is always part of the condition, so another user's id simply matches nothing.

use sqlx::{postgres::PgRow, sqlite::SqliteRow, FromRow};

use super::{json, Db};
use crate::{error::Result, pagination::PageRequest, with_pool};

/// A row type readable from both backends.
pub trait Row: Send + Unpin + for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> {}

impl<T: Send + Unpin + for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow>> Row for T {}

/// A page of the owner's rows of `table`, newest first, as JSON built by the database
/// (see [`json`]), with how many there are in all. `table` is a constant of the calling
/// module, never user input.
pub async fn list(
    db: &Db,
    table: &str,
    fields: json::Fields,
    user_id: i64,
    page: PageRequest,
) -> Result<json::Page> {
    let sql = db.page_sql(
        &format!("FROM {table} WHERE user_id = $1"),
        fields,
        json::Order::NewestFirst,
        2,
    );
    let (total, items) = with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(user_id)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_one(pool)
        .await)?;
    Ok(json::Page { items, total })
}

pub async fn get<T: Row>(
    db: &Db,
    table: &str,
    columns: &str,
    user_id: i64,
    id: i64,
) -> Result<Option<T>> {
    let sql = format!("SELECT {columns} FROM {table} WHERE id = $1 AND user_id = $2");
    Ok(with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .bind(user_id)
        .fetch_optional(pool)
        .await)?)
}

/// Whether the owner had such a row (and now has not).
pub async fn delete(db: &Db, table: &str, user_id: i64, id: i64) -> Result<bool> {
    let sql = format!("DELETE FROM {table} WHERE id = $1 AND user_id = $2");
    let affected = with_pool!(db, |pool| sqlx::query(&sql)
        .bind(id)
        .bind(user_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(affected == 1)
}
