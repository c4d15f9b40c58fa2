//! A project's stored files, searched by keyword to answer codebase questions.

use crate::{db::Db, error::Result, with_pool};

/// A window of a file around a match: (path, first line number, text).
pub type Snippet = (String, usize, String);

const STOPWORDS: [&str; 16] = [
    "the", "and", "for", "how", "does", "what", "this", "that", "with", "where", "which", "kya",
    "hai", "explain", "code", "function",
];
const WINDOW: usize = 30;

fn keywords(question: &str) -> Vec<String> {
    let mut words: Vec<String> = question
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 3 && !STOPWORDS.contains(&w.as_str()))
        .collect();
    words.sort();
    words.dedup();
    words
}

/// The best-matching files for `question`, at most `limit`.
pub async fn search(
    db: &Db,
    project_id: i64,
    question: &str,
    limit: usize,
) -> Result<Vec<Snippet>> {
    let words = keywords(question);
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let files: Vec<(String, String)> = with_pool!(db, |pool| {
        sqlx::query_as(
        "SELECT path, content FROM project_files WHERE project_id = $1 ORDER BY path LIMIT 2000"
    )
    .bind(project_id)
    .fetch_all(pool)
    .await
    })?;
    let mut scored: Vec<(usize, Snippet)> = files
        .into_iter()
        .filter_map(|(path, content)| {
            let lower_path = path.to_lowercase();
            let lower = content.to_lowercase();
            let score: usize = words
                .iter()
                .map(|w| {
                    3 * lower_path.matches(w.as_str()).count() + lower.matches(w.as_str()).count()
                })
                .sum();
            (score > 0).then(|| (score, window(&path, &content, &words)))
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1 .0.cmp(&b.1 .0)));
    Ok(scored
        .into_iter()
        .take(limit)
        .map(|(_, snippet)| snippet)
        .collect())
}

fn window(path: &str, content: &str, words: &[String]) -> Snippet {
    let lines: Vec<&str> = content.lines().collect();
    let hit = lines
        .iter()
        .position(|line| {
            let lower = line.to_lowercase();
            words.iter().any(|w| lower.contains(w.as_str()))
        })
        .unwrap_or(0);
    let start = hit.saturating_sub(5);
    let text = lines
        .iter()
        .skip(start)
        .take(WINDOW)
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    (path.to_owned(), start + 1, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_skip_noise() {
        assert_eq!(
            keywords("How does the checkout_total function work?"),
            ["checkout_total", "work"]
        );
    }

    #[test]
    fn window_starts_a_little_before_the_match() {
        let content = (1..=40)
            .map(|i| {
                if i == 20 {
                    "fn checkout_total()".to_owned()
                } else {
                    format!("line {i}")
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let (path, start, text) = window("src/cart.rs", &content, &["checkout_total".into()]);
        assert_eq!((path.as_str(), start), ("src/cart.rs", 15));
        assert!(text.contains("fn checkout_total()"));
    }
}
