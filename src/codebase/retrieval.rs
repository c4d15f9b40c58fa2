//! Retrieval for chats about a project: the message's identifiers and keywords are
//! searched in the project's index, and windows of code around the best hits — the
//! definitions first — are handed to Codebase Sherpa and Doc Sync within a budget.

use std::collections::{BTreeMap, BTreeSet};

use super::{files, search};
use crate::{db::Db, error::Result};

/// Code a chat may carry, in characters (about 3,000 tokens).
const BUDGET_CHARS: usize = 12_000;
const MAX_SNIPPETS: usize = 6;
const MAX_TERMS: usize = 4;
const HITS_PER_TERM: usize = 4;
/// Lines shown before and after a hit.
const BEFORE: usize = 3;
const AFTER: usize = 12;

const STOPWORDS: [&str; 31] = [
    "the", "and", "for", "how", "does", "what", "this", "that", "with", "where", "which", "kya",
    "hai", "explain", "code", "function", "defined", "define", "calls", "call", "called", "who",
    "uses", "used", "work", "works", "from", "our", "are", "document", "write",
];

/// A window of a project file around a matching line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snippet {
    pub path: String,
    /// The matching line (1-based): what an answer cites as `path:line`.
    pub line: usize,
    /// The first line of `text`.
    pub start: usize,
    pub text: String,
}

impl Snippet {
    pub fn citation(&self) -> String {
        format!("{}:{}", self.path, self.line)
    }
}

/// The words of `message` worth searching: `quoted` names and identifiers first.
pub fn terms(message: &str) -> Vec<String> {
    let mut quoted: Vec<String> = message
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|t| t.trim().trim_end_matches("()").to_owned())
        .filter(|t| t.chars().count() >= 3 && !t.contains(char::is_whitespace))
        .collect();
    let words: Vec<&str> = message
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.chars().count() >= 3 && !STOPWORDS.contains(&w.to_lowercase().as_str()))
        .collect();
    let identifier = |w: &str| {
        w.contains('_') || w.chars().skip(1).any(char::is_uppercase) || w.contains(char::is_numeric)
    };
    quoted.extend(
        words
            .iter()
            .filter(|w| identifier(w))
            .map(|w| (*w).to_owned()),
    );
    quoted.extend(
        words
            .iter()
            .filter(|w| !identifier(w))
            .map(|w| (*w).to_owned()),
    );
    let mut seen = BTreeSet::new();
    quoted.retain(|t| seen.insert(t.to_lowercase()));
    quoted.truncate(MAX_TERMS);
    quoted
}

/// The most relevant windows of the project's code for `message`.
pub async fn snippets(db: &Db, project_id: i64, message: &str) -> Result<Vec<Snippet>> {
    let mut hits: Vec<(String, usize)> = Vec::new();
    for term in terms(message) {
        for hit in search::search(db, project_id, &term, HITS_PER_TERM)
            .await?
            .hits
        {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_come_first() {
        assert_eq!(
            terms("Where is `checkout_total` defined and what calls applyDiscount?"),
            ["checkout_total", "applyDiscount"]
        );
        assert_eq!(
            terms("How does the payment retry logic work?"),
            ["payment", "retry", "logic"]
        );
    }
}
