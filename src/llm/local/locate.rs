//! "Where is X defined?" and "what calls X?" answered from the project's indexed code:
//! the retrieved windows are read line by line for X's definition and its uses, and
//! every place is cited as `path:line`.

use crate::{
    llm::Snippet,
    specialists::{
        reading::{defined_name, terms},
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
const MAX_USES: usize = 8;

struct Place {
    citation: String,
    text: String,
}

/// An answer when `message` asks where something is or who uses it and the snippets
/// show it; `None` otherwise (the code is then explained instead).
pub fn locate(message: &str, snippets: &[Snippet]) -> Option<Explanation> {
    let lower = message.to_lowercase();
    if !QUESTION_WORDS.iter().any(|word| lower.contains(word)) {
        return None;
    }
    let target = terms(message).into_iter().next()?;
    let (definitions, uses) = places(&target, snippets);
    if definitions.is_empty() && uses.is_empty() {
        return None;
    }
    let list = |places: &[Place]| {
        places
            .iter()
            .map(|p| format!("`{}` (`{}`)", p.citation, p.text))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut explanation = match definitions.as_slice() {
        [] => format!("I found no definition of `{target}` in the indexed code."),
        found => format!("`{target}` is defined at {}.", list(found)),
    };
    if !uses.is_empty() {
        explanation.push_str(&format!(" It is used at {}.", list(&uses)));
    }
    explanation.push_str(
        "\n\n_Answered by CodeSherpa's local engine from the project's search index \
         (offline, rule-based); configure an AI provider for deeper explanations._",
    );
    let mut learning_steps: Vec<String> = definitions
        .iter()
        .map(|p| format!("Open `{}` to read the definition.", p.citation))
        .collect();
    learning_steps.extend(
        uses.iter()
            .take(3)
            .map(|p| format!("See how `{}` uses it.", p.citation)),
    );
    Some(Explanation {
        explanation,
        key_concepts: definitions
            .first()
            .map(|p| KeyConcept {
                term: target.clone(),
                definition: format!("defined at {}: `{}`", p.citation, p.text),
            })
            .into_iter()
            .collect(),
        analogy: String::new(),
        learning_steps,
    })
}

/// The lines of the snippets that define `target`, and those that mention it.
fn places(target: &str, snippets: &[Snippet]) -> (Vec<Place>, Vec<Place>) {
    let mut definitions: Vec<Place> = Vec::new();
    let mut uses: Vec<Place> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for snippet in snippets {
        for (offset, text) in snippet.text.lines().enumerate() {
            let line = snippet.start + offset;
            if !text.contains(target) || !seen.insert((snippet.path.clone(), line)) {
                continue;
            }
            let place = Place {
                citation: format!("{}:{line}", snippet.path),
                text: text.trim().chars().take(120).collect(),
            };
            if defined_name(text) == Some(target) {
                definitions.push(place);
            } else if uses.len() < MAX_USES {
                uses.push(place);
            }
        }
    }
    (definitions, uses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definition_and_callers_are_cited() {
        let snippets = vec![
            Snippet {
                path: "src/cart.rs".into(),
                line: 12,
                start: 10,
                text: "use x;\n\npub fn checkout_total(cart: &Cart) -> u64 {\n    0\n}".into(),
            },
            Snippet {
                path: "src/api.rs".into(),
                line: 41,
                start: 40,
                text: "fn handler() {\n    let t = checkout_total(&cart);\n}".into(),
            },
        ];
        let answer = locate("Where is `checkout_total` defined?", &snippets).unwrap();
        assert!(
            answer.explanation.contains("defined at `src/cart.rs:12`"),
            "{}",
            answer.explanation
        );
        assert!(
            answer.explanation.contains("`src/api.rs:41`"),
            "{}",
            answer.explanation
        );
        assert!(locate("Explain checkout_total", &snippets).is_none());
    }
}
