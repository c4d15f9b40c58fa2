//! `/codesherpa ask <question>`: a job answers a question about a pull request in a new
//! comment, with the pull request's diff and the linked project's code as context (the
//! one AI pipeline, within the AI rate limit of the project's owner) and `path:line`
//! citations from both. A hidden marker per delivery keeps a retry from answering twice.

use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    access,
    client::JSON,
    diff, repo_settings,
    store::{self, review_serial_key},
};
use crate::{
    codebase::retrieval,
    error::Error,
    jobs::{Enqueued, Handler, Job, NewJob, Outcome, Stop},
    orchestrator::{self, ChatInput, Delivery, ExchangeError},
    projects::store as projects,
    state::AppState,
};

/// The job kind of an answer to `/codesherpa ask`.
pub const ASK_JOB: &str = "github.ask";
/// What the diff may take of a chat's code context (its limit is 200,000 characters).
const DIFF_CONTEXT_MAX: usize = 150_000;
const MAX_CITATIONS: usize = 5;

/// A question asked in a pull request's comment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Question {
    pub repository: String,
    pub pull_number: i64,
    pub installation_id: Option<i64>,
    /// The comment that asked (for the reader's link back).
    pub comment_id: Option<i64>,
    pub text: String,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    delivery_id: String,
    project_id: i64,
    question: Question,
}

/// Hidden in the answer: the delivery it answers.
fn marker(delivery_id: &str) -> String {
    format!("<!-- codesherpa-ask:{delivery_id} -->")
}

/// The delivery and the answer's job together (a repeated delivery queues nothing).
pub async fn queue(
    state: &AppState,
    delivery_id: &str,
    event: &str,
    project_id: i64,
    question: Question,
) -> crate::error::Result<Option<Enqueued>> {
    let serial = review_serial_key(&question.repository, question.pull_number);
    let payload = Payload {
        delivery_id: delivery_id.to_owned(),
        project_id,
        question,
    };
    let job = NewJob::new(ASK_JOB, json!(payload))
        .dedupe_key(format!("ask:{delivery_id}"))
        .serial_key(serial);
    store::write_job(&state.db, delivery_id, event, &job).await
}

pub struct AskJob {
    state: AppState,
}

impl AskJob {
    pub fn new(state: AppState) -> Self {
        AskJob { state }
    }
}

impl Handler for AskJob {
    fn run(&self, job: Job) -> BoxFuture<'static, Outcome> {
        let state = self.state.clone();
        Box::pin(async move {
            let Ok(payload) = serde_json::from_value::<Payload>(job.payload.clone()) else {
                return Outcome::failed("the job names no question");
            };
            match answer(&state, payload).await {
                Ok(()) | Err(Stop::Skipped(_)) => Outcome::Done,
                Err(stop) => stop.into(),
            }
        })
    }
}

#[derive(Deserialize)]
struct Sha {
    sha: String,
}

#[derive(Deserialize)]
struct Pull {
    base: Sha,
}

async fn answer(state: &AppState, payload: Payload) -> Result<(), Stop> {
    let github = &state.github;
    let question = &payload.question;
    let installation = question.installation_id;
    let Some(project) = projects::find(&state.db, payload.project_id).await? else {
        return Err(Stop::Skipped("the project was deleted".into()));
    };
    let user_id = project.user_id;
    if !access::fresh(state, project)
        .await?
        .repo_access
        .is_verified()
    {
        return Err(Stop::Skipped(
            "the project's repository access is no longer verified".into(),
        ));
    }
    let issue = format!(
        "/repos/{}/issues/{}",
        question.repository, question.pull_number
    );
    let marker = marker(&payload.delivery_id);
    if answered(state, &issue, &marker, installation).await? {
        return Ok(());
    }
    let pull_path = format!(
        "/repos/{}/pulls/{}",
        question.repository, question.pull_number
    );
    let (pull, _): (Pull, _) = github.get_json(&pull_path, installation).await?;
    let settings =
        repo_settings::read(github, &question.repository, &pull.base.sha, installation).await?;
    let budget = state
        .config
        .github
        .review_max_diff_bytes
        .min(DIFF_CONTEXT_MAX);
    let budgeted = diff::fetch(
        github,
        &question.repository,
        question.pull_number,
        installation,
        budget,
        &|path| settings.ignores(path),
    )
    .await?;
    let response = ask_owner(state, user_id, payload.project_id, question, &budgeted.diff).await?;
    let mut citations = diff_citations(&budgeted.diff, &question.text);
    for snippet in retrieval::snippets(&state.db, payload.project_id, &question.text).await? {
        let cited = snippet.citation();
        if citations.len() < 2 * MAX_CITATIONS && !citations.contains(&cited) {
            citations.push(cited);
        }
    }
    let body = render(&marker, question, &response, &citations);
    github
        .send(
            Method::POST,
            &format!("{issue}/comments"),
            installation,
            JSON,
            Some(&json!({ "body": body })),
        )
        .await?;
    Ok(())
}

/// The owner's ordinary exchange on the question (their AI rate limit applies), with the
/// diff as code context and the project's code gathered by the pipeline; the answer text.
async fn ask_owner(
    state: &AppState,
    user_id: i64,
    project_id: i64,
    question: &Question,
    diff_text: &str,
) -> Result<String, Stop> {
    let input = ChatInput {
        message: question.text.clone(),
        session_id: Some(format!(
            "github:{}#{}",
            question.repository, question.pull_number
        )),
        agent_id: None,
        project_id: Some(project_id),
        code_context: (!diff_text.is_empty()).then(|| diff_text.to_owned()),
        assignment: None,
    };
    // A person's question: the owner's AI rate limit applies (admit checks it).
    let exchange = match orchestrator::admit(state, user_id, input).await {
        Ok(exchange) => exchange,
        Err(Error::RateLimited { retry_after_secs }) => {
            return Err(Stop::Retry {
                reason: "the project owner's AI rate limit".into(),
                after: Some(Duration::from_secs(retry_after_secs.max(1))),
            })
        }
        Err(err) => return Err(err.into()),
    };
    let chat = exchange
        .run(Delivery::default())
        .await
        .map_err(|err| match err {
            ExchangeError::Provider(err) => Stop::from(err),
            ExchangeError::Other(err) => Stop::from(err),
        })?;
    Ok(chat.response)
}

/// Whether the server already answered this delivery (a retry after a crash or a lost
/// answer from GitHub).
async fn answered(
    state: &AppState,
    issue: &str,
    marker: &str,
    installation: Option<i64>,
) -> Result<bool, Stop> {
    let first = format!("{issue}/comments?per_page=100");
    Ok(state
        .github
        .posted_by_us(first, marker, installation)
        .await?)
}

/// `path:line` of the changed lines the question names (by its words of four letters or
/// more), else the first changed line of each file; at most [`MAX_CITATIONS`].
fn diff_citations(diff_text: &str, question: &str) -> Vec<String> {
    let words: Vec<String> = question
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.chars().count() >= 4)
        .map(str::to_lowercase)
        .collect();
    let lines = diff::right_lines(diff_text);
    let mut files: Vec<&String> = lines.keys().collect();
    files.sort();
    let mut cited = Vec::new();
    for path in &files {
        let mut numbers: Vec<&u32> = lines[*path].keys().collect();
        numbers.sort();
        for number in numbers {
            let text = lines[*path][number].to_lowercase();
            let named = words.iter().any(|w| text.contains(w.as_str()));
            if named && cited.len() < MAX_CITATIONS {
                cited.push(format!("{path}:{number}"));
            }
        }
    }
    if cited.is_empty() {
        for path in files.iter().take(MAX_CITATIONS) {
            if let Some(first) = lines[*path].keys().min() {
                cited.push(format!("{path}:{first}"));
            }
        }
    }
    cited
}

fn render(marker: &str, question: &Question, answer: &str, citations: &[String]) -> String {
    // Neither the question nor the answer may carry a hidden marker of the server's own
    // (this comment must never pass for the review summary).
    let visible = |text: &str| text.trim().replace("<!--", "&lt;!--");
    let quoted = visible(&question.text).replace('\n', "\n> ");
    let mut out = format!("{marker}\n> {quoted}\n\n{}\n", visible(answer));
    if !citations.is_empty() {
        out.push_str("\n**Sources:** ");
        out.push_str(
            &citations
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIFF: &str = "diff --git a/src/pay.py b/src/pay.py\n--- a/src/pay.py\n+++ b/src/pay.py\n@@ -1,2 +1,4 @@\n def pay(amount):\n+    api_key = \"sk\"\n+    print(amount)\n     return amount\n";

    #[test]
    fn citations_point_at_the_lines_the_question_names() {
        assert_eq!(
            diff_citations(DIFF, "Why is the api_key here?"),
            ["src/pay.py:2"]
        );
        assert_eq!(
            diff_citations(DIFF, "What does this do?"),
            ["src/pay.py:1"],
            "else the first line of each file"
        );
    }

    #[test]
    fn the_answer_quotes_the_question_and_cites_its_sources() {
        let question = Question {
            repository: "acme/widgets".into(),
            pull_number: 7,
            installation_id: None,
            comment_id: Some(3),
            text: "Is the key safe?".into(),
        };
        let body = render(
            &marker("d-1"),
            &question,
            "No.",
            &["src/pay.py:2".to_owned()],
        );
        assert!(body.starts_with("<!-- codesherpa-ask:d-1 -->\n> Is the key safe?"));
        assert!(body.contains("No."));
        assert!(body.contains("**Sources:** `src/pay.py:2`"));
        let sly = render(&marker("d-2"), &question, "<!-- codesherpa-review -->", &[]);
        assert!(!sly.contains("<!-- codesherpa-review -->"));
    }
}
