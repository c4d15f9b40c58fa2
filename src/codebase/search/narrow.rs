//! Which lines a search reads: a condition every matching line meets, served by the
//! search indexes, then the scan itself in (path, line) order.
//!
//! Case-insensitive matching follows Unicode simple case folding (the `regex` crate's),
//! where `k` also matches the Kelvin sign and `s` the long s. So a case-insensitive
//! pattern keeps the query's other ASCII characters (LIKE/ILIKE fold ASCII on both
//! backends) and lets `_` stand for `k`, `s` and every non-ASCII character; the FTS5
//! trigram index is given the longest run of such plain ASCII characters. A regular
//! expression is not narrowed: PostgreSQL's syntax differs from Rust's.

use tokio::time::Instant;

use super::{collect, paths::escape_like, Candidate, Scan};
use crate::{codebase::matcher::Matcher, db::Db, error::Result};

/// FTS5 trigram queries need at least three characters.
const TRIGRAM: usize = 3;
/// PostgreSQL's error code for a statement cancelled by `statement_timeout`.
const QUERY_CANCELED: &str = "57014";

/// Reads the generation's matching lines until more than `cap` matched or the deadline
/// (see [`collect`]).
pub(super) async fn scan(
    db: &Db,
    project_id: i64,
    generation: i64,
    matcher: &Matcher,
    deadline: Instant,
    cap: usize,
) -> Result<Scan> {
    let narrowing = narrowing(db, matcher);
    let sql = format!(
        "SELECT f.path, l.line, l.text FROM {} WHERE f.project_id = $1 AND f.generation = $2{} \
         ORDER BY {}",
        narrowing.from, narrowing.condition, narrowing.order
    );
    macro_rules! query {
        () => {{
            let mut query = sqlx::query_as::<_, Candidate>(&sql)
                .bind(project_id)
                .bind(generation);
            for value in &narrowing.values {
                query = query.bind(value);
            }
            query
        }};
    }
    match db {
        Db::Sqlite(pool, _) => Ok(collect(query!().fetch(pool), matcher, deadline, cap).await?),
        Db::Postgres(pool) => {
            // The server stops the statement at the deadline too, so that no connection
            // goes back to the pool still busy with it.
            let mut tx = pool.begin().await?;
            let left = deadline.saturating_duration_since(Instant::now());
            let millis = left.as_millis().max(1);
            sqlx::query(&format!("SET LOCAL statement_timeout = {millis}"))
                .execute(&mut *tx)
                .await?;
            let scan = collect(query!().fetch(&mut *tx), matcher, deadline, cap).await?;
            tx.rollback().await.ok();
            Ok(scan)
        }
    }
}

pub(super) fn cancelled(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|err| err.code())
        .is_some_and(|code| code == QUERY_CANCELED)
}

struct Narrowing {
    from: &'static str,
    /// `AND …` with placeholders from `$3`, or empty.
    condition: &'static str,
    values: Vec<String>,
    order: &'static str,
}

const LINES: &str = "project_lines l JOIN project_files f ON f.id = l.file_id";
const FTS_LINES: &str = "project_lines_fts JOIN project_lines l ON l.id = project_lines_fts.rowid \
                         JOIN project_files f ON f.id = l.file_id";

fn narrowing(db: &Db, matcher: &Matcher) -> Narrowing {
    let plain = |condition, values| Narrowing {
        from: LINES,
        condition,
        values,
        order: "l.id",
    };
    if matcher.options.regex {
        return plain("", Vec::new());
    }
    let query = matcher.query.as_str();
    let sensitive = matcher.options.case_sensitive;
    match db {
        Db::Postgres(_) if sensitive => plain(
            " AND l.text LIKE $3 ESCAPE '\\'",
            vec![format!("%{}%", escape_like(query))],
        ),
        Db::Postgres(_) => plain(
            " AND l.text ILIKE $3 ESCAPE '\\'",
            vec![folding_pattern(query)],
        ),
        Db::Sqlite(..) => {
            let value = if sensitive {
                query.to_owned()
            } else {
                folding_pattern(query)
            };
            let run = if sensitive {
                query.to_owned()
            } else {
                plain_ascii_run(query)
            };
            if run.chars().count() < TRIGRAM {
                let condition = if sensitive {
                    " AND instr(l.text, $3) > 0"
                } else {
                    " AND l.text LIKE $3 ESCAPE '\\'"
                };
                return plain(condition, vec![value]);
            }
            Narrowing {
                from: FTS_LINES,
                condition: if sensitive {
                    " AND project_lines_fts MATCH $3 AND instr(l.text, $4) > 0"
                } else {
                    " AND project_lines_fts MATCH $3 AND l.text LIKE $4 ESCAPE '\\'"
                },
                values: vec![format!("\"{}\"", run.replace('"', "\"\"")), value],
                order: "project_lines_fts.rowid",
            }
        }
    }
}

/// Characters whose case-insensitive matches are ASCII letters of either case only.
fn plain_ascii(c: char) -> bool {
    c.is_ascii() && !matches!(c, 'k' | 'K' | 's' | 'S')
}

/// A LIKE pattern (ASCII-case-insensitive on SQLite, ILIKE on PostgreSQL) that every line
/// containing `query` case-insensitively matches.
fn folding_pattern(query: &str) -> String {
    let mut pattern = String::from("%");
    for c in query.chars() {
        if !plain_ascii(c) {
            pattern.push('_');
        } else {
            pattern.push_str(&escape_like(c.encode_utf8(&mut [0; 4])));
        }
    }
    pattern.push('%');
    pattern
}

/// The longest run of plain ASCII characters in `query`.
fn plain_ascii_run(query: &str) -> String {
    query
        .split(|c| !plain_ascii(c))
        .max_by_key(|run| run.len())
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_patterns_leave_folded_characters_open() {
        assert_eq!(folding_pattern("a_Kéb%"), "%a\\___b\\%%");
        assert_eq!(plain_ascii_run("maske_rade"), "e_rade");
        assert_eq!(plain_ascii_run("éé"), "");
    }
}
