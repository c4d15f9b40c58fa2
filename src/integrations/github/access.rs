//! Proven repository access (SPEC §6.2): a project's repository is `verified` only while
//! its owner's connected GitHub identity has push, maintain or admin permission on it,
//! read with the owner's own token (`GET /repos/{o}/{r}` → `permissions`). Checked when
//! `repo_url` is set or changed, before a sync or review that relies on it (at most once an
//! hour), and on `POST /projects/{id}/repo-access`.

use std::time::Duration;

use axum::{extract::State, response::IntoResponse};
use futures_util::future::BoxFuture;
use serde::Deserialize;

use super::{client::Credential, identity, GithubError};
use crate::{
    auth::AuthUser,
    error::{
        ok,
        responses::{Authenticated, ServerErrors},
        Error, ErrorBody, Result,
    },
    extract::Id,
    projects::{
        store::{self as projects, AccessCheck},
        AccessChecker, Project, RepoAccess,
    },
    state::AppState,
};

/// A verification this old is checked again before the server's credentials act on it.
pub const RECHECK_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(1);
/// A check made during a request waits this long for GitHub at most.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize, Default)]
struct Permissions {
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    maintain: bool,
    #[serde(default)]
    push: bool,
}

#[derive(Deserialize)]
struct RepositoryInfo {
    #[serde(default)]
    permissions: Option<Permissions>,
}

/// The check projects ask for when a `repo_url` is set or changed (the state holds it).
pub struct GithubAccess;

impl AccessChecker<AppState> for GithubAccess {
    fn check<'a>(
        &'a self,
        state: &'a AppState,
        project: Project,
    ) -> BoxFuture<'a, Result<Project>> {
        Box::pin(check(state, project))
    }
}

/// Checks the project's repository access with its owner's identity and records it. A
/// project whose `repo_url` names no GitHub repository is returned as it is.
pub async fn check(state: &AppState, project: Project) -> Result<Project> {
    let Some(repository) = state.github.repository_of(project.repo_url.as_deref()) else {
        return Ok(project);
    };
    let repo_url = project.repo_url.clone().unwrap_or_default();
    let connected = identity::connected(&state.db, project.user_id).await?;
    let token = match &connected {
        Some(c) => opened(state, project.user_id, &c.token).await?,
        None => None,
    };
    let (status, reason) = match (&connected, token) {
        (None, _) => (
            RepoAccess::UNVERIFIED,
            Some("no GitHub account is connected: connect GitHub, then check again".to_owned()),
        ),
        (Some(_), None) => (
            RepoAccess::UNVERIFIED,
            Some("the stored GitHub token cannot be read: connect GitHub again".to_owned()),
        ),
        (Some(connected), Some(token)) => {
            verdict(state, &project, &repository, &connected.login, &token).await
        }
    };
    let check = AccessCheck {
        status,
        login: connected.as_ref().map(|c| c.login.as_str()),
        reason: reason.as_deref(),
    };
    let recorded = projects::record_access(&state.db, project.id, &repo_url, check).await?;
    match recorded {
        Some(project) => Ok(project),
        // The URL changed while GitHub was asked: that change's own check stands.
        None => projects::find(&state.db, project.id)
            .await?
            .ok_or(Error::NotFound("Project")),
    }
}

/// The user's token, sealed again with the current key when it was sealed with
/// `SECRET_KEY_PREVIOUS`, so that retiring the previous key loses no connection.
async fn opened(state: &AppState, user_id: i64, sealed: &str) -> Result<Option<String>> {
    let Some((token, stale)) = state.github_tokens.open_checked(user_id, sealed) else {
        return Ok(None);
    };
    if stale {
        let resealed = state.github_tokens.seal(user_id, &token);
        identity::replace_token(&state.db, user_id, sealed, &resealed).await?;
    }
    Ok(Some(token))
}

/// The status and reason GitHub's answer gives; a failure that proves nothing keeps the
/// status the project had.
async fn verdict(
    state: &AppState,
    project: &Project,
    repository: &str,
    login: &str,
    token: &str,
) -> (&'static str, Option<String>) {
    let path = format!("/repos/{repository}");
    let asked = tokio::time::timeout(
        CHECK_TIMEOUT,
        state
            .github
            .get_json_as::<RepositoryInfo>(&path, Credential::User(token)),
    )
    .await;
    let kept = match project.repo_access.status.as_deref() {
        Some(RepoAccess::VERIFIED) => RepoAccess::VERIFIED,
        Some(RepoAccess::DENIED) => RepoAccess::DENIED,
        _ => RepoAccess::UNVERIFIED,
    };
    match asked {
        Ok(Ok((info, _))) => {
            let p = info.permissions.unwrap_or_default();
            if p.admin || p.maintain || p.push {
                (RepoAccess::VERIFIED, None)
            } else {
                let why = format!(
                    "{login} may only read {repository}: push, maintain or admin permission is \
                     needed"
                );
                (RepoAccess::DENIED, Some(why))
            }
        }
        Ok(Err(GithubError::Status { status: 404, .. })) => (
            RepoAccess::DENIED,
            Some(format!(
                "{repository} does not exist or {login} cannot see it"
            )),
        ),
        Ok(Err(GithubError::Status { status: 401, .. })) => (
            RepoAccess::UNVERIFIED,
            Some(format!(
                "GitHub no longer accepts {login}'s token: connect GitHub again"
            )),
        ),
        Ok(Err(GithubError::Status { status: 403, .. })) => (
            RepoAccess::DENIED,
            Some(format!("GitHub refused {login} access to {repository}")),
        ),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, project_id = project.id, "repository access check failed");
            (
                kept,
                Some("GitHub could not be asked; check again later".into()),
            )
        }
        Err(_) => (
            kept,
            Some("GitHub did not answer in time; check again later".into()),
        ),
    }
}

/// The project as it stands, checked again first when its verification is older than
/// [`RECHECK_AFTER`] (or was never made). For work that uses the server's credentials.
pub async fn fresh(state: &AppState, project: Project) -> Result<Project> {
    let stale = project.repo_access.status.is_some()
        && project
            .repo_access
            .checked_at
            .is_none_or(|at| crate::db::now() - at > RECHECK_AFTER);
    if stale {
        check(state, project).await
    } else {
        Ok(project)
    }
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/repo-access", tag = "integrations", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id")),
    responses(
        (status = 200, description = "Checked now with the owner's connected GitHub account; the project with its `repo_access`", body = crate::projects::ProjectResponse),
        Authenticated, ServerErrors,
        (status = 404, description = "No such project of this user", body = ErrorBody),
        (status = 409, description = "The project's repo_url names no GitHub repository", body = ErrorBody),
    ))]
pub async fn recheck(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
) -> Result<impl IntoResponse> {
    let project = projects::owned(&state.db, user.id, id).await?;
    if state
        .github
        .repository_of(project.repo_url.as_deref())
        .is_none()
    {
        return Err(Error::Conflict(
            "The project's repo_url names no GitHub repository".into(),
        ));
    }
    let project = check(&state, project).await?;
    Ok(ok(project, "Repository access checked"))
}
