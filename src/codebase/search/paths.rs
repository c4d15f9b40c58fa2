//! "Exact path matches come too": files whose path is the query, or ends with `/` and
//! the query (`cart.rs`, `src/cart.rs`), shown at their first line. From the snapshot.

use super::{snippet, Hit};
use crate::{
    codebase::{
        matcher::Matcher,
        snapshot::{self, Snapshot},
    },
    db::Db,
    error::Result,
};

const MAX_FILES: usize = 50;

pub(super) async fn matches(db: &Db, snapshot: &Snapshot, matcher: &Matcher) -> Result<Vec<Hit>> {
    let query = matcher.query.as_str();
    if query.contains(char::is_whitespace) || query.len() > 1024 {
        return Ok(Vec::new());
    }
    let suffix = format!("/{query}");
    let files: Vec<(i64, &str)> = snapshot
        .files()
        .iter()
        .filter(|(_, path)| **path == *query || path.ends_with(&suffix))
        .filter(|(_, path)| matcher.path_matches(path))
        .take(MAX_FILES)
        .map(|(id, path)| (*id, &**path))
        .collect();
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = files.iter().map(|(id, _)| *id).collect();
    let texts = snapshot::texts(db, &ids).await?;
    Ok(files
        .into_iter()
        .zip(texts)
        .map(|((_, path), text)| Hit {
            snippet: snippet(first_line(text.as_str()), None),
            path: path.to_owned(),
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
