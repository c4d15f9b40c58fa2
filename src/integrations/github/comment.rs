//! The pull-request comment: readable on GitHub, with a hidden marker by which later
//! reviews of the same PR find it again and edit it.

use std::fmt::Write;

use crate::specialists::schemas::{Review, SecurityRisk};

/// Invisible on GitHub; identifies CodeSherpa's one comment on a pull request.
pub const MARKER: &str = "<!-- codesherpa-review -->";

pub struct Comment<'a> {
    /// The structured review, or `None` when the model answered prose only.
    pub review: Option<&'a Review>,
    /// The readable answer (used when there is no structured review).
    pub text: &'a str,
    pub agent: &'a str,
    pub head_sha: &'a str,
    /// `https://github.com/{owner}/{repo}`, for links to the reviewed lines.
    pub web_url: &'a str,
    pub files: usize,
    pub skipped: &'a [(String, String)],
    /// What the reader should know besides the findings (inline comments posted or
    /// refused, settings that were wrong), one paragraph each.
    pub notes: &'a [String],
}

impl Comment<'_> {
    pub fn render(&self) -> String {
        let mut out = format!("{MARKER}\n## CodeSherpa review — {}\n\n", self.agent);
        match self.review {
            Some(review) => self.structured(&mut out, review),
            None => {
                out.push_str(self.text.trim());
                out.push('\n');
            }
        }
        for note in self.notes {
            let _ = writeln!(out, "\n> {}", note.trim().replace('\n', "\n> "));
        }
        let short = self.head_sha.get(..12).unwrap_or(self.head_sha);
        let _ = write!(
            out,
            "\n---\nReviewed head `{short}` ({} file{}).",
            self.files,
            if self.files == 1 { "" } else { "s" }
        );
        let _ = writeln!(out, " Full SHA: {}", self.head_sha);
        if !self.skipped.is_empty() {
            let _ = writeln!(
                out,
                "\n**Not reviewed** ({} file{}):",
                self.skipped.len(),
                if self.skipped.len() == 1 { "" } else { "s" }
            );
            for (path, why) in self.skipped {
                let _ = writeln!(out, "- `{path}`: {why}");
            }
        }
        out.push_str(
            "\n<sub>Comment `/codesherpa review` to review the current head again \
             (`full review`, `pause`, `resume`, `ask <question>`: owners, members and \
             collaborators).</sub>\n",
        );
        out
    }

    fn structured(&self, out: &mut String, review: &Review) {
        let risk = match review.security_risk {
            SecurityRisk::None => "None",
            SecurityRisk::Low => "Low",
            SecurityRisk::High => "High",
        };
        let _ = writeln!(
            out,
            "**Quality score:** {}/10 · **Security risk:** {risk}\n\n{}\n",
            review.quality_score,
            review.summary.trim()
        );
        if review.findings.is_empty() {
            out.push_str("No findings.\n");
            return;
        }
        let _ = writeln!(out, "### Findings ({})\n", review.findings.len());
        let mut findings: Vec<_> = review.findings.iter().collect();
        findings.sort_by_key(|f| f.severity);
        for finding in findings {
            let location = format!("{}:{}", finding.file, finding.line);
            let _ = writeln!(
                out,
                "- **{}** [`{location}`]({}/blob/{}/{}#L{}) — {}",
                serde_json::to_value(finding.severity)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                self.web_url,
                self.head_sha,
                finding.file.trim_start_matches('/'),
                finding.line,
                finding.issue.trim()
            );
            if !finding.suggestion.trim().is_empty() {
                let _ = writeln!(out, "  - Suggestion: {}", finding.suggestion.trim());
            }
            if !finding.code_fix.trim().is_empty() {
                let _ = writeln!(
                    out,
                    "\n  ```\n  {}\n  ```",
                    finding.code_fix.trim().replace('\n', "\n  ")
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::specialists::schemas::{Finding, Severity};

    #[test]
    fn shows_everything_a_reader_needs() {
        let review = Review {
            summary: "Adds a payment retry.".into(),
            findings: vec![
                Finding {
                    severity: Severity::Low,
                    file: "README.md".into(),
                    line: 3,
                    issue: "Typo".into(),
                    suggestion: "Fix it".into(),
                    code_fix: String::new(),
                },
                Finding {
                    severity: Severity::Critical,
                    file: "src/pay.rs".into(),
                    line: 42,
                    issue: "Hard-coded secret".into(),
                    suggestion: "Read it from the environment".into(),
                    code_fix: "let key = std::env::var(\"KEY\")?;".into(),
                },
            ],
            quality_score: 6,
            security_risk: SecurityRisk::High,
        };
        let skipped = vec![("big.lock".to_owned(), "over the review budget".to_owned())];
        let text = Comment {
            review: Some(&review),
            text: "",
            agent: "Review Monk",
            head_sha: "0123456789abcdef0123456789abcdef01234567",
            web_url: "https://github.com/acme/pay",
            files: 2,
            skipped: &skipped,
            notes: &["2 findings were posted as inline comments.".to_owned()],
        }
        .render();
        assert!(text.starts_with(MARKER));
        assert!(text.contains("**Quality score:** 6/10 · **Security risk:** High"));
        assert!(text.contains("Adds a payment retry."));
        assert!(text.contains("`src/pay.rs:42`"));
        assert!(text.contains("https://github.com/acme/pay/blob/0123456789abcdef0123456789abcdef01234567/src/pay.rs#L42"));
        assert!(
            text.find("CRITICAL").unwrap() < text.find("LOW").unwrap(),
            "worst first"
        );
        assert!(text.contains("Suggestion: Read it from the environment"));
        assert!(text.contains("0123456789abcdef0123456789abcdef01234567"));
        assert!(text.contains("`big.lock`: over the review budget"));
        assert!(text.contains("> 2 findings were posted as inline comments."));
    }
}
