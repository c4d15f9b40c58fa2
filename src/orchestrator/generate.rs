//! The agents at work: each one's request composed (the message, attached code, the
//! project and its matching files), sent to its provider, and its answer collected while
//! the pieces stream to the listener; all of them at once.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use futures_util::{future::join_all, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    activity::Working,
    answer::{Outcome, Output},
    plan::Worker,
    types::{ChatEvent, Prepared},
};
use crate::{
    llm::{self, with_idle_timeout, Chunk, ChunkStream, LlmRequest, Provider, Role, Task},
    llm::{Turn, Usage},
    state::AppState,
};

/// Runs every worker at once, each agent marked `processing` while it works. When
/// `cancel` fires, each keeps its partial answer.
pub(super) async fn run_all(
    state: &AppState,
    prepared: &Prepared,
    workers: Vec<Worker>,
    events: &mpsc::Sender<ChatEvent>,
    cancel: &CancellationToken,
) -> Vec<Output> {
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
        let listener = Listener {
            events,
            seq: &seq,
            cancel,
        };
        run(state, prepared, worker, working.as_ref(), listener)
    }))
    .await;
    for guard in working.into_iter().flatten() {
        guard.finish().await;
    }
    outputs
}

/// The user turn as a model sees it: an assignment's own prompt, else the message,
/// attached code, project and files.
fn compose(prepared: &Prepared, task: Task) -> String {
    if let Some(assignment) = &prepared.assignment {
        return assignment.prompt.clone();
    }
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
    let snippets = prepared.snippets_for(task);
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
    if let Some(map) = prepared.map_for(task) {
        prompt.push_str(MAP_HEADER);
        prompt.push_str(&map.render());
    }
    prompt
}

/// Introduces the map of the project, the last part of the prompt.
const MAP_HEADER: &str = "\n\nMap of the project: the files related to the question with their \
definitions (kind, name, line), and where the names asked about are defined and used. Cite \
them as `path:line`, even code not shown above:\n\n";

fn request_for(
    state: &AppState,
    prepared: &Prepared,
    worker: &Worker,
    model: Option<String>,
) -> LlmRequest {
    let mut messages = prepared.history.clone();
    messages.push(Turn {
        role: Role::User,
        content: compose(prepared, worker.task),
    });
    LlmRequest {
        system: worker.system_prompt.clone(),
        messages,
        model,
        max_tokens: state.config.llm.max_tokens,
        task: worker.task,
        subject: prepared.subject(worker.task),
    }
}

/// An assignment's answer is read whole; a conversation's streams to its listener.
fn generation(
    state: &AppState,
    prepared: &Prepared,
    provider: Arc<dyn Provider>,
    request: LlmRequest,
) -> ChunkStream {
    let timeout = state.config.llm.timeout;
    match prepared.assignment {
        Some(_) => llm::whole(provider, request, timeout),
        None => with_idle_timeout(provider.stream(request), timeout),
    }
}

/// Where a worker's pieces go, shared by all the workers of an exchange.
struct Listener<'a> {
    events: &'a mpsc::Sender<ChatEvent>,
    seq: &'a AtomicU64,
    cancel: &'a CancellationToken,
}

async fn run(
    state: &AppState,
    prepared: &Prepared,
    worker: Worker,
    mut working: Option<&Working>,
    listener: Listener<'_>,
) -> Output {
    let (provider, model) = state.providers.select(worker.model.as_deref());
    let mut output = Output {
        name: worker.name.clone(),
        agent_id: worker.agent.as_ref().map(|a| a.id),
        task: worker.task,
        text: String::new(),
        usage: Usage::default(),
        provider: provider.name(),
        model: model
            .clone()
            .unwrap_or_else(|| provider.default_model().to_owned()),
        outcome: Outcome::Complete,
    };
    let request = request_for(state, prepared, &worker, model);
    let mut stream = generation(state, prepared, provider, request);
    loop {
        let chunk = tokio::select! {
            () = listener.cancel.cancelled() => {
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
                let seq = listener.seq.fetch_add(1, Ordering::Relaxed);
                let _ = listener
                    .events
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
