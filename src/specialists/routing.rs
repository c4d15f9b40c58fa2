//! Deciding which specialists answer: the orchestrator model's JSON, or keywords when the
//! model is unavailable or answers something else.

use serde::{Deserialize, Serialize};

use super::schemas::extract_json;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Specialist {
    Review,
    Explain,
    Docs,
}

impl Specialist {
    /// The `role` of the agent row that plays this specialist.
    pub fn role(self) -> &'static str {
        match self {
            Specialist::Review => "code_review",
            Specialist::Explain => "code_explanation",
            Specialist::Docs => "documentation",
        }
    }

    pub fn from_role(role: &str) -> Option<Self> {
        [Specialist::Review, Specialist::Explain, Specialist::Docs]
            .into_iter()
            .find(|s| s.role() == role)
    }
}

#[derive(Debug, Deserialize)]
struct RoutingReply {
    #[serde(default)]
    agents: Vec<String>,
}

/// The specialists named in an orchestrator reply, or `None` if it is not routing JSON.
pub fn parse_routing(reply: &str) -> Option<Vec<Specialist>> {
    let parsed: RoutingReply = extract_json(reply)?;
    let mut chosen: Vec<Specialist> = parsed
        .agents
        .iter()
        .filter_map(|name| match name.to_ascii_lowercase().as_str() {
            "review" | "code_review" | "review monk" => Some(Specialist::Review),
            "explain" | "code_explanation" | "codebase sherpa" => Some(Specialist::Explain),
            "docs" | "documentation" | "doc sync" => Some(Specialist::Docs),
            _ => None,
        })
        .collect();
    chosen.sort();
    chosen.dedup();
    Some(chosen)
}

const REVIEW_WORDS: [&str; 12] = [
    "review",
    "bug",
    "security",
    "vulnerab",
    "audit",
    "diff",
    "pull request",
    "code smell",
    "what's wrong",
    "whats wrong",
    "issues in",
    "check my code",
];
const EXPLAIN_WORDS: [&str; 13] = [
    "explain",
    "what does",
    "how does",
    "understand",
    "samjhao",
    "samjha",
    "kya karta",
    "kya hai",
    "meaning of",
    "walk me through",
    "why does",
    "समझा",
    "क्या",
];
const DOCS_WORDS: [&str; 8] = [
    "document",
    "docs",
    "docstring",
    "readme",
    "jsdoc",
    "rustdoc",
    "api reference",
    "comment this",
];

/// Keyword routing: every specialist whose words appear; code with no other hint is
/// explained; nothing at all is small talk (an empty list).
pub fn route_by_keywords(message: &str, has_code: bool) -> Vec<Specialist> {
    let lower = message.to_lowercase();
    let mut chosen = Vec::new();
    for (words, specialist) in [
        (&REVIEW_WORDS[..], Specialist::Review),
        (&EXPLAIN_WORDS[..], Specialist::Explain),
        (&DOCS_WORDS[..], Specialist::Docs),
    ] {
        if words.iter().any(|word| lower.contains(word)) {
            chosen.push(specialist);
        }
    }
    if chosen.is_empty() && (has_code || lower.contains('?')) {
        chosen.push(Specialist::Explain);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_pick_one_or_several() {
        assert_eq!(
            route_by_keywords("Please review this diff", true),
            [Specialist::Review]
        );
        assert_eq!(
            route_by_keywords("yeh code kya karta hai samjhao", true),
            [Specialist::Explain]
        );
        assert_eq!(
            route_by_keywords("Review this and write docs for it", true),
            [Specialist::Review, Specialist::Docs]
        );
        assert_eq!(
            route_by_keywords("here you go", true),
            [Specialist::Explain]
        );
        assert!(route_by_keywords("hello there", false).is_empty());
    }

    #[test]
    fn model_replies_are_parsed_or_refused() {
        assert_eq!(
            parse_routing(r#"{"agents": ["docs", "review", "docs"], "reason": "x"}"#),
            Some(vec![Specialist::Review, Specialist::Docs])
        );
        assert_eq!(parse_routing(r#"{"agents": []}"#), Some(vec![]));
        assert_eq!(parse_routing("I think Review Monk should answer."), None);
    }
}
