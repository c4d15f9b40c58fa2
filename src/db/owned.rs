//! Queries shared by every resource that belongs to one user (agents, projects): the
//! owner is always part of the condition, so another user's id simply matches nothing.

use sqlx::{postgres::PgRow, sqlite::SqliteRow, FromRow};

use serde::Serialize;

use super::{page, Db};
use crate::{error::Result, pagination::PageRequest, with_pool};

/// A row type readable from both backends.
pub trait Row: Send + Unpin + for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> {}

impl<T: Send + Unpin + for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow>> Row for T {}

/// A page of the owner's rows of `table`, newest first, with how many there are in all
/// (see [`page`]). `table` and `columns` are constants of the calling module, never user
/// input; `fields` describes the same item as `T` for SQLite's JSON.
pub async fn list<T: Row + Serialize>(
    db: &Db,
    table: &str,
    columns: &str,
    fields: page::Fields,
    user_id: i64,
    request: PageRequest,
) -> Result<page::Page> {
    let from_where = format!("FROM {table} WHERE user_id = $1");
    let query = page::PageQuery {
        from_where: &from_where,
        columns,
        fields,
        order: page::Order::NewestFirst,
        next: 2,
    };
    crate::fetch_page!(db, T, query, user_id, request.limit, request.offset)
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
