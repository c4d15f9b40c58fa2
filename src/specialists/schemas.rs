//! The structured answers of the specialists, validated before they are stored.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum SecurityRisk {
    None,
    Low,
    High,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    pub severity: Severity,
    pub file: String,
    pub line: u32,
    pub issue: String,
    pub suggestion: String,
    #[serde(default)]
    pub code_fix: String,
}

/// Review Monk's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Review {
    pub summary: String,
    pub findings: Vec<Finding>,
    /// 1 (poor) to 10 (excellent).
    pub quality_score: u8,
    pub security_risk: SecurityRisk,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyConcept {
    pub term: String,
    pub definition: String,
}

/// Codebase Sherpa's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Explanation {
    pub explanation: String,
    pub key_concepts: Vec<KeyConcept>,
    pub analogy: String,
    pub learning_steps: Vec<String>,
}

impl Review {
    pub fn is_valid(&self) -> bool {
        (1..=10).contains(&self.quality_score) && !self.summary.trim().is_empty()
    }

    /// The readable Markdown stored as the chat's `response`.
    pub fn to_markdown(&self) -> String {
        let mut text = format!(
            "**Review summary:** {}\n\n**Quality score:** {}/10 · **Security risk:** {:?}\n",
            self.summary, self.quality_score, self.security_risk
        );
        if self.findings.is_empty() {
            text.push_str("\nNo issues found.\n");
        }
        for finding in &self.findings {
            text.push_str(&format!(
                "\n- **{:?}** `{}:{}` — {}\n  - Suggestion: {}\n",
                finding.severity, finding.file, finding.line, finding.issue, finding.suggestion
            ));
            if !finding.code_fix.trim().is_empty() {
                text.push_str(&format!("  - Fix: `{}`\n", finding.code_fix.trim()));
            }
        }
        text
    }
}

impl Explanation {
    pub fn is_valid(&self) -> bool {
        !self.explanation.trim().is_empty()
    }

    pub fn to_markdown(&self) -> String {
        let mut text = format!("{}\n", self.explanation);
        if !self.key_concepts.is_empty() {
            text.push_str("\n**Key concepts**\n");
            for concept in &self.key_concepts {
                text.push_str(&format!("- **{}**: {}\n", concept.term, concept.definition));
            }
        }
        if !self.analogy.trim().is_empty() {
            text.push_str(&format!("\n**Analogy:** {}\n", self.analogy));
        }
        if !self.learning_steps.is_empty() {
            text.push_str("\n**Learning steps**\n");
            for (i, step) in self.learning_steps.iter().enumerate() {
                text.push_str(&format!("{}. {step}\n", i + 1));
            }
        }
        text
    }
}

/// Pulls the first JSON object out of a model reply (models like to wrap JSON in prose
/// or code fences).
pub fn extract_json<T: serde::de::DeserializeOwned>(reply: &str) -> Option<T> {
    let trimmed = reply.trim();
    if let Ok(value) = serde_json::from_str(trimmed) {
        return Some(value);
    }
    let start = trimmed.find('{')?;
    let end = trimmed.rfind('}')?;
    (start < end)
        .then(|| serde_json::from_str(&trimmed[start..=end]).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_found_inside_prose_and_fences() {
        let reply = "Sure! ```json\n{\"summary\":\"ok\",\"findings\":[],\"quality_score\":9,\"security_risk\":\"None\"}\n```";
        let review: Review = extract_json(reply).unwrap();
        assert!(review.is_valid());
        assert_eq!(review.quality_score, 9);
        assert!(extract_json::<Review>("no json here").is_none());
        let bad_score =
            r#"{"summary":"ok","findings":[],"quality_score":0,"security_risk":"None"}"#;
        assert!(!extract_json::<Review>(bad_score).unwrap().is_valid());
    }
}
