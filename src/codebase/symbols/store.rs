//! Reading `project_symbols`: the live generation only, names matched on their lowercase
//! form by range (an index serves it on both backends; PostgreSQL's column is `COLLATE
//! "C"` so that the range is byte order there too).

use super::{Kind, Symbol};
use crate::{
    codebase::{index::VISIBLE, on_live_generation},
    db::Db,
    error::{Error, Result},
    with_pool,
};

/// Past every character a name can hold after its prefix.
const PAST_PREFIX: char = '\u{10FFFF}';

/// A symbol lookup: names starting with `prefix` (case-insensitive), exact names first.
pub struct Lookup<'a> {
    pub prefix: &'a str,
    pub kind: Option<Kind>,
    pub limit: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    name: String,
    kind: String,
    path: String,
    line: i64,
    end_line: i64,
    container: Option<String>,
}

impl Row {
    fn symbol(self) -> Option<Symbol> {
        Some(Symbol {
            kind: Kind::parse(&self.kind)?,
            name: self.name,
            path: self.path,
            line: self.line,
            end_line: self.end_line,
            container: self.container,
        })
    }
}

/// Symbols follow their file's rows: visible at generation `$2` with them.
const FROM: &str = "FROM project_symbols s JOIN project_files f ON f.id = s.file_id \
                    WHERE s.project_id = $1 AND f.generation <= $2 AND f.until_gen > $2 \
                    AND s.name_lower >= $3 AND s.name_lower < $4";

/// The project's symbols matching `lookup`, and how many there are.
pub async fn lookup(db: &Db, project_id: i64, lookup: &Lookup<'_>) -> Result<(Vec<Symbol>, i64)> {
    let prefix = lookup.prefix.to_lowercase();
    let past = format!("{prefix}{PAST_PREFIX}");
    let kind = if lookup.kind.is_some() {
        " AND s.kind = $6"
    } else {
        " AND $6 = ''"
    };
    let kind_value = lookup.kind.map(Kind::as_str).unwrap_or_default();
    let rows_sql = format!(
        "SELECT s.name, s.kind, f.path, s.line, s.end_line, s.container {FROM}{kind} \
         ORDER BY CASE WHEN s.name = $7 THEN 0 WHEN s.name_lower = $3 THEN 1 ELSE 2 END, \
         s.name_lower, f.path, s.line LIMIT $5"
    );
    let count_sql = format!("SELECT COUNT(*) {FROM}{kind} AND $5 > 0");
    let (rows_sql, count_sql, prefix, past) = (&rows_sql, &count_sql, &prefix, &past);
    let exact = lookup.prefix;
    on_live_generation(db, project_id, |generation| async move {
        with_pool!(db, |pool| {
            let rows: Vec<Row> = sqlx::query_as(rows_sql)
                .bind(project_id)
                .bind(generation)
                .bind(prefix)
                .bind(past)
                .bind(lookup.limit)
                .bind(kind_value)
                .bind(exact)
                .fetch_all(pool)
                .await?;
            let (total,): (i64,) = sqlx::query_as(count_sql)
                .bind(project_id)
                .bind(generation)
                .bind(prefix)
                .bind(past)
                .bind(lookup.limit)
                .bind(kind_value)
                .fetch_one(pool)
                .await?;
            Ok::<_, sqlx::Error>((rows.into_iter().filter_map(Row::symbol).collect(), total))
        })
        .map_err(Error::from)
    })
    .await
    .map(|found| found.unwrap_or_default())
}

/// The definitions named exactly `name` (case-sensitive) in the project's indexed files,
/// by path and line: "where is X defined". Empty when nothing is indexed.
pub async fn find(db: &Db, project_id: i64, name: &str) -> Result<Vec<Symbol>> {
    let (symbols, _) = lookup(
        db,
        project_id,
        &Lookup {
            prefix: name,
            kind: None,
            limit: 1_000,
        },
    )
    .await?;
    let mut exact: Vec<Symbol> = symbols.into_iter().filter(|s| s.name == name).collect();
    exact.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    Ok(exact)
}

/// The definitions in one indexed file, by line: what a change to its lines touches.
/// Empty when nothing is indexed or the file is not.
pub async fn in_file(db: &Db, project_id: i64, path: &str) -> Result<Vec<Symbol>> {
    let sql = format!(
        "SELECT s.name, s.kind, f.path, s.line, s.end_line, s.container \
         FROM project_files f JOIN project_symbols s ON s.file_id = f.id \
         WHERE f.project_id = $1 AND {VISIBLE} AND f.path = $3 ORDER BY s.line, s.end_line"
    );
    let sql = sql.as_str();
    on_live_generation(db, project_id, |generation| async move {
        let rows: Vec<Row> = with_pool!(db, |pool| sqlx::query_as(sql)
            .bind(project_id)
            .bind(generation)
            .bind(path)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().filter_map(Row::symbol).collect())
    })
    .await
    .map(|found| found.unwrap_or_default())
}

/// Definitions in one generation whose name starts with `prefix` (case-insensitive),
/// with the text of their first line: what a search ranks first.
pub async fn definitions_of(
    db: &Db,
    project_id: i64,
    generation: i64,
    prefix: &str,
    limit: i64,
) -> Result<Vec<(String, String, i64, String)>> {
    let prefix = prefix.to_lowercase();
    let past = format!("{prefix}{PAST_PREFIX}");
    let sql = format!(
        "SELECT s.name, f.path, s.line, s.text {FROM} \
         ORDER BY CASE WHEN s.name_lower = $3 THEN 0 ELSE 1 END, s.name_lower, f.path, s.line LIMIT $5"
    );
    Ok(with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(project_id)
        .bind(generation)
        .bind(&prefix)
        .bind(&past)
        .bind(limit)
        .fetch_all(pool)
        .await)?)
}
