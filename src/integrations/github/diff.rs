//! A pull request's diff, within a byte budget: the unified diff when GitHub serves it,
//! else (406, "too large") the per-file patches of `/files`. Files left out are named.

use std::collections::HashMap;

use reqwest::Method;
use serde::Deserialize;

use super::client::{GithubClient, GithubError};

const DIFF: &str = "application/vnd.github.diff";

/// What the model reviews and what it was not shown.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Budgeted {
    pub diff: String,
    pub files: usize,
    /// (path, why it was left out).
    pub skipped: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct ChangedFile {
    filename: String,
    patch: Option<String>,
}

/// Why a file `.codesherpa.yml` ignores is missing from the review.
pub const IGNORED: &str = "not reviewed (ignored by .codesherpa.yml)";

/// Fetches the diff of `repository#number` and keeps what fits in `max_bytes`; files
/// `ignored` says so are left out (and named).
pub async fn fetch(
    github: &GithubClient,
    repository: &str,
    number: i64,
    installation: Option<i64>,
    max_bytes: usize,
    ignored: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Budgeted, GithubError> {
    let path = format!("/repos/{repository}/pulls/{number}");
    match github
        .send(Method::GET, &path, installation, DIFF, None)
        .await
    {
        Ok(response) => {
            let text = response
                .text()
                .await
                .map_err(|err| GithubError::Transport(err.without_url().to_string()))?;
            let (sections, skipped) = drop_ignored(split_unified(&text), Vec::new(), ignored);
            Ok(budget(sections, skipped, max_bytes))
        }
        Err(err) if err.status() == Some(406) => {
            let (sections, skipped) = from_files(github, &path, installation).await?;
            let (sections, skipped) = drop_ignored(sections, skipped, ignored);
            Ok(budget(sections, skipped, max_bytes))
        }
        Err(err) => Err(err),
    }
}

type Sections = Vec<(String, String)>;

#[derive(Deserialize)]
struct Comparison {
    status: String,
    #[serde(default)]
    files: Vec<ChangedFile>,
}

/// The diff of the commits `last..head` (`GET /repos/{o}/{r}/compare/{last}...{head}`)
/// when `head` is ahead of `last`; `None` when it is not (a force-push: `diverged`,
/// `behind`, `identical`) or GitHub no longer knows `last`.
pub async fn fetch_range(
    github: &GithubClient,
    repository: &str,
    (last, head): (&str, &str),
    installation: Option<i64>,
    max_bytes: usize,
    ignored: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Option<Budgeted>, GithubError> {
    let path = format!("/repos/{repository}/compare/{last}...{head}");
    let comparison: Comparison = match github.get_json(&path, installation).await {
        Ok((comparison, _)) => comparison,
        Err(GithubError::Status { status: 404, .. }) => return Ok(None),
        Err(err) => return Err(err),
    };
    if comparison.status != "ahead" {
        return Ok(None);
    }
    let (sections, skipped) = sections_of(comparison.files);
    let (sections, skipped) = drop_ignored(sections, skipped, ignored);
    Ok(Some(budget(sections, skipped, max_bytes)))
}

/// Each file's patch as a section of a unified diff; files without one are named.
fn sections_of(files: Vec<ChangedFile>) -> (Sections, Sections) {
    let mut sections = Vec::new();
    let mut skipped = Vec::new();
    for file in files {
        match file.patch {
            Some(patch) => {
                let name = &file.filename;
                let section =
                    format!("diff --git a/{name} b/{name}\n--- a/{name}\n+++ b/{name}\n{patch}\n");
                sections.push((file.filename, section));
            }
            None => skipped.push((
                file.filename,
                "no textual diff from GitHub (binary or too large)".to_owned(),
            )),
        }
    }
    (sections, skipped)
}

/// Moves the sections of ignored files to the skipped ones.
fn drop_ignored(
    sections: Sections,
    mut skipped: Sections,
    ignored: &(dyn Fn(&str) -> bool + Sync),
) -> (Sections, Sections) {
    let mut kept = Vec::with_capacity(sections.len());
    for (path, section) in sections {
        if ignored(&path) {
            skipped.push((path, IGNORED.to_owned()));
        } else {
            kept.push((path, section));
        }
    }
    for entry in skipped.iter_mut() {
        if ignored(&entry.0) {
            entry.1 = IGNORED.to_owned();
        }
    }
    (kept, skipped)
}

/// Pages through `/files` (GitHub lists at most 3,000).
async fn from_files(
    github: &GithubClient,
    pull_path: &str,
    installation: Option<i64>,
) -> Result<(Vec<(String, String)>, Vec<(String, String)>), GithubError> {
    let mut sections = Vec::new();
    let mut skipped = Vec::new();
    let mut next = Some(format!("{pull_path}/files?per_page=100"));
    while let Some(page) = next.take() {
        let (files, link): (Vec<ChangedFile>, _) = github.get_json(&page, installation).await?;
        let (more, left) = sections_of(files);
        sections.extend(more);
        skipped.extend(left);
        next = link;
    }
    Ok((sections, skipped))
}

/// (path, section) for each file of a unified diff.
fn split_unified(diff: &str) -> Vec<(String, String)> {
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in diff.split_inclusive('\n') {
        if let Some(header) = line.strip_prefix("diff --git ") {
            let path = header
                .trim_end()
                .rsplit_once(" b/")
                .map(|(_, path)| path.to_owned())
                .unwrap_or_else(|| header.trim_end().to_owned());
            sections.push((path, String::new()));
        }
        match sections.last_mut() {
            Some((_, text)) => text.push_str(line),
            None if line.trim().is_empty() => {}
            None => sections.push((String::new(), line.to_owned())),
        }
    }
    sections
}

/// Whole files, in order, while they fit; the others are listed as skipped.
fn budget(
    sections: Vec<(String, String)>,
    mut skipped: Vec<(String, String)>,
    max_bytes: usize,
) -> Budgeted {
    let mut diff = String::new();
    let mut files = 0;
    for (path, section) in sections {
        if diff.len() + section.len() <= max_bytes {
            diff.push_str(&section);
            files += 1;
        } else {
            skipped.push((path, format!("over the review budget of {max_bytes} bytes")));
        }
    }
    Budgeted {
        diff,
        files,
        skipped,
    }
}

/// The lines on the right side of a unified diff (added and unchanged lines of its
/// hunks), by path and new-file line number, with their text: where GitHub takes an
/// inline comment with `side: "RIGHT"`.
pub fn right_lines(diff: &str) -> HashMap<String, HashMap<u32, String>> {
    let mut files: HashMap<String, HashMap<u32, String>> = HashMap::new();
    let mut path: Option<String> = None;
    let mut next: u32 = 0;
    let mut in_hunk = false;
    for raw in diff.lines() {
        if raw.starts_with("diff --git ") {
            in_hunk = false;
            path = None;
        } else if let Some(name) = raw.strip_prefix("+++ ").filter(|_| !in_hunk) {
            let name = name.split('\t').next().unwrap_or(name).trim();
            path =
                (name != "/dev/null").then(|| name.strip_prefix("b/").unwrap_or(name).to_owned());
        } else if raw.starts_with("--- ") && !in_hunk {
        } else if let Some(header) = raw.strip_prefix("@@ ") {
            // `@@ -a,b +c,d @@`: the new side starts at c.
            next = header
                .split_whitespace()
                .find_map(|part| part.strip_prefix('+'))
                .and_then(|range| range.split(',').next()?.parse().ok())
                .unwrap_or(1);
            in_hunk = true;
        } else if in_hunk {
            let Some(file) = path.as_ref() else { continue };
            if raw.starts_with('-') || raw.starts_with('\\') {
                continue;
            }
            let text = raw.get(1..).unwrap_or("");
            files
                .entry(file.clone())
                .or_default()
                .insert(next, text.to_owned());
            next += 1;
        }
    }
    files
}

/// One added or removed line of a unified diff, placed on both of its sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changed {
    pub added: bool,
    /// Removed: its line in the old file. Added: the old file's line it comes after (0 at
    /// the top).
    pub old: u32,
    /// Added: its line in the new file. Removed: the new file's line that now stands
    /// where it was.
    pub new: u32,
    pub text: String,
}

/// Where a hunk stands: the next line on each side, and how many each side has left.
#[derive(Default)]
struct Hunk {
    old: u32,
    new: u32,
    old_left: u32,
    new_left: u32,
}

impl Hunk {
    /// `@@ -a,b +c,d @@`: an empty side (`b` or `d` 0) names the line before the hunk.
    fn parse(header: &str) -> Hunk {
        let side = |sign: char| -> (u32, u32) {
            let range = header
                .split_whitespace()
                .find_map(|part| part.strip_prefix(sign))
                .unwrap_or("1");
            let (start, count) = range.split_once(',').unwrap_or((range, "1"));
            let (start, count) = (start.parse().unwrap_or(1), count.parse().unwrap_or(1));
            (if count == 0 { start + 1 } else { start }, count)
        };
        let ((old, old_left), (new, new_left)) = (side('-'), side('+'));
        Hunk {
            old,
            new,
            old_left,
            new_left,
        }
    }

    fn open(&self) -> bool {
        self.old_left > 0 || self.new_left > 0
    }

    /// The hunk's line `raw`, as a change if it is one.
    fn step(&mut self, raw: &str) -> Option<Changed> {
        let text = raw.get(1..).unwrap_or("").to_owned();
        let (old, new) = (self.old, self.new);
        match raw.chars().next() {
            Some('+') => {
                self.new += 1;
                self.new_left = self.new_left.saturating_sub(1);
                Some(Changed {
                    added: true,
                    old: old.saturating_sub(1),
                    new,
                    text,
                })
            }
            Some('-') => {
                self.old += 1;
                self.old_left = self.old_left.saturating_sub(1);
                Some(Changed {
                    added: false,
                    old,
                    new,
                    text,
                })
            }
            Some('\\') => None,
            _ => {
                self.old += 1;
                self.new += 1;
                self.old_left = self.old_left.saturating_sub(1);
                self.new_left = self.new_left.saturating_sub(1);
                None
            }
        }
    }
}

/// The added and removed lines of each file of a unified diff, in order. A file goes by
/// its new path, a deleted one by its old path.
pub fn changed_lines(diff: &str) -> Vec<(String, Vec<Changed>)> {
    let mut files: Vec<(String, Vec<Changed>)> = Vec::new();
    let mut old_path: Option<String> = None;
    let mut hunk = Hunk::default();
    for raw in diff.lines() {
        if hunk.open() {
            if let Some(change) = hunk.step(raw) {
                if let Some((_, changes)) = files.last_mut() {
                    changes.push(change);
                }
            }
        } else if let Some(name) = raw.strip_prefix("--- ") {
            old_path = side_path(name, "a/");
        } else if let Some(name) = raw.strip_prefix("+++ ") {
            if let Some(path) = side_path(name, "b/").or_else(|| old_path.take()) {
                files.push((path, Vec::new()));
            }
        } else if let Some(header) = raw.strip_prefix("@@ ") {
            hunk = Hunk::parse(header);
        }
    }
    files.retain(|(_, changes)| !changes.is_empty());
    files
}

/// The path a `---`/`+++` line names, without its `a/`/`b/`; none for `/dev/null`.
fn side_path(name: &str, prefix: &str) -> Option<String> {
    let name = name.split('\t').next().unwrap_or(name).trim();
    (name != "/dev/null").then(|| name.strip_prefix(prefix).unwrap_or(name).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_FILES: &str = "diff --git a/src/a.rs b/src/a.rs\n--- a/src/a.rs\n+++ b/src/a.rs\n@@ -1 +1 @@\n-x\n+y\ndiff --git a/b.py b/b.py\n--- a/b.py\n+++ b/b.py\n@@ -0,0 +1 @@\n+print(1)\n";

    #[test]
    fn right_side_lines_are_added_and_unchanged_lines_numbered_in_the_new_file() {
        let diff = "diff --git a/src/a.rs b/src/a.rs\n--- a/src/a.rs\n+++ b/src/a.rs\n@@ -10,3 +10,3 @@ fn f()\n keep\n-old\n+new\n tail\n\\ No newline at end of file\ndiff --git a/gone.rs b/gone.rs\n--- a/gone.rs\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n";
        let lines = right_lines(diff);
        let a = &lines["src/a.rs"];
        assert_eq!(a.len(), 3);
        assert_eq!(a[&10], "keep");
        assert_eq!(a[&11], "new");
        assert_eq!(a[&12], "tail");
        assert!(!lines.contains_key("gone.rs"));
        assert_eq!(right_lines(TWO_FILES)["b.py"][&1], "print(1)");
    }

    #[test]
    fn splits_a_unified_diff_by_file() {
        let sections = split_unified(TWO_FILES);
        let paths: Vec<_> = sections.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["src/a.rs", "b.py"]);
        assert_eq!(
            sections.iter().map(|(_, s)| s.as_str()).collect::<String>(),
            TWO_FILES
        );
    }

    #[test]
    fn keeps_whole_files_within_the_budget_and_names_the_rest() {
        let sections = split_unified(TWO_FILES);
        let first_len = sections[0].1.len();
        let kept = budget(sections.clone(), Vec::new(), first_len);
        assert_eq!(kept.files, 1);
        assert_eq!(kept.diff, sections[0].1);
        assert_eq!(kept.skipped.len(), 1);
        assert_eq!(kept.skipped[0].0, "b.py");
        let all = budget(sections, Vec::new(), 10_000);
        assert_eq!((all.files, all.skipped.len()), (2, 0));
    }

    #[test]
    fn changed_lines_stand_on_both_sides() {
        let diff = "diff --git a/src/a.rs b/src/a.rs\n--- a/src/a.rs\n+++ b/src/a.rs\n@@ -10,3 +10,3 @@ fn f()\n keep\n-old\n+new\n tail\n\\ No newline at end of file\n@@ -20,0 +21,1 @@\n+--- not a header\ndiff --git a/gone.rs b/gone.rs\n--- a/gone.rs\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n--- a/new.py\n+++ b/new.py\n@@ -0,0 +1 @@\n+def f():\n";
        let files = changed_lines(diff);
        let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["src/a.rs", "gone.rs", "new.py"]);
        let change = |added: bool, old: u32, new: u32, text: &str| Changed {
            added,
            old,
            new,
            text: text.into(),
        };
        assert_eq!(
            files[0].1,
            [
                change(false, 11, 11, "old"),
                change(true, 11, 11, "new"),
                change(true, 20, 21, "--- not a header"),
            ]
        );
        assert_eq!(files[1].1, [change(false, 1, 1, "x")]);
        assert_eq!(files[2].1, [change(true, 0, 1, "def f():")]);
    }
}
