//! The review job: read the pull request, fetch its diff within the budget, have the
//! owner's Review Monk review it (stored as a chat and broadcast), check the head did not
//! move on, then create or edit CodeSherpa's one comment on the PR.
//!
//! Idempotent across crashes and retries: the chat is made once (its id is kept on the
//! review), and the comment is found again by its hidden marker before anything is posted.

use std::time::Instant;

use futures_util::future::BoxFuture;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::{
    access,
    client::{GithubError, JSON},
    comment::{Comment, MARKER},
    diff::{self, Budgeted},
    store::{self, ReviewTask, Update},
    web_url,
};
use crate::{
    agents::{self, builtin::BUILTIN_AGENTS, Agent},
    chat::{store as chats, store::NewChat, Chat},
    error::Error,
    jobs::{Handler, Job, Outcome},
    llm::{self, LlmError, LlmRequest, Role, Subject, Task, Turn},
    projects::store as projects,
    specialists::{
        routing::Specialist,
        schemas::{extract_json, Review},
    },
    state::AppState,
};

pub struct ReviewJob {
    state: AppState,
}

impl ReviewJob {
    pub fn new(state: AppState) -> Self {
        ReviewJob { state }
    }
}

/// Why a run stopped early: a queue outcome, or a finished review that was skipped.
enum Stop {
    Outcome(Outcome),
    Skipped(String),
}

impl From<GithubError> for Stop {
    fn from(err: GithubError) -> Self {
        Stop::Outcome(err.outcome())
    }
}

impl From<Error> for Stop {
    fn from(err: Error) -> Self {
        tracing::warn!(error = %err, "review job storage error");
        Stop::Outcome(Outcome::retry("database error"))
    }
}

impl From<LlmError> for Stop {
    fn from(err: LlmError) -> Self {
        Stop::Outcome(match err {
            LlmError::Rejected(_) => Outcome::failed(err.to_string()),
            _ => Outcome::retry(err.to_string()),
        })
    }
}

#[derive(Deserialize)]
struct PullHead {
    sha: String,
}

#[derive(Deserialize)]
struct Pull {
    head: PullHead,
}

#[derive(Deserialize)]
struct Author {
    login: String,
}

#[derive(Deserialize)]
struct IssueComment {
    id: i64,
    body: Option<String>,
    html_url: String,
    user: Option<Author>,
}

impl IssueComment {
    /// The server's own comment: its marker, written by its own identity (or one an earlier
    /// review recorded posting). Anyone can paste the marker; a stranger's copy is never
    /// edited (SPEC §6.2).
    fn is_ours(&self, own_login: Option<&str>, posted: &[i64]) -> bool {
        let by_us = self
            .user
            .as_ref()
            .zip(own_login)
            .is_some_and(|(author, own)| author.login.eq_ignore_ascii_case(own));
        self.body.as_deref().is_some_and(|b| b.contains(MARKER))
            && (by_us || posted.contains(&self.id))
    }
}

impl Handler for ReviewJob {
    fn run(&self, job: Job) -> BoxFuture<'static, Outcome> {
        let state = self.state.clone();
        Box::pin(async move {
            let Some(review_id) = job.payload.get("review_id").and_then(|v| v.as_i64()) else {
                return Outcome::failed("the job names no review");
            };
            let task = match store::task(&state.db, review_id).await {
                Ok(Some(task)) => task,
                // The project (and with it the review) was deleted: nothing left to do.
                Ok(None) => return Outcome::Done,
                Err(err) => return Stop::from(err).into_outcome(),
            };
            if matches!(task.status.as_str(), "done" | "skipped" | "failed") {
                return Outcome::Done;
            }
            let attempts = i32::try_from(job.attempt).unwrap_or(i32::MAX);
            let running = Update {
                status: Some("running"),
                attempts: Some(attempts),
                ..Update::default()
            };
            if let Err(err) = store::update(&state.db, task.id, running).await {
                return Stop::from(err).into_outcome();
            }
            match review(&state, task.clone()).await {
                Ok(()) => Outcome::Done,
                Err(Stop::Skipped(reason)) => {
                    let skipped = Update {
                        status: Some("skipped"),
                        reason: Some(Some(&reason)),
                        ..Update::default()
                    };
                    match store::update(&state.db, task.id, skipped).await {
                        Ok(()) => Outcome::Done,
                        Err(err) => Stop::from(err).into_outcome(),
                    }
                }
                Err(Stop::Outcome(outcome)) => {
                    if let Outcome::Retry { reason, .. } = &outcome {
                        let waiting = Update {
                            status: Some("queued"),
                            reason: Some(Some(reason)),
                            ..Update::default()
                        };
                        let _ = store::update(&state.db, task.id, waiting).await;
                    }
                    outcome
                }
            }
        })
    }

    fn failed(&self, job: Job, reason: String) -> BoxFuture<'static, ()> {
        let state = self.state.clone();
        Box::pin(async move {
            let Some(review_id) = job.payload.get("review_id").and_then(|v| v.as_i64()) else {
                return;
            };
            let failed = Update {
                status: Some("failed"),
                reason: Some(Some(&reason)),
                ..Update::default()
            };
            if let Err(err) = store::update(&state.db, review_id, failed).await {
                tracing::warn!(error = %err, review_id, "cannot mark a review failed");
            }
        })
    }
}

impl Stop {
    fn into_outcome(self) -> Outcome {
        match self {
            Stop::Outcome(outcome) => outcome,
            Stop::Skipped(_) => Outcome::Done,
        }
    }
}

async fn review(state: &AppState, mut task: ReviewTask) -> Result<(), Stop> {
    let github = &state.github;
    // The owner's access is what lets the server's credentials act for this project.
    if let Some(project) = projects::find(&state.db, task.project_id).await? {
        if !access::fresh(state, project)
            .await?
            .repo_access
            .is_verified()
        {
            return Err(Stop::Skipped(
                "the project's repository access is no longer verified".into(),
            ));
        }
    }
    let installation = task.installation_id;
    let pull_path = format!("/repos/{}/pulls/{}", task.repository, task.pull_number);
    let (pull, _): (Pull, _) = github.get_json(&pull_path, installation).await?;
    if task.head_sha.is_empty() {
        // A `/codesherpa review` comment: review whatever the head is now.
        task.head_sha = pull.head.sha.clone();
        let head = Update {
            head_sha: Some(&task.head_sha),
            ..Update::default()
        };
        store::update(&state.db, task.id, head).await?;
    } else if pull.head.sha != task.head_sha {
        return Err(Stop::Skipped(format!(
            "the head moved on to {}; a newer review covers it",
            pull.head.sha
        )));
    }
    let budgeted = diff::fetch(
        github,
        &task.repository,
        task.pull_number,
        installation,
        state.config.github.review_max_diff_bytes,
    )
    .await?;
    let chat = match task.chat_id {
        Some(id) => chats::get(&state.db, task.user_id, id).await?,
        None => None,
    };
    let chat = match chat {
        Some(chat) => chat,
        None => {
            let chat = review_chat(state, &task, &budgeted).await?;
            let link = Update {
                chat_id: Some(chat.id),
                ..Update::default()
            };
            store::update(&state.db, task.id, link).await?;
            state.hub.broadcast_chat(&chat, None).await;
            chat
        }
    };
    // Just before posting: a push since the diff was read makes this review stale.
    let (now, _): (Pull, _) = github.get_json(&pull_path, installation).await?;
    if now.head.sha != task.head_sha {
        return Err(Stop::Skipped(format!(
            "the head moved on to {} while reviewing; a newer review covers it",
            now.head.sha
        )));
    }
    let structured = chat
        .result
        .as_ref()
        .and_then(|value| serde_json::from_value::<Review>(value.0.clone()).ok());
    let body = Comment {
        review: structured.as_ref(),
        text: &chat.response,
        agent: chat.agent.as_deref().unwrap_or("Review Monk"),
        head_sha: &task.head_sha,
        web_url: &web_url(github.api_url(), &task.repository),
        files: budgeted.files,
        skipped: &budgeted.skipped,
    }
    .render();
    let url = upsert_comment(state, &task, &body).await?;
    let done = Update {
        status: Some("done"),
        reason: Some(None),
        comment_url: Some(&url),
        ..Update::default()
    };
    store::update(&state.db, task.id, done).await?;
    Ok(())
}

/// Edits CodeSherpa's comment on the PR if there is one, else creates it.
async fn upsert_comment(state: &AppState, task: &ReviewTask, body: &str) -> Result<String, Stop> {
    let github = &state.github;
    let issue = format!("/repos/{}/issues/{}", task.repository, task.pull_number);
    let own_login = github.own_login().await?;
    let posted = store::posted_comments(&state.db, &task.repository, task.pull_number).await?;
    let mut next = Some(format!("{issue}/comments?per_page=100"));
    let mut existing = None;
    while let Some(page) = next.take() {
        let (comments, link): (Vec<IssueComment>, _) =
            github.get_json(&page, task.installation_id).await?;
        existing = comments.into_iter().find(|c| c.is_ours(own_login, &posted));
        if existing.is_some() {
            break;
        }
        next = link;
    }
    let payload = json!({ "body": body });
    let response = match existing {
        Some(comment) => {
            let path = format!("/repos/{}/issues/comments/{}", task.repository, comment.id);
            github
                .send(
                    Method::PATCH,
                    &path,
                    task.installation_id,
                    JSON,
                    Some(&payload),
                )
                .await?
        }
        None => {
            github
                .send(
                    Method::POST,
                    &format!("{issue}/comments"),
                    task.installation_id,
                    JSON,
                    Some(&payload),
                )
                .await?
        }
    };
    let posted: IssueComment = response
        .json()
        .await
        .map_err(|err| GithubError::BadResponse(err.without_url().to_string()))?;
    Ok(posted.html_url)
}

/// Runs the owner's Review Monk (their prompt and model) on the diff; stores the chat.
async fn review_chat(
    state: &AppState,
    task: &ReviewTask,
    budgeted: &Budgeted,
) -> Result<Chat, Stop> {
    let role = Specialist::Review.role();
    let agent: Option<Agent> = agents::store::by_role(&state.db, task.user_id, role).await?;
    let builtin = BUILTIN_AGENTS.iter().find(|a| a.role == role);
    let system = agent
        .as_ref()
        .and_then(|a| a.system_prompt.clone())
        .or_else(|| builtin.map(|b| b.system_prompt.to_owned()))
        .unwrap_or_default();
    let name = agent
        .as_ref()
        .map(|a| a.name.clone())
        .or_else(|| builtin.map(|b| b.name.to_owned()))
        .unwrap_or_else(|| "Review Monk".into());
    let (provider, model) = state
        .providers
        .select(agent.as_ref().and_then(|a| a.model.as_deref()));
    let message = format!(
        "Review pull request {}#{} at {}.",
        task.repository, task.pull_number, task.head_sha
    );
    let mut prompt = format!("{message}\n\n```diff\n{}\n```", budgeted.diff);
    if !budgeted.skipped.is_empty() {
        prompt.push_str("\n\nFiles not shown (do not review them):");
        for (path, why) in &budgeted.skipped {
            prompt.push_str(&format!("\n- {path}: {why}"));
        }
    }
    let request = LlmRequest {
        system,
        messages: vec![Turn {
            role: Role::User,
            content: prompt,
        }],
        model: model.clone(),
        max_tokens: state.config.llm.max_tokens,
        task: Task::Review,
        subject: Subject {
            message: message.clone(),
            code_context: Some(budgeted.diff.clone()),
            project_snippets: Vec::new(),
        },
    };
    let started = Instant::now();
    let working = agent
        .as_ref()
        .map(|agent| state.activity.begin(&state.db, agent));
    let completion = llm::complete(provider.as_ref(), request, state.config.llm.timeout).await;
    if let Some(working) = working {
        working.finish().await;
    }
    let completion = completion?;
    let structured = extract_json::<Review>(&completion.text).filter(Review::is_valid);
    let (response, result) = match &structured {
        Some(review) => (review.to_markdown(), serde_json::to_value(review).ok()),
        None => (completion.text.clone(), None),
    };
    let chat = NewChat {
        user_id: task.user_id,
        session_id: format!("github:{}#{}", task.repository, task.pull_number),
        agent_id: agent.as_ref().map(|a| a.id),
        project_id: Some(task.project_id),
        message,
        response,
        result,
        agent: Some(name),
        provider: Some(provider.name().to_owned()),
        model: Some(model.unwrap_or_else(|| provider.default_model().to_owned())),
        prompt_tokens: i64::try_from(completion.usage.prompt_tokens).unwrap_or(i64::MAX),
        completion_tokens: i64::try_from(completion.usage.completion_tokens).unwrap_or(i64::MAX),
        latency_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        complete: true,
    };
    Ok(chats::insert(&state.db, chat).await?)
}
