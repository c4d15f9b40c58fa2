//! GitHub pull-request reviews (SPEC §6.2): the signed webhook, the REST client, the
//! review job (diff → Review Monk → one comment per PR, kept up to date) and the
//! `GET /projects/{id}/reviews` list.

pub mod client;
mod comment;
mod diff;
mod review;
pub mod routes;
mod store;
pub mod webhook;

pub use client::{GithubClient, GithubError};

use crate::{jobs::Workers, state::AppState};

/// The job kind of a pull-request review.
pub const REVIEW_JOB: &str = "github.review";

/// Registers the review job's handler.
pub fn register_jobs(workers: &mut Workers, state: &AppState) {
    workers.register(
        REVIEW_JOB,
        state.config.github.review_concurrency,
        review::ReviewJob::new(state.clone()),
    );
}

/// `owner/repo`, lower-cased, when `repo_url` names a repository on github.com or on the
/// host of `api_url` (GitHub Enterprise); `.git` and a trailing slash are ignored.
pub fn linked_repository(repo_url: &str, api_url: &str) -> Option<String> {
    let host_of = |url: &str| -> Option<String> {
        let rest = url.split_once("://")?.1;
        let host = rest.split('/').next()?;
        Some(host.to_ascii_lowercase())
    };
    let (scheme, rest) = repo_url.trim().split_once("://")?;
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return None;
    }
    let mut parts = rest.trim_end_matches('/').split('/');
    let host = parts.next()?.to_ascii_lowercase();
    let owner = parts.next()?;
    let repo = parts.next()?;
    if parts.next().is_some() || owner.is_empty() {
        return None;
    }
    let repo = repo
        .strip_suffix(".git")
        .or_else(|| repo.strip_suffix(".GIT"))
        .unwrap_or(repo);
    if repo.is_empty() {
        return None;
    }
    let known = host == "github.com"
        || host == "www.github.com"
        || host_of(api_url).is_some_and(|api| api == host && api != "api.github.com");
    known.then(|| format!("{owner}/{repo}").to_ascii_lowercase())
}

/// The web address of `repository` (`owner/repo`) for links in comments.
pub fn web_url(api_url: &str, repository: &str) -> String {
    let base = if api_url.contains("://api.github.com") {
        "https://github.com".to_owned()
    } else {
        api_url.trim_end_matches("/api/v3").to_owned()
    };
    format!("{base}/{repository}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "https://api.github.com";

    #[test]
    fn github_urls_link_in_every_spelling() {
        for url in [
            "https://github.com/Acme/Widgets",
            "https://github.com/acme/widgets.git",
            "https://GitHub.com/acme/widgets/",
            "http://www.github.com/acme/widgets",
        ] {
            assert_eq!(
                linked_repository(url, API).as_deref(),
                Some("acme/widgets"),
                "{url}"
            );
        }
        for url in [
            "https://gitlab.com/acme/widgets",
            "https://github.com/acme",
            "https://github.com/acme/widgets/tree/main",
            "ftp://github.com/acme/widgets",
            "https://api.github.com/acme/widgets",
        ] {
            assert_eq!(linked_repository(url, API), None, "{url}");
        }
    }

    #[test]
    fn enterprise_hosts_link_too() {
        let api = "https://git.corp.example/api/v3";
        assert_eq!(
            linked_repository("https://git.corp.example/team/app", api).as_deref(),
            Some("team/app")
        );
        assert_eq!(
            linked_repository("https://github.com/team/app", api).as_deref(),
            Some("team/app")
        );
        assert_eq!(
            linked_repository("https://other.example/team/app", api),
            None
        );
        assert_eq!(
            web_url(api, "team/app"),
            "https://git.corp.example/team/app"
        );
        assert_eq!(web_url(API, "team/app"), "https://github.com/team/app");
    }
}
