//! Per-repository settings: `.codesherpa.yml` read from the pull request's **base**
//! commit, so that a pull request cannot switch its own review off (SPEC §6.2). Invalid
//! YAML, unknown keys or bad globs never stop a review: it runs with the defaults and the
//! summary says what was wrong (the file, the line, the parser's message).

use globset::{Glob, GlobBuilder, GlobMatcher};
use reqwest::Method;
use serde::Deserialize;

use super::client::{GithubClient, GithubError};

pub const FILE: &str = ".codesherpa.yml";
const RAW: &str = "application/vnd.github.raw+json";
/// A settings file larger than this is refused (and the defaults used).
const MAX_BYTES: usize = 64 * 1024;
const DEFAULT_MAX_INLINE: usize = 10;

/// The settings a review runs with.
#[derive(Debug)]
pub struct RepoSettings {
    pub enabled: bool,
    ignore: Vec<GlobMatcher>,
    pub instructions: Option<String>,
    path_instructions: Vec<(GlobMatcher, String)>,
    pub inline: bool,
    pub max_inline_comments: usize,
    /// What was wrong with the file, for the summary (`None`: nothing, or no file).
    pub problem: Option<String>,
}

impl Default for RepoSettings {
    fn default() -> Self {
        RepoSettings {
            enabled: true,
            ignore: Vec::new(),
            instructions: None,
            path_instructions: Vec::new(),
            inline: true,
            max_inline_comments: DEFAULT_MAX_INLINE,
            problem: None,
        }
    }
}

impl RepoSettings {
    /// Whether `path` is left out by `review.ignore`.
    pub fn ignores(&self, path: &str) -> bool {
        self.ignore.iter().any(|glob| glob.is_match(path))
    }

    /// The `path_instructions` whose glob matches one of `paths`, as (glob, instructions).
    pub fn instructions_for<'a>(
        &self,
        paths: impl Iterator<Item = &'a str> + Clone,
    ) -> Vec<(&str, &str)> {
        self.path_instructions
            .iter()
            .filter(|(glob, _)| paths.clone().any(|p| glob.is_match(p)))
            .map(|(glob, text)| (glob.glob().glob(), text.as_str()))
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSchema {
    review: Option<ReviewSchema>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewSchema {
    enabled: Option<bool>,
    ignore: Option<Vec<String>>,
    instructions: Option<String>,
    path_instructions: Option<Vec<PathInstruction>>,
    inline: Option<bool>,
    max_inline_comments: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathInstruction {
    path: String,
    instructions: String,
}

/// Reads `.codesherpa.yml` at `base_sha` (`GET /repos/{o}/{r}/contents/.codesherpa.yml?ref=`,
/// raw). No file → the defaults; a file GitHub will not give (other than a passing
/// failure, which is retried) → the defaults and a note.
pub async fn read(
    github: &GithubClient,
    repository: &str,
    base_sha: &str,
    installation: Option<i64>,
) -> Result<RepoSettings, GithubError> {
    let path = format!("/repos/{repository}/contents/{FILE}?ref={base_sha}");
    let short = base_sha.get(..7).unwrap_or(base_sha);
    match github
        .send(Method::GET, &path, installation, RAW, None)
        .await
    {
        Ok(response) => {
            let bytes = response
                .bytes()
                .await
                .map_err(|err| GithubError::Transport(err.without_url().to_string()))?;
            if bytes.len() > MAX_BYTES {
                return Ok(invalid(format!(
                    "`{FILE}` at {short} is larger than {MAX_BYTES} bytes"
                )));
            }
            match std::str::from_utf8(&bytes) {
                Ok(text) => Ok(parse(text, short)),
                Err(_) => Ok(invalid(format!("`{FILE}` at {short} is not UTF-8 text"))),
            }
        }
        Err(GithubError::Status { status: 404, .. }) => Ok(RepoSettings::default()),
        Err(err) if err.is_permanent() => Ok(invalid(format!(
            "`{FILE}` at {short} could not be read ({err})"
        ))),
        Err(err) => Err(err),
    }
}

fn invalid(problem: String) -> RepoSettings {
    RepoSettings {
        problem: Some(format!(
            "{problem}; the review ran with the default settings."
        )),
        ..RepoSettings::default()
    }
}

/// The settings in `text` (the file at commit `short`), or the defaults and what was
/// wrong.
pub fn parse(text: &str, short: &str) -> RepoSettings {
    if text.trim().is_empty() {
        return RepoSettings::default();
    }
    let schema: FileSchema = match serde_yaml_ng::from_str(text) {
        Ok(schema) => schema,
        Err(err) => {
            let line = err
                .location()
                .map(|at| format!(", line {}", at.line()))
                .unwrap_or_default();
            return invalid(format!("`{FILE}` at {short}{line} is not valid: {err}"));
        }
    };
    let Some(review) = schema.review else {
        return RepoSettings::default();
    };
    let glob = |pattern: &str| -> Result<GlobMatcher, String> {
        GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map(|g: Glob| g.compile_matcher())
            .map_err(|err| {
                let line = line_of(text, pattern)
                    .map(|n| format!(", line {n}"))
                    .unwrap_or_default();
                format!("`{FILE}` at {short}{line} is not valid: {err}")
            })
    };
    let built = (|| -> Result<RepoSettings, String> {
        let ignore = review
            .ignore
            .unwrap_or_default()
            .iter()
            .map(|p| glob(p))
            .collect::<Result<Vec<_>, _>>()?;
        let path_instructions = review
            .path_instructions
            .unwrap_or_default()
            .into_iter()
            .map(|p| Ok((glob(&p.path)?, p.instructions)))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(RepoSettings {
            enabled: review.enabled.unwrap_or(true),
            ignore,
            instructions: review.instructions.filter(|i| !i.trim().is_empty()),
            path_instructions,
            inline: review.inline.unwrap_or(true),
            max_inline_comments: review.max_inline_comments.unwrap_or(DEFAULT_MAX_INLINE),
            problem: None,
        })
    })();
    built.unwrap_or_else(invalid)
}

/// The 1-based line of `text` that holds `needle`.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_keys_are_read() {
        let text = r#"
review:
  enabled: true
  ignore: ["docs/**", "**/*.lock"]
  instructions: "Prefer early returns."
  path_instructions: [{path: "src/db/**", instructions: "Check every query for injection."}]
  inline: false
  max_inline_comments: 3
"#;
        let settings = parse(text, "abc1234");
        assert!(settings.problem.is_none(), "{:?}", settings.problem);
        assert!(settings.enabled);
        assert!(settings.ignores("docs/guide/intro.md"));
        assert!(settings.ignores("Cargo.lock"));
        assert!(settings.ignores("web/package.lock"));
        assert!(!settings.ignores("src/main.rs"));
        assert_eq!(
            settings.instructions.as_deref(),
            Some("Prefer early returns.")
        );
        assert!(!settings.inline);
        assert_eq!(settings.max_inline_comments, 3);
        let paths = ["src/db/users.rs", "README.md"];
        assert_eq!(
            settings.instructions_for(paths.iter().copied()),
            [("src/db/**", "Check every query for injection.")]
        );
        assert!(settings
            .instructions_for(["src/api.rs"].iter().copied())
            .is_empty());
    }

    #[test]
    fn no_file_or_an_empty_one_means_the_defaults() {
        for text in ["", "\n", "review:\n", "# nothing\n"] {
            let settings = parse(text, "abc1234");
            assert!(settings.problem.is_none(), "{text:?}");
            assert!(settings.enabled && settings.inline);
            assert_eq!(settings.max_inline_comments, 10);
        }
    }

    #[test]
    fn anything_wrong_runs_with_the_defaults_and_says_where() {
        let unknown = parse("review:\n  enabled: false\n  inlin: false\n", "abc1234");
        assert!(unknown.enabled, "defaults, not half the file");
        let problem = unknown.problem.unwrap();
        assert!(
            problem.contains(".codesherpa.yml` at abc1234, line 3"),
            "{problem}"
        );
        assert!(problem.contains("unknown field `inlin`"), "{problem}");

        let broken = parse(
            "review:\n  ignore: [\"docs/**\"\n  enabled: false\n",
            "abc1234",
        );
        assert!(broken.enabled);
        assert!(broken.problem.unwrap().contains("line"));

        let wrong_type = parse("review:\n  max_inline_comments: many\n", "abc1234");
        assert!(wrong_type.problem.unwrap().contains("line 2"));

        let bad_glob = parse(
            "review:\n  enabled: false\n  ignore: [\"src/[a\"]\n",
            "abc1234",
        );
        assert!(bad_glob.enabled);
        assert!(bad_glob.problem.unwrap().contains("line 3"));
    }
}
