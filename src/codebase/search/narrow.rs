//! Which files, and which parts of them, a search reads; their lines are then matched
//! exactly (see [`super::scan`]).
//!
//! Each file's blocks keep a filter of their trigrams (`codebase::trigrams`), in memory
//! with the live generation: only the blocks that may hold every trigram of the query
//! are read (files without a filter, whole). Either backend stores the same filters, so
//! both read the same parts.
//!
//! Case-insensitive matching follows Unicode simple case folding (the `regex` crate's),
//! where `k` also matches the Kelvin sign and `s` the long s. So the trigrams of a
//! case-insensitive query come from its longest run of ASCII characters other than
//! those. A regular expression is not narrowed.

use crate::codebase::{
    matcher::{plain_ascii, Matcher},
    snapshot::Snapshot,
    trigrams::{Part, Query},
};

/// What of a file a search reads.
pub(super) enum Read {
    Whole,
    /// These runs only, in order.
    Parts(Vec<Part>),
}

/// The files (by place, in path order) of `snapshot` that may hold a match of `matcher`
/// in its path glob, and what of each to read.
pub(super) fn candidates(snapshot: &Snapshot, matcher: &Matcher) -> Vec<(u32, Read)> {
    let query = narrowing_run(matcher).and_then(|run| Query::new(run.as_bytes()));
    let mut files: Vec<(u32, Read)> = match query {
        None => (0..snapshot.files().len() as u32)
            .map(|place| (place, Read::Whole))
            .collect(),
        Some(query) => {
            let mut files: Vec<(u32, Read)> = snapshot
                .blocks()
                .parts(&query)
                .into_iter()
                .map(|(place, parts)| (place, Read::Parts(parts)))
                .collect();
            files.extend(
                snapshot
                    .unfiltered()
                    .iter()
                    .map(|&place| (place, Read::Whole)),
            );
            files.sort_unstable_by_key(|(place, _)| *place);
            files
        }
    };
    files.retain(|(place, _)| matcher.path_matches(snapshot.path(*place)));
    files
}

/// The characters of `matcher`'s query every text it matches holds, byte for byte up to
/// ASCII case; `None` for a regular expression.
fn narrowing_run(matcher: &Matcher) -> Option<String> {
    if matcher.options.regex {
        return None;
    }
    let query = matcher.query.as_str();
    Some(if matcher.options.case_sensitive {
        query.to_owned()
    } else {
        plain_ascii_run(query)
    })
}

/// The longest run of plain ASCII characters in `query`.
fn plain_ascii_run(query: &str) -> String {
    query
        .split(|c| !plain_ascii(c))
        .max_by_key(|run| run.len())
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codebase::matcher::Options;

    #[test]
    fn runs_leave_out_characters_that_fold_to_others() {
        assert_eq!(plain_ascii_run("maske_rade"), "e_rade");
        assert_eq!(plain_ascii_run("éé"), "");
        let regex = Options {
            regex: true,
            ..Options::default()
        };
        assert_eq!(
            narrowing_run(&Matcher::new("abc", regex, None).unwrap()),
            None
        );
        let sensitive = Options {
            case_sensitive: true,
            ..Options::default()
        };
        assert_eq!(
            narrowing_run(&Matcher::new("Kéy", sensitive, None).unwrap()).as_deref(),
            Some("Kéy")
        );
    }
}
