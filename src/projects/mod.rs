//! Projects: code bases (often GitHub repositories) owned by one user, with the state
//! of their index (`sync`) and of their proven repository access (`repo_access`).

pub mod repo_url;
pub mod routes;
pub mod store;
pub mod sync;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Result;

#[derive(Clone, Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct Project {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub repo_url: Option<String>,
    /// Review pull requests of the linked GitHub repository automatically.
    pub auto_review: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The index of the project's code: what was uploaded or synced, and when.
    #[sqlx(flatten)]
    pub sync: sync::SyncState,
    /// Whether the owner's connected GitHub identity may push to the repository `repo_url`
    /// names (SPEC §6.2); `null` when `repo_url` names no GitHub repository.
    #[sqlx(flatten)]
    #[serde(serialize_with = "RepoAccess::serialize_when_known")]
    #[schema(value_type = Option<RepoAccessView>)]
    pub repo_access: RepoAccess,
}

// `Project` in the envelope, for the API document.
crate::error::responses::envelope_schema!(ProjectResponse, Project);

/// The proof of access to a project's GitHub repository, as stored.
#[derive(Clone, Debug, Default, Serialize, sqlx::FromRow)]
pub struct RepoAccess {
    /// `unverified`, `verified` or `denied`; `None` when `repo_url` names no GitHub repository.
    #[sqlx(rename = "repo_access_status")]
    pub status: Option<String>,
    #[sqlx(rename = "repo_access_login")]
    pub login: Option<String>,
    #[sqlx(rename = "repo_access_checked_at")]
    pub checked_at: Option<DateTime<Utc>>,
    #[sqlx(rename = "repo_access_reason")]
    pub reason: Option<String>,
}

impl RepoAccess {
    pub const UNVERIFIED: &'static str = "unverified";
    pub const VERIFIED: &'static str = "verified";
    pub const DENIED: &'static str = "denied";

    pub fn is_verified(&self) -> bool {
        self.status.as_deref() == Some(Self::VERIFIED)
    }

    fn serialize_when_known<S: serde::Serializer>(
        access: &RepoAccess,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match access.status {
            Some(_) => access.serialize(serializer),
            None => serializer.serialize_none(),
        }
    }
}

/// `repo_access` as clients read it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RepoAccessView {
    /// `verified`: the owner's connected GitHub account has push, maintain or admin
    /// permission; only then are the server's credentials used, reviews posted and pushes
    /// re-synced. `denied`: it has less, or cannot see the repository. `unverified`: not
    /// checked yet, no GitHub account connected, or GitHub could not be asked.
    #[schema(pattern = "^(unverified|verified|denied)$", example = "verified")]
    status: String,
    /// The GitHub login the access was checked for.
    login: Option<String>,
    checked_at: Option<DateTime<Utc>>,
    /// Why the access is not verified.
    reason: Option<String>,
}

/// Proves a project's repository access (SPEC §6.2) once its `repo_url` is set or
/// changed. GitHub's slice implements it for the application's state `S`, which holds it,
/// so that projects ask for the check without depending on GitHub.
pub trait AccessChecker<S>: Send + Sync {
    /// The project with its access checked and recorded; as it was when `repo_url` names
    /// no GitHub repository.
    fn check<'a>(&'a self, state: &'a S, project: Project) -> BoxFuture<'a, Result<Project>>;
}
