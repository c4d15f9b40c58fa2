//! Inline comments: the findings of a review that sit on right-side lines of the reviewed
//! diff, as the `comments[]` of one pull-request review, most severe first, capped, each
//! with a fingerprint (path, line text, issue) so that it is never posted twice on a pull
//! request (SPEC §6.2).

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::specialists::schemas::{Finding, Review, Severity};

/// Hidden in the body of the pull-request review a review job posts: a retry (or a run
/// after a crash) finds its review again instead of posting a second one.
pub fn marker(review_id: i64) -> String {
    format!("<!-- codesherpa-inline review:{review_id} -->")
}

/// One inline comment to post.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inline {
    pub path: String,
    pub line: u32,
    pub body: String,
    pub fingerprint: String,
}

impl Inline {
    /// As GitHub's `comments[]` of `POST /repos/{o}/{r}/pulls/{n}/reviews` takes it.
    pub fn to_json(&self) -> Value {
        json!({"path": self.path, "line": self.line, "side": "RIGHT", "body": self.body})
    }
}

/// The body of `POST /repos/{o}/{r}/pulls/{n}/reviews`: one review of the reviewed head
/// (`commit_id`), `event: COMMENT`, its hidden marker, and the comments.
pub fn review_payload(marker: &str, head_sha: &str, comments: &[Inline]) -> Value {
    let count = comments.len();
    let body = format!(
        "{marker}\nCodeSherpa: {count} finding{} on the changed lines; the summary is in the \
         pull request's CodeSherpa comment.",
        if count == 1 { "" } else { "s" }
    );
    json!({
        "commit_id": head_sha,
        "event": "COMMENT",
        "body": body,
        "comments": comments.iter().map(Inline::to_json).collect::<Vec<_>>(),
    })
}

/// What becomes of a review's findings on the diff.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// To post, most severe first, at most the cap.
    pub comments: Vec<Inline>,
    /// On the diff and new, but over the cap (they stay in the summary).
    pub over_cap: usize,
    /// On the diff and already posted on this pull request before.
    pub already_posted: usize,
}

/// The same finding on the same line text of the same file: the same fingerprint, also
/// when the line moved.
pub fn fingerprint(path: &str, line_text: &str, issue: &str) -> String {
    let mut hash = Sha256::new();
    for part in [path.trim(), line_text.trim(), issue.trim()] {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    hex::encode(hash.finalize())
}

/// Chooses the inline comments of `review`: findings on a right-side line of the diff
/// (`right`: path → line → text), not posted before (`posted` fingerprints), most severe
/// first, at most `max`.
pub fn plan(
    review: &Review,
    right: &HashMap<String, HashMap<u32, String>>,
    posted: &HashSet<String>,
    max: usize,
) -> Plan {
    let mut findings: Vec<&Finding> = review.findings.iter().collect();
    // Stable: the model's order within a severity.
    findings.sort_by_key(|f| f.severity);
    let mut plan = Plan::default();
    let mut seen = HashSet::new();
    for finding in findings {
        let path = finding.file.trim().trim_start_matches('/');
        let Some(text) = right.get(path).and_then(|lines| lines.get(&finding.line)) else {
            continue;
        };
        let print = fingerprint(path, text, &finding.issue);
        if posted.contains(&print) {
            plan.already_posted += 1;
            continue;
        }
        if !seen.insert(print.clone()) {
            continue;
        }
        if plan.comments.len() >= max {
            plan.over_cap += 1;
            continue;
        }
        plan.comments.push(Inline {
            path: path.to_owned(),
            line: finding.line,
            body: body(finding, text),
            fingerprint: print,
        });
    }
    plan
}

fn severity_label(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "CRITICAL",
        Severity::High => "HIGH",
        Severity::Medium => "MEDIUM",
        Severity::Low => "LOW",
    }
}

/// The comment: severity, issue, advice, and the fix as a `suggestion` block when it is a
/// drop-in replacement of the line (else as plain code, or not at all).
fn body(finding: &Finding, line_text: &str) -> String {
    let mut out = format!(
        "**{}** — {}",
        severity_label(finding.severity),
        finding.issue.trim()
    );
    if !finding.suggestion.trim().is_empty() {
        out.push_str(&format!("\n\n{}", finding.suggestion.trim()));
    }
    if let Some(replacement) = drop_in(&finding.code_fix, line_text) {
        out.push_str(&format!("\n\n```suggestion\n{replacement}\n```"));
    }
    out
}

/// Characters prose rarely has and code nearly always does.
const CODE_MARKS: [char; 12] = ['(', ')', '{', '}', '[', ']', ';', '=', '?', '"', '<', '>'];

/// Words every language shares: no sign that a fix is about the same line.
const KEYWORDS: [&str; 16] = [
    "let", "mut", "const", "var", "def", "fn", "return", "pub", "self", "if", "else", "in", "is",
    "the", "to", "await",
];

/// `fix` as the replacement of `line`, when it is one: code (not advice), different from
/// the line, sharing a name with it, indented as the line when it came without.
pub fn drop_in(fix: &str, line: &str) -> Option<String> {
    let fix = fix.trim_end_matches(['\n', '\r']);
    let trimmed = fix.trim();
    if trimmed.is_empty() || trimmed == line.trim() || trimmed.contains("```") {
        return None;
    }
    if !trimmed.contains(CODE_MARKS) || looks_like_prose(trimmed) {
        return None;
    }
    let names = |text: &str| -> HashSet<String> {
        text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|word| {
                word.len() >= 2
                    && !word.chars().all(|c| c.is_ascii_digit())
                    && !KEYWORDS.contains(word)
            })
            .map(str::to_owned)
            .collect()
    };
    if names(trimmed).is_disjoint(&names(line)) {
        return None;
    }
    let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
    if fix.starts_with(char::is_whitespace) || indent.is_empty() {
        return Some(fix.to_owned());
    }
    Some(
        fix.lines()
            .map(|l| format!("{indent}{l}"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// A sentence: starts with a capitalised word followed by lower-case words and ends with
/// a full stop ("Use parameterised queries (bind values).").
fn looks_like_prose(text: &str) -> bool {
    let words: Vec<&str> = text.split_whitespace().collect();
    let first_is_word = words
        .first()
        .is_some_and(|w| w.chars().all(char::is_alphabetic) && w.starts_with(char::is_uppercase));
    let lower_words = words
        .iter()
        .filter(|w| w.chars().all(|c| c.is_lowercase() || c == ',' || c == '.'))
        .count();
    first_is_word && words.len() >= 4 && lower_words * 2 >= words.len()
        || text.ends_with('.') && lower_words * 2 > words.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::specialists::schemas::SecurityRisk;

    fn finding(severity: Severity, file: &str, line: u32, issue: &str, fix: &str) -> Finding {
        Finding {
            severity,
            file: file.into(),
            line,
            issue: issue.into(),
            suggestion: "Do better".into(),
            code_fix: fix.into(),
        }
    }

    fn review(findings: Vec<Finding>) -> Review {
        Review {
            summary: String::new(),
            findings,
            quality_score: 5,
            security_risk: SecurityRisk::None,
        }
    }

    #[test]
    fn only_diff_lines_most_severe_first_capped_and_never_twice() {
        let right: HashMap<String, HashMap<u32, String>> = HashMap::from([(
            "src/db.rs".to_owned(),
            HashMap::from([
                (
                    41,
                    "    let pool = opts.connect_lazy(url).unwrap();".to_owned(),
                ),
                (42, "    let key = \"sk_live_123456\";".to_owned()),
                (43, "    println!(\"{pool:?}\");".to_owned()),
            ]),
        )]);
        let findings = vec![
            finding(Severity::Low, "src/db.rs", 43, "Debug output", ""),
            finding(
                Severity::Medium,
                "src/db.rs",
                41,
                "unwrap",
                "    let pool = opts.connect_lazy(url)?;",
            ),
            finding(
                Severity::Critical,
                "/src/db.rs",
                42,
                "secret",
                "Use a vault.",
            ),
            finding(Severity::High, "src/other.rs", 9, "outside the diff", ""),
        ];
        let all = plan(&review(findings.clone()), &right, &HashSet::new(), 10);
        let order: Vec<u32> = all.comments.iter().map(|c| c.line).collect();
        assert_eq!(order, [42, 41, 43]);
        assert!(all.comments[1]
            .body
            .contains("```suggestion\n    let pool = opts.connect_lazy(url)?;\n```"));
        assert!(
            !all.comments[0].body.contains("```suggestion"),
            "advice is no suggestion"
        );
        assert_eq!(
            all.comments[0].to_json(),
            json!({"path": "src/db.rs", "line": 42, "side": "RIGHT", "body": all.comments[0].body})
        );

        let payload = review_payload(&marker(9), "abc", &all.comments);
        assert_eq!(payload["commit_id"], "abc");
        assert_eq!(payload["event"], "COMMENT");
        assert!(payload["body"]
            .as_str()
            .unwrap()
            .starts_with("<!-- codesherpa-inline review:9 -->"));
        assert_eq!(payload["comments"].as_array().unwrap().len(), 3);

        let capped = plan(&review(findings.clone()), &right, &HashSet::new(), 2);
        assert_eq!((capped.comments.len(), capped.over_cap), (2, 1));

        let posted: HashSet<String> = all.comments[..2]
            .iter()
            .map(|c| c.fingerprint.clone())
            .collect();
        let again = plan(&review(findings), &right, &posted, 10);
        assert_eq!(again.comments.len(), 1);
        assert_eq!(again.comments[0].line, 43);
        assert_eq!(again.already_posted, 2);
    }

    #[test]
    fn the_fingerprint_follows_the_line_text_not_its_number() {
        let a = fingerprint("src/a.rs", "  x.unwrap();", "unwrap");
        assert_eq!(a, fingerprint("src/a.rs", "x.unwrap();  ", "unwrap"));
        assert_ne!(a, fingerprint("src/b.rs", "x.unwrap();", "unwrap"));
        assert_ne!(a, fingerprint("src/a.rs", "y.unwrap();", "unwrap"));
        assert_ne!(a, fingerprint("src/a.rs", "x.unwrap();", "panic"));
    }

    #[test]
    fn suggestions_only_for_code_that_replaces_the_line() {
        let line = "    let pool = opts.connect_lazy(url).unwrap();";
        assert_eq!(
            drop_in("let pool = opts.connect_lazy(url)?;", line).as_deref(),
            Some("    let pool = opts.connect_lazy(url)?;"),
            "indented as the line"
        );
        assert_eq!(drop_in("", line), None);
        assert_eq!(drop_in(line, line), None, "no change");
        assert_eq!(
            drop_in("Propagate the error with `?` (or handle it).", line),
            None
        );
        assert_eq!(
            drop_in("credentials come from the environment or an IAM role", line),
            None
        );
        assert_eq!(drop_in("let value = result?;", line), None, "another line");
        assert_eq!(
            drop_in(
                "api_key = os.environ[\"API_KEY\"]",
                "    api_key = \"sk_1234\""
            )
            .as_deref(),
            Some("    api_key = os.environ[\"API_KEY\"]")
        );
    }
}
