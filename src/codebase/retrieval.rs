//! Retrieval for chats about a project: the message's identifiers and keywords are
//! searched in the project's index, and windows of code around the best hits — the
//! definitions first — are handed to Codebase Sherpa and Doc Sync within a budget, with
//! a [`map`](super::map) of the related files. One generation is read throughout.

use std::{collections::BTreeMap, sync::Arc};

use super::{
    files,
    map::{self, Focus},
    on_live_generation,
    search::Hit,
    snapshot::Text,
};
use crate::{
    db::Db,
    error::Result,
    llm::{ProjectMap, Snippet},
    specialists::reading::terms,
};

/// Code a chat may carry, in characters (about 3,000 tokens).
const BUDGET_CHARS: usize = 12_000;
const MAX_SNIPPETS: usize = 6;
const HITS_PER_TERM: usize = 4;
/// Lines shown before and after a hit.
const BEFORE: usize = 3;
const AFTER: usize = 12;

/// What a chat about a project gets from its code.
#[derive(Debug, Default)]
pub struct Retrieved {
    pub snippets: Vec<Snippet>,
    /// `None` when nothing is indexed.
    pub map: Option<ProjectMap>,
}

/// The most relevant windows of the project's code for `message`, and the map of the
/// files related to it.
pub async fn retrieve(db: &Db, project_id: i64, message: &str) -> Result<Retrieved> {
    let terms = terms(message);
    let terms = &terms;
    let retrieved = on_live_generation(db, project_id, |generation| async move {
        let found = map::find(db, project_id, generation, terms, map::HITS_PER_TERM).await?;
        let snippets = windows(db, project_id, generation, best(&found.hits)).await?;
        let focus = Focus {
            terms: terms.clone(),
            paths: Vec::new(),
            code: snippets.iter().map(|s| s.text.as_str()).collect(),
        };
        let map = map::map_in(db, project_id, generation, &focus, found, map::BUDGET_CHARS);
        Ok(Retrieved {
            snippets,
            map: Some(map.await?),
        })
    })
    .await?;
    Ok(retrieved.unwrap_or_default())
}

/// The most relevant windows of the project's code for `message` alone.
pub async fn snippets(db: &Db, project_id: i64, message: &str) -> Result<Vec<Snippet>> {
    let terms = terms(message);
    let terms = &terms;
    let snippets = on_live_generation(db, project_id, |generation| async move {
        let hits = map::term_hits(db, project_id, generation, terms, HITS_PER_TERM).await?;
        windows(db, project_id, generation, best(&hits)).await
    })
    .await?;
    Ok(snippets.unwrap_or_default())
}

/// The windows around `hits`, within the budget; the files are read in one query.
async fn windows(
    db: &Db,
    project_id: i64,
    generation: i64,
    hits: Vec<(String, usize)>,
) -> Result<Vec<Snippet>> {
    let mut paths: Vec<String> = hits.iter().map(|(path, _)| path.clone()).collect();
    paths.sort_unstable();
    paths.dedup();
    let contents: BTreeMap<String, Arc<Text>> =
        files::contents_in(db, project_id, generation, &paths)
            .await?
            .into_iter()
            .collect();
    let mut snippets: Vec<Snippet> = Vec::new();
    let mut budget = BUDGET_CHARS;
    for (path, line) in hits {
        let Some(content) = contents.get(&path) else {
            continue;
        };
        // Windows that overlap an earlier one add nothing new.
        if snippets
            .iter()
            .any(|s| s.path == path && (s.start..s.start + AFTER).contains(&line))
        {
            continue;
        }
        let start = line.saturating_sub(BEFORE).max(1);
        let text: String = content
            .as_str()
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

/// The best (path, line) hits: each term's first few, first terms first.
fn best(hits: &[Vec<Hit>]) -> Vec<(String, usize)> {
    let mut best: Vec<(String, usize)> = Vec::new();
    for term in hits {
        for hit in term.iter().take(HITS_PER_TERM) {
            let key = (hit.path.clone(), hit.line.max(1) as usize);
            if !best.contains(&key) {
                best.push(key);
            }
        }
        if best.len() >= MAX_SNIPPETS {
            break;
        }
    }
    best.truncate(MAX_SNIPPETS);
    best
}
