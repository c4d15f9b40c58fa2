//! The map's reads of the generation's symbols, from its snapshot (`codebase::snapshot`):
//! all the names or files it is given at once. A generation that stopped being live reads
//! as empty: the map's caller checks the live generation afterwards and reads again.

use crate::{codebase::snapshot, db::Db, error::Result, llm::map::MappedSymbol};

/// A definition and its file.
pub(super) struct Defined {
    pub(super) path: String,
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) line: i64,
    pub(super) container: Option<String>,
}

/// Definitions whose name is one of `names` in any case, by path and line; at most
/// `limit`. With `top_level`, only those outside any container.
pub(super) async fn named(
    db: &Db,
    project_id: i64,
    generation: i64,
    names: &[String],
    top_level: bool,
    limit: i64,
) -> Result<Vec<Defined>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let Some(snapshot) = snapshot::of(db, project_id, generation).await? else {
        return Ok(Vec::new());
    };
    let mut lower: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
    lower.sort_unstable();
    lower.dedup();
    let mut found: Vec<&snapshot::Defined> = lower
        .iter()
        .flat_map(|name| snapshot.named(name))
        .filter(|s| !top_level || s.container.is_none())
        .collect();
    found.sort_unstable_by_key(|s| (s.file, s.line, s.end_line));
    Ok(found
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(0))
        .map(|s| Defined {
            path: snapshot.path(s.file).to_owned(),
            name: s.name.to_string(),
            kind: s.kind.as_str().to_owned(),
            line: s.line,
            container: s.container.as_deref().map(str::to_owned),
        })
        .collect())
}

/// The definitions of each of `paths` — top-level ones first, then by line, at most
/// `per_file` — and how many each file has: (path, symbols, total), by path.
pub(super) async fn of_files(
    db: &Db,
    project_id: i64,
    generation: i64,
    paths: &[String],
    per_file: i64,
) -> Result<Vec<(String, Vec<MappedSymbol>, usize)>> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let Some(snapshot) = snapshot::of(db, project_id, generation).await? else {
        return Ok(Vec::new());
    };
    let mut places: Vec<u32> = paths.iter().filter_map(|p| snapshot.place_of(p)).collect();
    places.sort_unstable();
    places.dedup();
    Ok(places
        .into_iter()
        .filter_map(|place| {
            let mut symbols: Vec<&snapshot::Defined> = snapshot.in_file(place).collect();
            if symbols.is_empty() {
                return None;
            }
            let total = symbols.len();
            // Stable: by line within each group.
            symbols.sort_by_key(|s| s.container.is_some());
            let shown = symbols
                .into_iter()
                .take(usize::try_from(per_file).unwrap_or(0))
                .map(|s| MappedSymbol {
                    name: s.name.to_string(),
                    kind: s.kind.as_str(),
                    line: s.line,
                    container: s.container.as_deref().map(str::to_owned),
                })
                .collect();
            Some((snapshot.path(place).to_owned(), shown, total))
        })
        .collect())
}
