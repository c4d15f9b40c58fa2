//! `POST /api/v1/integrations/github/webhook`: verify the signature over the raw body,
//! record the delivery once, and for a pull request to review store the review and its
//! job in one transaction — then answer, well within GitHub's 10 s.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{store, REVIEW_JOB};
use crate::{
    db::{now, Db},
    error::{ok, Error, ErrorBody, Result},
    extract::{has_content_type, parse_json},
    in_transaction,
    integrations::signature::verify_webhook,
    jobs::{self, Enqueued, NewJob},
    projects::repo_url::linked_repository,
    state::AppState,
};

/// The largest delivery GitHub sends.
pub const BODY_LIMIT: usize = 25 * 1024 * 1024;
pub const PATH: &str = "/api/v1/integrations/github/webhook";
const REVIEW_COMMAND: &str = "/codesherpa review";

/// What happened to a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct Receipt {
    #[schema(example = "72d3162e-cc78-11e3-81ab-4c9367dc0958")]
    pub delivery_id: String,
    /// `queued` (202), `ignored`, `duplicate` or `pong` (200).
    #[schema(pattern = "^(queued|ignored|duplicate|pong)$")]
    pub status: &'static str,
    /// The review queued (status `queued`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_id: Option<i64>,
    /// Why the delivery was ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Deserialize)]
struct Account {
    login: String,
    #[serde(rename = "type", default)]
    kind: String,
}

impl Account {
    fn is_bot(&self) -> bool {
        self.kind.eq_ignore_ascii_case("bot") || self.login.ends_with("[bot]")
    }
}

#[derive(Deserialize)]
struct Installation {
    id: i64,
}

#[derive(Deserialize)]
struct Head {
    sha: String,
}

#[derive(Deserialize)]
struct PullRequest {
    number: i64,
    head: Head,
    #[serde(default)]
    draft: bool,
}

#[derive(Deserialize)]
struct PullRequestEvent {
    action: String,
    pull_request: PullRequest,
    repository: Repository,
    sender: Account,
    installation: Option<Installation>,
}

#[derive(Deserialize)]
struct Issue {
    number: i64,
    pull_request: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Comment {
    body: Option<String>,
    user: Account,
}

#[derive(Deserialize)]
struct IssueCommentEvent {
    action: String,
    issue: Issue,
    comment: Comment,
    repository: Repository,
    sender: Account,
    installation: Option<Installation>,
}

/// A pull request to review.
struct Wanted {
    repository: String,
    pull_number: i64,
    /// Empty for a `/codesherpa review` comment: the job reads the current head.
    head_sha: String,
    installation_id: Option<i64>,
}

/// A push to a repository's default branch (§6.4: linked projects re-sync).
#[derive(Deserialize)]
struct PushRepository {
    full_name: String,
    default_branch: Option<String>,
}

#[derive(Deserialize)]
struct PushEvent {
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    after: Option<String>,
    #[serde(default)]
    deleted: bool,
    repository: Option<PushRepository>,
    installation: Option<Installation>,
}

enum Decision {
    Pong,
    Review {
        project_id: i64,
        wanted: Wanted,
    },
    Sync {
        project_ids: Vec<i64>,
        commit: String,
        installation_id: Option<i64>,
    },
    Ignore(String),
}

#[utoipa::path(post, path = "/api/v1/integrations/github/webhook", tag = "integrations",
    request_body(content = Object, description = "A GitHub webhook delivery (JSON, or a form with `payload`), signed with `X-Hub-Signature-256`",
        content_type = "application/json"),
    params(
        ("X-Hub-Signature-256" = String, Header, description = "`sha256=` + hex HMAC-SHA256 of the raw body with GITHUB_WEBHOOK_SECRET"),
        ("X-GitHub-Event" = String, Header, description = "`ping`, `pull_request`, `issue_comment`, …"),
        ("X-GitHub-Delivery" = String, Header, description = "The delivery's unique id (1 to 200 characters)"),
    ),
    responses(
        (status = 200, description = "Ping answered, delivery ignored (with a reason) or already received", body = crate::docs::WebhookReceiptResponse),
        (status = 202, description = "A review (pull_request, issue_comment) or a re-sync (push to the default branch) was queued", body = crate::docs::WebhookReceiptResponse),
        (status = 400, description = "Missing delivery headers or malformed payload", body = ErrorBody),
        (status = 401, description = "Missing or wrong signature", body = ErrorBody),
        (status = 408, description = "The body did not arrive within `BODY_TIMEOUT_SECONDS`", body = ErrorBody),
        (status = 413, description = "Body over 25 MiB", body = ErrorBody),
        (status = 415, description = "Neither JSON nor a form", body = ErrorBody),
        (status = 422, description = "A signed payload lacking fields its event always has", body = ErrorBody),
        (status = 500, description = "Internal error (details are logged, never sent)", body = ErrorBody),
        (status = 503, description = "GITHUB_WEBHOOK_SECRET is not configured (`not_configured`), or the database is unavailable", body = ErrorBody),
    ))]
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    verify_webhook(
        state.config.github.webhook_secret.as_deref(),
        "GitHub webhooks are not configured on this server (GITHUB_WEBHOOK_SECRET)",
        &headers,
        &body,
    )?;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| (1..=200).contains(&v.len()))
    };
    let (Some(delivery_id), Some(event)) = (header("x-github-delivery"), header("x-github-event"))
    else {
        return Err(Error::BadRequest(
            "X-GitHub-Delivery and X-GitHub-Event headers are required".into(),
        ));
    };
    let payload = payload_bytes(&headers, &body)?;
    let decision = decide(&state, event, &payload).await?;
    let (status, receipt) = record(&state, delivery_id, event, decision).await?;
    let message = match receipt.status {
        "queued" if receipt.review_id.is_none() => "Sync queued",
        "queued" => "Review queued",
        "duplicate" => "Delivery already received",
        "pong" => "pong",
        _ => "Delivery ignored",
    };
    Ok((status, ok(receipt, message)).into_response())
}

/// GitHub sends JSON, or `payload=<json>` when the hook's content type is a form.
fn payload_bytes(headers: &HeaderMap, body: &Bytes) -> Result<Vec<u8>> {
    if has_content_type(headers, "application/json") {
        return Ok(body.to_vec());
    }
    if !has_content_type(headers, "application/x-www-form-urlencoded") {
        return Err(Error::UnsupportedMediaType(
            "Expected application/json or application/x-www-form-urlencoded",
        ));
    }
    form_urlencoded::parse(body)
        .find(|(key, _)| key == "payload")
        .map(|(_, value)| value.into_owned().into_bytes())
        .ok_or_else(|| Error::BadRequest("The form has no `payload` field".into()))
}

async fn decide(state: &AppState, event: &str, payload: &[u8]) -> Result<Decision> {
    match event {
        "ping" => Ok(Decision::Pong),
        "pull_request" => {
            let event: PullRequestEvent = parse_json(payload)?;
            if !matches!(
                event.action.as_str(),
                "opened" | "reopened" | "synchronize" | "ready_for_review"
            ) {
                return Ok(Decision::Ignore(format!(
                    "action `{}` is not reviewed",
                    event.action
                )));
            }
            if event.pull_request.draft {
                return Ok(Decision::Ignore("draft pull request".into()));
            }
            if event.sender.is_bot() {
                return Ok(Decision::Ignore("sent by a bot".into()));
            }
            review_or_ignore(
                state,
                Wanted {
                    repository: event.repository.full_name,
                    pull_number: event.pull_request.number,
                    head_sha: event.pull_request.head.sha,
                    installation_id: event.installation.map(|i| i.id),
                },
            )
            .await
        }
        "issue_comment" => {
            let event: IssueCommentEvent = parse_json(payload)?;
            let command = event
                .comment
                .body
                .as_deref()
                .is_some_and(|body| body.trim_start().starts_with(REVIEW_COMMAND));
            if event.action != "created" || event.issue.pull_request.is_none() || !command {
                return Ok(Decision::Ignore(
                    "not a `/codesherpa review` comment on a pull request".into(),
                ));
            }
            if event.sender.is_bot() || event.comment.user.is_bot() {
                return Ok(Decision::Ignore("sent by a bot".into()));
            }
            review_or_ignore(
                state,
                Wanted {
                    repository: event.repository.full_name,
                    pull_number: event.issue.number,
                    head_sha: String::new(),
                    installation_id: event.installation.map(|i| i.id),
                },
            )
            .await
        }
        "push" => push_decision(state, parse_json(payload)?).await,
        other => Ok(Decision::Ignore(format!("event `{other}` is not handled"))),
    }
}

/// Review by the earliest-verified project linking the repository with `auto_review` on;
/// ignored when no verified project links it or all have `auto_review` off.
async fn review_or_ignore(state: &AppState, wanted: Wanted) -> Result<Decision> {
    let repository = wanted.repository.to_ascii_lowercase();
    let api_url = &state.config.github.api_url;
    let linked: Vec<_> = store::candidate_projects(&state.db, &repository)
        .await?
        .into_iter()
        .filter(|p| linked_repository(&p.repo_url, api_url).as_deref() == Some(&repository))
        .collect();
    if linked.is_empty() {
        return Ok(Decision::Ignore(format!(
            "no project with verified access links {}",
            wanted.repository
        )));
    }
    Ok(match linked.iter().find(|p| p.auto_review) {
        Some(project) => Decision::Review {
            project_id: project.id,
            wanted,
        },
        None => Decision::Ignore(format!(
            "auto_review is off for every project linking {}",
            wanted.repository
        )),
    })
}

/// Every verified project linking the repository re-syncs a push to its default branch.
async fn push_decision(state: &AppState, event: PushEvent) -> Result<Decision> {
    let (Some(git_ref), Some(commit), Some(pushed)) =
        (event.git_ref, event.after, event.repository)
    else {
        return Ok(Decision::Ignore(
            "push without a ref, commit or repository".into(),
        ));
    };
    let default = pushed.default_branch.as_deref().unwrap_or("main");
    if event.deleted || git_ref != format!("refs/heads/{default}") {
        return Ok(Decision::Ignore("not a push to the default branch".into()));
    }
    let repository = pushed.full_name.to_ascii_lowercase();
    let api_url = &state.config.github.api_url;
    let project_ids: Vec<i64> = store::candidate_projects(&state.db, &repository)
        .await?
        .into_iter()
        .filter(|p| linked_repository(&p.repo_url, api_url).as_deref() == Some(&repository))
        .map(|p| p.id)
        .collect();
    if project_ids.is_empty() {
        return Ok(Decision::Ignore(format!(
            "no project with verified access links {}",
            pushed.full_name
        )));
    }
    Ok(Decision::Sync {
        project_ids,
        commit,
        installation_id: event.installation.map(|i| i.id),
    })
}

/// Stores the delivery (once) and, for a review, the review and its job, atomically.
async fn record(
    state: &AppState,
    delivery_id: &str,
    event: &str,
    decision: Decision,
) -> Result<(StatusCode, Receipt)> {
    let receipt = |status, review_id, reason| Receipt {
        delivery_id: delivery_id.to_owned(),
        status,
        review_id,
        reason,
    };
    let (project_id, wanted) = match decision {
        Decision::Review { project_id, wanted } => (project_id, wanted),
        Decision::Sync {
            project_ids,
            commit,
            installation_id,
        } => {
            // Jobs first, keyed by the delivery: a crash before the delivery is stored
            // makes GitHub redeliver, and the keys keep the syncs from doubling.
            for id in project_ids {
                let key = format!("push:{delivery_id}:{id}");
                super::sync::queue(state, id, Some(commit.clone()), installation_id, Some(key))
                    .await?;
            }
            if !insert_delivery_alone(&state.db, delivery_id, event).await? {
                return Ok((StatusCode::OK, receipt("duplicate", None, None)));
            }
            return Ok((StatusCode::ACCEPTED, receipt("queued", None, None)));
        }
        Decision::Pong | Decision::Ignore(_) => {
            if !insert_delivery_alone(&state.db, delivery_id, event).await? {
                return Ok((StatusCode::OK, receipt("duplicate", None, None)));
            }
            return Ok(match decision {
                Decision::Ignore(reason) => {
                    (StatusCode::OK, receipt("ignored", None, Some(reason)))
                }
                _ => (StatusCode::OK, receipt("pong", None, None)),
            });
        }
    };
    Ok(
        match write_review(&state.db, delivery_id, event, project_id, &wanted).await? {
            None => (StatusCode::OK, receipt("duplicate", None, None)),
            Some((review_id, enqueued)) => {
                state.jobs.wake(&enqueued);
                (
                    StatusCode::ACCEPTED,
                    receipt("queued", Some(review_id), None),
                )
            }
        },
    )
}

const INSERT_DELIVERY: &str = "INSERT INTO github_deliveries (delivery_id, event, received_at) \
                               VALUES ($1, $2, $3) ON CONFLICT (delivery_id) DO NOTHING";
const INSERT_REVIEW: &str =
    "INSERT INTO reviews (project_id, delivery_id, repository, pull_number, \
                             head_sha, installation_id, status, attempts, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, 'queued', 0, $7, $7) RETURNING id";

/// True when this is the first time the delivery is seen.
async fn insert_delivery_alone(db: &Db, delivery_id: &str, event: &str) -> Result<bool> {
    // On SQLite `in_transaction!` is IMMEDIATE: concurrent deliveries queue for the write
    // lock instead of failing with "database is locked".
    let inserted = in_transaction!(db, |tx| sqlx::query(INSERT_DELIVERY)
        .bind(delivery_id)
        .bind(event)
        .bind(now())
        .execute(&mut *tx)
        .await?
        .rows_affected())?;
    Ok(inserted == 1)
}

/// The delivery, the review and its job together; `None` for a repeated delivery.
async fn write_review(
    db: &Db,
    delivery_id: &str,
    event: &str,
    project_id: i64,
    wanted: &Wanted,
) -> Result<Option<(i64, Enqueued)>> {
    let written = in_transaction!(db, |tx| {
        let now = now();
        let first = sqlx::query(INSERT_DELIVERY)
            .bind(delivery_id)
            .bind(event)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if first {
            let review_id: i64 = sqlx::query_scalar(INSERT_REVIEW)
                .bind(project_id)
                .bind(delivery_id)
                .bind(&wanted.repository)
                .bind(wanted.pull_number)
                .bind(&wanted.head_sha)
                .bind(wanted.installation_id)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            let job = NewJob::new(REVIEW_JOB, json!({ "review_id": review_id }))
                .dedupe_key(format!("review:{review_id}"));
            let enqueued = jobs::enqueue(&mut *tx, &job).await?;
            Some((review_id, enqueued))
        } else {
            None
        }
    })?;
    Ok(written)
}
