//! What a project's `repo_url` names, read strictly by GitHub's rules, and the web
//! address of a repository.

/// What a project's `repo_url` names.
#[derive(Debug, PartialEq, Eq)]
pub enum RepoUrl {
    /// `owner/repo`, lower-cased: a repository on github.com or the Enterprise host.
    Github(String),
    /// A URL on another host: kept as given, never fetched.
    Elsewhere,
}

/// Reads `repo_url` by GitHub's rules. On github.com (or the host of `api_url`, with its
/// scheme, for Enterprise) it must be exactly `{scheme}://{host}/{owner}/{repo}` with an
/// optional `.git` or `/`: anything else there (`..`, `%2e`, `\`, a query, more path) is
/// refused with the reason, so no text a user types can steer a credentialed request.
pub fn parse_repo_url(repo_url: &str, api_url: &str) -> Result<RepoUrl, &'static str> {
    const RULE: &str = "a GitHub repository URL must be https://github.com/{owner}/{repo} \
                        (letters, digits and - in owners; letters, digits, . _ - in names)";
    let Some((scheme, rest)) = repo_url.trim().split_once("://") else {
        return Ok(RepoUrl::Elsewhere);
    };
    let scheme = scheme.to_ascii_lowercase();
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let (host, path) = rest.split_at(end);
    let host = host.to_ascii_lowercase();
    let enterprise = api_url
        .split_once("://")
        .and_then(|(api_scheme, api_rest)| {
            let api_host = api_rest.split('/').next()?.to_ascii_lowercase();
            (api_host != "api.github.com").then_some((api_scheme.to_ascii_lowercase(), api_host))
        });
    let on_github = (host == "github.com" || host == "www.github.com")
        && (scheme == "https" || scheme == "http");
    let on_enterprise = enterprise.is_some_and(|(s, h)| s == scheme && h == host);
    if !(on_github || on_enterprise) {
        return Ok(RepoUrl::Elsewhere);
    }
    let path = path.strip_suffix('/').unwrap_or(path);
    let mut parts = path.strip_prefix('/').ok_or(RULE)?.split('/');
    let (Some(owner), Some(repo), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(RULE);
    };
    let repo = repo
        .strip_suffix(".git")
        .or_else(|| repo.strip_suffix(".GIT"))
        .unwrap_or(repo);
    let owner_ok = (1..=39).contains(&owner.len())
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let repo_ok = (1..=100).contains(&repo.len())
        && repo
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && repo != "."
        && repo != "..";
    if owner_ok && repo_ok {
        Ok(RepoUrl::Github(
            format!("{owner}/{repo}").to_ascii_lowercase(),
        ))
    } else {
        Err(RULE)
    }
}

/// `owner/repo`, lower-cased, when `repo_url` names a GitHub repository by the rules of
/// [`parse_repo_url`]; `None` for other hosts and for URLs those rules refuse.
pub fn linked_repository(repo_url: &str, api_url: &str) -> Option<String> {
    match parse_repo_url(repo_url, api_url) {
        Ok(RepoUrl::Github(repository)) => Some(repository),
        _ => None,
    }
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
    fn urls_that_could_steer_a_request_are_refused_on_github_hosts() {
        for url in [
            "https://github.com/../user",
            "https://github.com/acme/..",
            "https://github.com/acme/.",
            "https://github.com/%2e%2e/user",
            "https://github.com/acme/widgets%2f..",
            "https://github.com\\..\\..\\admin",
            "https://github.com/acme/widgets?x=1",
            "https://github.com/acme/widgets#readme",
            "https://github.com/acme/widgets/tree/main",
            "https://github.com/acme",
            "https://github.com/",
            "https://github.com/ac_me/widgets",
            "https://github.com/acme/wid gets",
            "https://github.com/acme/.git",
        ] {
            assert!(parse_repo_url(url, API).is_err(), "{url}");
        }
        for url in [
            "https://gitlab.com/../user",
            "https://user@github.com/../x",
            "https://github.com:8443/a/b?c",
        ] {
            assert_eq!(parse_repo_url(url, API), Ok(RepoUrl::Elsewhere), "{url}");
        }
        assert_eq!(
            parse_repo_url("https://github.com/Acme-1/My.Repo_x-2.git/", API),
            Ok(RepoUrl::Github("acme-1/my.repo_x-2".into()))
        );
        let api = "https://git.corp.example/api/v3";
        assert!(parse_repo_url("https://git.corp.example/team/../x", api).is_err());
        assert_eq!(
            parse_repo_url("http://git.corp.example/team/../x", api),
            Ok(RepoUrl::Elsewhere),
            "another scheme is another origin"
        );
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
