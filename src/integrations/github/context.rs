//! Context from the code (SPEC §6.2): the functions and types a pull request's diff
//! changes, and up to five places elsewhere in the linked project that use each, read
//! from the project's index. The review's prompt lists them for a model to cite as
//! `path:line`; the local engine gets them through the assignment.

use std::collections::HashMap;

use super::diff::{self, Changed};
use crate::{
    codebase::{
        symbols::{self, Kind, Symbol},
        usages,
    },
    db::Db,
    error::Result,
    llm::Uses,
    projects::sync::live_generation,
    specialists::reading::defined_name,
};

/// Changed files whose definitions are read from the index.
const MAX_FILES: usize = 30;
/// The definitions whose uses matter to a change: functions, methods and types.
const WATCHED: [Kind; 8] = [
    Kind::Function,
    Kind::Method,
    Kind::Class,
    Kind::Struct,
    Kind::Enum,
    Kind::Trait,
    Kind::Interface,
    Kind::Type,
];
/// Names so common (constructors, conversions, conventional methods) that the lines
/// using them by name say nothing about one definition.
const COMMON: [&str; 16] = [
    "new",
    "default",
    "from",
    "into",
    "fmt",
    "drop",
    "clone",
    "main",
    "init",
    "__init__",
    "constructor",
    "toString",
    "equals",
    "hashCode",
    "get",
    "set",
];

/// A function or type the diff changes, placed on a changed line of the new side.
#[derive(Debug, PartialEq, Eq)]
struct ChangedName {
    name: String,
    path: String,
    line: u32,
}

/// The functions and types `diff_text` changes that the project uses elsewhere, with
/// those uses. Empty when the project has no index.
pub async fn gather(db: &Db, project_id: i64, diff_text: &str) -> Result<Vec<Uses>> {
    if live_generation(db, project_id).await?.is_none() {
        return Ok(Vec::new());
    }
    let files = diff::changed_lines(diff_text);
    let mut definitions = HashMap::new();
    for (path, _) in files.iter().take(MAX_FILES) {
        let found = symbols::in_file(db, project_id, path).await?;
        definitions.insert(path.clone(), found);
    }
    let changed = changed_names(&files, &definitions);
    let names: Vec<String> = changed.iter().map(|c| c.name.clone()).collect();
    let used = usages::of(db, project_id, &names).await?;
    Ok(changed
        .into_iter()
        .zip(used)
        .filter(|(_, used)| !used.places.is_empty())
        .map(|(changed, used)| Uses {
            name: changed.name,
            path: changed.path,
            line: changed.line,
            places: used.places,
        })
        .collect())
}

/// The prompt's "Context from the code": each changed name's uses as `path:line: text`.
pub fn section(uses: &[Uses]) -> Option<String> {
    if uses.is_empty() {
        return None;
    }
    let mut text = String::from(
        "Context from the code: places elsewhere in the project (from its index) that use \
         the functions and types this diff changes. When the change affects one of them, \
         say so in a finding and cite it as `path:line`.",
    );
    for used in uses {
        text.push_str(&format!(
            "\n\n`{}` (changed at {}:{}) is used at:",
            used.name, used.path, used.line
        ));
        for place in &used.places {
            text.push_str(&format!("\n- {}: {}", place.citation(), place.text));
        }
    }
    Some(text)
}

/// The names the diff changes, first changed first, each once, at most
/// [`usages::MAX_NAMES`]. The rule, per added or removed line:
/// - a line that defines a name (`defined_name`: `fn x(`, `class X`, …) changes that name:
///   a new signature, a function removed or renamed;
/// - any other changed line changes the innermost indexed function, method or type whose
///   span holds it. The index holds the repository's default branch, usually the pull
///   request's base, so spans are compared with the diff's old side: a removed line at
///   its old number; an added line, between old lines `a` and `a + 1`, inside a
///   definition that spans both.
///
/// A name is placed on the new side's number of the first line that changed it.
fn changed_names(
    files: &[(String, Vec<Changed>)],
    definitions: &HashMap<String, Vec<Symbol>>,
) -> Vec<ChangedName> {
    let mut changed: Vec<ChangedName> = Vec::new();
    for (path, changes) in files {
        let in_file = definitions.get(path).map(Vec::as_slice).unwrap_or_default();
        for change in changes {
            let name = defined_name(&change.text)
                .or_else(|| innermost(in_file, change).map(|d| d.name.as_str()));
            let Some(name) = name.filter(|name| worth_looking_up(name)) else {
                continue;
            };
            if changed.iter().any(|c| c.name == name) {
                continue;
            }
            changed.push(ChangedName {
                name: name.to_owned(),
                path: path.clone(),
                line: change.new.max(1),
            });
            if changed.len() == usages::MAX_NAMES {
                return changed;
            }
        }
    }
    changed
}

/// The smallest watched definition around `change`, on the old side.
fn innermost<'a>(definitions: &'a [Symbol], change: &Changed) -> Option<&'a Symbol> {
    let old = i64::from(change.old);
    let (first, last) = if change.added {
        (old, old + 1)
    } else {
        (old, old)
    };
    definitions
        .iter()
        .filter(|d| WATCHED.contains(&d.kind))
        .filter(|d| d.line <= first && last <= d.end_line)
        .min_by_key(|d| (d.end_line - d.line, -d.line))
}

fn worth_looking_up(name: &str) -> bool {
    name.chars().count() >= 3 && !COMMON.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbol(name: &str, kind: Kind, line: i64, end_line: i64) -> Symbol {
        Symbol {
            name: name.into(),
            kind,
            path: "src/cart.rs".into(),
            line,
            end_line,
            container: None,
        }
    }

    fn names(diff: &str, indexed: Vec<Symbol>) -> Vec<(String, u32)> {
        let definitions = HashMap::from([("src/cart.rs".to_owned(), indexed)]);
        changed_names(&diff::changed_lines(diff), &definitions)
            .into_iter()
            .map(|c| (c.name, c.line))
            .collect()
    }

    /// `src/cart.rs` at the base: `Cart` (1–12) holding `total` (3–6) and `count`
    /// (8–10), then `helper` (14–16).
    fn cart() -> Vec<Symbol> {
        vec![
            symbol("Cart", Kind::Struct, 1, 12),
            symbol("total", Kind::Method, 3, 6),
            symbol("count", Kind::Method, 8, 10),
            symbol("helper", Kind::Function, 14, 16),
            symbol("RATE", Kind::Constant, 4, 4),
        ]
    }

    #[test]
    fn a_changed_body_line_names_the_innermost_definition_around_it() {
        let diff = "--- a/src/cart.rs\n+++ b/src/cart.rs\n@@ -4,2 +4,2 @@\n-    old\n+    new\n     keep\n";
        assert_eq!(names(diff, cart()), [("total".to_owned(), 4)]);
    }

    #[test]
    fn an_added_line_counts_only_inside_a_definition_spanning_both_neighbours() {
        // Between old lines 10 and 11: after `count` ends, still inside `Cart`.
        let inside_cart =
            "--- a/src/cart.rs\n+++ b/src/cart.rs\n@@ -10,0 +11,1 @@\n+    fn extra() {}\n";
        assert_eq!(names(inside_cart, cart()), [("extra".to_owned(), 11)]);
        let plain = "--- a/src/cart.rs\n+++ b/src/cart.rs\n@@ -10,0 +11,1 @@\n+    // a note\n";
        assert_eq!(names(plain, cart()), [("Cart".to_owned(), 11)]);
        // Between old lines 12 and 13: outside every definition.
        let between = "--- a/src/cart.rs\n+++ b/src/cart.rs\n@@ -12,0 +13,1 @@\n+// a note\n";
        assert!(names(between, cart()).is_empty());
    }

    #[test]
    fn added_and_removed_definition_lines_name_themselves_once() {
        let diff = "--- a/src/cart.rs\n+++ b/src/cart.rs\n@@ -14,1 +14,1 @@\n-fn helper(a: u32) {\n+fn helper(a: u32, b: u32) {\n@@ -20,1 +20,0 @@\n-pub fn checkout_total() {}\n";
        assert_eq!(
            names(diff, cart()),
            [("helper".to_owned(), 14), ("checkout_total".to_owned(), 21)]
        );
    }

    #[test]
    fn common_and_short_names_and_files_without_an_index_give_nothing() {
        let diff =
            "--- a/src/cart.rs\n+++ b/src/cart.rs\n@@ -1,0 +1,2 @@\n+fn new() {}\n+fn ab() {}\n";
        assert!(names(diff, Vec::new()).is_empty());
        let other = "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-a\n+b\n";
        assert!(names(other, cart()).is_empty());
    }

    #[test]
    fn at_most_ten_names() {
        let mut diff = String::from("--- a/src/cart.rs\n+++ b/src/cart.rs\n@@ -0,0 +1,12 @@\n");
        for i in 0..12 {
            diff.push_str(&format!("+fn function_{i}() {{}}\n"));
        }
        assert_eq!(names(&diff, Vec::new()).len(), usages::MAX_NAMES);
    }

    #[test]
    fn the_section_cites_each_use_as_path_line() {
        let uses = [Uses {
            name: "checkout_total".into(),
            path: "src/cart.rs".into(),
            line: 4,
            places: vec![crate::llm::Snippet {
                path: "src/api.rs".into(),
                line: 88,
                start: 88,
                text: "let total = checkout_total(&cart);".into(),
            }],
        }];
        let text = section(&uses).unwrap();
        assert!(text.starts_with("Context from the code"));
        assert!(text.contains("`checkout_total` (changed at src/cart.rs:4)"));
        assert!(text.contains("\n- src/api.rs:88: let total = checkout_total(&cart);"));
        assert!(section(&[]).is_none());
    }
}
