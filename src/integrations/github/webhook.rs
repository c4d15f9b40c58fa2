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
    ask::{self, Question},
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
const COMMAND_PREFIX: &str = "/codesherpa";
/// Who may give commands: people with a say in the repository.
const TRUSTED: [&str; 3] = ["OWNER", "MEMBER", "COLLABORATOR"];
/// The longest question `/codesherpa ask` takes.
const MAX_QUESTION_CHARS: usize = 2_000;

/// What happened to a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct Receipt {
    #[schema(example = "72d3162e-cc78-11e3-81ab-4c9367dc0958")]
    pub delivery_id: String,
    /// `queued` (202: a review, an answer or a re-sync), `ignored`, `duplicate`, `pong`,
    /// `paused` or `resumed` (200).
    #[schema(pattern = "^(queued|ignored|duplicate|pong|paused|resumed)$")]
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
    /// `/codesherpa pause` (true) or `resume` (false).
    Pause {
        repository: String,
        pull_number: i64,
        paused: bool,
    },
    /// `/codesherpa ask <question>`: an answer as a new comment, from a job.
    Ask {
        project_id: i64,
        question: Question,
    },
    Ignore(String),
}

/// A command in a pull-request comment.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Review,
    FullReview,
    Pause,
    Resume,
    Ask(String),
}

/// The command a comment gives (its first line), if it is one.
fn parse_command(body: &str) -> Option<std::result::Result<Command, String>> {
    let body = body.trim_start();
    let rest = body.strip_prefix(COMMAND_PREFIX)?;
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    let (first, more) = rest.split_once('\n').unwrap_or((rest, ""));
    let words: Vec<&str> = first.split_whitespace().collect();
    let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    Some(match lower.as_slice() {
        ["review", ..] => Ok(Command::Review),
        ["full", "review", ..] => Ok(Command::FullReview),
        ["pause", ..] => Ok(Command::Pause),
        ["resume", ..] => Ok(Command::Resume),
        ["ask", ..] => {
            let question = format!("{} {}", words[1..].join(" "), more.trim());
            let question = question.trim();
            if question.is_empty() {
                Err("`/codesherpa ask` needs a question".to_owned())
            } else {
                Ok(Command::Ask(
                    question.chars().take(MAX_QUESTION_CHARS).collect(),
                ))
            }
        }
        _ => Err(format!(
            "unknown command `{}`; the commands are review, full review, pause, resume and ask",
            first.trim()
        )),
    })
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
        (status = 200, description = "Ping answered, delivery ignored (with a reason), already received, or a pull request's automatic reviews paused or resumed (`/codesherpa pause`, `/codesherpa resume`)", body = WebhookReceiptResponse),
        (status = 202, description = "A review (pull_request, `/codesherpa review`, `/codesherpa full review`), an answer (`/codesherpa ask`) or a re-sync (push to the default branch) was queued", body = WebhookReceiptResponse),
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
        "queued" if event == "issue_comment" && receipt.review_id.is_none() => "Answer queued",
        "queued" if receipt.review_id.is_none() => "Sync queued",
        "queued" => "Review queued",
        "paused" => "Automatic reviews paused",
        "resumed" => "Automatic reviews resumed",
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
    let repository = event.repository.full_name;
    let pull_number = event.pull_request.number;
    // Both reads at once: a burst of deliveries waits on round trips, not on CPU.
    let (paused, linked) = tokio::try_join!(
        store::is_paused(&state.db, &repository, pull_number),
        linked_projects(state, &repository),
    )?;
    if paused {
        return Ok(Decision::Ignore(
            "automatic reviews of this pull request are paused (`/codesherpa resume`)".into(),
        ));
    }
    let scope = if event.action == "synchronize" {
        "incremental"
    } else {
        "full"
    };
    let wanted = Wanted {
        repository,
        pull_number,
        head_sha: event.pull_request.head.sha,
        installation_id: event.installation.map(|i| i.id),
        scope,
    };
    Ok(review_decision(linked, wanted))
}

/// A command in a new comment on a pull request, from a person the repository trusts
/// (`author_association` OWNER, MEMBER or COLLABORATOR).
async fn comment_decision(state: &AppState, event: IssueCommentEvent) -> Result<Decision> {
    let command = event.comment.body.as_deref().and_then(parse_command);
    let Some(command) =
        command.filter(|_| event.action == "created" && event.issue.pull_request.is_some())
    else {
        return Ok(Decision::Ignore(
            "not a command (`/codesherpa review`, `full review`, `pause`, `resume`, `ask …`) \
             in a new comment on a pull request"
                .into(),
        ));
    };
    if event.sender.is_bot() || event.comment.user.is_bot() {
        return Ok(Decision::Ignore("sent by a bot".into()));
    }
    let association = event
        .comment
        .author_association
        .as_deref()
        .unwrap_or("NONE");
    if !TRUSTED.contains(&association) {
        return Ok(Decision::Ignore(format!(
            "commands are taken from the repository's owners, members and collaborators \
             only (author_association {association})"
        )));
    }
    let command = match command {
        Ok(command) => command,
        Err(reason) => return Ok(Decision::Ignore(reason)),
    };
    let repository = event.repository.full_name;
    let pull_number = event.issue.number;
    let installation_id = event.installation.map(|i| i.id);
    let scope = match command {
        Command::Review => "incremental",
        Command::FullReview => "full",
        Command::Pause | Command::Resume => {
            if linked_projects(state, &repository).await?.is_empty() {
                return Ok(Decision::Ignore(format!(
                    "no project with verified access links {repository}"
                )));
            }
            return Ok(Decision::Pause {
                repository,
                pull_number,
                paused: command == Command::Pause,
            });
        }
        Command::Ask(text) => {
            let wanted = Wanted {
                repository,
                pull_number,
                head_sha: String::new(),
                installation_id,
                scope: "full",
            };
            return Ok(match review_or_ignore(state, wanted).await? {
                Decision::Review { project_id, wanted } => Decision::Ask {
                    project_id,
                    question: Question {
                        repository: wanted.repository,
                        pull_number: wanted.pull_number,
                        installation_id,
                        comment_id: event.comment.id,
                        text,
                    },
                },
                other => other,
            });
        }
    };
    review_or_ignore(
        state,
        Wanted {
            repository,
            pull_number,
            head_sha: String::new(),
            installation_id,
            scope,
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
    Ok(review_decision(linked, wanted))
}

/// [`review_or_ignore`] once the linked projects are read.
fn review_decision(linked: Vec<LinkedProject>, wanted: Wanted) -> Decision {
    if linked.is_empty() {
        return Decision::Ignore(format!(
            "no project with verified access links {}",
            wanted.repository
        ));
    }
    match linked.iter().find(|p| p.auto_review) {
        Some(project) => Decision::Review {
            project_id: project.id,
            wanted,
        },
        None => Decision::Ignore(format!(
            "auto_review is off for every project linking {}",
            wanted.repository
        )),
    }
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
    if let Decision::Ask {
        project_id,
        question,
    } = decision
    {
        return Ok(
            match ask::queue(state, delivery_id, event, project_id, question).await? {
                None => (StatusCode::OK, receipt("duplicate", None, None)),
                Some(enqueued) => {
                    state.jobs.wake(&enqueued);
                    (StatusCode::ACCEPTED, receipt("queued", None, None))
                }
            },
        );
    }
    if let Decision::Pause {
        repository,
        pull_number,
        paused,
    } = &decision
    {
        let pull = (repository.as_str(), *pull_number);
        let first = store::write_pause(&state.db, delivery_id, event, pull, *paused).await?;
        let status = match (first, paused) {
            (false, _) => "duplicate",
            (true, true) => "paused",
            (true, false) => "resumed",
        };
        return Ok((StatusCode::OK, receipt(status, None, None)));
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
        Decision::Pause { paused: true, .. } => (StatusCode::OK, receipt("paused", None, None)),
        Decision::Pause { paused: false, .. } => (StatusCode::OK, receipt("resumed", None, None)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_read_from_the_first_line() {
        let ok = |body: &str| parse_command(body).map(|c| c.unwrap());
        assert_eq!(ok("/codesherpa review"), Some(Command::Review));
        assert_eq!(
            ok("  /codesherpa review please\nthanks"),
            Some(Command::Review)
        );
        assert_eq!(ok("/codesherpa Full Review"), Some(Command::FullReview));
        assert_eq!(ok("/codesherpa pause"), Some(Command::Pause));
        assert_eq!(ok("/codesherpa resume"), Some(Command::Resume));
        assert_eq!(
            ok("/codesherpa ask Why a retry here?\nIt looks odd."),
            Some(Command::Ask("Why a retry here? It looks odd.".into()))
        );
        assert!(parse_command("/codesherpa ask").unwrap().is_err());
        assert!(parse_command("/codesherpa dance").unwrap().is_err());
        assert!(parse_command("/codesherpas review").is_none());
        assert!(parse_command("LGTM /codesherpa review").is_none());
    }
}
