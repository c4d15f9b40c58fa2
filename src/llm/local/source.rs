//! Finding the code in a message: unified diffs (with new-file line numbers), fenced
//! blocks or a plain snippet.

use std::sync::LazyLock;

use regex::Regex;

/// One line the author wrote, where it now stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub number: u32,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    pub path: String,
    /// Added lines of a diff, or every line of a snippet.
    pub lines: Vec<Line>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub files: Vec<SourceFile>,
    /// Whether this came from a diff (so "changed without tests" makes sense).
    pub is_diff: bool,
}

impl Source {
    /// The code in `code_context` if given, else in the message's fenced blocks, else the
    /// message itself when it looks like code.
    pub fn find(message: &str, code_context: Option<&str>) -> Option<Source> {
        let text = code_context
            .filter(|code| !code.trim().is_empty())
            .map(str::to_owned)
            .or_else(|| fenced_blocks(message))
            .or_else(|| looks_like_code(message).then(|| message.to_owned()))?;
        Some(if is_diff(&text) {
            parse_diff(&text)
        } else {
            Source {
                files: vec![SourceFile {
                    path: "snippet".into(),
                    lines: text
                        .lines()
                        .enumerate()
                        .map(|(i, line)| Line {
                            number: i as u32 + 1,
                            text: line.to_owned(),
                        })
                        .collect(),
                }],
                is_diff: false,
            }
        })
    }

    pub fn all_text(&self) -> String {
        self.files
            .iter()
            .flat_map(|file| file.lines.iter().map(|line| line.text.as_str()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn fenced_blocks(message: &str) -> Option<String> {
    let mut blocks = Vec::new();
    let mut inside: Option<Vec<&str>> = None;
    for line in message.lines() {
        if line.trim_start().starts_with("```") {
            match inside.take() {
                Some(block) => blocks.push(block.join("\n")),
                None => inside = Some(Vec::new()),
            }
        } else if let Some(block) = inside.as_mut() {
            block.push(line);
        }
    }
    (!blocks.is_empty()).then(|| blocks.join("\n"))
}

/// A line of code (perhaps marked `+`/`-` as in a diff without headers): a definition or
/// declaration keyword, an assignment, a call ending the line, or a line ending in `;`,
/// `{` or `}`.
static CODE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\s*[+-]?\s*(?:(?:def|fn|func|function|class|import|return|let|const|var|pub|public|private|package|#include)\b|[A-Za-z_][\w.]*(?:\[[^\]]*\])?\s*(?:[-+*/]?=|:=)\s*[^=\s]|.*[A-Za-z_]\w*\([^()]*\)\s*;?\s*$|.*[;{}]\s*$)",
    )
    .expect("valid pattern")
});

/// Code pasted without a fence (as a phone sends it): at least two lines of code, and at
/// least half of the message's lines, or two of the signals of code anywhere in it.
fn looks_like_code(text: &str) -> bool {
    let signals = [
        "{", "}", "();", "def ", "fn ", "=>", "import ", "return ", "@@ ",
    ];
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() < 2 {
        return false;
    }
    let code = lines.iter().filter(|l| CODE_LINE.is_match(l)).count();
    (code >= 2 && code * 2 >= lines.len())
        || signals.iter().filter(|s| text.contains(*s)).count() >= 2
}

fn is_diff(text: &str) -> bool {
    text.lines().any(|line| line.starts_with("@@ "))
        && text
            .lines()
            .any(|l| l.starts_with("+++ ") || l.starts_with("diff --git"))
        || text.lines().any(|line| line.starts_with("@@ -"))
}

/// Parses a unified diff into the added lines of each file, numbered as in the new file.
pub fn parse_diff(text: &str) -> Source {
    let mut files: Vec<SourceFile> = Vec::new();
    let mut next_line: u32 = 0;
    let mut in_hunk = false;
    for raw in text.lines() {
        if let Some(path) = raw.strip_prefix("+++ ") {
            let path = path.split('\t').next().unwrap_or(path).trim();
            let path = path.strip_prefix("b/").unwrap_or(path);
            files.push(SourceFile {
                path: path.to_owned(),
                lines: Vec::new(),
            });
            in_hunk = false;
        } else if raw.starts_with("diff --git") || raw.starts_with("--- ") && !in_hunk {
            in_hunk = false;
        } else if let Some(header) = raw.strip_prefix("@@ ") {
            next_line = hunk_new_start(header).unwrap_or(1);
            in_hunk = true;
            if files.is_empty() {
                files.push(SourceFile {
                    path: "snippet".into(),
                    lines: Vec::new(),
                });
            }
        } else if in_hunk {
            if let Some(added) = raw.strip_prefix('+') {
                if let Some(file) = files.last_mut() {
                    file.lines.push(Line {
                        number: next_line,
                        text: added.to_owned(),
                    });
                }
                next_line += 1;
            } else if raw.starts_with('-') || raw.starts_with('\\') {
                // Removed lines and "\ No newline at end of file" take no new line.
            } else {
                next_line += 1;
            }
        }
    }
    files.retain(|file| file.path != "/dev/null");
    Source {
        files,
        is_diff: true,
    }
}

/// `-a,b +c,d @@ …` → c
fn hunk_new_start(header: &str) -> Option<u32> {
    let new = header
        .split_whitespace()
        .find(|part| part.starts_with('+'))?;
    new[1..].split(',').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIFF: &str = "diff --git a/app.py b/app.py
--- a/app.py
+++ b/app.py
@@ -10,4 +10,5 @@ def handler():
 context = 1
-old = 2
+new = 3
 kept = 4
+added = 5
\\ No newline at end of file
diff --git a/gone.py b/gone.py
--- a/gone.py
+++ /dev/null
@@ -1 +0,0 @@
-x = 1
";

    #[test]
    fn diff_lines_are_numbered_in_the_new_file() {
        let source = Source::find("please review", Some(DIFF)).unwrap();
        assert!(source.is_diff);
        assert_eq!(source.files.len(), 1);
        let file = &source.files[0];
        assert_eq!(file.path, "app.py");
        let numbered: Vec<(u32, &str)> = file
            .lines
            .iter()
            .map(|l| (l.number, l.text.as_str()))
            .collect();
        assert_eq!(numbered, [(11, "new = 3"), (13, "added = 5")]);
    }

    #[test]
    fn fenced_code_and_snippets() {
        let message = "Review this:\n```python\nx = eval(data)\n```\nthanks";
        let source = Source::find(message, None).unwrap();
        assert!(!source.is_diff);
        assert_eq!(
            source.files[0].lines[0],
            Line {
                number: 1,
                text: "x = eval(data)".into()
            }
        );
        assert!(Source::find("hello there, how are you?", None).is_none());
    }

    #[test]
    fn unfenced_code_is_found_and_prose_is_not() {
        for code in [
            "Please review this code:\n+ result = eval(data)\n+ password = \"abc12345\"",
            "total = price * qty\nprint(total)",
            "const user = await db.find(id);\nres.send(user);",
        ] {
            assert!(Source::find(code, None).is_some(), "{code}");
        }
        for prose in [
            "hello there, how are you?",
            "What does x = 1 mean?\nAnd why is it slow?",
            "Can you explain closures?\nI read about them yesterday.\nThanks!",
            "Review my pull request please.\nIt changes the login flow.",
        ] {
            assert!(Source::find(prose, None).is_none(), "{prose}");
        }
    }
}
