//! Reading the live generation's symbols, from its snapshot (`codebase::snapshot`): names
//! matched on their lowercase form by range, in byte order on both backends.

use super::{Kind, Symbol};
use crate::{
    codebase::snapshot::{self, Defined, Snapshot},
    db::Db,
    error::Result,
};

/// A symbol lookup: names starting with `prefix` (case-insensitive), exact names first.
pub struct Lookup<'a> {
    pub prefix: &'a str,
    pub kind: Option<Kind>,
    pub limit: i64,
}

/// The project's symbols matching `lookup`, and how many there are; `live` its live
/// generation just read.
pub async fn lookup(
    db: &Db,
    project_id: i64,
    live: Option<i64>,
    lookup: &Lookup<'_>,
) -> Result<(Vec<Symbol>, i64)> {
    let Some(snapshot) = snapshot::live_from(db, project_id, live).await? else {
        return Ok((Vec::new(), 0));
    };
    let prefix = lookup.prefix.to_lowercase();
    let matching: Vec<&Defined> = snapshot
        .starting_with(&prefix)
        .iter()
        .filter(|s| lookup.kind.is_none_or(|kind| s.kind == kind))
        .collect();
    // By name, path and line already: names equal to the query in its case first, then
    // in any case (the first names of the range), then the rest.
    let same_name = matching.partition_point(|s| *s.name_lower == *prefix);
    let (named, rest) = matching.split_at(same_name);
    let exact = named.iter().filter(|s| *s.name == *lookup.prefix);
    let other_case = named.iter().filter(|s| *s.name != *lookup.prefix);
    let items = exact
        .chain(other_case)
        .chain(rest)
        .take(usize::try_from(lookup.limit).unwrap_or(0))
        .map(|s| symbol(&snapshot, s))
        .collect();
    Ok((items, matching.len() as i64))
}

fn symbol(snapshot: &Snapshot, defined: &Defined) -> Symbol {
    Symbol {
        name: defined.name.to_string(),
        kind: defined.kind,
        path: snapshot.path(defined.file).to_owned(),
        line: defined.line,
        end_line: defined.end_line,
        container: defined.container.as_deref().map(str::to_owned),
    }
}

/// The definitions named exactly `name` (case-sensitive) in the project's indexed files,
/// by path and line: "where is X defined". Empty when nothing is indexed.
pub async fn find(db: &Db, project_id: i64, name: &str) -> Result<Vec<Symbol>> {
    let Some(snapshot) = snapshot::live(db, project_id).await? else {
        return Ok(Vec::new());
    };
    // By path and line already: one lowercase name.
    Ok(snapshot
        .named(&name.to_lowercase())
        .iter()
        .filter(|s| *s.name == *name)
        .map(|s| symbol(&snapshot, s))
        .collect())
}

/// The definitions in one indexed file, by line: what a change to its lines touches.
/// Empty when nothing is indexed or the file is not.
pub async fn in_file(db: &Db, project_id: i64, path: &str) -> Result<Vec<Symbol>> {
    let Some(snapshot) = snapshot::live(db, project_id).await? else {
        return Ok(Vec::new());
    };
    let Some(place) = snapshot.place_of(path) else {
        return Ok(Vec::new());
    };
    Ok(snapshot
        .in_file(place)
        .map(|s| symbol(&snapshot, s))
        .collect())
}

/// Definitions in one snapshot whose name starts with `prefix` (case-insensitive), by
/// name (so exact names, in any case, first), path and line; with the text of their first
/// line: what a search ranks first. (name, path, line, text)
pub fn definitions_of(
    snapshot: &Snapshot,
    prefix: &str,
    limit: usize,
) -> Vec<(String, String, i64, String)> {
    snapshot
        .starting_with(&prefix.to_lowercase())
        .iter()
        .take(limit)
        .map(|s| {
            (
                s.name.to_string(),
                snapshot.path(s.file).to_owned(),
                s.line,
                s.text.to_string(),
            )
        })
        .collect()
}
