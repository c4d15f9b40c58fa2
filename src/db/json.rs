//! List pages written as JSON by the database.
//!
//! Read through sqlx, a page of 50 rows costs a hand-off per row (from SQLite's worker
//! thread, or a wire message from PostgreSQL), a decode of every field into Rust and an
//! encode of it all back into JSON; profiled, that was nine tenths of a list request
//! (bench/README.md). Here one statement answers one row: the page's items as a JSON
//! array built by the database, and the total. The server writes that text into the
//! envelope as it is.
//!
//! Each resource describes its fields once, in the order and the form its `Serialize`
//! derive writes them (the single-item routes still serialise with serde); the tests
//! compare every listed item with the same item read alone, on both backends.

use super::Db;

/// How one field of an item is written.
pub enum Value {
    /// The column as it is: a number, a string or null.
    Column(&'static str),
    /// A boolean column (SQLite stores 0 or 1).
    Bool(&'static str),
    /// A timestamp column, written as chrono's serde writes `DateTime<Utc>`: RFC 3339 in
    /// UTC with `Z` and 0, 3 or 6 fraction digits, whichever shows the value exactly.
    Time(&'static str),
    /// A column holding JSON (text on SQLite, `jsonb` on PostgreSQL), or null.
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

impl Order {
    fn sql(self) -> &'static str {
        match self {
            Order::NewestFirst => "DESC",
            Order::OldestFirst => "ASC",
        }
    }
}

/// A page: the items as a JSON array, and how many rows match in all.
pub struct Page {
    pub items: String,
    pub total: i64,
}

impl Db {
    /// The statement reading one page of `FROM … WHERE …` (`from_where`) as `(total,
    /// items)`. Its `LIMIT` and `OFFSET` are the placeholders `$next` and `$next + 1`, after
    /// the ones `from_where` uses.
    pub fn page_sql(&self, from_where: &str, fields: Fields, order: Order, next: u8) -> String {
        let offset = next + 1;
        let item = self.json_object(fields);
        let page = format!(
            "SELECT id, {item} AS item {from_where} ORDER BY id {order} LIMIT ${next} OFFSET ${offset}",
            order = order.sql()
        );
        // The aggregate orders its input itself: a subquery's order is not promised to
        // reach it. (Aggregate ORDER BY needs SQLite 3.44; the bundled one is newer.)
        let items = match self {
            // The nested object loses its JSON subtype in the subquery: `json()` restores it.
            Db::Sqlite(_) => format!(
                "COALESCE(json_group_array(json(item) ORDER BY id {}), '[]')",
                order.sql()
            ),
            Db::Postgres(_) => format!(
                "COALESCE(json_agg(item ORDER BY id {}), '[]')::text",
                order.sql()
            ),
        };
        format!("SELECT (SELECT COUNT(*) {from_where}), (SELECT {items} FROM ({page}) page)")
    }

    /// A JSON object of `fields`, as a SQL expression of this backend.
    fn json_object(&self, fields: Fields) -> String {
        let members = fields
            .iter()
            .map(|(key, value)| format!("'{key}', {}", self.json_value(value)))
            .collect::<Vec<_>>()
            .join(", ");
        match self {
            Db::Sqlite(_) => format!("json_object({members})"),
            Db::Postgres(_) => format!("json_build_object({members})"),
        }
    }

    fn json_value(&self, value: &Value) -> String {
        match (self, value) {
            (_, Value::Column(column)) => (*column).to_owned(),
            (_, Value::Object(fields)) => self.json_object(fields),
            (Db::Sqlite(_), Value::Bool(column)) => format!("json(iif({column}, 'true', 'false'))"),
            (Db::Postgres(_), Value::Bool(column)) => (*column).to_owned(),
            (Db::Sqlite(_), Value::Json(column)) => format!("json({column})"),
            (Db::Postgres(_), Value::Json(column)) => (*column).to_owned(),
            // sqlx stores `DateTime<Utc>` on SQLite as chrono's RFC 3339 text with the
            // same fraction digits serde writes, and `+00:00` where serde writes `Z`.
            (Db::Sqlite(_), Value::Time(column)) => format!("replace({column}, '+00:00', 'Z')"),
            (Db::Postgres(_), Value::Time(column)) => {
                let utc = format!("({column} AT TIME ZONE 'UTC')");
                format!(
                    "to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || \
                     CASE WHEN to_char({utc}, 'US') = '000000' THEN '' \
                     WHEN to_char({utc}, 'US') LIKE '%000' THEN to_char({utc}, '.MS') \
                     ELSE to_char({utc}, '.US') END || 'Z'"
                )
            }
        }
    }
}
