//! List pages: one statement per page, answered as the page's items in JSON text with the
//! number of matching rows, which the route writes into the envelope as it is.
//!
//! How the items become JSON depends on the backend, after profiling both
//! (bench/README.md, "List pages"):
//! - **SQLite** writes them itself (`json_object` per row, joined in one row). Read through
//!   sqlx, every row is a hand-off from the connection's worker thread to the request's
//!   task, plus a decode and a re-encode of each field; those hand-offs were most of a
//!   list request's cost.
//! - **PostgreSQL** sends rows, total included, and serde writes them: PostgreSQL's JSON
//!   functions cost it more than the rows themselves, and its rows arrive in one read.
//!
//! SQLite's text must be what serde writes for the same struct, so each resource also
//! describes its fields in [`Fields`], in its `Serialize` order; the tests compare every
//! listed item with the same item read alone (serialised by serde), on both backends.

use serde::Serialize;
use sqlx::{postgres::PgRow, FromRow, Row as _};

use crate::error::{Error, Result};

/// How one field of an item is written by SQLite.
pub enum Value {
    /// The column as it is: a number, a string or null.
    Column(&'static str),
    /// A boolean column (stored as 0 or 1).
    Bool(&'static str),
    /// A timestamp column. sqlx stores `DateTime<Utc>` as chrono's RFC 3339 text with the
    /// fraction digits serde writes, and `+00:00` where serde writes `Z`.
    Time(&'static str),
    /// A column holding JSON text, or null.
    Json(&'static str),
    /// A nested object.
    Object(Fields),
}

/// An item's fields: JSON key and how to write it.
pub type Fields = &'static [(&'static str, Value)];

/// The order of a page's items, by id.
#[derive(Clone, Copy)]
pub enum Order {
    NewestFirst,
    OldestFirst,
}

/// A page: the items as a JSON array, and how many rows match in all.
pub struct Page {
    pub items: String,
    pub total: i64,
}

/// One page of `from_where` (`FROM … WHERE …`). Its `LIMIT` and `OFFSET` are the
/// placeholders `$next` and `$next + 1`, after the ones `from_where` uses.
pub struct PageQuery<'a> {
    pub from_where: &'a str,
    /// The columns of the row type, for PostgreSQL.
    pub columns: &'a str,
    /// The same item for SQLite's JSON.
    pub fields: Fields,
    pub order: Order,
    pub next: u8,
}

impl PageQuery<'_> {
    fn direction(&self) -> &'static str {
        match self.order {
            Order::NewestFirst => "DESC",
            Order::OldestFirst => "ASC",
        }
    }

    fn limit_offset(&self) -> String {
        format!("LIMIT ${} OFFSET ${}", self.next, self.next + 1)
    }

    /// One row: the total and the items' JSON array.
    pub fn sqlite(&self) -> String {
        let (from_where, direction) = (self.from_where, self.direction());
        // The aggregate orders its input itself: a subquery's order is not promised to
        // reach it. (Aggregate ORDER BY needs SQLite 3.44; the bundled one is newer.)
        format!(
            "SELECT (SELECT COUNT(*) {from_where}), \
             (SELECT '[' || COALESCE(group_concat(item, ',' ORDER BY id {direction}), '') || ']' \
             FROM (SELECT id, {item} AS item {from_where} ORDER BY id {direction} {page}))",
            item = json_object(self.fields),
            page = self.limit_offset(),
        )
    }

    /// The page's rows, each with the total; one row of nulls and the total when the page
    /// is empty. Read as [`Counted`].
    pub fn postgres(&self) -> String {
        let (from_where, direction) = (self.from_where, self.direction());
        format!(
            "SELECT total.page_total, page.* FROM (SELECT COUNT(*) AS page_total {from_where}) total \
             LEFT JOIN (SELECT {columns} {from_where} ORDER BY id {direction} {page}) page ON TRUE \
             ORDER BY page.id {direction}",
            columns = self.columns,
            page = self.limit_offset(),
        )
    }
}

/// Reads one [`PageQuery`] on either backend as a [`Page`], binding the placeholders in
/// order; `$row` is the item's row type, which PostgreSQL's rows decode into.
#[macro_export]
macro_rules! fetch_page {
    ($db:expr, $row:ty, $query:expr, $($bind:expr),+ $(,)?) => {{
        let query = &$query;
        match $db {
            $crate::db::Db::Sqlite(pool) => {
                let (total, items): (i64, String) = sqlx::query_as(&query.sqlite())
                    $(.bind($bind))+
                    .fetch_one(pool)
                    .await?;
                Ok::<_, $crate::error::Error>($crate::db::page::Page { items, total })
            }
            $crate::db::Db::Postgres(pool) => {
                let rows: Vec<$crate::db::page::Counted<$row>> = sqlx::query_as(&query.postgres())
                    $(.bind($bind))+
                    .fetch_all(pool)
                    .await?;
                $crate::db::page::from_rows(rows)
            }
        }
    }};
}

/// A PostgreSQL page row: the total, and the item unless the page is empty.
pub struct Counted<T> {
    total: i64,
    item: Option<T>,
}

impl<'r, T: FromRow<'r, PgRow>> FromRow<'r, PgRow> for Counted<T> {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let id: Option<i64> = row.try_get("id")?;
        Ok(Counted {
            total: row.try_get("page_total")?,
            item: id.map(|_| T::from_row(row)).transpose()?,
        })
    }
}

pub fn from_rows<T: Serialize>(rows: Vec<Counted<T>>) -> Result<Page> {
    let total = rows.first().map_or(0, |row| row.total);
    let items: Vec<T> = rows.into_iter().filter_map(|row| row.item).collect();
    let items = serde_json::to_string(&items).map_err(|err| Error::Internal(err.to_string()))?;
    Ok(Page { items, total })
}

/// A JSON object of `fields`, as an SQLite expression.
fn json_object(fields: Fields) -> String {
    let members = fields
        .iter()
        .map(|(key, value)| format!("'{key}', {}", json_value(value)))
        .collect::<Vec<_>>()
        .join(", ");
    format!("json_object({members})")
}

fn json_value(value: &Value) -> String {
    match value {
        Value::Column(column) => (*column).to_owned(),
        Value::Object(fields) => json_object(fields),
        Value::Bool(column) => format!("json(iif({column}, 'true', 'false'))"),
        Value::Json(column) => format!("json({column})"),
        Value::Time(column) => format!("replace({column}, '+00:00', 'Z')"),
    }
}
