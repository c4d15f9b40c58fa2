//! The review job: read the pull request, fetch its diff within the budget, have the
//! owner's Review Monk review it (stored as a chat and broadcast), check the head did not
//! move on, then create or edit CodeSherpa's one comment on the PR.
//!
//! Idempotent across crashes and retries: the chat is made once (its id is kept on the
//! review), and the comment is found again by its hidden marker before anything is posted.

use futures_util::future::BoxFuture;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::{
    access,
    client::{GithubError, JSON},
    comment::{Comment, MARKER},
    context,
    diff::{self, Budgeted},
    inline,
    repo_settings::{self, RepoSettings},
    store::{self, ReviewTask, Update},
};
use crate::{
    chat::{store as chats, Chat},
    codebase::{self, map::Focus},
    integrations::whatsapp::notify::{self, ReviewFinished},
    jobs::{Handler, Job, Outcome, Stop},
    llm::{LlmError, ProjectMap, Uses},
    orchestrator::{self, Assignment, ChatInput, Delivery, ExchangeError},
    projects::{repo_url::web_url, store as projects},
    specialists::{routing::Specialist, schemas::Review},
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

/// A provider's refusal never passes; its other failures do.
impl From<LlmError> for Stop {
    fn from(err: LlmError) -> Self {
        match err {
            LlmError::Rejected(_) => Stop::failed(err.to_string()),
            _ => Stop::retry(err.to_string()),
        }
    }
}

#[derive(Deserialize)]
struct PullHead {
    sha: String,
}

#[derive(Deserialize)]
struct Pull {
    head: PullHead,
    base: PullHead,
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
                Err(err) => return Stop::from(err).into(),
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
                return Stop::from(err).into();
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
                        Err(err) => Stop::from(err).into(),
                    }
                }
                Err(stop) => {
                    if let Stop::Retry { reason, .. } = &stop {
                        let waiting = Update {
                            status: Some("queued"),
                            reason: Some(Some(reason)),
                            ..Update::default()
                        };
                        let _ = store::update(&state.db, task.id, waiting).await;
                    }
                    stop.into()
                }
            }
        })
    }

    fn failed(&self, job: Job, reason: String) -> BoxFuture<'static, ()> {
        let failed = ("failed", Some(reason));
        Box::pin(record(self.state.clone(), job, failed))
    }

    fn retried(&self, job: Job) -> BoxFuture<'static, ()> {
        Box::pin(record(self.state.clone(), job, ("queued", None)))
    }
}

/// Records on the review what became of its job: (status, reason).
async fn record(state: AppState, job: Job, (status, reason): (&'static str, Option<String>)) {
    let Some(review_id) = job.payload.get("review_id").and_then(|v| v.as_i64()) else {
        return;
    };
    let update = Update {
        status: Some(status),
        reason: Some(reason.as_deref()),
        ..Update::default()
    };
    if let Err(err) = store::update(&state.db, review_id, update).await {
        tracing::warn!(error = %err, review_id, status, "cannot record a review's state");
    }
}

/// The owner's access is what lets the server's credentials act for this project.
async fn check_access(state: &AppState, task: &ReviewTask) -> Result<(), Stop> {
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
    Ok(())
}

/// The head to review: the one the task names, while it is still the PR's head; for a
/// `/codesherpa review` comment (which names none), whatever the head is now. Returns
/// the pull request's base commit.
async fn settle_head(
    state: &AppState,
    task: &mut ReviewTask,
    pull_path: &str,
) -> Result<String, Stop> {
    let (pull, _): (Pull, _) = state
        .github
        .get_json(pull_path, task.installation_id)
        .await?;
    if task.head_sha.is_empty() {
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
    Ok(pull.base.sha)
}

async fn review(state: &AppState, mut task: ReviewTask) -> Result<(), Stop> {
    let github = &state.github;
    check_access(state, &task).await?;
    let installation = task.installation_id;
    let pull_path = format!("/repos/{}/pulls/{}", task.repository, task.pull_number);
    let base_sha = settle_head(state, &mut task, &pull_path).await?;
    // From the base: a pull request cannot change how it is itself reviewed.
    let settings = repo_settings::read(github, &task.repository, &base_sha, installation).await?;
    if !settings.enabled {
        return Err(Stop::Skipped(format!(
            "review.enabled is false in {} at {}",
            repo_settings::FILE,
            base_sha.get(..7).unwrap_or(&base_sha)
        )));
    }
    let (budgeted, range) = reviewed_diff(state, &task, &settings).await?;
    let chat = review_chat(state, &task, &budgeted, &settings, range.as_deref()).await?;
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
    let mut notes: Vec<String> = Vec::new();
    if let Some(last) = &range {
        notes.push(format!(
            "Reviewed {}..{}: the commits since the last review.",
            short(last),
            short(&task.head_sha)
        ));
    }
    notes.extend(settings.problem.iter().cloned());
    if let Some(review) = structured.as_ref().filter(|_| settings.inline) {
        let max = settings.max_inline_comments;
        notes.extend(post_inline(state, &task, review, &budgeted.diff, max).await?);
    }
    let body = Comment {
        review: structured.as_ref(),
        text: &chat.response,
        agent: chat.agent.as_deref().unwrap_or("Review Monk"),
        head_sha: &task.head_sha,
        web_url: &web_url(github.api_url(), &task.repository),
        files: budgeted.files,
        skipped: &budgeted.skipped,
        notes: &notes,
    }
    .render();
    let url = upsert_comment(state, &task, &body).await?;
    let finished = ReviewFinished::new(
        task.id,
        task.user_id,
        &task.repository,
        task.pull_number,
        structured.as_ref(),
        &url,
    );
    let notify = notify::job_for(&state.db, &finished).await?;
    if let Some(queued) = store::finish(&state.db, task.id, &url, notify.as_ref()).await? {
        state.jobs.wake(&queued);
    }
    Ok(())
}

/// Posts the findings on right-side lines of the diff that were never posted on this pull
/// request as one pull-request review (`event: COMMENT`, `commit_id` the reviewed head),
/// and records their fingerprints. Returns the note for the summary comment. A review
/// this job posted before a crash is found again by its marker, never posted twice; a
/// 422 (a line GitHub will not take) leaves the findings to the summary.
async fn post_inline(
    state: &AppState,
    task: &ReviewTask,
    review: &Review,
    diff_text: &str,
    max: usize,
) -> Result<Option<String>, Stop> {
    let github = &state.github;
    let right = diff::right_lines(diff_text);
    let posted = store::posted_fingerprints(&state.db, &task.repository, task.pull_number).await?;
    let plan = inline::plan(review, &right, &posted, max);
    if plan.comments.is_empty() {
        return Ok((plan.already_posted > 0).then(|| {
            format!(
                "{} finding{} on the diff {} posted inline before (never posted twice).",
                plan.already_posted,
                if plan.already_posted == 1 { "" } else { "s" },
                if plan.already_posted == 1 {
                    "was"
                } else {
                    "were"
                }
            )
        }));
    }
    let prints: Vec<String> = plan
        .comments
        .iter()
        .map(|c| c.fingerprint.clone())
        .collect();
    let marker = inline::marker(task.id);
    let reviews = format!(
        "/repos/{}/pulls/{}/reviews",
        task.repository, task.pull_number
    );
    if already_posted(state, task, &reviews, &marker).await? {
        // Posted by this review before a crash or a lost answer: only record it.
        store::record_fingerprints(
            &state.db,
            &task.repository,
            task.pull_number,
            task.id,
            &prints,
        )
        .await?;
        return Ok(Some(posted_note(plan.comments.len(), plan.over_cap)));
    }
    let count = plan.comments.len();
    let payload = inline::review_payload(&marker, &task.head_sha, &plan.comments);
    match github
        .send(
            Method::POST,
            &reviews,
            task.installation_id,
            JSON,
            Some(&payload),
        )
        .await
    {
        Ok(_) => {
            store::record_fingerprints(
                &state.db,
                &task.repository,
                task.pull_number,
                task.id,
                &prints,
            )
            .await?;
            Ok(Some(posted_note(count, plan.over_cap)))
        }
        Err(GithubError::Status {
            status: 422,
            message,
        }) => Ok(Some(format!(
            "GitHub did not accept the inline comments (422: {message}); the findings are \
             listed here only."
        ))),
        Err(err) => Err(err.into()),
    }
}

/// Whether the server's own identity already posted a pull-request review carrying
/// `marker` (`GET …/pulls/{n}/reviews`, paged).
async fn already_posted(
    state: &AppState,
    task: &ReviewTask,
    reviews: &str,
    marker: &str,
) -> Result<bool, Stop> {
    let first = format!("{reviews}?per_page=100");
    Ok(state
        .github
        .posted_by_us(first, marker, task.installation_id)
        .await?)
}

/// A commit's seven-character short SHA.
fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

fn posted_note(count: usize, over_cap: usize) -> String {
    let mut note = format!(
        "{count} finding{} posted as inline comments on the diff.",
        if count == 1 { " was" } else { "s were" }
    );
    if over_cap > 0 {
        note.push_str(&format!(
            " {over_cap} more on the diff are listed here only (inline comments are capped)."
        ));
    }
    note
}

/// The diff to review: for an incremental review, the commits since the last review
/// while that head is an ancestor of this one (and that range's start); else the whole
/// pull request.
async fn reviewed_diff(
    state: &AppState,
    task: &ReviewTask,
    settings: &RepoSettings,
) -> Result<(Budgeted, Option<String>), Stop> {
    let github = &state.github;
    let installation = task.installation_id;
    let max_bytes = state.config.github.review_max_diff_bytes;
    let ignored = |path: &str| settings.ignores(path);
    // A push: only the commits since the last review, while that head is an ancestor.
    let mut range = None;
    let mut budgeted = None;
    if task.scope == "incremental" {
        let last =
            store::last_reviewed_head(&state.db, &task.repository, task.pull_number, task.id)
                .await?
                .filter(|last| *last != task.head_sha);
        if let Some(last) = last {
            let pair = (last.as_str(), task.head_sha.as_str());
            budgeted = diff::fetch_range(
                github,
                &task.repository,
                pair,
                installation,
                max_bytes,
                &ignored,
            )
            .await?;
            range = budgeted.as_ref().map(|_| last.clone());
        }
    }
    let budgeted = match budgeted {
        Some(budgeted) => budgeted,
        None => {
            let number = task.pull_number;
            diff::fetch(
                github,
                &task.repository,
                number,
                installation,
                max_bytes,
                &ignored,
            )
            .await?
        }
    };
    Ok((budgeted, range))
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

/// The review's chat: the one a run before this made, else the owner's Review Monk (their
/// prompt and model) on the diff, stored, broadcast, and kept on the review.
async fn review_chat(
    state: &AppState,
    task: &ReviewTask,
    budgeted: &Budgeted,
    settings: &RepoSettings,
    range: Option<&str>,
) -> Result<Chat, Stop> {
    if let Some(id) = task.chat_id {
        if let Some(chat) = chats::get(&state.db, task.user_id, id).await? {
            return Ok(chat);
        }
    }
    let message = match range {
        Some(last) => format!(
            "Review the commits {}..{} of pull request {}#{} (what changed since the last review).",
            short(last),
            short(&task.head_sha),
            task.repository,
            task.pull_number
        ),
        None => format!(
            "Review pull request {}#{} at {}.",
            task.repository, task.pull_number, task.head_sha
        ),
    };
    let uses = context_from_the_code(state, task, &budgeted.diff).await;
    let mut prompt = review_prompt(&message, budgeted, settings, &uses);
    if let Some(map) = map_of_the_project(state, task, &budgeted.diff, &uses).await {
        prompt.push_str(&format!("{MAP_HEADER}{}", map.render()));
    }
    let input = ChatInput {
        message,
        session_id: Some(format!("github:{}#{}", task.repository, task.pull_number)),
        agent_id: None,
        project_id: Some(task.project_id),
        code_context: Some(budgeted.diff.clone()),
        assignment: Some(Assignment {
            specialist: Specialist::Review,
            prompt,
            uses,
        }),
    };
    let exchange = orchestrator::admit(state, task.user_id, input).await?;
    let chat = exchange
        .run(Delivery::default())
        .await
        .map_err(|err| match err {
            ExchangeError::Provider(err) => Stop::from(err),
            ExchangeError::Other(err) => Stop::from(err),
        })?;
    let link = Update {
        chat_id: Some(chat.id),
        ..Update::default()
    };
    store::update(&state.db, task.id, link).await?;
    Ok(chat)
}

/// Introduces the map of the project, the last part of a review's prompt.
const MAP_HEADER: &str = "\n\nMap of the project: the files related to the change with their \
definitions (kind, name, line). Cite them as `path:line`, even code not shown above:\n\n";
/// A review's map, in characters (about 600 tokens): the diff comes first.
const MAP_BUDGET: usize = 2_400;

/// The files related to the diff, with their definitions, when the review's project has
/// an index: the changed files first, then those defining what the diff refers to. Only
/// context: a failure to read it leaves it out, with a warning.
async fn map_of_the_project(
    state: &AppState,
    task: &ReviewTask,
    diff_text: &str,
    uses: &[Uses],
) -> Option<ProjectMap> {
    let focus = Focus {
        terms: uses.iter().map(|u| u.name.clone()).collect(),
        paths: diff_paths(diff_text),
        code: diff_text.to_owned(),
    };
    match codebase::map::map(&state.db, task.project_id, &focus, MAP_BUDGET).await {
        Ok(map) if !map.is_empty() => Some(map),
        Ok(_) => None,
        Err(err) => {
            tracing::warn!(error = %err, review_id = task.id, "no map of the project");
            None
        }
    }
}

/// The files a diff changes, by path.
fn diff_paths(diff_text: &str) -> Vec<String> {
    let mut paths: Vec<String> = diff::right_lines(diff_text).into_keys().collect();
    paths.sort();
    paths
}

/// Where the functions and types the diff changes are used elsewhere in the review's
/// project (its owner's, linking the repository), when the project has an index. Only
/// context: a failure to read it leaves it out of the review, with a warning.
async fn context_from_the_code(state: &AppState, task: &ReviewTask, diff_text: &str) -> Vec<Uses> {
    match context::gather(&state.db, task.project_id, diff_text).await {
        Ok(uses) => uses,
        Err(err) => {
            tracing::warn!(error = %err, review_id = task.id, "no context from the code");
            Vec::new()
        }
    }
}

/// The diff as Review Monk reads it, the files left out of it, and where the project
/// uses what it changes.
fn review_prompt(
    message: &str,
    budgeted: &Budgeted,
    settings: &RepoSettings,
    uses: &[Uses],
) -> String {
    let mut prompt = format!(
        "{message}\n\nFor each finding, `code_fix` is either the exact replacement of line \
         `line` (the whole line, indented as it is, code that compiles in place) or empty; \
         advice goes in `suggestion`.\n\n```diff\n{}\n```",
        budgeted.diff
    );
    if let Some(instructions) = &settings.instructions {
        prompt.push_str(&format!(
            "\n\nThe repository's instructions for reviews:\n{}",
            instructions.trim()
        ));
    }
    let paths = diff::right_lines(&budgeted.diff);
    for (glob, instructions) in settings.instructions_for(paths.keys().map(String::as_str)) {
        prompt.push_str(&format!(
            "\n\nFor files matching `{glob}`: {}",
            instructions.trim()
        ));
    }
    if !budgeted.skipped.is_empty() {
        prompt.push_str("\n\nFiles not shown (do not review them):");
        for (path, why) in &budgeted.skipped {
            prompt.push_str(&format!("\n- {path}: {why}"));
        }
    }
    if let Some(section) = context::section(uses) {
        prompt.push_str(&format!("\n\n{section}"));
    }
    prompt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_carries_the_repositorys_instructions_for_the_files_in_the_diff() {
        let settings = repo_settings::parse(
            "review:\n  instructions: Prefer early returns.\n  path_instructions:\n    - {path: \"src/db/**\", instructions: Check every query.}\n    - {path: \"web/**\", instructions: Not here.}\n",
            "abc1234",
        );
        let budgeted = Budgeted {
            diff: "diff --git a/src/db/q.rs b/src/db/q.rs\n--- a/src/db/q.rs\n+++ b/src/db/q.rs\n@@ -0,0 +1 @@\n+x\n".into(),
            files: 1,
            skipped: vec![("a.lock".into(), diff::IGNORED.into())],
        };
        let prompt = review_prompt("Review it.", &budgeted, &settings, &[]);
        assert!(prompt.contains("Prefer early returns."));
        assert!(prompt.contains("For files matching `src/db/**`: Check every query."));
        assert!(!prompt.contains("Not here."));
        assert!(prompt.contains("a.lock"));
        assert!(prompt.contains("`code_fix` is either the exact replacement"));
        assert!(
            !prompt.contains("Context from the code"),
            "nothing used: no section"
        );
        let uses = [Uses {
            name: "run_query".into(),
            path: "src/db/q.rs".into(),
            line: 1,
            places: vec![crate::llm::Snippet {
                path: "src/api.rs".into(),
                line: 9,
                start: 9,
                text: "run_query(&pool)".into(),
            }],
        }];
        let prompt = review_prompt("Review it.", &budgeted, &settings, &uses);
        assert!(
            prompt.ends_with("\n- src/api.rs:9: run_query(&pool)"),
            "{prompt}"
        );
    }
}
