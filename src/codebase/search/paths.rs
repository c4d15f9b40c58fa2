//! "Exact path matches come too": files whose path is the query, or ends with `/` and
//! the query (`cart.rs`, `src/cart.rs`), shown at their first line.

use super::{snippet, Hit};
use crate::{
    codebase::{index::VISIBLE, matcher::Matcher},
    db::Db,
    error::Result,
    with_pool,
};

const MAX_FILES: i64 = 50;
/// The start of a file read for its first non-blank line, the hit's snippet.
const HEAD_CHARS: usize = 4096;

pub(super) async fn matches(
    db: &Db,
    project_id: i64,
    generation: i64,
    matcher: &Matcher,
) -> Result<Vec<Hit>> {
    let query = matcher.query.as_str();
    if query.contains(char::is_whitespace) || query.len() > 1024 {
        return Ok(Vec::new());
    }
    // LIKE narrows (case-insensitively on SQLite); the exact test is done below.
    let sql = format!(
        "SELECT f.path, substr(c.content, 1, {HEAD_CHARS}) FROM project_files f \
         JOIN project_contents c ON c.file_id = f.id \
         WHERE f.project_id = $1 AND {VISIBLE} AND f.path LIKE $3 ESCAPE '\\' \
         ORDER BY f.path LIMIT $4"
    );
    let pattern = format!("%{}", escape_like(query));
    let rows: Vec<(String, String)> = with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(project_id)
        .bind(generation)
        .bind(&pattern)
        .bind(MAX_FILES)
        .fetch_all(pool)
        .await)?;
    let suffix = format!("/{query}");
    Ok(rows
        .into_iter()
        .filter(|(path, _)| path == query || path.ends_with(&suffix))
        .filter(|(path, _)| matcher.path_matches(path))
        .map(|(path, head)| Hit {
            snippet: snippet(first_line(&head), None),
            path,
            line: 1,
        })
        .collect())
}

/// The first line with more than blanks (empty when `head` has none).
fn first_line(head: &str) -> &str {
    head.lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default()
}

/// `text` as a LIKE pattern that matches it literally (with `ESCAPE '\'`).
pub(super) fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(super::escape_like("50%_a\\"), "50\\%\\_a\\\\");
    }
}
