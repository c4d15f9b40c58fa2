//! Retrieval for chats about a project: the message's identifiers and keywords are
//! searched in the project's index, and windows of code around the best hits — the
//! definitions first — are handed to Codebase Sherpa and Doc Sync within a budget.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{files, matcher::Matcher, search};
use crate::{db::Db, error::Result, llm::Snippet, specialists::reading::terms};

/// Code a chat may carry, in characters (about 3,000 tokens).
const BUDGET_CHARS: usize = 12_000;
const MAX_SNIPPETS: usize = 6;
const HITS_PER_TERM: usize = 4;
/// Each term's search; a chat waits for every term's before its first token.
const SEARCH_TIMEOUT: Duration = Duration::from_millis(100);
/// Lines shown before and after a hit.
const BEFORE: usize = 3;
const AFTER: usize = 12;

/// The most relevant windows of the project's code for `message`.
pub async fn snippets(db: &Db, project_id: i64, message: &str) -> Result<Vec<Snippet>> {
    let hits = best_hits(db, project_id, message).await?;
    let mut contents: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut snippets = Vec::new();
    let mut budget = BUDGET_CHARS;
    for (path, line) in hits {
        if !contents.contains_key(&path) {
            let content = files::content(db, project_id, &path)
                .await?
                .map(|f| f.content);
            contents.insert(path.clone(), content);
        }
        let Some(Some(content)) = contents.get(&path) else {
            continue;
        };
        // Windows that overlap an earlier one add nothing new.
        if snippets
            .iter()
            .any(|s: &Snippet| s.path == path && (s.start..s.start + AFTER).contains(&line))
        {
            continue;
        }
        let start = line.saturating_sub(BEFORE).max(1);
        let text: String = content
            .lines()
            .skip(start - 1)
            .take(BEFORE + 1 + AFTER)
            .collect::<Vec<_>>()
            .join("\n");
        let text: String = text.chars().take(budget).collect();
        if text.is_empty() {
            break;
        }
        budget -= text.chars().count();
        snippets.push(Snippet {
            path,
            line,
            start,
            text,
        });
    }
    Ok(snippets)
}

/// The best (path, line) hits for the message's terms, first terms first.
async fn best_hits(db: &Db, project_id: i64, message: &str) -> Result<Vec<(String, usize)>> {
    let mut hits: Vec<(String, usize)> = Vec::new();
    for term in terms(message) {
        let Ok(matcher) = Matcher::plain(&term) else {
            continue;
        };
        let request = search::Request {
            matcher: &matcher,
            limit: HITS_PER_TERM,
            timeout: SEARCH_TIMEOUT,
        };
        for hit in search::search(db, project_id, &request).await?.hits {
            let key = (hit.path, hit.line.max(1) as usize);
            if !hits.contains(&key) {
                hits.push(key);
            }
        }
        if hits.len() >= MAX_SNIPPETS {
            break;
        }
    }
    hits.truncate(MAX_SNIPPETS);
    Ok(hits)
}
