//! Search over a project's indexed files, the live generation only. The blocks' trigram
//! filters (in memory with the generation) narrow what to read to the parts of files that
//! can hold a match ([`narrow`]); the [`Matcher`] then decides each of their lines
//! exactly. Files are read in path order (their texts kept in memory once read:
//! `codebase::snapshot`) until more than [`TOTAL_CAP`] lines matched or the deadline
//! passed ([`scan`]), counting every matching line but keeping only what the answer can
//! show: the query's definitions first (from the generation's symbols, in memory too),
//! then lines in its exact case, then the rest, each in path and line order.

use std::{collections::HashSet, time::Duration};

use serde::Serialize;
use tokio::time::Instant;
use utoipa::ToSchema;

use super::matcher::Matcher;
use super::{
    on_generation,
    snapshot::{self, Snapshot},
    symbols,
};
use crate::{db::Db, error::Result};

mod narrow;
mod paths;
mod scan;

/// Matching lines counted exactly; beyond, the total is this and not exact.
pub const TOTAL_CAP: usize = 1_000;
/// Lines read for a chat's or a review's context, which shows a few hits.
pub const RETRIEVAL_CAP: usize = 100;
const SNIPPET_CHARS: usize = 240;
/// Definitions of the query looked at for ranking.
const DEFINITIONS: usize = 100;

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
    /// Matching lines, plus files whose path is the query; at most [`TOTAL_CAP`].
    pub total: i64,
    /// False when more lines matched than [`TOTAL_CAP`], or the search was cut short.
    pub total_exact: bool,
    /// The deadline passed before every line was read: what was found so far.
    pub partial: bool,
}

struct Candidate {
    path: String,
    line: i64,
    text: String,
}

/// What one search reads, and for how long.
pub struct Request<'a> {
    pub matcher: &'a Matcher,
    pub limit: usize,
    pub timeout: Duration,
    /// Matching lines read at most, so `total` is exact up to it: [`TOTAL_CAP`] for a
    /// search's answer, fewer where only the best few hits count (definitions of the
    /// query come first whatever the cap).
    pub cap: usize,
}

/// The best `limit` hits for the request in the project's live file set, `live` its live
/// generation just read.
pub async fn search(
    db: &Db,
    project_id: i64,
    live: Option<i64>,
    request: &Request<'_>,
) -> Result<Found> {
    let deadline = Instant::now() + request.timeout;
    let found = on_generation(db, project_id, live, |generation| {
        search_generation(db, project_id, generation, request, deadline)
    })
    .await?;
    Ok(found.unwrap_or_else(Found::nothing))
}

impl Found {
    fn nothing() -> Found {
        Found {
            hits: Vec::new(),
            total: 0,
            total_exact: true,
            partial: false,
        }
    }
}

/// [`search`] in one generation, for a reader that takes the generation once for several
/// reads and checks afterwards that it is still the live one.
pub async fn search_in(
    db: &Db,
    project_id: i64,
    generation: i64,
    request: &Request<'_>,
) -> Result<Found> {
    let deadline = Instant::now() + request.timeout;
    search_generation(db, project_id, generation, request, deadline).await
}

/// The first `count` matching lines of one generation in (path, line) order, unranked:
/// enough when every match ranks alike (a case-sensitive whole word, as "what uses X"
/// asks), and the scan stops there rather than at [`TOTAL_CAP`].
pub async fn first_lines(
    db: &Db,
    project_id: i64,
    generation: i64,
    matcher: &Matcher,
    count: usize,
    timeout: Duration,
) -> Result<Vec<Hit>> {
    let Some(snapshot) = snapshot::of(db, project_id, generation).await? else {
        return Ok(Vec::new());
    };
    let deadline = Instant::now() + timeout;
    let scan = scan::scan(db, &snapshot, matcher, deadline, count, Keep::All).await?;
    Ok(scan
        .lines
        .into_iter()
        .map(|c| Hit {
            snippet: snippet(&c.text, matcher.position(&c.text)),
            path: c.path,
            line: c.line,
        })
        .collect())
}

/// Which matching lines a scan keeps (it counts them all, up to its cap).
#[derive(Clone, Copy)]
enum Keep<'a> {
    /// Every one.
    All,
    /// The first `limit` in the query's exact case and the first `limit` others: all a
    /// ranked answer can show after the definitions, which it has already (`defined`, by
    /// place and line; `defining`, their files' places).
    Ranked {
        limit: usize,
        defined: &'a HashSet<(u32, i64)>,
        defining: &'a HashSet<u32>,
    },
}

/// Matching lines read so far.
struct Scan<'a> {
    keep: Keep<'a>,
    /// The lines kept: every one, or (ranked) those in the query's exact case.
    lines: Vec<Candidate>,
    /// Ranked: the other lines kept.
    rest: Vec<Candidate>,
    /// Matching lines read, the definitions among them included.
    count: usize,
    /// Definitions among them.
    definitions: usize,
    /// More lines matched than the scan's cap.
    more: bool,
    partial: bool,
}

async fn search_generation(
    db: &Db,
    project_id: i64,
    generation: i64,
    request: &Request<'_>,
    deadline: Instant,
) -> Result<Found> {
    let matcher = request.matcher;
    let asked = Instant::now();
    // A generation that stopped being live meanwhile: the caller's check reads again.
    let Some(snapshot) = snapshot::of(db, project_id, generation).await? else {
        return Ok(Found::nothing());
    };
    // Reading a generation into memory (once per instance, about a second for 375,000
    // symbols) is not the search's time: it would leave the first search on an instance
    // nothing but `partial`.
    let deadline = deadline + asked.elapsed();
    let by_path = if matcher.options.regex {
        Vec::new()
    } else {
        paths::matches(db, &snapshot, matcher).await?
    };
    let mut definitions = definitions(&snapshot, matcher);
    let defined: HashSet<(u32, i64)> = definitions
        .iter()
        .map(|(place, line, ..)| (*place, *line))
        .collect();
    let defining: HashSet<u32> = defined.iter().map(|(place, _)| *place).collect();
    let keep = Keep::Ranked {
        limit: request.limit,
        defined: &defined,
        defining: &defining,
    };
    let scan = scan::scan(db, &snapshot, matcher, deadline, request.cap, keep).await?;
    // Definitions past the lines read (the cap, the deadline) still come first, and count.
    let counted = scan.count + definitions.len().saturating_sub(scan.definitions) + by_path.len();
    definitions.sort_by(|(a, x, tier_a, _), (b, y, tier_b, _)| (tier_a, a, x).cmp(&(tier_b, b, y)));
    let definitions = definitions
        .into_iter()
        .map(|(place, line, _, text)| Candidate {
            path: snapshot.path(place).to_owned(),
            line,
            text,
        });
    let hits = by_path
        .into_iter()
        .chain(definitions.chain(scan.lines).chain(scan.rest).map(|c| Hit {
            snippet: snippet(&c.text, matcher.position(&c.text)),
            path: c.path,
            line: c.line,
        }))
        .take(request.limit)
        .collect();
    Ok(Found {
        hits,
        total: counted.min(request.cap) as i64,
        total_exact: !scan.more && !scan.partial && counted <= request.cap,
        partial: scan.partial,
    })
}

/// The query's definitions among the lines it matches — (place, line, tier, the line's
/// text) — names equal to the query (tier 0), then starting with it (tier 1).
fn definitions(snapshot: &Snapshot, matcher: &Matcher) -> Vec<(u32, i64, u8, String)> {
    if matcher.options.regex {
        return Vec::new();
    }
    let query = matcher.query.as_str();
    let mut found: Vec<(u32, i64, u8, String)> =
        symbols::definitions_of(snapshot, query, DEFINITIONS)
            .into_iter()
            .filter(|(_, path, _, text)| matcher.matches(path, text))
            .filter_map(|(name, path, line, text)| {
                let place = snapshot.place_of(&path)?;
                Some((place, line, u8::from(name != query), text))
            })
            .collect();
    // A line defining two names is one line, at its better tier.
    found.sort_by_key(|(place, line, tier, _)| (*place, *line, *tier));
    found.dedup_by_key(|(place, line, ..)| (*place, *line));
    found
}

/// The trimmed line, or a window of it around the match at byte `at` when it is long.
pub fn snippet(text: &str, at: Option<usize>) -> String {
    let trimmed = text.trim_start();
    let at = at.map_or(0, |at| at.saturating_sub(text.len() - trimmed.len()));
    let text = trimmed.trim_end();
    if text.chars().count() <= SNIPPET_CHARS {
        return text.to_owned();
    }
    let at = at.min(text.len());
    let before = text
        .char_indices()
        .take_while(|(i, _)| *i < at)
        .count()
        .saturating_sub(SNIPPET_CHARS / 3);
    text.chars().skip(before).take(SNIPPET_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_are_windows_around_the_match() {
        let long = format!("{}needle{}", "x".repeat(500), "y".repeat(500));
        let cut = snippet(&long, Some(500));
        assert!(cut.contains("needle") && cut.chars().count() == SNIPPET_CHARS);
        assert_eq!(snippet("   a b  ", Some(3)), "a b");
        let wide = format!("{}é{}", "é".repeat(400), "z");
        assert!(snippet(&wide, Some(802)).ends_with('z'));
    }
}
