//! List pages: one statement per page, answered as the page's items in JSON text with the
//! number of matching rows, which the route writes into the envelope as it is.
//!
//! How the items become JSON depends on the backend, after profiling both
//! (bench/README.md, "List pages"):
//! - **SQLite** pages are read on a reader thread with rusqlite ([`super::reader`]): the
//!   count and the rows in one go, each row written as JSON straight from SQLite's values.
//!   Read through sqlx, every row is a hand-off from the connection's worker thread to the
//!   request's task, plus a decode and a re-encode of each field.
//! - **PostgreSQL** sends rows, total included, and serde writes them: PostgreSQL's JSON
//!   functions cost it more than the rows themselves, and its rows arrive in one read.
//!
//! SQLite's text must be what serde writes for the same struct, so each resource also
//! describes its fields in [`Fields`], in its `Serialize` order; the tests compare every
//! listed item with the same item read alone (serialised by serde), on both backends.

use rusqlite::types::{Type, ValueRef};
use serde::{de::IgnoredAny, Serialize};
use sqlx::{postgres::PgRow, FromRow, Row as _};

use super::reader::{self, Readers};
use crate::error::{Error, Result};

/// Which rows of a list a page holds: `limit` rows after the first `offset`.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    pub limit: i64,
    pub offset: i64,
}

/// How one field of an item is written from its SQLite column.
pub enum Value {
    /// The column as it is: a number, a string or null.
    Column(&'static str),
    /// A boolean column (stored as 0 or 1).
    Bool(&'static str),
    /// A timestamp column. sqlx stores `DateTime<Utc>` as chrono's RFC 3339 text with the
    /// fraction digits serde writes, and `+00:00` where serde writes `Z`.
    Time(&'static str),
    /// A column holding JSON text (as serde_json writes it), or null.
    Json(&'static str),
    /// A nested object.
    Object(Fields),
    /// A nested object, or null when its first column is null.
    NullableObject(Fields),
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

    /// The count, then the page's rows with the columns of `fields`, in their order.
    fn sqlite(&self) -> (String, String) {
        let mut columns = Vec::new();
        column_names(self.fields, &mut columns);
        (
            format!("SELECT COUNT(*) {}", self.from_where),
            format!(
                "SELECT {} {} ORDER BY id {} {}",
                columns.join(", "),
                self.from_where,
                self.direction(),
                self.limit_offset()
            ),
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
            $crate::db::Db::Sqlite(_, readers, _) => {
                let params = vec![$(rusqlite::types::Value::from(($bind).to_owned())),+];
                $crate::db::page::read_sqlite(readers, query, params).await
            }
            $crate::db::Db::Postgres(pool, _) => {
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

/// Reads one page on SQLite, binding `params` to `$1`, `$2`…
pub async fn read_sqlite(
    readers: &Readers,
    query: &PageQuery<'_>,
    params: Vec<rusqlite::types::Value>,
) -> Result<Page> {
    let (count_sql, rows_sql) = query.sqlite();
    let fields = query.fields;
    readers
        .read(move |conn| {
            // One snapshot for the count and the rows (ended, read-only, when it drops).
            let _snapshot = conn.unchecked_transaction()?;
            let mut count = conn.prepare_cached(&count_sql)?;
            reader::bind(&mut count, &params)?;
            let total: i64 = match count.raw_query().next()? {
                Some(row) => row.get(0)?,
                None => 0,
            };
            let mut statement = conn.prepare_cached(&rows_sql)?;
            reader::bind(&mut statement, &params)?;
            let mut rows = statement.raw_query();
            let mut items = Vec::with_capacity(16 * 1024);
            items.push(b'[');
            while let Some(row) = rows.next()? {
                if items.len() > 1 {
                    items.push(b',');
                }
                write_object(&mut items, fields, row, &mut 0)?;
            }
            items.push(b']');
            // Only serde_json wrote into `items`, from SQLite's (UTF-8) text.
            let items = String::from_utf8(items)
                .map_err(|err| rusqlite::Error::Utf8Error(err.utf8_error()))?;
            Ok(Page { items, total })
        })
        .await
}

fn column_names(fields: Fields, names: &mut Vec<&'static str>) {
    for (_, value) in fields {
        match value {
            Value::Object(nested) | Value::NullableObject(nested) => column_names(nested, names),
            Value::Column(name) | Value::Bool(name) | Value::Time(name) | Value::Json(name) => {
                names.push(name)
            }
        }
    }
}

/// Writes `fields` from `row`, whose columns follow [`column_names`] from `column` on.
fn write_object(
    out: &mut Vec<u8>,
    fields: Fields,
    row: &rusqlite::Row<'_>,
    column: &mut usize,
) -> rusqlite::Result<()> {
    out.push(b'{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json(out, key, *column)?;
        out.push(b':');
        if let Value::Object(nested) = value {
            write_object(out, nested, row, column)?;
        } else if let Value::NullableObject(nested) = value {
            if row.get_ref(*column)? == ValueRef::Null {
                out.extend_from_slice(b"null");
                let mut names = Vec::new();
                column_names(nested, &mut names);
                *column += names.len();
            } else {
                write_object(out, nested, row, column)?;
            }
        } else {
            write_field(out, value, row.get_ref(*column)?, *column)?;
            *column += 1;
        }
    }
    out.push(b'}');
    Ok(())
}

fn write_field(
    out: &mut Vec<u8>,
    kind: &Value,
    value: ValueRef<'_>,
    column: usize,
) -> rusqlite::Result<()> {
    match (kind, value) {
        (_, ValueRef::Null) => out.extend_from_slice(b"null"),
        (Value::Column(_), ValueRef::Integer(n)) => write_json(out, &n, column)?,
        (Value::Column(_), ValueRef::Real(x)) => write_json(out, &x, column)?,
        (Value::Column(_), ValueRef::Text(text)) => write_json(out, utf8(text, column)?, column)?,
        (Value::Bool(_), ValueRef::Integer(n)) => write_json(out, &(n != 0), column)?,
        (Value::Time(_), ValueRef::Text(text)) => {
            let text = utf8(text, column)?;
            match text.strip_suffix("+00:00") {
                Some(utc) => write_json(out, &format!("{utc}Z"), column)?,
                None => write_json(out, text, column)?,
            }
        }
        (Value::Json(_), ValueRef::Text(text)) => {
            // Stored as serde_json wrote it (compact): checked to be one JSON value, then
            // copied as it is rather than parsed into a tree and written again.
            let text = utf8(text, column)?;
            serde_json::from_str::<IgnoredAny>(text).map_err(|err| unreadable(column, err))?;
            out.extend_from_slice(text.trim().as_bytes())
        }
        (_, value) => {
            return Err(rusqlite::Error::InvalidColumnType(
                column,
                String::new(),
                value.data_type(),
            ))
        }
    }
    Ok(())
}

fn write_json(
    out: &mut Vec<u8>,
    value: &(impl Serialize + ?Sized),
    column: usize,
) -> rusqlite::Result<()> {
    serde_json::to_writer(out, value).map_err(|err| unreadable(column, err))
}

fn utf8(text: &[u8], column: usize) -> rusqlite::Result<&str> {
    std::str::from_utf8(text).map_err(|err| unreadable(column, err))
}

/// A text column whose value cannot be read or written as JSON.
fn unreadable(
    column: usize,
    err: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, Type::Text, Box::new(err))
}
