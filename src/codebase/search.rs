//! Substring search over a project's indexed lines: SQLite FTS5 (trigram) or PostgreSQL
//! `pg_trgm` (GIN) find the matching lines, the live generation only; a scan with LIKE
//! serves queries shorter than a trigram. Candidates are then ranked here.

use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    db::Db, error::Result, projects::sync::live_generation, specialists::reading::defined_name,
    with_pool,
};

/// Matching lines looked at for ranking; definitions are fetched first.
const CANDIDATES: i64 = 500;
const SNIPPET_CHARS: usize = 240;
/// Bounded retries when a re-index makes another generation live mid-search.
const ATTEMPTS: usize = 3;

/// One matching line.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Hit {
    #[schema(example = "src/cart.rs")]
    pub path: String,
    /// The 1-based number of the matching line.
    #[schema(example = 42, minimum = 1)]
    pub line: i64,
    /// The matching line, trimmed (a window of it when it is long).
    #[schema(example = "pub fn checkout_total(cart: &Cart) -> u64 {")]
    pub snippet: String,
}

pub struct Found {
    pub hits: Vec<Hit>,
    /// Matching lines, plus files whose path is the query.
    pub total: i64,
}

#[derive(sqlx::FromRow)]
struct Candidate {
    path: String,
    line: i64,
    /// 1 when the line defines something (see `defined_name`).
    definition: i64,
    text: String,
}

/// The best `limit` hits for `query` in the project's live file set.
pub async fn search(db: &Db, project_id: i64, query: &str, limit: usize) -> Result<Found> {
    for _ in 0..ATTEMPTS {
        let Some(generation) = live_generation(db, project_id).await? else {
            return Ok(Found {
                hits: Vec::new(),
                total: 0,
            });
        };
        let found = search_generation(db, project_id, generation, query, limit).await?;
        // Older generations are deleted once a newer one is live: if that happened while
        // reading, part of what was read may be gone, so read the new one instead.
        if live_generation(db, project_id).await? == Some(generation) {
            return Ok(found);
        }
    }
    Err(crate::error::Error::Unavailable(
        "The project is being re-indexed; try again shortly",
    ))
}

async fn search_generation(
    db: &Db,
    project_id: i64,
    generation: i64,
    query: &str,
    limit: usize,
) -> Result<Found> {
    let (source, condition, pattern) = matcher(db, query);
    let from = format!(
        "FROM {source} JOIN project_files f ON f.id = l.file_id \
         WHERE f.project_id = $2 AND f.generation = $3 AND {condition}"
    );
    let rows_sql = format!(
        "SELECT f.path, l.line, l.definition, l.text {from} \
         ORDER BY l.definition DESC, l.id LIMIT $4"
    );
    let count_sql = format!("SELECT COUNT(*) {from}");
    let (rows, (count,)): (Vec<Candidate>, (i64,)) = with_pool!(db, |pool| {
        let rows = sqlx::query_as(&rows_sql)
            .bind(&pattern)
            .bind(project_id)
            .bind(generation)
            .bind(CANDIDATES)
            .fetch_all(pool)
            .await?;
        let count = sqlx::query_as(&count_sql)
            .bind(&pattern)
            .bind(project_id)
            .bind(generation)
            .fetch_one(pool)
            .await?;
        Ok::<_, sqlx::Error>((rows, count))
    })?;
    let mut ranked: Vec<(i64, Candidate)> =
        rows.into_iter().map(|c| (score(&c, query), c)).collect();
    ranked.sort_by(|(a, x), (b, y)| {
        b.cmp(a)
            .then_with(|| x.path.cmp(&y.path))
            .then_with(|| x.line.cmp(&y.line))
    });
    let by_path = path_matches(db, project_id, generation, query).await?;
    let total = count + by_path.len() as i64;
    let hits = by_path
        .into_iter()
        .chain(ranked.into_iter().map(|(_, c)| Hit {
            snippet: snippet(&c.text, query),
            path: c.path,
            line: c.line,
        }))
        .take(limit)
        .collect();
    Ok(Found { hits, total })
}

/// Where matching lines come from, the condition that finds them, and its pattern (`$1`).
fn matcher(db: &Db, query: &str) -> (&'static str, &'static str, String) {
    let like = format!("%{}%", escape_like(query));
    match db {
        Db::Sqlite(..) if query.chars().count() >= 3 => (
            "project_lines_fts JOIN project_lines l ON l.id = project_lines_fts.rowid",
            "project_lines_fts MATCH $1",
            format!("\"{}\"", query.replace('"', "\"\"")),
        ),
        Db::Sqlite(..) => ("project_lines l", "l.text LIKE $1 ESCAPE '\\'", like),
        Db::Postgres(_) => ("project_lines l", "l.text ILIKE $1 ESCAPE '\\'", like),
    }
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Files whose path is the query, or ends with `/` and the query (`cart.rs`, `src/cart.rs`).
async fn path_matches(db: &Db, project_id: i64, generation: i64, query: &str) -> Result<Vec<Hit>> {
    if query.contains(char::is_whitespace) || query.len() > 1024 {
        return Ok(Vec::new());
    }
    // LIKE narrows (case-insensitively on SQLite); the exact test is done below.
    let sql = "SELECT f.path, COALESCE((SELECT l.text FROM project_lines l WHERE l.file_id = f.id \
               ORDER BY l.line LIMIT 1), '') FROM project_files f \
               WHERE f.project_id = $1 AND f.generation = $2 AND f.path LIKE $3 ESCAPE '\\' \
               ORDER BY f.path LIMIT 50";
    let pattern = format!("%{}", escape_like(query));
    let rows: Vec<(String, String)> = with_pool!(db, |pool| sqlx::query_as(sql)
        .bind(project_id)
        .bind(generation)
        .bind(&pattern)
        .fetch_all(pool)
        .await)?;
    let suffix = format!("/{query}");
    Ok(rows
        .into_iter()
        .filter(|(path, _)| path == query || path.ends_with(&suffix))
        .map(|(path, first)| Hit {
            snippet: snippet(&first, ""),
            path,
            line: 1,
        })
        .collect())
}

/// Higher is better: the definition of the query, then other definitions, whole words,
/// exact case, and paths that mention the query.
fn score(candidate: &Candidate, query: &str) -> i64 {
    let mut score = 0;
    if candidate.definition != 0 {
        score += match defined_name(&candidate.text) {
            Some(name) if name == query => 100,
            Some(name) if name.eq_ignore_ascii_case(query) => 80,
            _ => 30,
        };
    }
    if whole_word(&candidate.text, query) {
        score += 20;
    }
    if candidate.text.contains(query) {
        score += 10;
    }
    if candidate
        .path
        .to_lowercase()
        .contains(&query.to_lowercase())
    {
        score += 15;
    }
    score
}

fn whole_word(text: &str, query: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(query).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + query.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// The trimmed line, or a window of it around the match when it is long.
pub fn snippet(text: &str, query: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= SNIPPET_CHARS {
        return text.to_owned();
    }
    let at = text
        .to_lowercase()
        .find(&query.to_lowercase())
        .filter(|at| text.is_char_boundary(*at))
        .unwrap_or(0);
    let before = text[..at].chars().count().saturating_sub(SNIPPET_CHARS / 3);
    text.chars().skip(before).take(SNIPPET_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(path: &str, text: &str) -> Candidate {
        Candidate {
            path: path.into(),
            line: 1,
            definition: i64::from(defined_name(text).is_some()),
            text: text.into(),
        }
    }

    #[test]
    fn the_definition_ranks_first() {
        let definition = score(&candidate("src/a.rs", "pub fn total(x: u8) {"), "total");
        let call = score(&candidate("src/b.rs", "    let t = total(3);"), "total");
        let partial = score(&candidate("src/c.rs", "    subtotal += 1;"), "total");
        assert!(
            definition > call && call > partial,
            "{definition} {call} {partial}"
        );
    }

    #[test]
    fn words_and_snippets() {
        assert!(whole_word("a total b", "total"));
        assert!(!whole_word("subtotal", "total"));
        let long = format!("{}needle{}", "x".repeat(500), "y".repeat(500));
        let cut = snippet(&long, "needle");
        assert!(cut.contains("needle") && cut.chars().count() == SNIPPET_CHARS);
        assert_eq!(escape_like("50%_a\\"), "50\\%\\_a\\\\");
    }
}
