//! Where a project uses a name: the lines of its live index that contain the name as a
//! whole identifier (exact case), outside the name's own definitions. What a review cites
//! when a change touches a function or type ("used at src/api.rs:88").
//!
//! Bounded: at most [`MAX_NAMES`] names, [`PER_NAME`] places each, and [`BUDGET`] for
//! all the searches together; names left when the budget is spent get no places.

use std::time::Duration;

use tokio::time::Instant;

use super::{
    matcher::{Matcher, Options},
    search, symbols,
};
use crate::{db::Db, error::Result, llm::Snippet, projects::sync::live_generation};

/// Names looked up per call.
pub const MAX_NAMES: usize = 10;
/// Places kept per name.
pub const PER_NAME: usize = 5;
/// All the searches of one call together. A review waits seconds for its model anyway:
/// this bounds the load on the index, and leaves a busy server room to finish the first
/// names.
pub const BUDGET: Duration = Duration::from_millis(500);
/// Hits read per name: the definitions' own lines (and uses inside them, say recursion)
/// are dropped afterwards, so more than [`PER_NAME`] are asked for.
const HITS_PER_NAME: usize = 40;

/// One name and the places that use it (each a one-line [`Snippet`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Used {
    pub name: String,
    pub places: Vec<Snippet>,
}

/// Up to [`PER_NAME`] places using each of the first [`MAX_NAMES`] `names`, in the order
/// given. Nothing when the project has no index.
pub async fn of(db: &Db, project_id: i64, names: &[String]) -> Result<Vec<Used>> {
    let deadline = Instant::now() + BUDGET;
    let mut found = Vec::new();
    for name in names.iter().take(MAX_NAMES) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let places = places(db, project_id, name, left).await?;
        found.push(Used {
            name: name.clone(),
            places,
        });
    }
    Ok(found)
}

async fn places(db: &Db, project_id: i64, name: &str, timeout: Duration) -> Result<Vec<Snippet>> {
    let options = Options {
        case_sensitive: true,
        word: true,
        regex: false,
    };
    // A name the matcher cannot take (none from an index is) simply has no places.
    let Ok(matcher) = Matcher::new(name, options, None) else {
        return Ok(Vec::new());
    };
    let definitions = symbols::find(db, project_id, name).await?;
    let request = search::Request {
        matcher: &matcher,
        limit: HITS_PER_NAME,
        timeout,
        cap: search::RETRIEVAL_CAP,
    };
    let live = live_generation(db, project_id).await?;
    let hits = search::search(db, project_id, live, &request).await?.hits;
    let inside_definition = |path: &str, line: i64| {
        definitions
            .iter()
            .any(|d| d.path == path && (d.line..=d.end_line).contains(&line))
    };
    Ok(hits
        .into_iter()
        // A file named like the query comes first in a search; it is not a use.
        .filter(|hit| matcher.matches(&hit.path, &hit.snippet))
        .filter(|hit| !inside_definition(&hit.path, hit.line))
        .take(PER_NAME)
        .map(|hit| {
            let line = usize::try_from(hit.line).unwrap_or(1).max(1);
            Snippet {
                path: hit.path,
                line,
                start: line,
                text: hit.snippet,
            }
        })
        .collect())
}
