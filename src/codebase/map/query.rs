//! The map's reads of `project_symbols`, each one query for all the names or files it is
//! given, in one generation.

use crate::{
    codebase::{files::placeholders, index::VISIBLE, symbols::Kind},
    db::Db,
    error::Result,
    llm::map::MappedSymbol,
    with_pool,
};

/// A definition and its file.
#[derive(sqlx::FromRow)]
pub(super) struct Defined {
    pub(super) path: String,
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) line: i64,
    pub(super) container: Option<String>,
}

/// Symbols follow their file's rows: visible at generation `$2` with them.
const FROM: &str = "FROM project_symbols s JOIN project_files f ON f.id = s.file_id \
                    WHERE s.project_id = $1 AND f.generation <= $2 AND f.until_gen > $2";

/// Definitions whose name is one of `names` in any case (the name index serves it), by
/// path and line; at most `limit`. With `top_level`, only those outside any container.
pub(super) async fn named(
    db: &Db,
    project_id: i64,
    generation: i64,
    names: &[String],
    top_level: bool,
    limit: i64,
) -> Result<Vec<Defined>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let lower: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
    let sql = format!(
        "SELECT f.path, s.name, s.kind, s.line, s.container {FROM}{} \
         AND s.name_lower IN ({}) ORDER BY f.path, s.line LIMIT {limit}",
        if top_level {
            " AND s.container IS NULL"
        } else {
            ""
        },
        placeholders(3, lower.len()),
    );
    Ok(with_pool!(db, |pool| {
        let mut query = sqlx::query_as(&sql).bind(project_id).bind(generation);
        for name in &lower {
            query = query.bind(name);
        }
        query.fetch_all(pool).await
    })?)
}

/// One file's first definitions and how many it has.
#[derive(sqlx::FromRow)]
struct FileSymbol {
    path: String,
    name: String,
    kind: String,
    line: i64,
    container: Option<String>,
    total: i64,
}

/// The definitions of each of `paths` — top-level ones first, then by line, at most
/// `per_file` — and how many each file has: path → (symbols, total).
pub(super) async fn of_files(
    db: &Db,
    project_id: i64,
    generation: i64,
    paths: &[String],
    per_file: i64,
) -> Result<Vec<(String, Vec<MappedSymbol>, usize)>> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    // The files first, by their (project, path) index; then their symbols by file: never
    // a walk over all the project's symbols.
    let sql = format!(
        "SELECT path, name, kind, line, container, total FROM (\
           SELECT f.path, s.name, s.kind, s.line, s.container, \
           ROW_NUMBER() OVER (PARTITION BY s.file_id \
             ORDER BY CASE WHEN s.container IS NULL THEN 0 ELSE 1 END, s.line, s.id) AS n, \
           COUNT(*) OVER (PARTITION BY s.file_id) AS total \
           FROM project_files f JOIN project_symbols s ON s.file_id = f.id \
           WHERE f.project_id = $1 AND {VISIBLE} AND f.path IN ({})) ranked \
         WHERE n <= {per_file} ORDER BY path, n",
        placeholders(3, paths.len())
    );
    let rows: Vec<FileSymbol> = with_pool!(db, |pool| {
        let mut query = sqlx::query_as(&sql).bind(project_id).bind(generation);
        for path in paths {
            query = query.bind(path);
        }
        query.fetch_all(pool).await
    })?;
    let mut files: Vec<(String, Vec<MappedSymbol>, usize)> = Vec::new();
    for row in rows {
        let Some(kind) = kind(&row.kind) else {
            continue;
        };
        if files.last().is_none_or(|(path, _, _)| *path != row.path) {
            files.push((row.path.clone(), Vec::new(), row.total.max(0) as usize));
        }
        if let Some((_, symbols, _)) = files.last_mut() {
            symbols.push(MappedSymbol {
                name: row.name,
                kind,
                line: row.line,
                container: row.container,
            });
        }
    }
    Ok(files)
}

/// The stored kind's name, as a `&'static str`.
fn kind(text: &str) -> Option<&'static str> {
    Kind::ALL
        .into_iter()
        .map(Kind::as_str)
        .find(|kind| *kind == text)
}
