//! "Where is X defined?" and "what calls X?" answered from the project's map: X's
//! definitions come from the symbols read at index time (kind, container), its uses from
//! a whole-word search with the definitions left out; every place is cited as
//! `path:line`.

use super::language::Language;
use crate::{
    llm::map::{Named, Place, ProjectMap},
    specialists::{
        reading::terms,
        schemas::{Explanation, KeyConcept},
    },
};

const QUESTION_WORDS: [&str; 10] = [
    "where",
    "defined",
    "definition",
    "declared",
    "calls",
    "called",
    "callers",
    "uses",
    "used",
    "kahan",
];
/// Uses named in the learning steps.
const STEPS_USES: usize = 3;
/// Files of the map named in an explanation's learning steps.
const RELATED: usize = 3;

/// An answer when `message` asks where something is or who uses it and the map knows;
/// `None` otherwise (the code is then explained instead).
pub fn locate(message: &str, map: Option<&ProjectMap>) -> Option<Explanation> {
    let lower = message.to_lowercase();
    if !QUESTION_WORDS.iter().any(|word| lower.contains(word)) {
        return None;
    }
    let named = asked(message, map?)?;
    let target = &named.name;
    let mut explanation = match named.definitions.as_slice() {
        [] => format!("I found no definition of `{target}` in the indexed code."),
        found => format!("`{target}` is defined at {}.", list(found, false)),
    };
    if named.uses.is_empty() {
        explanation.push_str(" I found no other line using it as a whole word.");
    } else {
        explanation.push_str(&format!(" It is used at {}.", list(&named.uses, true)));
    }
    explanation.push_str(
        "\n\n_Answered by CodeSherpa's local engine from the project's symbols and search \
         index (offline, rule-based); configure an AI provider for deeper explanations._",
    );
    let mut learning_steps: Vec<String> = named
        .definitions
        .iter()
        .map(|p| format!("Open `{}` to read the definition.", p.citation()))
        .collect();
    learning_steps.extend(
        named
            .uses
            .iter()
            .take(STEPS_USES)
            .map(|p| format!("See how `{}` uses it.", p.citation())),
    );
    Some(Explanation {
        explanation,
        key_concepts: named
            .definitions
            .first()
            .map(|p| KeyConcept {
                term: target.clone(),
                definition: format!("a {} defined at {}", p.what, p.citation()),
            })
            .into_iter()
            .collect(),
        analogy: String::new(),
        learning_steps,
    })
}

/// The name the question asks about: its first term the map looked up.
fn asked<'a>(message: &str, map: &'a ProjectMap) -> Option<&'a Named> {
    terms(message).iter().find_map(|term| {
        let term = term.to_lowercase();
        map.names.iter().find(|n| n.name.to_lowercase() == term)
    })
}

/// A learning step naming the map's other files (with their first definition), for an
/// explanation of the project's code at `shown`; `None` when the map has no other file.
pub fn related(map: Option<&ProjectMap>, shown: &str, language: Language) -> Option<String> {
    let files: Vec<String> = map?
        .files
        .iter()
        .filter(|file| file.path != shown)
        .take(RELATED)
        .map(|file| match file.symbols.first() {
            Some(s) => format!("`{}` ({} `{}`, line {})", file.path, s.kind, s.name, s.line),
            None => format!("`{}`", file.path),
        })
        .collect();
    if files.is_empty() {
        return None;
    }
    let list = files.join(", ");
    Some(match language {
        Language::English => format!("Read the related files too: {list}."),
        Language::Hindi => format!("संबंधित फ़ाइलें भी पढ़ें: {list}।"),
        Language::Hinglish => format!("Related files bhi padho: {list}."),
    })
}

/// `` `src/cart.rs:4` (function) `` for definitions, `` `src/api.rs:2` (`let t = f();`) ``
/// for uses (`code`: what is there is a line of code).
fn list(places: &[Place], code: bool) -> String {
    places
        .iter()
        .map(|p| match code {
            true => format!("`{}` (`{}`)", p.citation(), p.what),
            false => format!("`{}` ({})", p.citation(), p.what),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(path: &str, line: i64, what: &str) -> Place {
        Place {
            path: path.into(),
            line,
            what: what.into(),
        }
    }

    #[test]
    fn definition_and_callers_are_cited() {
        let map = ProjectMap {
            files: Vec::new(),
            names: vec![Named {
                name: "checkout_total".into(),
                definitions: vec![place("src/cart.rs", 4, "function")],
                uses: vec![place("src/api.rs", 41, "let t = checkout_total(&cart);")],
            }],
        };
        let answer = locate("Where is `checkout_total` defined?", Some(&map)).unwrap();
        assert!(
            answer
                .explanation
                .contains("defined at `src/cart.rs:4` (function)"),
            "{}",
            answer.explanation
        );
        assert!(
            answer
                .explanation
                .contains("`src/api.rs:41` (`let t = checkout_total(&cart);`)"),
            "{}",
            answer.explanation
        );
        assert!(locate("Explain checkout_total", Some(&map)).is_none());
        assert!(locate("Where is `checkout_total` defined?", None).is_none());
        assert!(locate("Where is `refund` defined?", Some(&map)).is_none());
    }

    #[test]
    fn explanations_point_at_the_maps_other_files() {
        let file = |path: &str| crate::llm::map::MappedFile {
            path: path.into(),
            symbols: vec![crate::llm::map::MappedSymbol {
                name: "Money".into(),
                kind: "struct",
                line: 3,
                container: None,
            }],
            more: 0,
        };
        let map = ProjectMap {
            files: vec![file("src/cart.rs"), file("src/money.rs")],
            names: Vec::new(),
        };
        assert_eq!(
            related(Some(&map), "src/cart.rs", Language::English).unwrap(),
            "Read the related files too: `src/money.rs` (struct `Money`, line 3)."
        );
        assert!(related(Some(&map), "src/cart.rs", Language::Hinglish).is_some());
        assert!(related(None, "src/cart.rs", Language::English).is_none());
    }
}
