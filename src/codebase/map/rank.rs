//! Which files a map shows and how much of them: pure, so the weights are tested alone.

use std::collections::{BTreeSet, HashMap};

use crate::llm::map::{more_line, MappedFile, Named, ProjectMap};

/// A file the question or diff names (a diff's changed file).
const FOCUS: u32 = 100;
/// A file defining a name of the question; less for later terms.
const DEFINES: u32 = 24;
const DEFINES_STEP: u32 = 4;
/// A file with search hits for a term; less for later terms, and a little more for
/// each further hit.
const HIT: u32 = 8;
const HIT_STEP: u32 = 2;
const MORE_HITS: u32 = 3;
/// A file using (as a whole word) a name the question asks about.
const USES: u32 = 4;
/// A file defining a name the shown code refers to; counted for up to three names.
const REFERENCED: u32 = 2;
const REFERENCED_NAMES: u32 = 3;
/// Identifiers of the shown code looked up as references.
pub(super) const IDENTIFIERS: usize = 100;
const IDENTIFIER_MIN: usize = 3;

/// What ties each file to the question.
#[derive(Default)]
pub(super) struct Signals<'a> {
    /// Files the focus names.
    pub(super) paths: &'a [String],
    /// (path, index of the term) of each definition of the question's names.
    pub(super) defining: Vec<(String, usize)>,
    /// For each term, first first, the path of each search hit.
    pub(super) hits: Vec<Vec<String>>,
    /// The path of each whole-word use of the names the question asks about.
    pub(super) users: Vec<String>,
    /// For each name the shown code refers to, the paths defining it.
    pub(super) referenced: Vec<String>,
}

/// The `max` files most related to the question, best first (ties by path).
pub(super) fn rank(signals: &Signals<'_>, max: usize) -> Vec<String> {
    let mut scores: HashMap<String, u32> = HashMap::new();
    let mut add = |path: &str, points: u32| {
        *scores.entry(path.to_owned()).or_default() += points;
    };
    for path in signals.paths {
        add(path, FOCUS);
    }
    let defining: BTreeSet<(&str, usize)> = signals
        .defining
        .iter()
        .map(|(path, term)| (path.as_str(), *term))
        .collect();
    for (path, term) in defining {
        add(path, DEFINES.saturating_sub(DEFINES_STEP * term as u32));
    }
    for (term, paths) in signals.hits.iter().enumerate() {
        let weight = HIT.saturating_sub(HIT_STEP * term as u32);
        for (path, count) in counts(paths) {
            add(path, weight + (count - 1).min(MORE_HITS));
        }
    }
    for (path, _) in counts(&signals.users) {
        add(path, USES);
    }
    for (path, count) in counts(&signals.referenced) {
        add(path, REFERENCED * count.min(REFERENCED_NAMES));
    }
    let mut ranked: Vec<(String, u32)> = scores.into_iter().collect();
    ranked.sort_by(|(a, x), (b, y)| y.cmp(x).then_with(|| a.cmp(b)));
    ranked.into_iter().take(max).map(|(path, _)| path).collect()
}

/// How many times each path occurs.
fn counts(paths: &[String]) -> HashMap<&str, u32> {
    let mut counts: HashMap<&str, u32> = HashMap::new();
    for path in paths {
        *counts.entry(path.as_str()).or_default() += 1;
    }
    counts
}

/// The distinct identifiers of `code` (at least three characters), in order, at most
/// [`IDENTIFIERS`]: the names the shown code may refer to.
pub(super) fn identifiers(code: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| {
            word.chars().count() >= IDENTIFIER_MIN
                && word.starts_with(|c: char| c.is_alphabetic() || c == '_')
        })
        .filter(|word| seen.insert(*word))
        .take(IDENTIFIERS)
        .map(str::to_owned)
        .collect()
}

/// The names, then the files in rank order, within `budget` characters of the map's
/// rendering. Breadth first: each file shows its first [`FIRST_SYMBOLS`] definitions
/// (and how many more it has) while the budget lasts, then the files shown get more of
/// theirs, best first; a file whose path does not fit ends the map.
pub(super) fn fit(names: Vec<Named>, files: Vec<MappedFile>, budget: usize) -> ProjectMap {
    let mut left = budget;
    let mut map = ProjectMap::default();
    for mut named in names {
        while size(&named.render()) > left && named.uses.pop().is_some() {}
        let cost = size(&named.render());
        if cost <= left {
            left -= cost;
            map.names.push(named);
        }
    }
    // The blank line between the names and the files.
    if !map.names.is_empty() {
        left = left.saturating_sub(1);
    }
    for file in &files {
        let mut head = file.clone();
        head.more += head.symbols.len().saturating_sub(FIRST_SYMBOLS);
        head.symbols.truncate(FIRST_SYMBOLS);
        let Some(head) = within(head, left) else {
            break;
        };
        left -= size(&head.render());
        map.files.push(head);
    }
    for (shown, whole) in map.files.iter_mut().zip(&files) {
        grow(shown, whole, &mut left);
    }
    map
}

/// Definitions a file shows before the other files get theirs.
const FIRST_SYMBOLS: usize = 8;

fn size(text: &str) -> usize {
    text.chars().count()
}

/// The characters the line saying `n` more takes (none when `n` is 0).
fn more_size(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        size(&more_line(n))
    }
}

/// Adds `whole`'s next definitions to `shown` while they fit in `left`.
fn grow(shown: &mut MappedFile, whole: &MappedFile, left: &mut usize) {
    for symbol in whole.symbols.iter().skip(shown.symbols.len()) {
        let more = shown.more - 1;
        let cost = size(&symbol.render()) + more_size(more);
        let freed = more_size(shown.more);
        if cost > *left + freed {
            break;
        }
        *left = *left + freed - cost;
        shown.symbols.push(symbol.clone());
        shown.more = more;
    }
}

/// `file` with as many of its definitions as fit in `left` characters; `None` when not
/// even its path and how many it has do.
fn within(mut file: MappedFile, left: usize) -> Option<MappedFile> {
    let total = file.symbols.len() + file.more;
    let mut cost = size(&file.path) + 1;
    let mut shown = 0;
    for symbol in &file.symbols {
        let next = cost + size(&symbol.render());
        if next + more_size(total - shown - 1) > left {
            break;
        }
        cost = next;
        shown += 1;
    }
    if cost + more_size(total - shown) > left {
        return None;
    }
    file.symbols.truncate(shown);
    file.more = total - shown;
    Some(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::map::MappedSymbol;

    fn paths(list: &[&str]) -> Vec<String> {
        list.iter().map(|p| (*p).to_owned()).collect()
    }

    #[test]
    fn definitions_outrank_hits_and_references_break_ties() {
        let focus = paths(&["diff.rs"]);
        let signals = Signals {
            paths: &focus,
            defining: vec![("cart.rs".into(), 0), ("cart.rs".into(), 0)],
            hits: vec![
                paths(&["api.rs", "api.rs", "cart.rs", "notes.md"]),
                paths(&["money.rs"]),
            ],
            users: paths(&["api.rs", "api.rs", "web.rs"]),
            referenced: paths(&["money.rs", "zeta.rs", "alpha.rs"]),
        };
        assert_eq!(
            rank(&signals, 10),
            [
                "diff.rs", "cart.rs", "api.rs", "money.rs", "notes.md", "web.rs", "alpha.rs",
                "zeta.rs"
            ]
        );
        assert_eq!(rank(&signals, 2), ["diff.rs", "cart.rs"]);
    }

    #[test]
    fn later_terms_weigh_less() {
        let signals = Signals {
            defining: vec![("b.rs".into(), 3), ("a.rs".into(), 0)],
            hits: vec![paths(&["c.rs"]), paths(&[]), paths(&[]), paths(&["d.rs"])],
            ..Signals::default()
        };
        assert_eq!(rank(&signals, 10), ["a.rs", "b.rs", "c.rs", "d.rs"]);
    }

    #[test]
    fn identifiers_are_distinct_and_bounded() {
        assert_eq!(
            identifiers("let total = checkout_total(&cart); total += 1; x.y 9ab _ok"),
            ["let", "total", "checkout_total", "cart", "_ok"]
        );
        let many: String = (0..500).map(|i| format!("name{i} ")).collect();
        assert_eq!(identifiers(&many).len(), IDENTIFIERS);
    }

    fn file(path: &str, symbols: usize) -> MappedFile {
        MappedFile {
            path: path.into(),
            symbols: (0..symbols)
                .map(|i| MappedSymbol {
                    name: format!("item_{i}"),
                    kind: "function",
                    line: i as i64 + 1,
                    container: None,
                })
                .collect(),
            more: 0,
        }
    }

    #[test]
    fn maps_fit_their_budget() {
        let files: Vec<MappedFile> = (0..20).map(|i| file(&format!("src/f{i}.rs"), 30)).collect();
        for budget in [0, 10, 100, 999, 4_000] {
            let map = fit(Vec::new(), files.clone(), budget);
            assert!(map.render().chars().count() <= budget, "{budget}");
        }
        let map = fit(Vec::new(), files.clone(), 1_000);
        let shown: Vec<usize> = map.files.iter().map(|f| f.symbols.len()).collect();
        assert_eq!(shown, [8, 8, 8, 8, 2], "breadth first");
        assert!(map.files.iter().all(|f| f.symbols.len() + f.more == 30));
        let map = fit(Vec::new(), files.clone(), 6_000);
        let shown: Vec<usize> = map.files.iter().map(|f| f.symbols.len()).collect();
        assert_eq!(shown.len(), 20);
        assert!(
            shown[0] > 8 && shown[19] == 8,
            "then deeper, best first: {shown:?}"
        );
        assert!(map.render().chars().count() > 5_950, "the budget is used");
        let room = fit(Vec::new(), files, 100_000);
        assert!(room
            .files
            .iter()
            .all(|f| f.symbols.len() == 30 && f.more == 0));
        let small = fit(Vec::new(), vec![file("a.rs", 2)], 1_000);
        assert_eq!(
            small.render(),
            "a.rs\n  function item_0, line 1\n  function item_1, line 2\n"
        );
    }

    #[test]
    fn names_lose_uses_before_they_are_left_out() {
        let place = |line| crate::llm::map::Place {
            path: "src/api.rs".into(),
            line,
            what: "x".into(),
        };
        let named = Named {
            name: "checkout_total".into(),
            definitions: vec![place(1)],
            uses: (2..40).map(place).collect(),
        };
        let map = fit(vec![named.clone()], vec![file("a.rs", 1)], 200);
        assert!(map.render().chars().count() <= 200);
        assert!(!map.names[0].uses.is_empty() && map.names[0].uses.len() < named.uses.len());
        assert!(fit(vec![named], Vec::new(), 5).names.is_empty());
    }
}
