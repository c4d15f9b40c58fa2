//! A map of the project for an answer (aider's "repo map" is the model): the files most
//! related to a question or a diff, with their definitions (top-level first), within a
//! budget, so a model can point at code it was not shown; and where the names the
//! question asks about are defined (the symbols) and used (whole-word search).
//!
//! Files are ranked by the question's names they define, their search hits, the uses of
//! those names, and the definitions the shown code refers to (a light, bounded look at
//! the reference graph: one query for all of its identifiers). Everything is read in one
//! generation, with one query per kind of read, never one per file.

mod query;
mod rank;

use std::{collections::HashSet, time::Duration};

use futures_util::future::{join_all, try_join, try_join3};

use super::{
    matcher::{Matcher, Options},
    on_live_generation, search,
};
use crate::{
    db::Db,
    error::Result,
    llm::map::{MappedFile, MappedSymbol, Named, Place, ProjectMap},
};
use query::Defined;
use rank::Signals;

/// The map's size in characters (about 1,000 tokens).
pub const BUDGET_CHARS: usize = 4_000;
/// Files ranked; fewer are shown when the budget runs out.
const MAX_FILES: usize = 12;
/// Definitions read per file.
const SYMBOLS_PER_FILE: i64 = 40;
/// Definitions of the question's names read, and shown per name.
const DEFINITIONS_READ: i64 = 200;
const DEFINITIONS_SHOWN: usize = 5;
/// Names whose uses are searched, and uses shown per name.
const NAMES_USED: usize = 2;
const USES_SHOWN: usize = 8;
/// Lines read per name for its uses: its definitions among them are left out.
const USES_READ: usize = 32;
/// Search hits per term counted for ranking.
pub(super) const HITS_PER_TERM: usize = 40;
/// Each search's deadline; a chat waits for them before its first token.
const SEARCH_TIMEOUT: Duration = Duration::from_millis(100);
/// A name the shown code refers to is ignored when this many files define it (`new`).
const AMBIGUOUS: usize = 4;
/// Definitions read for the shown code's identifiers.
const REFERENCES_READ: i64 = 400;

/// What a map is drawn around.
#[derive(Clone, Debug, Default)]
pub struct Focus {
    /// The question's identifiers and keywords, or the names a diff changes; first first.
    pub terms: Vec<String>,
    /// Files the question or diff is about (a diff's changed files): shown first.
    pub paths: Vec<String>,
    /// Code already shown (snippets, a diff): the files defining what it refers to rank
    /// higher.
    pub code: String,
}

/// The map of the project for `focus`, within `budget` characters; empty when nothing
/// is indexed. For a diff or a question whose terms were not searched yet.
pub async fn map(db: &Db, project_id: i64, focus: &Focus, budget: usize) -> Result<ProjectMap> {
    let map = on_live_generation(db, project_id, |generation| async move {
        let found = find(db, project_id, generation, &focus.terms, HITS_PER_TERM).await?;
        map_in(db, project_id, generation, focus, found, budget).await
    })
    .await?;
    Ok(map.unwrap_or_default())
}

/// What the terms find, read at once since each read needs only the terms: each term's
/// best hits, the definitions named like a term, and the whole-word uses of the first
/// identifiers as spelt (the name a question asks about, most often).
pub(super) struct Found {
    pub(super) hits: Vec<Vec<search::Hit>>,
    defined: Vec<Defined>,
    uses: Vec<(String, Vec<search::Hit>)>,
}

pub(super) async fn find(
    db: &Db,
    project_id: i64,
    generation: i64,
    terms: &[String],
    limit: usize,
) -> Result<Found> {
    let spelt: Vec<String> = terms
        .iter()
        .filter(|term| identifier(term))
        .take(NAMES_USED)
        .cloned()
        .collect();
    let (hits, defined, uses) = try_join3(
        term_hits(db, project_id, generation, terms, limit),
        query::named(db, project_id, generation, terms, false, DEFINITIONS_READ),
        uses_of(db, project_id, generation, spelt),
    )
    .await?;
    Ok(Found {
        hits,
        defined,
        uses,
    })
}

/// Each term's best hits (a case-insensitive substring), all terms searched at once.
pub(super) async fn term_hits(
    db: &Db,
    project_id: i64,
    generation: i64,
    terms: &[String],
    limit: usize,
) -> Result<Vec<Vec<search::Hit>>> {
    let searches = terms.iter().map(|term| async move {
        let Ok(matcher) = Matcher::plain(term) else {
            return Ok(Vec::new());
        };
        let request = search::Request {
            matcher: &matcher,
            limit,
            timeout: SEARCH_TIMEOUT,
            cap: search::RETRIEVAL_CAP,
        };
        Ok(search::search_in(db, project_id, generation, &request)
            .await?
            .hits)
    });
    join_all(searches).await.into_iter().collect()
}

/// The first lines using each name as a whole word (exact case), all searched at once:
/// every use ranks alike, so the first lines read are the ones to show.
async fn uses_of(
    db: &Db,
    project_id: i64,
    generation: i64,
    names: Vec<String>,
) -> Result<Vec<(String, Vec<search::Hit>)>> {
    let searches = names.into_iter().map(|name| async move {
        let options = Options {
            case_sensitive: true,
            word: true,
            regex: false,
        };
        let Ok(matcher) = Matcher::new(&name, options, None) else {
            return Ok((name, Vec::new()));
        };
        let hits = search::first_lines(
            db,
            project_id,
            generation,
            &matcher,
            USES_READ,
            SEARCH_TIMEOUT,
        )
        .await?;
        Ok((name, hits))
    });
    join_all(searches).await.into_iter().collect()
}

/// The map in one generation, from what the terms found.
pub(super) async fn map_in(
    db: &Db,
    project_id: i64,
    generation: i64,
    focus: &Focus,
    found: Found,
    budget: usize,
) -> Result<ProjectMap> {
    let Found {
        hits,
        defined,
        uses,
    } = found;
    let identifiers = rank::identifiers(&focus.code);
    let names = names_asked(&focus.terms, defined);
    let (names, referenced) = try_join(
        with_uses(db, project_id, generation, names, uses),
        query::named(
            db,
            project_id,
            generation,
            &identifiers,
            true,
            REFERENCES_READ,
        ),
    )
    .await?;
    let signals = Signals {
        paths: &focus.paths,
        defining: names
            .iter()
            .flat_map(|(term, named)| named.definitions.iter().map(|d| (d.path.clone(), *term)))
            .collect(),
        hits: hits
            .into_iter()
            .map(|hits| hits.into_iter().map(|hit| hit.path).collect())
            .collect(),
        users: names
            .iter()
            .flat_map(|(_, named)| named.uses.iter().map(|u| u.path.clone()))
            .collect(),
        referenced: referenced_files(&identifiers, referenced),
    };
    let ranked = rank::rank(&signals, MAX_FILES);
    let symbols = query::of_files(db, project_id, generation, &ranked, SYMBOLS_PER_FILE).await?;
    let names = names.into_iter().map(|(_, named)| named).collect();
    Ok(rank::fit(names, mapped(ranked, symbols), budget))
}

/// The ranked files with their definitions.
fn mapped(
    ranked: Vec<String>,
    mut symbols: Vec<(String, Vec<MappedSymbol>, usize)>,
) -> Vec<MappedFile> {
    ranked
        .into_iter()
        .map(|path| {
            let Some(at) = symbols.iter().position(|(p, _, _)| *p == path) else {
                return MappedFile {
                    path,
                    symbols: Vec::new(),
                    more: 0,
                };
            };
            let (path, symbols, total) = symbols.swap_remove(at);
            MappedFile {
                more: total.saturating_sub(symbols.len()),
                path,
                symbols,
            }
        })
        .collect()
}

/// The question's names the project defines, with the index of their term: the exact
/// name when it is defined, else the first definition's own spelling (`cart` → `Cart`);
/// when it defines none, the first term if it is an identifier, for its uses.
fn names_asked(terms: &[String], defined: Vec<Defined>) -> Vec<(usize, Named)> {
    let mut names = Vec::new();
    for (index, term) in terms.iter().enumerate() {
        let lower = term.to_lowercase();
        let same: Vec<&Defined> = defined
            .iter()
            .filter(|d| d.name.to_lowercase() == lower)
            .collect();
        let Some(name) = same
            .iter()
            .find(|d| d.name == *term)
            .or_else(|| same.first())
            .map(|d| d.name.clone())
        else {
            continue;
        };
        let definitions = same
            .iter()
            .filter(|d| d.name == name)
            .map(|d| Place {
                path: d.path.clone(),
                line: d.line,
                what: match &d.container {
                    Some(container) => format!("{} in {container}", d.kind),
                    None => d.kind.clone(),
                },
            })
            .collect();
        names.push((
            index,
            Named {
                name,
                definitions,
                uses: Vec::new(),
            },
        ));
    }
    // Nothing the question names is defined here ("what calls `fetchAll`?"): the uses of
    // its first identifier. Not of a plain word: "payment" inside `payment_retry` on every
    // line would have the search read them all, to find no whole word.
    let first = terms.first().filter(|term| identifier(term));
    if let (true, Some(first)) = (names.is_empty(), first) {
        names.push((
            0,
            Named {
                name: first.clone(),
                definitions: Vec::new(),
                uses: Vec::new(),
            },
        ));
    }
    names
}

/// A name as code spells it: with `_`, a digit, or a capital past its first letter.
fn identifier(term: &str) -> bool {
    term.contains('_')
        || term.contains(|c: char| c.is_ascii_digit())
        || term.chars().skip(1).any(char::is_uppercase)
}

/// The first names, each with its uses (those searched already, or searched now), its
/// definitions left out (then cut to the few shown); names with neither are dropped.
async fn with_uses(
    db: &Db,
    project_id: i64,
    generation: i64,
    mut names: Vec<(usize, Named)>,
    mut searched: Vec<(String, Vec<search::Hit>)>,
) -> Result<Vec<(usize, Named)>> {
    let missing: Vec<String> = names
        .iter()
        .take(NAMES_USED)
        .map(|(_, named)| named.name.clone())
        .filter(|name| searched.iter().all(|(n, _)| n != name))
        .collect();
    searched.extend(uses_of(db, project_id, generation, missing).await?);
    for (_, named) in names.iter_mut().take(NAMES_USED) {
        let Some((_, hits)) = searched.iter().find(|(name, _)| *name == named.name) else {
            continue;
        };
        let definitions: HashSet<(&str, i64)> = named
            .definitions
            .iter()
            .map(|d| (d.path.as_str(), d.line))
            .collect();
        let uses: Vec<Place> = hits
            .iter()
            .filter(|hit| !definitions.contains(&(hit.path.as_str(), hit.line)))
            .take(USES_SHOWN)
            .map(|hit| Place {
                path: hit.path.clone(),
                line: hit.line,
                what: hit.snippet.clone(),
            })
            .collect();
        named.uses = uses;
    }
    for (_, named) in &mut names {
        named.definitions.truncate(DEFINITIONS_SHOWN);
    }
    names.retain(|(_, named)| !named.definitions.is_empty() || !named.uses.is_empty());
    Ok(names)
}

/// For each identifier of the shown code that few files define, those files.
fn referenced_files(identifiers: &[String], defined: Vec<Defined>) -> Vec<String> {
    let wanted: HashSet<&str> = identifiers.iter().map(String::as_str).collect();
    let mut by_name: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for d in defined {
        if wanted.contains(d.name.as_str()) {
            let files = by_name.entry(d.name).or_default();
            if !files.contains(&d.path) {
                files.push(d.path);
            }
        }
    }
    by_name
        .into_values()
        .filter(|files| files.len() < AMBIGUOUS)
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defined(path: &str, name: &str, container: Option<&str>) -> Defined {
        Defined {
            path: path.into(),
            name: name.into(),
            kind: "function".into(),
            line: 1,
            container: container.map(Into::into),
        }
    }

    fn asked(terms: &[&str], found: Vec<Defined>) -> Vec<(usize, String, Vec<String>)> {
        let terms: Vec<String> = terms.iter().map(|t| (*t).to_owned()).collect();
        names_asked(&terms, found)
            .into_iter()
            .map(|(term, named)| {
                let places = named
                    .definitions
                    .iter()
                    .map(|d| format!("{} {}", d.citation(), d.what));
                (term, named.name, places.collect())
            })
            .collect()
    }

    #[test]
    fn names_are_spelt_as_the_code_defines_them() {
        let found = vec![
            defined("a.rs", "Cart", None),
            defined("b.rs", "cart", Some("Shop")),
            defined("c.rs", "Cart", None),
        ];
        assert_eq!(
            asked(&["total", "cart"], found),
            [(
                1,
                "cart".to_owned(),
                vec!["b.rs:1 function in Shop".to_owned()]
            )],
            "the exact spelling first"
        );
        let found = vec![defined("a.rs", "Cart", None)];
        assert_eq!(
            asked(&["cart"], found),
            [(0, "Cart".to_owned(), vec!["a.rs:1 function".to_owned()])]
        );
        assert_eq!(
            asked(&["fetchAll", "cart"], Vec::new()),
            [(0, "fetchAll".to_owned(), Vec::new())],
            "an undefined identifier, for its uses"
        );
        assert!(
            asked(&["payment"], Vec::new()).is_empty(),
            "not a plain word"
        );
    }
}
