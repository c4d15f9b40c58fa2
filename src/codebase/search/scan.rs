//! Reading the candidate files in path order and matching their lines exactly, until
//! more than a cap of lines matched or the deadline passed.

use std::time::Duration;

use tokio::time::Instant;

use super::{
    narrow::{self, Read},
    Candidate, Keep, Scan,
};
use crate::{
    codebase::{
        matcher::Matcher,
        snapshot::{self, Snapshot, Text},
        trigrams::Part,
    },
    db::Db,
    error::Result,
};

/// Files whose text is read (or taken from memory) at a time, between two looks at the
/// deadline: one query for the texts not kept yet (a cold instance on PostgreSQL read
/// 16 at a time and answered its first common query `partial`).
const FILES_PER_READ: usize = 64;
/// How long a scan from memory runs before it lets the requests waiting on its worker
/// thread go on. Longer than most searches take (a few milliseconds): each then runs to
/// its end once started, first come first served, which keeps the slowest answers under
/// load near the typical one (a yield every 64 files let each search queue behind all the
/// others several times: at 32 concurrent the p99 was three times the p50).
const SLICE: Duration = Duration::from_millis(20);

/// The generation's first `cap` matching lines, in (path, line) order, read until the
/// deadline: counted, and those `keep` asks for kept.
pub(super) async fn scan<'a>(
    db: &Db,
    snapshot: &Snapshot,
    matcher: &Matcher,
    deadline: Instant,
    cap: usize,
    keep: Keep<'a>,
) -> Result<Scan<'a>> {
    let mut scan = Scan::new(keep);
    let files = narrow::candidates(snapshot, matcher);
    let mut slice = Instant::now();
    for chunk in files.chunks(FILES_PER_READ) {
        let now = Instant::now();
        if now >= deadline {
            scan.partial = true;
            break;
        }
        if now - slice >= SLICE {
            tokio::task::yield_now().await;
            slice = Instant::now();
        }
        let ids: Vec<i64> = chunk
            .iter()
            .map(|(place, _)| snapshot.file(*place).0)
            .collect();
        let Ok(texts) = tokio::time::timeout_at(deadline, snapshot::texts(db, &ids)).await else {
            scan.partial = true;
            break;
        };
        for ((place, read), text) in chunk.iter().zip(texts?) {
            let file = File {
                place: *place,
                path: snapshot.path(*place),
                text: &text,
            };
            if !scan.file(matcher, &file, read, cap) {
                return Ok(scan);
            }
        }
    }
    Ok(scan)
}

/// A file being read.
struct File<'a> {
    place: u32,
    path: &'a str,
    text: &'a Text,
}

impl<'a> Scan<'a> {
    fn new(keep: Keep<'a>) -> Scan<'a> {
        Scan {
            keep,
            lines: Vec::new(),
            rest: Vec::new(),
            count: 0,
            definitions: 0,
            more: false,
            partial: false,
        }
    }

    /// Adds the matching lines of one file (of the parts of it to read); false once more
    /// than `cap` matched.
    fn file(&mut self, matcher: &Matcher, file: &File, read: &Read, cap: usize) -> bool {
        let content = file.text.as_str();
        if matcher.options.regex {
            // A user's expression may anchor at line ends (`^`, `$`): line by line.
            for (i, text) in content.lines().enumerate() {
                if matcher.line_matches(text)
                    && !text.trim().is_empty()
                    && !self.push(file, i + 1, text, self.exact(matcher, text), cap)
                {
                    return false;
                }
            }
            return true;
        }
        let whole = [Part {
            bytes: 0..content.len(),
            first_line: 1,
        }];
        let parts = match read {
            Read::Whole => &whole[..],
            Read::Parts(parts) => parts,
        };
        parts.iter().all(|part| self.run(matcher, file, part, cap))
    }

    /// Adds the matching lines of one run of a file's text (whole lines); false once more
    /// than `cap` matched. A line's match is a match in the whole run too: the query is
    /// looked for in the run (a literal at memory speed, in the lowercased copy for a
    /// case-insensitive one) and each line it lands on is then checked alone.
    fn run(&mut self, matcher: &Matcher, file: &File, part: &Part, cap: usize) -> bool {
        let text = file.text;
        // A part starts at a line and ends after one; out of bounds (a filter not of
        // this text) it reads as nothing.
        let (Some(content), Some(lower)) = (
            text.as_str().get(part.bytes.clone()),
            text.lower().get(part.bytes.clone()),
        ) else {
            return true;
        };
        let folds = text.folds_to_ascii();
        let decides = matcher.found_decides(folds);
        let (mut from, mut line, mut counted) = (0, part.first_line, 0);
        while let Some(at) = matcher.find(&content[from..], &lower[from..], folds) {
            let at = from + at;
            let bytes = content.as_bytes();
            let start = memchr::memrchr(b'\n', &bytes[..at]).map_or(0, |i| i + 1);
            let end = memchr::memchr(b'\n', &bytes[at..]).map_or(content.len(), |i| at + i);
            let mut text = &content[start..end];
            if end < content.len() {
                text = text.strip_suffix('\r').unwrap_or(text);
            }
            // The query found whole within the line decides it.
            let matched = (decides && at + matcher.query.len() <= start + text.len())
                || matcher.line_matches(text);
            if matched && !text.trim().is_empty() {
                let exact = self.exact(matcher, text);
                // Line numbers are counted only where a kept line or a definition needs one.
                if self.needs_line(file.place, exact) {
                    line += memchr::memchr_iter(b'\n', &bytes[counted..start]).count();
                    counted = start;
                }
                if !self.push(file, line, text, exact, cap) {
                    return false;
                }
            }
            if end == content.len() {
                break;
            }
            from = end + 1;
        }
        true
    }

    /// Whether a matching line ranks as one in the query's exact case (all do, unranked).
    fn exact(&self, matcher: &Matcher, text: &str) -> bool {
        match self.keep {
            Keep::All => true,
            Keep::Ranked { .. } => matcher.exact_case(text),
        }
    }

    /// Whether a matching line of the file at `place` (in the query's exact case or not)
    /// needs its number: kept, or maybe a definition.
    fn needs_line(&self, place: u32, exact: bool) -> bool {
        match self.keep {
            Keep::All => true,
            Keep::Ranked {
                limit, defining, ..
            } => {
                let kept = if exact { &self.lines } else { &self.rest };
                kept.len() < limit || defining.contains(&place)
            }
        }
    }

    /// Counts one matching line (not blank), and keeps it if asked (`exact`: in the
    /// query's exact case); false when it is one past `cap`.
    fn push(&mut self, file: &File, line: usize, text: &str, exact: bool, cap: usize) -> bool {
        if self.count == cap {
            self.more = true;
            return false;
        }
        self.count += 1;
        let kept = match self.keep {
            Keep::All => &mut self.lines,
            Keep::Ranked { limit, defined, .. } => {
                if defined.contains(&(file.place, line as i64)) {
                    self.definitions += 1;
                    return true;
                }
                let kept = if exact {
                    &mut self.lines
                } else {
                    &mut self.rest
                };
                if kept.len() == limit {
                    return true;
                }
                kept
            }
        };
        kept.push(Candidate {
            path: file.path.to_owned(),
            line: line as i64,
            text: text.to_owned(),
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::codebase::matcher::Options;

    fn lines(query: &str, options: Options, content: &str) -> Vec<(i64, String)> {
        let matcher = Matcher::new(query, options, None).unwrap();
        let mut scan = Scan::new(Keep::All);
        let text = Text::new(content.to_owned());
        let file = File {
            place: 0,
            path: "a.rs",
            text: &text,
        };
        scan.file(&matcher, &file, &Read::Whole, 10);
        scan.lines.into_iter().map(|c| (c.line, c.text)).collect()
    }

    #[test]
    fn the_whole_text_scan_finds_what_a_line_scan_finds() {
        let content = "foo\r\nbar baz\n\n  \nxbar\nBAR\r";
        let word = Options {
            word: true,
            ..Options::default()
        };
        let expected: Vec<(i64, String)> = content
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .filter(|(_, l)| Matcher::new("bar", word, None).unwrap().line_matches(l))
            .map(|(i, l)| (i as i64 + 1, l.to_owned()))
            .collect();
        assert_eq!(expected, [(2, "bar baz".into()), (6, "BAR\r".into())]);
        assert_eq!(lines("bar", word, content), expected);
        assert_eq!(lines("bar", Options::default(), content).len(), 3);
        assert_eq!(
            lines("foo", Options::default(), content),
            [(1, "foo".into())]
        );
        assert_eq!(lines("o\r\nb", Options::default(), content), []);
        let regex = Options {
            regex: true,
            ..Options::default()
        };
        assert_eq!(
            lines("^bar", regex, content),
            [(2, "bar baz".into()), (6, "BAR\r".into())]
        );
    }

    #[test]
    fn a_ranked_scan_counts_every_line_and_keeps_the_first_of_each_tier() {
        let matcher = Matcher::plain("total").unwrap();
        let content: String = (0..50)
            .map(|i| match i % 2 {
                0 => format!("total {i}\n"),
                _ => format!("TOTAL {i}\n"),
            })
            .collect();
        let text = Text::new(content);
        let file = File {
            place: 7,
            path: "a.rs",
            text: &text,
        };
        let (defined, defining) = (HashSet::from([(7, 3)]), HashSet::from([7]));
        let mut scan = Scan::new(Keep::Ranked {
            limit: 2,
            defined: &defined,
            defining: &defining,
        });
        assert!(scan.file(&matcher, &file, &Read::Whole, 100));
        assert_eq!((scan.count, scan.definitions), (50, 1));
        let kept = |lines: &[Candidate]| -> Vec<(i64, String)> {
            lines.iter().map(|c| (c.line, c.text.clone())).collect()
        };
        // Line 3 is the definition: kept elsewhere, not among the exact-case lines.
        assert_eq!(
            kept(&scan.lines),
            [(1, "total 0".into()), (5, "total 4".into())]
        );
        assert_eq!(
            kept(&scan.rest),
            [(2, "TOTAL 1".into()), (4, "TOTAL 3".into())]
        );
        let mut capped = Scan::new(Keep::All);
        assert!(!capped.file(&matcher, &file, &Read::Whole, 10));
        assert!(capped.more && capped.count == 10 && capped.lines.len() == 10);
    }
}
