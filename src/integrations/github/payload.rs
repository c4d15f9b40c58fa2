//! The parts of GitHub's webhook deliveries the server reads: pull requests, comments on
//! them and pushes. Every other field is ignored.

use serde::Deserialize;

#[derive(Deserialize)]
pub struct Repository {
    pub full_name: String,
}

#[derive(Deserialize)]
pub struct Account {
    pub login: String,
    #[serde(rename = "type", default)]
    pub kind: String,
}

impl Account {
    pub fn is_bot(&self) -> bool {
        self.kind.eq_ignore_ascii_case("bot") || self.login.ends_with("[bot]")
    }
}

#[derive(Deserialize)]
pub struct Installation {
    pub id: i64,
}

#[derive(Deserialize)]
pub struct Head {
    pub sha: String,
}

#[derive(Deserialize)]
pub struct PullRequest {
    pub number: i64,
    pub head: Head,
    #[serde(default)]
    pub draft: bool,
}

#[derive(Deserialize)]
pub struct PullRequestEvent {
    pub action: String,
    pub pull_request: PullRequest,
    pub repository: Repository,
    pub sender: Account,
    pub installation: Option<Installation>,
}

#[derive(Deserialize)]
pub struct Issue {
    pub number: i64,
    pub pull_request: Option<serde_json::Value>,
}

#[derive(Deserialize)]
pub struct Comment {
    pub id: Option<i64>,
    pub body: Option<String>,
    pub user: Account,
    /// `OWNER`, `MEMBER`, `COLLABORATOR`, `CONTRIBUTOR`, `NONE`, …
    #[serde(default)]
    pub author_association: Option<String>,
}

#[derive(Deserialize)]
pub struct IssueCommentEvent {
    pub action: String,
    pub issue: Issue,
    pub comment: Comment,
    pub repository: Repository,
    pub sender: Account,
    pub installation: Option<Installation>,
}

/// A push to a repository's default branch (§6.4: linked projects re-sync).
#[derive(Deserialize)]
pub struct PushRepository {
    pub full_name: String,
    pub default_branch: Option<String>,
}

#[derive(Deserialize)]
pub struct PushEvent {
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub after: Option<String>,
    #[serde(default)]
    pub deleted: bool,
    pub repository: Option<PushRepository>,
    pub installation: Option<Installation>,
}
