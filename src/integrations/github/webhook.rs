//! `POST /api/v1/integrations/github/webhook`: verify the signature over the raw body,
//! decide what the delivery asks for, record it once — for a pull request to review, the
//! review and its job in one transaction; for a push to the default branch, the linked
//! projects' syncs — then answer, well within GitHub's 10 s.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    payload::{IssueCommentEvent, PullRequestEvent, PushEvent},
    store::{self, Wanted},
    sync,
};
use crate::{
    error::{ok, Error, ErrorBody, Result},
    extract::{has_content_type, parse_json},
    integrations::signature::verify_webhook,
    projects::{repo_url::linked_repository, store::LinkedProject},
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

crate::error::responses::envelope_schema!(WebhookReceiptResponse, Receipt);

/// What a delivery asks for.
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
        (status = 200, description = "Ping answered, delivery ignored (with a reason) or already received", body = WebhookReceiptResponse),
        (status = 202, description = "A review (pull_request, issue_comment) or a re-sync (push to the default branch) was queued", body = WebhookReceiptResponse),
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
        "pull_request" => pull_request_decision(state, parse_json(payload)?).await,
        "issue_comment" => comment_decision(state, parse_json(payload)?).await,
        "push" => push_decision(state, parse_json(payload)?).await,
        other => Ok(Decision::Ignore(format!("event `{other}` is not handled"))),
    }
}

/// An opened or updated pull request, ready for review and opened by a person.
async fn pull_request_decision(state: &AppState, event: PullRequestEvent) -> Result<Decision> {
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

/// A person's new `/codesherpa review` comment on a pull request.
async fn comment_decision(state: &AppState, event: IssueCommentEvent) -> Result<Decision> {
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

/// The verified projects whose `repo_url` names `repository` exactly, earliest-verified
/// first.
async fn linked_projects(state: &AppState, repository: &str) -> Result<Vec<LinkedProject>> {
    let repository = repository.to_ascii_lowercase();
    let api_url = &state.config.github.api_url;
    Ok(
        crate::projects::store::verified_linking(&state.db, &repository)
            .await?
            .into_iter()
            .filter(|p| linked_repository(&p.repo_url, api_url).as_deref() == Some(&repository))
            .collect(),
    )
}

/// Review by the earliest-verified project linking the repository with `auto_review` on;
/// ignored when no verified project links it or all have `auto_review` off.
async fn review_or_ignore(state: &AppState, wanted: Wanted) -> Result<Decision> {
    let linked = linked_projects(state, &wanted.repository).await?;
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
    let project_ids: Vec<i64> = linked_projects(state, &pushed.full_name)
        .await?
        .into_iter()
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
    if let Decision::Review { project_id, wanted } = &decision {
        let written =
            store::write_review(&state.db, delivery_id, event, *project_id, wanted).await?;
        return Ok(match written {
            None => (StatusCode::OK, receipt("duplicate", None, None)),
            Some((review_id, enqueued)) => {
                state.jobs.wake(&enqueued);
                let queued = receipt("queued", Some(review_id), None);
                (StatusCode::ACCEPTED, queued)
            }
        });
    }
    if let Decision::Sync {
        project_ids,
        commit,
        installation_id,
    } = &decision
    {
        queue_syncs(state, delivery_id, project_ids, commit, *installation_id).await?;
    }
    if !store::insert_delivery(&state.db, delivery_id, event).await? {
        return Ok((StatusCode::OK, receipt("duplicate", None, None)));
    }
    Ok(match decision {
        Decision::Sync { .. } => (StatusCode::ACCEPTED, receipt("queued", None, None)),
        Decision::Ignore(reason) => (StatusCode::OK, receipt("ignored", None, Some(reason))),
        _ => (StatusCode::OK, receipt("pong", None, None)),
    })
}

/// Queues each project's sync before the delivery is stored, keyed by the delivery: a
/// crash before the delivery is stored makes GitHub redeliver, and the keys keep the
/// syncs from doubling.
async fn queue_syncs(
    state: &AppState,
    delivery_id: &str,
    project_ids: &[i64],
    commit: &str,
    installation_id: Option<i64>,
) -> Result<()> {
    for &id in project_ids {
        let key = format!("push:{delivery_id}:{id}");
        let commit = Some(commit.to_owned());
        sync::queue(state, id, commit, installation_id, Some(key)).await?;
    }
    Ok(())
}
