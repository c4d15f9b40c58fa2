//! The chat pipeline: validate, pick the agent(s) — the one asked for, or the
//! orchestrator's choice — run them (several in parallel), shape their answers, store
//! the exchange. REST, server-sent events and WebSocket all go through here.

pub mod activity;
mod answer;
mod plan;

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Instant,
};

use futures_util::{future::join_all, StreamExt};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::{
    activity::Working,
    answer::{combine, Outcome, Output},
    plan::{plan, Worker},
};
use crate::{
    agents::{self, Agent},
    chat::{store as chats, Chat},
    codebase::retrieval,
    error::{Error, Result},
    llm::Task,
    llm::{with_idle_timeout, Chunk, LlmRequest, Role, Snippet, Subject, Turn, Usage},
    projects::{self, Project},
    state::AppState,
    validate::Violations,
};

pub struct ChatInput {
    pub message: String,
    pub session_id: Option<String>,
    pub agent_id: Option<i64>,
    pub project_id: Option<i64>,
    pub code_context: Option<String>,
}

/// Progress of a chat, for streaming clients.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ChatEvent {
    Status {
        content: &'static str,
        agent: String,
    },
    Delta {
        content: String,
        seq: u64,
        agent: String,
    },
}

/// A validated chat request with everything the agents need.
pub struct Prepared {
    pub user_id: i64,
    pub session_id: String,
    message: String,
    code_context: Option<String>,
    agent: Option<Agent>,
    project: Option<Project>,
    history: Vec<Turn>,
    snippets: Vec<Snippet>,
}

const MESSAGE_MAX: usize = 32_000;
const CODE_CONTEXT_MAX: usize = 200_000;

/// Wide enough for every session the server starts itself, so any of them can be
/// continued: a UUID, `whatsapp:<number>`, and `github:{owner}/{repo}#{number}` (an owner
/// of up to 39 characters and a repository of up to 100).
const SESSION_ID_MAX: usize = 200;

fn valid_session_id(id: &str) -> bool {
    (1..=SESSION_ID_MAX).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_:.+@/#".contains(&b))
}

/// Checks the request and gathers its context; fails before any generation starts.
pub async fn prepare(state: &AppState, user_id: i64, input: ChatInput) -> Result<Prepared> {
    let mut check = Violations::default();
    let message = check.text("message", &input.message, 1, MESSAGE_MAX);
    if let Some(code) = &input.code_context {
        check.raw_text("code_context", code, CODE_CONTEXT_MAX);
    }
    if let Some(id) = &input.session_id {
        if !valid_session_id(id) {
            check.add(
                "session_id",
                format!("must be 1 to {SESSION_ID_MAX} letters, digits or - _ : . + @ / #"),
            );
        }
    }
    check.finish()?;

    // A conversation the client did not name is new: it has no history to read.
    let (session_id, continued) = match input.session_id {
        Some(id) => (id, true),
        None => (uuid::Uuid::new_v4().to_string(), false),
    };
    // Independent reads, so at once: on PostgreSQL each is a round trip, and a chat's
    // first token waits for them. Their errors are looked at in a fixed order.
    let (agent, project, history) = tokio::join!(
        async {
            match input.agent_id {
                Some(id) => agents::store::get(&state.db, user_id, id).await.map(Some),
                None => Ok(None),
            }
        },
        async {
            match input.project_id {
                Some(id) => projects::store::get(&state.db, user_id, id).await.map(Some),
                None => Ok(None),
            }
        },
        async {
            if !continued {
                return Ok(Vec::new());
            }
            let budget = state.config.llm.history_token_budget;
            chats::history(&state.db, user_id, &session_id, budget).await
        },
    );
    let agent = agent?
        .map(|found| found.ok_or(Error::NotFound("Agent")))
        .transpose()?;
    let project = project?
        .map(|found| found.ok_or(Error::NotFound("Project")))
        .transpose()?;
    let history = history?;
    let snippets = match &project {
        Some(project) => retrieval::snippets(&state.db, project.id, &message).await?,
        None => Vec::new(),
    };
    Ok(Prepared {
        user_id,
        session_id,
        message,
        code_context: input.code_context.filter(|c| !c.trim().is_empty()),
        agent,
        project,
        history,
        snippets,
    })
}

/// Streams progress to `events`; when `cancel` fires, keeps the partial answer (marked
/// incomplete). Agents' statuses are restored on every path.
pub async fn execute(
    state: &AppState,
    prepared: Prepared,
    events: &mpsc::Sender<ChatEvent>,
    cancel: &CancellationToken,
) -> Result<Chat> {
    let started = Instant::now();
    let (workers, routing_usage) = plan(state, &prepared, events).await?;
    let seq = AtomicU64::new(0);
    let mut working = Vec::new();
    for worker in &workers {
        if !worker.announced {
            let _ = events
                .send(ChatEvent::Status {
                    content: "thinking",
                    agent: worker.name.clone(),
                })
                .await;
        }
        let agent = worker.agent.as_ref();
        working.push(agent.map(|agent| state.activity.begin(&state.db, agent)));
    }
    let outputs = join_all(workers.into_iter().zip(&working).map(|(worker, working)| {
        run(
            state,
            &prepared,
            worker,
            working.as_ref(),
            events,
            &seq,
            cancel,
        )
    }))
    .await;
    for guard in working.into_iter().flatten() {
        guard.finish().await;
    }
    let chat = combine(&prepared, outputs, routing_usage, started)?;
    chats::insert(&state.db, chat).await
}

/// Codebase Sherpa and Doc Sync answer from the project's code (routing may look at
/// whether there is any); the others do not need it.
fn snippets_for(prepared: &Prepared, task: Task) -> &[Snippet] {
    match task {
        Task::Route | Task::Explain | Task::Docs => &prepared.snippets,
        Task::Review | Task::Chat => &[],
    }
}

fn subject_of(prepared: &Prepared, task: Task) -> Subject {
    Subject {
        message: prepared.message.clone(),
        code_context: prepared.code_context.clone(),
        project_snippets: snippets_for(prepared, task).to_vec(),
    }
}

/// The user turn as a model sees it: the message, attached code, project and files.
fn compose(prepared: &Prepared, task: Task) -> String {
    let mut prompt = prepared.message.clone();
    if let Some(code) = &prepared.code_context {
        prompt.push_str(&format!("\n\nCode:\n```\n{code}\n```"));
    }
    if let Some(project) = &prepared.project {
        prompt.push_str(&format!("\n\nProject: {}", project.name));
        if let Some(url) = &project.repo_url {
            prompt.push_str(&format!(" ({url})"));
        }
        if let Some(description) = &project.description {
            prompt.push_str(&format!(" — {description}"));
        }
    }
    let snippets = snippets_for(prepared, task);
    if !snippets.is_empty() {
        prompt.push_str(
            "\n\nRelevant code from the project (numbered lines). Cite what you use as \
             `path:line`:",
        );
    }
    for snippet in snippets {
        let numbered: Vec<String> = snippet
            .text
            .lines()
            .enumerate()
            .map(|(i, line)| format!("{:>5} | {line}", snippet.start + i))
            .collect();
        prompt.push_str(&format!(
            "\n\n{}\n```\n{}\n```",
            snippet.citation(),
            numbered.join("\n")
        ));
    }
    prompt
}

async fn run(
    state: &AppState,
    prepared: &Prepared,
    worker: Worker,
    mut working: Option<&Working>,
    events: &mpsc::Sender<ChatEvent>,
    seq: &AtomicU64,
    cancel: &CancellationToken,
) -> Output {
    let (provider, model) = state.providers.select(worker.model.as_deref());
    let model_name = model
        .clone()
        .unwrap_or_else(|| provider.default_model().to_owned());
    let mut messages = prepared.history.clone();
    messages.push(Turn {
        role: Role::User,
        content: compose(prepared, worker.task),
    });
    let request = LlmRequest {
        system: worker.system_prompt.clone(),
        messages,
        model,
        max_tokens: state.config.llm.max_tokens,
        task: worker.task,
        subject: subject_of(prepared, worker.task),
    };
    let mut stream = with_idle_timeout(provider.stream(request), state.config.llm.timeout);
    let mut output = Output {
        name: worker.name.clone(),
        agent_id: worker.agent.as_ref().map(|a| a.id),
        task: worker.task,
        text: String::new(),
        usage: Usage::default(),
        provider: provider.name(),
        model: model_name,
        outcome: Outcome::Complete,
    };
    loop {
        let chunk = tokio::select! {
            () = cancel.cancelled() => {
                output.outcome = Outcome::Cancelled;
                break;
            }
            chunk = stream.next() => chunk,
        };
        match chunk {
            None => break,
            Some(Ok(Chunk::Delta(text))) => {
                // A client that sees the answer begin sees the agent `processing`.
                if let Some(working) = working.take() {
                    working.marked().await;
                }
                output.text.push_str(&text);
                let seq = seq.fetch_add(1, Ordering::Relaxed);
                let _ = events
                    .send(ChatEvent::Delta {
                        content: text,
                        seq,
                        agent: worker.name.clone(),
                    })
                    .await;
            }
            Some(Ok(Chunk::Usage(usage))) => output.usage = usage,
            Some(Err(err)) => {
                tracing::warn!(agent = %worker.name, error = %err, detail = err.detail(), "generation failed");
                output.outcome = Outcome::Failed(err);
                break;
            }
        }
    }
    output
}
