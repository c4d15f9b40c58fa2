//! Repository sync from GitHub: `POST /projects/{id}/sync` (and a push to the default
//! branch) queues a durable job that downloads the repository's tarball — following its
//! redirect, with the server's GitHub credentials when the project's access is verified —
//! and has codebase index it. The project's `sync` state is recorded through
//! `projects::sync`.

use axum::{
    extract::{Request, State},
    http::StatusCode,
    response::IntoResponse,
};
use futures_util::{future::BoxFuture, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{access, Credential, GithubError};
use crate::{
    auth::AuthUser,
    codebase::{self, index, Unread},
    error::{
        ok,
        responses::{Authenticated, ServerErrors},
        Error, ErrorBody, Result,
    },
    extract::{has_content_type, parse_json, read_body, Id},
    jobs::{Enqueued, Handler, Job, NewJob, Outcome, Stop},
    projects::{
        self,
        sync::{self as sync_state, SyncStatus},
    },
    state::AppState,
};

/// The job's kind, as jobs already queued name it.
pub const SYNC_JOB: &str = "codebase.sync";
/// Syncs run at once in one instance: each holds a tarball in memory while it downloads
/// (extracting and indexing it also waits for one of the `INDEX_CONCURRENCY` permits).
pub const SYNC_CONCURRENCY: usize = 2;
const REF_MAX_CHARS: usize = 255;

/// What to sync; every field is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// A branch, tag or commit; the repository's default branch when absent.
    #[serde(rename = "ref")]
    #[schema(
        rename = "ref",
        min_length = 1,
        max_length = 255,
        example = "main",
        pattern = r"^(?!.*\.\.)(?!.*//)[A-Za-z0-9_+-]([A-Za-z0-9._/+-]*[A-Za-z0-9._+-])?$"
    )]
    pub git_ref: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    project_id: i64,
    git_ref: Option<String>,
    installation_id: Option<i64>,
}

/// A ref that stays one path segment sequence under `/tarball/`: no `..`, no empty
/// segment, no leading dot or slash (GitHub's ref rules forbid them too).
fn valid_ref(value: &str) -> bool {
    (1..=REF_MAX_CHARS).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/+-".contains(&b))
        && !value.contains("..")
        && !value.contains("//")
        && !value.starts_with(['.', '/'])
        && !value.ends_with('/')
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/sync", tag = "codebase", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id")),
    request_body(content = Option<SyncRequest>, content_type = "application/json",
        description = "Optional; an empty body syncs the default branch"),
    responses(
        (status = 202, description = "A sync job is queued; follow it in the project's `sync`", body = crate::projects::sync::SyncStateResponse),
        Authenticated, ServerErrors,
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "No such project of this user", body = ErrorBody),
        (status = 408, description = "The body did not arrive within `BODY_TIMEOUT_SECONDS`", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "A body that is not JSON", body = ErrorBody),
        (status = 409, description = "The project links no GitHub repository", body = ErrorBody),
        (status = 422, description = "Invalid ref", body = ErrorBody),
    ))]
pub async fn start(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
    request: Request,
) -> Result<impl IntoResponse> {
    let json = has_content_type(request.headers(), "application/json");
    let body = read_body(request, &state).await?;
    let input: SyncRequest = match (body.is_empty(), json) {
        (true, _) => SyncRequest::default(),
        // `null` is what the schema's optional body allows too.
        (false, true) => parse_json::<Option<SyncRequest>>(&body)?.unwrap_or_default(),
        (false, false) => {
            return Err(Error::UnsupportedMediaType(
                "Expected no body or a JSON body with Content-Type: application/json",
            ))
        }
    };
    if input.git_ref.as_deref().is_some_and(|r| !valid_ref(r)) {
        return Err(Error::invalid(
            "ref",
            "must be a branch, tag or commit: 1 to 255 letters, digits or . _ / + -, no `..`",
        ));
    }
    let project = projects::store::owned(&state.db, user.id, id).await?;
    if state
        .github
        .repository_of(project.repo_url.as_deref())
        .is_none()
    {
        // The request is valid; the project's state does not allow it.
        return Err(Error::Conflict(
            "The project links no GitHub repository: set its repo_url, or upload an archive \
             with PUT /api/v1/projects/{id}/files"
                .into(),
        ));
    }
    queue(&state, id, input.git_ref, None, None).await?;
    let project = projects::store::owned(&state.db, user.id, id).await?;
    Ok((StatusCode::ACCEPTED, ok(project.sync, "Sync queued")))
}

/// Marks the project queued and queues its sync in the same transaction. A `dedupe` key
/// (a webhook delivery) makes a redelivery queue nothing.
pub async fn queue(
    state: &AppState,
    project_id: i64,
    git_ref: Option<String>,
    installation_id: Option<i64>,
    dedupe: Option<String>,
) -> Result<Enqueued> {
    let payload = Payload {
        project_id,
        git_ref,
        installation_id,
    };
    // A project's syncs run one at a time, in the order they were asked for.
    let mut job =
        NewJob::new(SYNC_JOB, json!(payload)).serial_key(format!("sync:project:{project_id}"));
    if let Some(key) = dedupe {
        job = job.dedupe_key(key);
    }
    let enqueued = sync_state::queue(&state.db, project_id, &job).await?;
    state.jobs.wake(&enqueued);
    Ok(enqueued)
}

/// The sync job's handler.
pub struct SyncJob {
    state: AppState,
}

impl SyncJob {
    pub fn new(state: AppState) -> Self {
        SyncJob { state }
    }
}

impl Handler for SyncJob {
    fn run(&self, job: Job) -> BoxFuture<'static, Outcome> {
        let state = self.state.clone();
        Box::pin(async move {
            let project_id = job.payload["project_id"].as_i64();
            let outcome = match run(&state, job).await {
                Ok(()) => Outcome::Done,
                Err(stop) => Outcome::from(stop),
            };
            // Waiting for a retry is not running: show the owner why, until the next try.
            if let (Outcome::Retry { reason, .. }, Some(project_id)) = (&outcome, project_id) {
                let queued = SyncStatus::Queued;
                let marked = sync_state::mark(&state.db, project_id, queued, Some(reason));
                if let Err(err) = marked.await {
                    tracing::warn!(error = %err, "could not record a sync retry");
                }
            }
            outcome
        })
    }

    fn failed(&self, job: Job, reason: String) -> BoxFuture<'static, ()> {
        Box::pin(mark(
            self.state.clone(),
            job,
            SyncStatus::Failed,
            Some(reason),
        ))
    }

    fn retried(&self, job: Job) -> BoxFuture<'static, ()> {
        Box::pin(mark(self.state.clone(), job, SyncStatus::Queued, None))
    }
}

/// Records on the project what became of its sync job.
async fn mark(state: AppState, job: Job, status: SyncStatus, reason: Option<String>) {
    let Ok(payload) = serde_json::from_value::<Payload>(job.payload) else {
        return;
    };
    let marked = sync_state::mark(&state.db, payload.project_id, status, reason.as_deref());
    if let Err(err) = marked.await {
        tracing::warn!(error = %err, "could not record a sync's state");
    }
}

/// The storage failures of a sync, as its owner is told of them.
fn unavailable<E>(_: E) -> Stop {
    Stop::retry("database unavailable")
}

async fn run(state: &AppState, job: Job) -> Result<(), Stop> {
    let payload = serde_json::from_value::<Payload>(job.payload)
        .map_err(|_| Stop::failed("unreadable sync job"))?;
    let id = payload.project_id;
    let (repository, credential) = source(state, &payload).await?;
    sync_state::mark(&state.db, id, SyncStatus::Running, None)
        .await
        .map_err(unavailable)?;
    let git_ref = match payload.git_ref {
        Some(git_ref) => git_ref,
        None => default_branch(state, &repository, credential).await?,
    };
    let tarball = download(state, &repository, &git_ref, credential).await?;
    index_tarball(state, id, tarball).await
}

/// The repository to download and the credentials to download it with. The server's
/// credentials serve verified projects only; others read what anyone can.
async fn source(
    state: &AppState,
    payload: &Payload,
) -> Result<(String, Credential<'static>), Stop> {
    let project = projects::store::find(&state.db, payload.project_id)
        .await
        .map_err(unavailable)?
        // A project deleted since: nothing left to do.
        .ok_or_else(|| Stop::Skipped("the project was deleted".into()))?;
    let Some(repository) = state.github.repository_of(project.repo_url.as_deref()) else {
        return Err(Stop::failed("the project links no GitHub repository"));
    };
    let project = access::fresh(state, project).await.map_err(unavailable)?;
    if !project.repo_access.is_verified() {
        return Ok((repository, Credential::Anonymous));
    }
    let installation = match payload.installation_id {
        Some(id) => Some(id),
        None => state
            .github
            .installation_for(&repository)
            .await
            .map_err(|err| refused(err, Credential::Server(None)))?,
    };
    Ok((repository, Credential::Server(installation)))
}

/// Extracts and indexes the tarball, waiting its turn: at most `INDEX_CONCURRENCY`
/// extractions and indexings run at once.
async fn index_tarball(state: &AppState, id: i64, tarball: Vec<u8>) -> Result<(), Stop> {
    let Ok(_permit) = state.index_permits.clone().acquire_owned().await else {
        return Err(Stop::retry("indexing is unavailable"));
    };
    let extracted = codebase::extract(tarball).await.map_err(|err| match err {
        Unread::Archive(_) => Stop::failed("GitHub's tarball could not be read"),
        Unread::Interrupted(_) => Stop::retry("extraction was interrupted"),
    })?;
    match index::replace(&state.db, id, extracted).await {
        Ok(indexed) => {
            if indexed.is_some() {
                codebase::snapshot::warm(&state.db, id).await;
            }
            Ok(())
        }
        Err(err) => {
            tracing::warn!(project_id = id, error = %err, "indexing a sync failed");
            Err(Stop::retry("indexing failed"))
        }
    }
}

#[derive(Deserialize)]
struct RepositoryInfo {
    default_branch: String,
}

async fn default_branch(
    state: &AppState,
    repository: &str,
    credential: Credential<'_>,
) -> Result<String, Stop> {
    let path = format!("/repos/{repository}");
    match state
        .github
        .get_json_as::<RepositoryInfo>(&path, credential)
        .await
    {
        Ok((info, _)) if valid_ref(&info.default_branch) => Ok(info.default_branch),
        Ok(_) => Ok("HEAD".into()),
        Err(err) => Err(refused(err, credential)),
    }
}

/// The tarball's bytes, at most `UPLOAD_LIMIT_BYTES`.
async fn download(
    state: &AppState,
    repository: &str,
    git_ref: &str,
    credential: Credential<'_>,
) -> Result<Vec<u8>, Stop> {
    let path = format!("/repos/{repository}/tarball/{git_ref}");
    let response = state
        .github
        .get_raw(&path, credential)
        .await
        .map_err(|err| refused(err, credential))?;
    let limit = state.config.codebase.upload_limit_bytes;
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Stop::retry("the tarball download was interrupted"))?;
        if body.len() + chunk.len() > limit {
            return Err(Stop::failed(
                "the repository's tarball is larger than UPLOAD_LIMIT_BYTES",
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// GitHub's failure as the queue takes it, told with a reason fit to show the project's
/// owner (GitHub's own message stays in the logs).
fn refused(err: GithubError, credential: Credential<'_>) -> Stop {
    tracing::warn!(error = %err, "GitHub call for a sync failed");
    let reason = match err.status() {
        Some(404) if matches!(credential, Credential::Anonymous) => {
            "repository or ref not found without credentials: a private repository is synced \
             only once the project's repository access is verified (connect GitHub, then check \
             again)"
                .to_owned()
        }
        Some(404) => "repository or ref not found".to_owned(),
        Some(401 | 403) => "GitHub refused access to the repository".to_owned(),
        Some(status) => format!("GitHub answered {status}"),
        None => "GitHub could not be reached".to_owned(),
    };
    Stop::from(err).because(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_stay_under_the_tarball_path() {
        for good in ["main", "feature/x-1", "v1.2.3", "1a2b3c4d"] {
            assert!(valid_ref(good), "{good}");
        }
        for bad in [
            "",
            "../../etc",
            "a/../b",
            "/main",
            ".hidden",
            "a//b",
            "main/",
            "bad ref",
            "a?b",
        ] {
            assert!(!valid_ref(bad), "{bad}");
        }
    }
}
