//! Which files a search reads, and reading them in path order; their lines are then
//! matched exactly (see [`super::scan`]).
//!
//! The indexes narrow to files, as zoekt does, not to lines: SQLite's FTS5 trigram index
//! over whole files (`detail='none'`, so the query is the AND of its trigrams), and
//! PostgreSQL's `pg_trgm` GIN index with LIKE/ILIKE. Either gives every file that can hold
//! a match (and some that do not).
//!
//! Case-insensitive matching follows Unicode simple case folding (the `regex` crate's),
//! where `k` also matches the Kelvin sign and `s` the long s. So a case-insensitive
//! pattern keeps the query's other ASCII characters (LIKE/ILIKE fold ASCII on both
//! backends) and lets `_` stand for `k`, `s` and every non-ASCII character; the FTS5
//! trigram index is given the longest run of such plain ASCII characters. A regular
//! expression is not narrowed: PostgreSQL's syntax differs from Rust's.
//!
//! PostgreSQL rechecks every file its GIN index proposes, so listing all the files of a
//! common string in path order reads most of the project. It is first asked for a few
//! candidates in any order; when there are more, the first pages of files are read in path
//! order with the same condition and the index kept out (a common string fills the
//! [`TOTAL_CAP`](super::TOTAL_CAP) there), and only then are the rest listed through the
//! index. A search thus reads about as much as its candidates, and a common one far less.

use sqlx::{PgConnection, SqlitePool};

use super::paths::escape_like;
use crate::codebase::{index::VISIBLE, matcher::Matcher};

/// FTS5 trigram queries need at least three characters.
const TRIGRAM: usize = 3;
/// PostgreSQL's error code for a statement cancelled by `statement_timeout`.
const QUERY_CANCELED: &str = "57014";
/// Candidates PostgreSQL lists before the files are paged instead.
const LISTED_MAX: usize = 64;
/// Files per page when paging on PostgreSQL.
pub(super) const PAGE: i64 = 16;

/// Where the files a search reads come from.
pub(super) enum Candidates {
    /// Every candidate file, in path order: (id, path).
    Listed(Vec<(i64, String)>),
    /// Too many to list at once: pages of (id, path, content) in path order first (see
    /// [`Reader::page`]), then [`Reader::rest`].
    Paged(Condition),
}

/// The condition on a file's content that every file with a match meets.
pub(super) struct Condition {
    /// `AND …` with its placeholder at `$3`.
    sql: &'static str,
    value: String,
}

/// The connection a search reads on: PostgreSQL's is inside a transaction whose
/// `statement_timeout` is the search's deadline.
pub(super) enum Reader<'a> {
    Sqlite(&'a SqlitePool),
    Postgres(&'a mut PgConnection),
}

impl Reader<'_> {
    /// The files of the generation that can hold a match of `matcher`.
    pub(super) async fn candidates(
        &mut self,
        project_id: i64,
        generation: i64,
        matcher: &Matcher,
    ) -> Result<Candidates, sqlx::Error> {
        match self {
            Reader::Sqlite(pool) => {
                let (from, condition) = match fts_query(matcher) {
                    Some(query) => (
                        "project_files_fts JOIN project_files f ON f.id = project_files_fts.rowid",
                        Condition {
                            sql: " AND project_files_fts MATCH $3",
                            value: query,
                        },
                    ),
                    None => ("project_files f", Condition::none()),
                };
                let sql = format!(
                    "SELECT f.id, f.path FROM {from} WHERE f.project_id = $1 AND {VISIBLE}{} \
                     ORDER BY f.path",
                    condition.sql
                );
                let files = sqlx::query_as(&sql)
                    .bind(project_id)
                    .bind(generation)
                    .bind(&condition.value)
                    .fetch_all(*pool)
                    .await?;
                Ok(Candidates::Listed(files))
            }
            Reader::Postgres(conn) => {
                let condition = Condition::postgres(matcher);
                let sql = format!(
                    "SELECT f.id, f.path FROM project_files f WHERE f.project_id = $1 \
                     AND {VISIBLE}{} LIMIT {}",
                    condition.sql,
                    LISTED_MAX + 1
                );
                let mut files: Vec<(i64, String)> = sqlx::query_as(&sql)
                    .bind(project_id)
                    .bind(generation)
                    .bind(&condition.value)
                    .fetch_all(&mut **conn)
                    .await?;
                if files.len() > LISTED_MAX {
                    return Ok(Candidates::Paged(condition));
                }
                files.sort_by(|a, b| a.1.cmp(&b.1));
                Ok(Candidates::Listed(files))
            }
        }
    }

    /// The content of the files `ids`.
    pub(super) async fn contents(
        &mut self,
        ids: &[i64],
    ) -> Result<Vec<(i64, String)>, sqlx::Error> {
        let placeholders: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT id, content FROM project_files WHERE id IN ({})",
            placeholders.join(", ")
        );
        macro_rules! query {
            () => {
                ids.iter()
                    .fold(sqlx::query_as(&sql), |query, id| query.bind(*id))
            };
        }
        match self {
            Reader::Sqlite(pool) => query!().fetch_all(*pool).await,
            Reader::Postgres(conn) => query!().fetch_all(&mut **conn).await,
        }
    }

    /// The next [`PAGE`] files after `after` in path order that meet `condition`, with
    /// their content (PostgreSQL only: its GIN index is kept out, so that the files are
    /// read in path order and the reading stops with the page).
    pub(super) async fn page(
        &mut self,
        project_id: i64,
        generation: i64,
        condition: &Condition,
        after: &str,
    ) -> Result<Vec<(i64, String, String)>, sqlx::Error> {
        let sql = format!(
            "SELECT f.id, f.path, f.content FROM project_files f WHERE f.project_id = $1 \
             AND {VISIBLE} AND f.path > $4{} ORDER BY f.path LIMIT {PAGE}",
            condition.sql.replace("f.content", "(f.content || '')")
        );
        macro_rules! query {
            () => {
                sqlx::query_as(&sql)
                    .bind(project_id)
                    .bind(generation)
                    .bind(&condition.value)
                    .bind(after)
            };
        }
        match self {
            Reader::Sqlite(pool) => query!().fetch_all(*pool).await,
            Reader::Postgres(conn) => query!().fetch_all(&mut **conn).await,
        }
    }
}

impl Reader<'_> {
    /// The candidates after `after` in path order, through the index (PostgreSQL only).
    pub(super) async fn rest(
        &mut self,
        project_id: i64,
        generation: i64,
        condition: &Condition,
        after: &str,
    ) -> Result<Vec<(i64, String)>, sqlx::Error> {
        let sql = format!(
            "SELECT f.id, f.path FROM project_files f WHERE f.project_id = $1 AND {VISIBLE} \
             AND f.path > $4{} ORDER BY f.path",
            condition.sql
        );
        macro_rules! query {
            () => {
                sqlx::query_as(&sql)
                    .bind(project_id)
                    .bind(generation)
                    .bind(&condition.value)
                    .bind(after)
            };
        }
        match self {
            Reader::Sqlite(pool) => query!().fetch_all(*pool).await,
            Reader::Postgres(conn) => query!().fetch_all(&mut **conn).await,
        }
    }
}

impl Condition {
    /// No condition (`$3` is bound all the same).
    fn none() -> Condition {
        Condition {
            sql: " AND $3 = ''",
            value: String::new(),
        }
    }

    fn postgres(matcher: &Matcher) -> Condition {
        if matcher.options.regex {
            return Condition::none();
        }
        let query = matcher.query.as_str();
        if matcher.options.case_sensitive {
            Condition {
                sql: " AND f.content LIKE $3 ESCAPE '\\'",
                value: format!("%{}%", escape_like(query)),
            }
        } else {
            Condition {
                sql: " AND f.content ILIKE $3 ESCAPE '\\'",
                value: folding_pattern(query),
            }
        }
    }
}

pub(super) fn cancelled(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|err| err.code())
        .is_some_and(|code| code == QUERY_CANCELED)
}

/// The FTS5 query for `matcher`: every trigram of the longest run of characters the
/// index folds as the matcher does (`detail='none'` has no phrases); `None` when there is
/// no such run of three.
fn fts_query(matcher: &Matcher) -> Option<String> {
    if matcher.options.regex {
        return None;
    }
    let query = matcher.query.as_str();
    let run: Vec<char> = if matcher.options.case_sensitive {
        query.chars().collect()
    } else {
        plain_ascii_run(query).chars().collect()
    };
    if run.len() < TRIGRAM {
        return None;
    }
    let mut trigrams: Vec<String> = run
        .windows(TRIGRAM)
        .map(|w| format!("\"{}\"", w.iter().collect::<String>().replace('"', "\"\"")))
        .collect();
    trigrams.sort();
    trigrams.dedup();
    Some(trigrams.join(" AND "))
}

/// Characters whose case-insensitive matches are ASCII letters of either case only.
fn plain_ascii(c: char) -> bool {
    c.is_ascii() && !matches!(c, 'k' | 'K' | 's' | 'S')
}

/// A LIKE pattern (ASCII-case-insensitive on SQLite, ILIKE on PostgreSQL) that every text
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
    use crate::codebase::matcher::Options;

    #[test]
    fn folding_patterns_leave_folded_characters_open() {
        assert_eq!(folding_pattern("a_Kéb%"), "%a\\___b\\%%");
        assert_eq!(plain_ascii_run("maske_rade"), "e_rade");
        assert_eq!(plain_ascii_run("éé"), "");
    }

    #[test]
    fn fts_queries_are_the_and_of_distinct_trigrams() {
        let plain = |q: &str| fts_query(&Matcher::plain(q).unwrap());
        assert_eq!(
            plain("abcab").as_deref(),
            Some("\"abc\" AND \"bca\" AND \"cab\"")
        );
        assert_eq!(
            plain("a\"b\"").as_deref(),
            Some("\"\"\"b\"\"\" AND \"a\"\"b\"")
        );
        assert_eq!(plain("ab"), None);
        assert_eq!(
            plain("éké"),
            None,
            "nothing the index folds like the matcher"
        );
        let regex = Options {
            regex: true,
            ..Options::default()
        };
        assert_eq!(fts_query(&Matcher::new("abc", regex, None).unwrap()), None);
    }
}
