//! What a search looks for, decided once per request: the query as a regular expression
//! (a literal is escaped; found as bytes where that finds the same), its case and word
//! options, and the path glob. The trigram filters only narrow the lines to read; every
//! candidate is checked here, so both backends answer exactly the same lines.

use std::sync::OnceLock;

use globset::{GlobBuilder, GlobMatcher};
use memchr::memmem::Finder;
use regex::{Regex, RegexBuilder};

/// Compiled patterns stay small: a query is at most 200 characters, but `(?i)\w{100}`
/// would still grow large.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// What may not touch a whole-identifier match on either side.
const IDENTIFIER: &str = "[A-Za-z0-9_]";

/// Characters whose case-insensitive matches (Unicode simple case folding, the `regex`
/// crate's) are ASCII letters of either case only: not `k` (the Kelvin sign) nor `s` (the
/// long s).
pub fn plain_ascii(c: char) -> bool {
    c.is_ascii() && !matches!(c, 'k' | 'K' | 's' | 'S')
}

/// The characters other than ASCII letters that fold to them: the Kelvin sign (`k`) and
/// the long s (`s`), which lowercasing ASCII leaves as they are.
pub const FOLDS_TO_ASCII: [char; 2] = ['\u{212A}', '\u{17F}'];

/// A query found as bytes.
enum Literal {
    /// In the text as it is.
    AsIs(Finder<'static>),
    /// In the ASCII-lowercased text. `query_folds`: the query holds `k` or `s`, which also
    /// match the Kelvin sign and the long s, so the lowercased text answers only when it
    /// holds neither.
    Lowercased {
        finder: Finder<'static>,
        query_folds: bool,
    },
}

/// How a search matches lines.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    pub case_sensitive: bool,
    /// Whole identifiers only: the match is neither preceded nor followed by `[A-Za-z0-9_]`.
    pub word: bool,
    /// The query is a regular expression (Rust `regex` syntax).
    pub regex: bool,
}

/// A query that cannot be searched, and the parameter at fault.
#[derive(Debug)]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

pub struct Matcher {
    pub query: String,
    pub options: Options,
    /// Whether a line matches, boundaries included.
    line: Lazy,
    /// The same match with the query's exact case, for ranking (None: already exact).
    exact_case: Option<Lazy>,
    /// The query as bytes in its exact case, where that decides `exact_case`.
    exact_literal: Option<Finder<'static>>,
    /// Where the match is, for the snippet's window.
    locate: Lazy,
    /// The query as bytes to find literally, where that finds exactly what the line
    /// expression's literal does: in the text as it is (case-sensitive), or in the text
    /// ASCII-lowercased (case-insensitive, for an ASCII query). Not for a regular
    /// expression.
    literal: Option<Literal>,
    glob: Option<GlobMatcher>,
}

/// A regular expression compiled when first asked for. Compiling one costs more than a
/// search of a literal over the parts of files it reads (the `regex` crate builds a whole
/// DFA for a small expression: 1.5 ms a search, a third of its time), so a literal query
/// compiles none unless a line needs one (it holds the Kelvin sign or the long s).
struct Lazy {
    pattern: String,
    options: Options,
    case_insensitive: bool,
    compiled: OnceLock<Result<Regex, String>>,
}

impl Lazy {
    fn new(pattern: &str, options: Options, case_insensitive: bool) -> Lazy {
        Lazy {
            pattern: pattern.to_owned(),
            options,
            case_insensitive,
            compiled: OnceLock::new(),
        }
    }

    fn get(&self) -> Result<&Regex, &String> {
        self.compiled
            .get_or_init(|| compile(&self.pattern, self.options, self.case_insensitive))
            .as_ref()
    }

    fn is_match(&self, text: &str) -> bool {
        self.get().is_ok_and(|regex| regex.is_match(text))
    }
}

impl Matcher {
    pub fn new(query: &str, options: Options, path: Option<&str>) -> Result<Self, Invalid> {
        let pattern = if options.regex {
            query.to_owned()
        } else {
            regex::escape(query)
        };
        let case_insensitive = !options.case_sensitive;
        let glob = path.map(path_glob).transpose()?;
        let literal = if options.regex || query.is_empty() {
            None
        } else if options.case_sensitive {
            Some(Literal::AsIs(Finder::new(query.as_bytes()).into_owned()))
        } else if query.is_ascii() {
            let lower = query.to_ascii_lowercase();
            Some(Literal::Lowercased {
                finder: Finder::new(lower.as_bytes()).into_owned(),
                query_folds: !query.chars().all(plain_ascii),
            })
        } else {
            None
        };
        let line = Lazy::new(&pattern, options, case_insensitive);
        // Where no literal decides a line, the expression is needed at once: compiled
        // now, an invalid one is the request's error.
        let decides = literal.is_some() && !options.word;
        if !decides {
            line.get().map_err(|err| Invalid {
                field: "q",
                message: err.clone(),
            })?;
        }
        let exact_literal =
            (decides && case_insensitive).then(|| Finder::new(query.as_bytes()).into_owned());
        let unbounded = Options {
            word: false,
            ..options
        };
        Ok(Matcher {
            query: query.to_owned(),
            options,
            line,
            exact_case: (case_insensitive && !decides).then(|| Lazy::new(&pattern, options, false)),
            exact_literal,
            locate: Lazy::new(&pattern, unbounded, case_insensitive),
            literal,
            glob,
        })
    }

    /// The query as a case-insensitive substring (what chats' retrieval uses).
    pub fn plain(query: &str) -> Result<Self, Invalid> {
        Matcher::new(query, Options::default(), None)
    }

    pub fn matches(&self, path: &str, text: &str) -> bool {
        self.path_matches(path) && self.line_matches(text)
    }

    /// Where the query may match first in `text` (a whole file, or what is left of it;
    /// `lower` the same ASCII-lowercased, `folds` whether the text holds the Kelvin sign
    /// or the long s): every line with a match has one of these, the line itself is then
    /// checked ([`Matcher::line_matches`]). Without `regex`, every line's match is one in
    /// the whole text too.
    pub fn find(&self, text: &str, lower: &[u8], folds: bool) -> Option<usize> {
        match &self.literal {
            Some(Literal::AsIs(finder)) => finder.find(text.as_bytes()),
            Some(Literal::Lowercased {
                finder,
                query_folds,
            }) if !(*query_folds && folds) => finder.find(lower),
            _ => self.line.get().ok()?.find(text).map(|found| found.start()),
        }
    }

    /// Whether what [`Matcher::find`] finds (with the same `folds`) is the query itself,
    /// so that a line holding the whole of it matches: a literal without whole-word
    /// boundaries to check.
    pub fn found_decides(&self, folds: bool) -> bool {
        !self.options.word
            && match &self.literal {
                Some(Literal::AsIs(_)) => true,
                Some(Literal::Lowercased { query_folds, .. }) => !(*query_folds && folds),
                None => false,
            }
    }

    /// Whether one line matches (its path aside).
    pub fn line_matches(&self, text: &str) -> bool {
        match self.literal_in(text) {
            Some(at) if !self.options.word => at.is_some(),
            _ => self.line.is_match(text),
        }
    }

    /// Where the query's literal is first in one line, boundaries aside; `None` when no
    /// literal decides (a regular expression, a non-ASCII case-insensitive query, or a
    /// line holding the Kelvin sign or the long s for a query holding `k` or `s`).
    fn literal_in(&self, text: &str) -> Option<Option<usize>> {
        match self.literal.as_ref()? {
            Literal::AsIs(finder) => Some(finder.find(text.as_bytes())),
            Literal::Lowercased {
                finder,
                query_folds,
            } => {
                if *query_folds && text.contains(FOLDS_TO_ASCII) {
                    return None;
                }
                Some(finder.find(&text.as_bytes().to_ascii_lowercase()))
            }
        }
    }

    pub fn path_matches(&self, path: &str) -> bool {
        self.glob.as_ref().is_none_or(|glob| glob.is_match(path))
    }

    /// Whether the line matches with the query's exact case too.
    pub fn exact_case(&self, text: &str) -> bool {
        match (&self.exact_literal, &self.exact_case) {
            (Some(finder), _) => finder.find(text.as_bytes()).is_some(),
            (None, Some(exact)) => exact.is_match(text),
            (None, None) => true,
        }
    }

    /// The byte offset of the first match in `text`.
    pub fn position(&self, text: &str) -> Option<usize> {
        match self.literal_in(text) {
            Some(at) => at,
            None => self
                .locate
                .get()
                .ok()?
                .find(text)
                .map(|found| found.start()),
        }
    }
}

/// The line-level expression. With `word`, the pattern is parsed first (any flags it
/// sets, `(?x)` comments included, stay inside it) and printed back inside the boundary
/// checks; whether some match has identifier boundaries is then one regular question.
fn compile(pattern: &str, options: Options, case_insensitive: bool) -> Result<Regex, String> {
    let pattern = if options.word {
        let hir = regex_syntax::ParserBuilder::new()
            .case_insensitive(case_insensitive)
            .build()
            .parse(pattern)
            .map_err(|err| err.to_string())?;
        format!(
            "(?:^|[^{c}])(?:{hir})(?:$|[^{c}])",
            c = &IDENTIFIER[1..IDENTIFIER.len() - 1]
        )
    } else {
        pattern.to_owned()
    };
    RegexBuilder::new(&pattern)
        .case_insensitive(case_insensitive && !options.word)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|err| err.to_string())
}

/// A glob without `/` matches a file name at any depth (`*.py`, as code search users
/// expect); one with `/` is anchored at the root (`src/**/*.rs`), where `*` stays within
/// one directory and `**` crosses any number.
fn path_glob(glob: &str) -> Result<GlobMatcher, Invalid> {
    let anchored = glob.strip_prefix('/').unwrap_or(glob);
    let glob = if glob.contains('/') {
        anchored.to_owned()
    } else {
        format!("**/{glob}")
    };
    GlobBuilder::new(&glob)
        .literal_separator(true)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|err| Invalid {
            field: "path",
            message: format!("not a valid glob: {}", err.kind()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(query: &str, options: Options) -> Matcher {
        Matcher::new(query, options, None).unwrap()
    }

    #[test]
    fn a_literal_finds_where_the_expression_does() {
        // Every place the line expression matches, the literal finds, and nothing it
        // does not (ASCII-lowercased text; the Kelvin sign and long s fold to `k`, `s`).
        let text = "Total totAL subtotal\nKelvin \u{212A}elvin \u{17F}elf SELF x_total\né TOTAL";
        let lower = text.as_bytes().to_ascii_lowercase();
        let sensitive = Options {
            case_sensitive: true,
            ..Options::default()
        };
        for (query, options) in [
            ("total", Options::default()),
            ("TOTAL", Options::default()),
            ("total", sensitive),
            ("TOTAL", sensitive),
            ("kelvin", Options::default()),
            ("self", Options::default()),
            ("é to", Options::default()),
            ("x_tot", Options::default()),
        ] {
            let m = matcher(query, options);
            let (mut found, mut expected) = (Vec::new(), Vec::new());
            let mut from = 0;
            while let Some(at) = m.find(&text[from..], &lower[from..], true) {
                found.push(from + at);
                from += at + 1;
                while !text.is_char_boundary(from) {
                    from += 1;
                }
            }
            let expression =
                compile(&regex::escape(query), options, !options.case_sensitive).unwrap();
            expected.extend(expression.find_iter(text).map(|m| m.start()));
            // Overlapping literal finds are a superset; the expression's are all in them.
            assert!(
                expected.iter().all(|at| found.contains(at)),
                "{query}: {found:?} {expected:?}"
            );
            for at in &found {
                assert!(
                    expression.is_match_at(text, *at)
                        && expression.find_at(text, *at).unwrap().start() == *at,
                    "{query}: {at} is not a match"
                );
            }
        }
        let kelvin = matcher("kelvin", Options::default());
        assert_eq!(kelvin.find("x Kelvin", b"x kelvin", false), Some(2));
        let sign = "x \u{212A}elvin";
        let lower = sign.as_bytes().to_ascii_lowercase();
        assert_eq!(
            kelvin.find(sign, &lower, true),
            Some(2),
            "the sign matches `k`"
        );
        assert!(matcher("é to", Options::default()).literal.is_none());
        assert!(matcher("é to", sensitive).literal.is_some());
    }

    #[test]
    fn literals_decide_lines_as_the_expressions_do() {
        let lines = [
            "Total totAL subtotal",
            "Kelvin \u{212A}elvin",
            "\u{17F}elf SELF x_total",
            "é TOTAL É",
            "nothing here",
            "",
        ];
        let sensitive = Options {
            case_sensitive: true,
            ..Options::default()
        };
        let word = Options {
            word: true,
            ..Options::default()
        };
        for (query, options) in [
            ("total", Options::default()),
            ("TOTAL", sensitive),
            ("kelvin", Options::default()),
            ("self", Options::default()),
            ("total", word),
            ("é", Options::default()),
            ("É", sensitive),
            ("x_", Options::default()),
        ] {
            let m = matcher(query, options);
            let pattern = regex::escape(query);
            let line = compile(&pattern, options, !options.case_sensitive).unwrap();
            let exact = compile(&pattern, options, false).unwrap();
            let unbounded = Options {
                word: false,
                ..options
            };
            let locate = compile(&pattern, unbounded, !options.case_sensitive).unwrap();
            for text in lines {
                let at = locate.find(text).map(|m| m.start());
                assert_eq!(m.line_matches(text), line.is_match(text), "{query} {text}");
                // A case-sensitive query's matches are all in its exact case.
                let exact = options.case_sensitive || exact.is_match(text);
                assert_eq!(m.exact_case(text), exact, "{query} {text}");
                assert_eq!(m.position(text), at, "{query} {text}");
            }
        }
    }

    #[test]
    fn words_have_identifier_boundaries() {
        let word = Options {
            word: true,
            ..Options::default()
        };
        let total = matcher("total", word);
        assert!(total.matches("a", "let total = 1;"));
        assert!(total.matches("a", "TOTAL"));
        assert!(!total.matches("a", "subtotal total_x"));
        assert!(total.matches("a", "subtotal (total)"));
        assert!(matcher("é", word).matches("a", "x é y"));
        let verbose = Options {
            regex: true,
            ..word
        };
        assert!(matcher("(?x) to tal # a comment", verbose).matches("a", "a total"));
    }

    #[test]
    fn case_and_regex() {
        let sensitive = Options {
            case_sensitive: true,
            ..Options::default()
        };
        assert!(!matcher("Total", sensitive).matches("a", "total"));
        let insensitive = matcher("Total", Options::default());
        assert!(insensitive.matches("a", "TOTAL") && !insensitive.exact_case("TOTAL"));
        assert!(insensitive.exact_case("a Total"));
        assert!(matcher("a.c", Options::default()).matches("a", "xa.cx"));
        assert!(!matcher("a.c", Options::default()).matches("a", "abc"));
        let regex = Options {
            regex: true,
            ..Options::default()
        };
        assert!(matcher("a.c", regex).matches("a", "abc"));
        let invalid = Matcher::new("a(", regex, None).err().unwrap();
        assert_eq!(invalid.field, "q");
    }

    #[test]
    fn globs_without_a_slash_match_at_any_depth() {
        let glob = |g: &str| Matcher::new("x", Options::default(), Some(g)).unwrap();
        assert!(glob("*.py").path_matches("a/b/c.py") && glob("*.py").path_matches("c.py"));
        assert!(!glob("*.py").path_matches("c.pyc"));
        assert!(glob("src/**/*.rs").path_matches("src/a/b.rs"));
        assert!(glob("src/**/*.rs").path_matches("src/b.rs"));
        assert!(!glob("src/*.rs").path_matches("src/a/b.rs"));
        assert!(!glob("src/*.rs").path_matches("lib/src/b.rs"));
        assert!(glob("/src/*.rs").path_matches("src/b.rs"));
        let invalid = Matcher::new("x", Options::default(), Some("a["))
            .err()
            .unwrap();
        assert_eq!(invalid.field, "path");
    }
}
