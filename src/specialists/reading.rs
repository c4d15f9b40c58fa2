//! How a question and a line of code are read, the same way by the project search
//! (`codebase/`) and by the local engine's answers from it (`llm/local/`): the terms of a
//! question worth searching, and the name a line of code defines.

use std::{collections::BTreeSet, sync::LazyLock};

use regex::Regex;

const MAX_TERMS: usize = 4;

const STOPWORDS: [&str; 31] = [
    "the", "and", "for", "how", "does", "what", "this", "that", "with", "where", "which", "kya",
    "hai", "explain", "code", "function", "defined", "define", "calls", "call", "called", "who",
    "uses", "used", "work", "works", "from", "our", "are", "document", "write",
];

/// The words of `message` worth searching: `quoted` names and identifiers first.
pub fn terms(message: &str) -> Vec<String> {
    let mut quoted: Vec<String> = message
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|t| t.trim().trim_end_matches("()").to_owned())
        .filter(|t| t.chars().count() >= 3 && !t.contains(char::is_whitespace))
        .collect();
    let words: Vec<&str> = message
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.chars().count() >= 3 && !STOPWORDS.contains(&w.to_lowercase().as_str()))
        .collect();
    let identifier = |w: &str| {
        w.contains('_') || w.chars().skip(1).any(char::is_uppercase) || w.contains(char::is_numeric)
    };
    quoted.extend(
        words
            .iter()
            .filter(|w| identifier(w))
            .map(|w| (*w).to_owned()),
    );
    quoted.extend(
        words
            .iter()
            .filter(|w| !identifier(w))
            .map(|w| (*w).to_owned()),
    );
    let mut seen = BTreeSet::new();
    quoted.retain(|t| seen.insert(t.to_lowercase()));
    quoted.truncate(MAX_TERMS);
    quoted
}

static DEFINITION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"^\s*(?:(?:pub(?:\([^)]*\))?|export|default|async|static|public|private|protected|abstract|final|unsafe|extern(?:\s+"[^"]*")?|override|inline)\s+)*(?:fn|def|func|function\*?|class|struct|enum|trait|interface|type|impl(?:<[^>]*>)?|mod|module|macro_rules!|const|union)\s+(?:\([^)]*\)\s*)?([A-Za-z_$][\w$]*)"#,
    )
    .expect("valid pattern")
});

/// The name a line defines (`fn checkout_total(` → `checkout_total`), if it is a definition.
pub fn defined_name(line: &str) -> Option<&str> {
    DEFINITION
        .captures(line)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_are_recognised() {
        assert_eq!(
            defined_name("pub fn checkout_total(cart: &Cart) -> u64 {"),
            Some("checkout_total")
        );
        assert_eq!(defined_name("    async def fetch(url):"), Some("fetch"));
        assert_eq!(defined_name("export default class Cart {"), Some("Cart"));
        assert_eq!(defined_name("pub(crate) struct Outcome {"), Some("Outcome"));
        assert_eq!(
            defined_name("func (s *Server) Serve() error {"),
            Some("Serve")
        );
        assert_eq!(defined_name("    let total = checkout_total(&cart);"), None);
        assert_eq!(defined_name("    checkout_total(&cart);"), None);
    }

    #[test]
    fn identifiers_come_first() {
        assert_eq!(
            terms("Where is `checkout_total` defined and what calls applyDiscount?"),
            ["checkout_total", "applyDiscount"]
        );
        assert_eq!(
            terms("How does the payment retry logic work?"),
            ["payment", "retry", "logic"]
        );
    }
}
