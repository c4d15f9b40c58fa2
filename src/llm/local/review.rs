//! The local reviewer: static checks over the added lines of a diff or a snippet.

use std::sync::LazyLock;

use regex::Regex;

use super::source::{Source, SourceFile};
use crate::{
    llm::{Snippet, Uses},
    specialists::schemas::{Finding, Review, SecurityRisk, Severity},
};

/// Functions longer than this many added lines are flagged.
const LONG_FUNCTION_LINES: usize = 50;

struct Rule {
    pattern: LazyLock<Regex>,
    severity: Severity,
    security: bool,
    only_rust: bool,
    /// Whether the rule also applies inside comments (secrets and TODO markers do).
    in_comments: bool,
    /// A second pattern the line must also match.
    requires: Option<&'static LazyLock<Regex>>,
    issue: &'static str,
    suggestion: &'static str,
    /// The drop-in replacement of the flagged line (path, line), where the rule has one;
    /// advice stays in `suggestion` and the finding's `code_fix` is then empty.
    fix: Option<Fix>,
}

/// Writes the replacement of a flagged line: (path, line text) → the new line.
type Fix = fn(&str, &str) -> Option<String>;

macro_rules! rule {
    ($re:expr, $severity:ident, security: $security:expr, rust: $rust:expr, comments: $comments:expr,
     $issue:expr, $suggestion:expr, $fix:expr) => {
        rule!($re, $severity, security: $security, rust: $rust, comments: $comments, requires: None,
            $issue, $suggestion, $fix)
    };
    ($re:expr, $severity:ident, security: $security:expr, rust: $rust:expr, comments: $comments:expr,
     requires: $requires:expr, $issue:expr, $suggestion:expr, $fix:expr) => {
        Rule {
            pattern: LazyLock::new(|| Regex::new($re).expect("valid rule pattern")),
            severity: Severity::$severity,
            security: $security,
            only_rust: $rust,
            in_comments: $comments,
            requires: $requires,
            issue: $issue,
            suggestion: $suggestion,
            fix: $fix,
        }
    };
}

/// Concatenation or interpolation into a string: `" + x`, `x + "`, `{x}`, `${x}`, `"…" % x`.
/// (A `%s` placeholder passed as a bind parameter is the safe form and is not matched.)
static STRING_BUILDING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"["'`]\s*\+|\+\s*["'`]|\{\w*\}|\$\{|["']\s*%\s*[\w(]|\.format\(|format!\("#)
        .expect("valid pattern")
});

static RULES: [Rule; 9] = [
    rule!(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----", Critical, security: true, rust: false, comments: true,
        "A private key is committed in the source.",
        "Remove the key, rotate it, and load it from a secret store at run time.",
        None),
    rule!(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", Critical, security: true, rust: false, comments: true,
        "An AWS access key id is hard-coded.",
        "Revoke the key and use the AWS credential chain (environment, role) instead.",
        None),
    rule!(r#"(?i)(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token|token|private[_-]?key)\w*["']?\s*[:=]\s*["'][^"'\s]{4,}["']"#,
        Critical, security: true, rust: false, comments: true,
        "A credential is hard-coded in the source.",
        "Read secrets from the environment or a secret manager; never commit them.",
        Some(fix_credential)),
    rule!(r"\b(?:eval|exec)\s*\(", High, security: true, rust: false, comments: false,
        "eval/exec runs dynamic code: injection risk.",
        "Parse the input explicitly (e.g. json.loads / ast.literal_eval) instead of executing it.",
        Some(fix_eval)),
    rule!(r#"(?i)["'`]\s*(?:select|insert|update|delete)\s.*\b(?:from|into|set|where|values)\b"#,
        High, security: true, rust: false, comments: false, requires: Some(&STRING_BUILDING),
        "SQL is built by string concatenation or formatting: SQL injection risk.",
        "Use parameterised queries and pass values as bind parameters.",
        None),
    rule!(r"\.unwrap\(\)", Medium, security: false, rust: true, comments: false,
        "unwrap() panics on None/Err and takes the whole task down.",
        "Propagate the error with `?` or handle the failure explicitly.",
        Some(fix_unwrap)),
    rule!(r"\bpanic!\(", Medium, security: false, rust: true, comments: false,
        "panic! aborts instead of reporting an error the caller can handle.",
        "Return a Result with a descriptive error instead.",
        None),
    rule!(r"\bconsole\.(?:log|debug)\(|(?:^|[^.\w])print\(|\bprintln!\(|\bdbg!\(|System\.out\.print|\bfmt\.Print", Low, security: false, rust: false, comments: false,
        "Debug output left in the code.",
        "Remove it or use the project's logger at an appropriate level.",
        None),
    rule!(r"\b(?:TODO|FIXME|XXX|HACK)\b", Low, security: false, rust: false, comments: true,
        "An unfinished-work marker (TODO/FIXME) is being added.",
        "Finish the work or track it in an issue before merging.",
        None),
];

/// `x.unwrap()` → `x?` on the same line: the error goes to the caller.
fn fix_unwrap(_path: &str, line: &str) -> Option<String> {
    Some(line.replace(".unwrap()", "?"))
}

/// A name and a quoted literal assigned to it: `name = "…"`, `"name": "…"`.
static ASSIGNED_LITERAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"([A-Za-z_][\w-]*)(["']?\s*[:=]\s*)(["'])[^"'\s]{4,}["']"#).expect("valid pattern")
});

static CREDENTIAL_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token|token|private[_-]?key")
        .expect("valid pattern")
});

/// The file's extension, lower case.
fn extension(path: &str) -> String {
    path.rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default()
}

/// A hard-coded credential → the same name read from the environment, in the file's
/// language (`api_key = "sk_…"` → `api_key = os.environ["API_KEY"]`); none for languages
/// or forms (a Rust `const`) where no one-line replacement compiles.
fn fix_credential(path: &str, line: &str) -> Option<String> {
    let captures = ASSIGNED_LITERAL
        .captures_iter(line)
        .find(|c| CREDENTIAL_NAME.is_match(&c[1]))?;
    let variable = captures[1].to_ascii_uppercase().replace('-', "_");
    let trimmed = line.trim_start();
    let read = match extension(path).as_str() {
        "py" => format!("os.environ[\"{variable}\"]"),
        "rs" if !trimmed.starts_with("const ")
            && !trimmed.starts_with("static ")
            && !trimmed.starts_with("pub ") =>
        {
            format!("std::env::var(\"{variable}\")?")
        }
        "js" | "jsx" | "ts" | "tsx" => format!("process.env.{variable}"),
        "go" => format!("os.Getenv(\"{variable}\")"),
        "rb" => format!("ENV.fetch(\"{variable}\")"),
        "java" | "kt" => format!("System.getenv(\"{variable}\")"),
        "php" => format!("getenv('{variable}')"),
        "cs" => format!("Environment.GetEnvironmentVariable(\"{variable}\")"),
        _ => return None,
    };
    let whole = captures.get(0)?;
    let literal_start = captures.get(3)?.start();
    Some(format!(
        "{}{}{read}{}",
        &line[..whole.start()],
        &line[whole.start()..literal_start],
        &line[whole.end()..]
    ))
}

static EVAL_CALL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(^|[^.\w])eval\s*\(").expect("valid pattern"));

/// `eval(x)` → a parser of literal data in the file's language (`ast.literal_eval(x)`,
/// `JSON.parse(x)`); none where there is no such drop-in (`exec`, other languages).
fn fix_eval(path: &str, line: &str) -> Option<String> {
    let parser = match extension(path).as_str() {
        "py" => "ast.literal_eval(",
        "js" | "jsx" | "ts" | "tsx" => "JSON.parse(",
        _ => return None,
    };
    EVAL_CALL.is_match(line).then(|| {
        EVAL_CALL
            .replace_all(line, |c: &regex::Captures| format!("{}{parser}", &c[1]))
            .into_owned()
    })
}

static FUNCTION_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(?:fn|def|func|function)\s+([A-Za-z_]\w*)",
    )
    .expect("valid pattern")
});

const SOURCE_EXTENSIONS: [&str; 12] = [
    "rs", "py", "js", "ts", "tsx", "jsx", "go", "java", "kt", "rb", "php", "cs",
];

fn is_rust(path: &str, source: &SourceFile) -> bool {
    path.ends_with(".rs")
        || path == "snippet"
            && source
                .lines
                .iter()
                .any(|l| l.text.contains("fn ") || l.text.contains("let "))
}

fn is_test_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.contains("test") || lower.contains("spec") || lower.contains("__tests__")
}

fn is_source_path(path: &str) -> bool {
    path.rsplit_once('.')
        .is_some_and(|(_, ext)| SOURCE_EXTENSIONS.contains(&ext))
        && !is_test_path(path)
}

fn line_findings(file: &SourceFile, findings: &mut Vec<Finding>) {
    let rust = is_rust(&file.path, file);
    for line in &file.lines {
        // Comments may mention eval or unwrap; only TODO markers matter there.
        let trimmed = line.text.trim_start();
        let is_comment = trimmed.starts_with("//")
            || trimmed.starts_with('#')
            || trimmed.starts_with("/*")
            || trimmed.starts_with('*');
        for rule in &RULES {
            let applies = (rust || !rule.only_rust) && (rule.in_comments || !is_comment);
            let required = rule.requires.is_none_or(|also| also.is_match(&line.text));
            if applies && required && rule.pattern.is_match(&line.text) {
                findings.push(Finding {
                    severity: rule.severity,
                    file: file.path.clone(),
                    line: line.number,
                    issue: rule.issue.into(),
                    suggestion: rule.suggestion.into(),
                    code_fix: rule
                        .fix
                        .and_then(|fix| fix(&file.path, &line.text))
                        .filter(|fixed| fixed.trim() != line.text.trim())
                        .unwrap_or_default(),
                });
            }
        }
    }
}

/// Functions whose added body is longer than `LONG_FUNCTION_LINES`.
fn long_functions(file: &SourceFile, findings: &mut Vec<Finding>) {
    let starts: Vec<(usize, String)> = file
        .lines
        .iter()
        .enumerate()
        .filter_map(|(i, line)| {
            FUNCTION_START
                .captures(&line.text)
                .map(|c| (i, c[1].to_owned()))
        })
        .collect();
    for (k, (index, name)) in starts.iter().enumerate() {
        let end = starts
            .get(k + 1)
            .map_or(file.lines.len(), |(next, _)| *next);
        // Stop at the first gap in numbering: the function's added lines end there.
        let mut length = 1;
        while index + length < end
            && file.lines[index + length].number == file.lines[*index].number + length as u32
        {
            length += 1;
        }
        if length > LONG_FUNCTION_LINES {
            findings.push(Finding {
                severity: Severity::Medium,
                file: file.path.clone(),
                line: file.lines[*index].number,
                issue: format!("Function `{name}` is {length} lines long."),
                suggestion: "Split it into smaller functions with one job each.".into(),
                code_fix: String::new(),
            });
        }
    }
}

pub fn review(source: &Source) -> Review {
    let mut findings = Vec::new();
    for file in &source.files {
        line_findings(file, &mut findings);
        long_functions(file, &mut findings);
    }
    if source.is_diff && !source.files.iter().any(|f| is_test_path(&f.path)) {
        if let Some(file) = source
            .files
            .iter()
            .find(|f| is_source_path(&f.path) && !f.lines.is_empty())
        {
            findings.push(Finding {
                severity: Severity::Low,
                file: file.path.clone(),
                line: file.lines[0].number,
                issue: "Source code changes without any test changes.".into(),
                suggestion: "Add or update tests that cover the new behaviour.".into(),
                code_fix: String::new(),
            });
        }
    }
    findings.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then(a.file.cmp(&b.file))
            .then(a.line.cmp(&b.line))
    });

    let count = |severity| findings.iter().filter(|f| f.severity == severity).count();
    let (critical, high, medium, low) = (
        count(Severity::Critical),
        count(Severity::High),
        count(Severity::Medium),
        count(Severity::Low),
    );
    let penalty = 3 * critical + 2 * high + medium + low / 2;
    let quality_score = 10u8
        .saturating_sub(u8::try_from(penalty).unwrap_or(u8::MAX))
        .max(1);
    let security_risk = if critical
        + findings
            .iter()
            .filter(|f| f.severity == Severity::High && is_security(f))
            .count()
        > 0
    {
        SecurityRisk::High
    } else if findings.iter().any(is_security) {
        SecurityRisk::Low
    } else {
        SecurityRisk::None
    };
    let lines: usize = source.files.iter().map(|f| f.lines.len()).sum();
    let summary = if findings.is_empty() {
        format!(
            "CodeSherpa local engine (rule-based, offline) checked {lines} line(s) in {} file(s) and found no issues.",
            source.files.len()
        )
    } else {
        format!(
            "CodeSherpa local engine (rule-based, offline) checked {lines} line(s) in {} file(s): {} finding(s) — {critical} critical, {high} high, {medium} medium, {low} low.",
            source.files.len(),
            findings.len()
        )
    };
    Review {
        summary,
        findings,
        quality_score,
        security_risk,
    }
}

/// Context from the code: a LOW note at each changed function or type the project uses
/// elsewhere, citing those uses (`path:line`) for the author to check. The notes are not
/// defects, so the score and the summary's counts stay those of the checks.
pub fn cite_uses(review: &mut Review, uses: &[Uses]) {
    let used: Vec<&Uses> = uses.iter().filter(|u| !u.places.is_empty()).collect();
    for changed in &used {
        let places: Vec<String> = changed.places.iter().map(Snippet::citation).collect();
        review.findings.push(Finding {
            severity: Severity::Low,
            file: changed.path.clone(),
            line: changed.line,
            issue: format!(
                "`{}` changed here; it is used at {}.",
                changed.name,
                places.join(", ")
            ),
            suggestion: "Check that those callers still work with the change.".into(),
            code_fix: String::new(),
        });
    }
    if !used.is_empty() {
        review.summary.push_str(&format!(
            " Context from the code: {} changed function(s) or type(s) used elsewhere in the \
             project, noted with their uses.",
            used.len()
        ));
    }
}

fn is_security(finding: &Finding) -> bool {
    RULES
        .iter()
        .any(|rule| rule.security && rule.issue == finding.issue)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review_of(diff: &str) -> Review {
        review(&Source::find("review", Some(diff)).unwrap())
    }

    #[test]
    fn planted_problems_are_found_at_their_lines() {
        let diff = "diff --git a/app/db.py b/app/db.py
--- a/app/db.py
+++ b/app/db.py
@@ -1,3 +1,8 @@
 import os
+API_KEY = \"sk-live-1234567890\"
 def find(cursor, name):
-    pass
+    cursor.execute(\"SELECT * FROM users WHERE name = '\" + name + \"'\")
+    print(name)
+    # TODO: paginate
+    return eval(name)
";
        let review = review_of(diff);
        let found: Vec<(Severity, u32)> = review
            .findings
            .iter()
            .map(|f| (f.severity, f.line))
            .collect();
        assert!(found.contains(&(Severity::Critical, 2)), "{found:?}");
        assert!(
            found.contains(&(Severity::High, 4)),
            "SQL concatenation: {found:?}"
        );
        assert!(found.contains(&(Severity::Low, 5)), "print: {found:?}");
        assert!(found.contains(&(Severity::Low, 6)), "TODO: {found:?}");
        assert!(found.contains(&(Severity::High, 7)), "eval: {found:?}");
        assert!(review.findings.iter().all(|f| f.file == "app/db.py"));
        assert!(review
            .findings
            .iter()
            .any(|f| f.issue.contains("without any test")));
        assert_eq!(review.security_risk, SecurityRisk::High);
        assert!(review.quality_score <= 3);
    }

    #[test]
    fn code_pasted_from_a_phone_is_reviewed() {
        let message = "Please review this code:\n+ result = eval(data)\n+ password = \"abc12345\"";
        let review = review(&Source::find(message, None).unwrap());
        let lines: Vec<u32> = review.findings.iter().map(|f| f.line).collect();
        assert!(
            lines.contains(&2) && lines.contains(&3),
            "{:?}",
            review.findings
        );
    }

    #[test]
    fn parameterised_sql_is_not_flagged() {
        let snippet = "cursor.execute(\"SELECT * FROM users WHERE id = %s\", (user_id,))\nrows = cursor.fetchall()";
        let review = review(&Source::find("review", Some(snippet)).unwrap());
        assert!(review.findings.is_empty(), "{:?}", review.findings);
        let formatted = "q = \"SELECT * FROM users WHERE id = %s\" % user_id\nrun(q)";
        let review = super::review(&Source::find("review", Some(formatted)).unwrap());
        assert_eq!(review.findings.len(), 1);
        assert_eq!(review.findings[0].severity, Severity::High);
    }

    #[test]
    fn rust_unwrap_and_panic() {
        let diff = "--- a/src/lib.rs
+++ b/src/lib.rs
@@ -5,2 +5,4 @@
 fn parse(input: &str) -> u32 {
+    let n = input.parse::<u32>().unwrap();
+    if n == 0 { panic!(\"zero\") }
     n
--- a/tests/parse.rs
+++ b/tests/parse.rs
@@ -0,0 +1,1 @@
+#[test] fn parses() {}
";
        let review = review_of(diff);
        let found: Vec<(Severity, &str, u32)> = review
            .findings
            .iter()
            .map(|f| (f.severity, f.file.as_str(), f.line))
            .collect();
        assert_eq!(
            found,
            [
                (Severity::Medium, "src/lib.rs", 6),
                (Severity::Medium, "src/lib.rs", 7)
            ]
        );
        assert_eq!(review.security_risk, SecurityRisk::None);
    }

    #[test]
    fn fixes_are_real_replacements_of_the_flagged_line() {
        let diff = "--- a/src/db.rs
+++ b/src/db.rs
@@ -40,1 +40,3 @@
 // The pool, built lazily.
+    let pool = opts.connect_lazy(url).unwrap();
+    let token = \"ghp_abcdefgh12345\";
--- a/app/pay.py
+++ b/app/pay.py
@@ -1,1 +1,4 @@
 def pay(amount):
+    api_key = \"sk_live_1234567890abcdef\"
+    data = eval(amount)
+    # TODO: retry
";
        let review = review_of(diff);
        let fix = |file: &str, line: u32| {
            review
                .findings
                .iter()
                .find(|f| f.file == file && f.line == line)
                .map(|f| f.code_fix.as_str())
                .unwrap_or_else(|| panic!("no finding at {file}:{line}: {:?}", review.findings))
        };
        assert_eq!(
            fix("src/db.rs", 41),
            "    let pool = opts.connect_lazy(url)?;"
        );
        assert_eq!(
            fix("src/db.rs", 42),
            "    let token = std::env::var(\"TOKEN\")?;"
        );
        assert_eq!(
            fix("app/pay.py", 2),
            "    api_key = os.environ[\"API_KEY\"]"
        );
        assert_eq!(fix("app/pay.py", 3), "    data = ast.literal_eval(amount)");
        // Advice is never dressed up as code.
        assert_eq!(fix("app/pay.py", 4), "");
    }

    #[test]
    fn no_fix_where_no_line_would_compile() {
        let diff = "--- a/src/keys.rs
+++ b/src/keys.rs
@@ -0,0 +1,2 @@
+const API_KEY: &str = \"sk_live_1234567890abcdef\";
+fn f() { panic!(\"no\") }
--- a/conf/app.yml
+++ b/conf/app.yml
@@ -0,0 +1,1 @@
+password: \"hunter2hunter2\"
";
        let review = review_of(diff);
        assert!(!review.findings.is_empty());
        assert!(
            review.findings.iter().all(|f| f.code_fix.is_empty()),
            "{:?}",
            review.findings
        );
    }

    #[test]
    fn clean_code_is_not_flagged() {
        let diff = "--- a/src/math.rs
+++ b/src/math.rs
@@ -1,0 +1,4 @@
+/// Adds two numbers without overflow.
+pub fn add(a: u32, b: u32) -> Option<u32> {
+    a.checked_add(b)
+}
--- a/tests/math.rs
+++ b/tests/math.rs
@@ -0,0 +1,2 @@
+#[test]
+fn adds() { assert_eq!(codesherpa::add(1, 2), Some(3)); }
";
        let review = review_of(diff);
        assert!(review.findings.is_empty(), "{:?}", review.findings);
        assert_eq!(review.quality_score, 10);
        assert_eq!(review.security_risk, SecurityRisk::None);
        assert!(review.summary.contains("local engine"));
    }

    #[test]
    fn long_functions_are_flagged_at_their_first_line() {
        let mut diff = String::from("--- a/big.py\n+++ b/big.py\n@@ -0,0 +1,60 @@\n+def big():\n");
        for i in 0..59 {
            diff.push_str(&format!("+    x{i} = {i}\n"));
        }
        let review = review_of(&diff);
        let long = review
            .findings
            .iter()
            .find(|f| f.issue.contains("`big`"))
            .expect("flagged");
        assert_eq!((long.line, long.severity), (1, Severity::Medium));
    }

    #[test]
    fn uses_elsewhere_are_cited_without_changing_the_score() {
        let diff = "--- a/src/cart.rs\n+++ b/src/cart.rs\n@@ -4,1 +4,1 @@\n-pub fn checkout_total() -> u32 { 1 }\n+pub fn checkout_total() -> u32 { 2 }\n--- a/tests/cart.rs\n+++ b/tests/cart.rs\n@@ -0,0 +1 @@\n+#[test] fn t() {}\n";
        let mut checked = review_of(diff);
        let before = checked.clone();
        let place = |path: &str, line: usize| Snippet {
            path: path.into(),
            line,
            start: line,
            text: "checkout_total()".into(),
        };
        let uses = [Uses {
            name: "checkout_total".into(),
            path: "src/cart.rs".into(),
            line: 4,
            places: vec![place("src/api.rs", 88), place("src/cart.rs", 12)],
        }];
        cite_uses(&mut checked, &uses);
        assert_eq!(checked.findings.len(), before.findings.len() + 1);
        let note = checked.findings.last().unwrap();
        assert_eq!(
            (note.severity, note.file.as_str(), note.line),
            (Severity::Low, "src/cart.rs", 4)
        );
        assert_eq!(
            note.issue,
            "`checkout_total` changed here; it is used at src/api.rs:88, src/cart.rs:12."
        );
        assert_eq!(checked.quality_score, before.quality_score);
        assert!(checked.summary.contains("Context from the code"));

        let mut unchanged = before.clone();
        cite_uses(&mut unchanged, &[]);
        assert_eq!(unchanged, before);
    }
}
