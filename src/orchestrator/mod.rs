//! The chat pipeline: validate, pick the agent(s) — the one asked for, or the
//! orchestrator's choice — run them (several in parallel), shape their answers, store
//! the exchange. REST, server-sent events and WebSocket all go through here.

pub mod activity;
pub mod routing;
pub mod schemas;

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Instant,
};

use futures_util::{future::join_all, StreamExt};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::{
    routing::{parse_routing, route_by_keywords, Specialist},
    schemas::{extract_json, Explanation, Review},
};
use crate::{
    agents::{self, builtin::BUILTIN_AGENTS, Agent},
    chat::{
        store::{self as chats, NewChat},
        Chat,
    },
    error::{Error, Result},
    llm::{self, with_idle_timeout, Chunk, LlmError, LlmRequest, Role, Subject, Task, Turn, Usage},
    projects::{self, files::Snippet, Project},
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

fn valid_session_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_:.+@".contains(&b))
}

/// Checks the request and gathers its context; fails before any generation starts.
pub async fn prepare(state: &AppState, user_id: i64, input: ChatInput) -> Result<Prepared> {
    let mut check = Violations::default();
    let message = check.text("message", &input.message, 1, MESSAGE_MAX);
    if let Some(code) = &input.code_context {
        if code.chars().count() > CODE_CONTEXT_MAX {
            check.add(
                "code_context",
                format!("must be at most {CODE_CONTEXT_MAX} characters"),
            );
        }
    }
    if let Some(id) = &input.session_id {
        if !valid_session_id(id) {
            check.add(
                "session_id",
                "must be 1 to 128 letters, digits or - _ : . + @",
            );
        }
    }
    check.finish()?;

    let agent = match input.agent_id {
        Some(id) => Some(
            agents::store::get(&state.db, user_id, id)
                .await?
                .ok_or(Error::NotFound("Agent"))?,
        ),
        None => None,
    };
    let project = match input.project_id {
        Some(id) => Some(
            projects::store::get(&state.db, user_id, id)
                .await?
                .ok_or(Error::NotFound("Project"))?,
        ),
        None => None,
    };
    let session_id = input
        .session_id
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let history = chats::history(
        &state.db,
        user_id,
        &session_id,
        state.config.llm.history_token_budget,
    )
    .await?;
    let snippets = match &project {
        Some(project) => projects::files::search(&state.db, project.id, &message, 3).await?,
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

/// One agent's part in a chat.
struct Worker {
    name: String,
    agent: Option<Agent>,
    task: Task,
    system_prompt: String,
    model: Option<String>,
}

impl Worker {
    fn from_agent(agent: Agent) -> Self {
        let task = task_for(&agent.role);
        let system_prompt = agent
            .system_prompt
            .clone()
            .or_else(|| builtin_prompt(&agent.role).map(str::to_owned))
            .unwrap_or_else(|| {
                format!(
                    "You are {}, a helpful software engineering assistant.",
                    agent.name
                )
            });
        Worker {
            name: agent.name.clone(),
            model: agent.model.clone(),
            agent: Some(agent),
            task,
            system_prompt,
        }
    }

    /// The built-in definition, for a user who deleted that agent.
    fn builtin(role: &str) -> Self {
        let def = BUILTIN_AGENTS
            .iter()
            .find(|a| a.role == role)
            .unwrap_or(&BUILTIN_AGENTS[0]);
        Worker {
            name: def.name.into(),
            agent: None,
            task: task_for(role),
            system_prompt: def.system_prompt.into(),
            model: None,
        }
    }
}

fn task_for(role: &str) -> Task {
    match Specialist::from_role(role) {
        Some(Specialist::Review) => Task::Review,
        Some(Specialist::Explain) => Task::Explain,
        Some(Specialist::Docs) => Task::Docs,
        None => Task::Chat,
    }
}

fn builtin_prompt(role: &str) -> Option<&'static str> {
    BUILTIN_AGENTS
        .iter()
        .find(|a| a.role == role)
        .map(|a| a.system_prompt)
}

enum Outcome {
    Complete,
    Cancelled,
    Failed(LlmError),
}

struct Output {
    name: String,
    agent_id: Option<i64>,
    task: Task,
    text: String,
    usage: Usage,
    provider: &'static str,
    model: String,
    outcome: Outcome,
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
        let _ = events
            .send(ChatEvent::Status {
                content: "thinking",
                agent: worker.name.clone(),
            })
            .await;
        if let Some(agent) = &worker.agent {
            working.push(state.activity.begin(&state.db, agent).await);
        }
    }
    let outputs = join_all(
        workers
            .into_iter()
            .map(|worker| run(state, &prepared, worker, events, &seq, cancel)),
    )
    .await;
    for guard in working {
        guard.finish().await;
    }
    let chat = combine(&prepared, outputs, routing_usage, started)?;
    chats::insert(&state.db, chat).await
}

/// Who answers: the agent asked for, or the orchestrator's pick among the specialists.
async fn plan(
    state: &AppState,
    prepared: &Prepared,
    events: &mpsc::Sender<ChatEvent>,
) -> Result<(Vec<Worker>, Usage)> {
    if let Some(agent) = prepared.agent.clone().filter(|a| a.role != "orchestrator") {
        return Ok((vec![Worker::from_agent(agent)], Usage::default()));
    }
    let orchestrator = match prepared.agent.clone() {
        Some(agent) => Worker::from_agent(agent),
        None => match agents::store::by_role(&state.db, prepared.user_id, "orchestrator").await? {
            Some(agent) => Worker::from_agent(agent),
            None => Worker::builtin("orchestrator"),
        },
    };
    let _ = events
        .send(ChatEvent::Status {
            content: "thinking",
            agent: orchestrator.name.clone(),
        })
        .await;
    let (specialists, usage) = classify(state, prepared, &orchestrator).await;
    if specialists.is_empty() {
        let mut small_talk = orchestrator;
        small_talk.task = Task::Chat;
        small_talk.system_prompt =
            "You are CodeSherpa, a friendly assistant for developers. Answer briefly; \
            offer to review, explain or document code."
                .into();
        return Ok((vec![small_talk], usage));
    }
    let mut workers = Vec::new();
    for specialist in specialists {
        workers.push(
            match agents::store::by_role(&state.db, prepared.user_id, specialist.role()).await? {
                Some(agent) => Worker::from_agent(agent),
                None => Worker::builtin(specialist.role()),
            },
        );
    }
    Ok((workers, usage))
}

/// The orchestrator model's routing, or keywords when it fails or answers non-JSON.
async fn classify(
    state: &AppState,
    prepared: &Prepared,
    orchestrator: &Worker,
) -> (Vec<Specialist>, Usage) {
    let has_code = prepared.code_context.is_some() || prepared.message.contains("```");
    let (provider, model) = state.providers.select(orchestrator.model.as_deref());
    let request = LlmRequest {
        system: orchestrator.system_prompt.clone(),
        messages: vec![Turn {
            role: Role::User,
            content: format!(
                "{}{}",
                prepared.message,
                if has_code {
                    "\n\n(The user attached code.)"
                } else {
                    ""
                }
            ),
        }],
        model,
        max_tokens: 200,
        task: Task::Route,
        subject: subject_of(prepared),
    };
    match llm::complete(provider.as_ref(), request, state.config.llm.timeout).await {
        Ok(reply) => match parse_routing(&reply.text) {
            Some(choice) => (choice, reply.usage),
            None => {
                tracing::info!("routing reply was not JSON; routing by keywords");
                (route_by_keywords(&prepared.message, has_code), reply.usage)
            }
        },
        Err(err) => {
            tracing::warn!(error = %err, "routing call failed; routing by keywords");
            (
                route_by_keywords(&prepared.message, has_code),
                Usage::default(),
            )
        }
    }
}

fn subject_of(prepared: &Prepared) -> Subject {
    Subject {
        message: prepared.message.clone(),
        code_context: prepared.code_context.clone(),
        project_snippets: prepared.snippets.clone(),
    }
}

/// The user turn as a model sees it: the message, attached code, project and files.
fn compose(prepared: &Prepared) -> String {
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
    for (path, line, text) in &prepared.snippets {
        prompt.push_str(&format!("\n\nFrom {path} (line {line}):\n```\n{text}\n```"));
    }
    prompt
}

async fn run(
    state: &AppState,
    prepared: &Prepared,
    worker: Worker,
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
        content: compose(prepared),
    });
    let request = LlmRequest {
        system: worker.system_prompt.clone(),
        messages,
        model,
        max_tokens: state.config.llm.max_tokens,
        task: worker.task,
        subject: subject_of(prepared),
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
                tracing::warn!(agent = %worker.name, error = %err, "generation failed");
                output.outcome = Outcome::Failed(err);
                break;
            }
        }
    }
    output
}

/// The readable text and the structured object of a finished answer.
fn shape(task: Task, text: &str) -> (String, Option<serde_json::Value>) {
    let structured = match task {
        Task::Review => extract_json::<Review>(text)
            .filter(Review::is_valid)
            .map(|r| (r.to_markdown(), serde_json::to_value(r))),
        Task::Explain => extract_json::<Explanation>(text)
            .filter(Explanation::is_valid)
            .map(|e| (e.to_markdown(), serde_json::to_value(e))),
        _ => None,
    };
    match structured {
        Some((markdown, Ok(value))) => (markdown, Some(value)),
        // A model that answered prose instead: the prose is the answer.
        _ => (text.to_owned(), None),
    }
}

fn combine(
    prepared: &Prepared,
    outputs: Vec<Output>,
    routing: Usage,
    started: Instant,
) -> Result<NewChat> {
    if outputs
        .iter()
        .all(|o| matches!(o.outcome, Outcome::Failed(_)))
    {
        let Some(Output {
            outcome: Outcome::Failed(err),
            ..
        }) = outputs.into_iter().next()
        else {
            return Err(Error::internal("no agent ran"));
        };
        return Err(err.into());
    }
    let complete = outputs
        .iter()
        .all(|o| matches!(o.outcome, Outcome::Complete));
    let single = outputs.len() == 1;
    let mut response = String::new();
    let mut results = serde_json::Map::new();
    let mut usage = routing;
    for output in &outputs {
        usage.prompt_tokens += output.usage.prompt_tokens;
        usage.completion_tokens += output.usage.completion_tokens;
        let (text, result) = match &output.outcome {
            Outcome::Complete => shape(output.task, &output.text),
            Outcome::Cancelled => (output.text.clone(), None),
            Outcome::Failed(err) => (format!("_{} could not answer: {err}_", output.name), None),
        };
        if single {
            response = text;
        } else {
            response.push_str(&format!("## {}\n\n{}\n\n", output.name, text.trim_end()));
        }
        if let Some(result) = result {
            results.insert(output.name.clone(), result);
        }
    }
    let result = match (single, results.len()) {
        (_, 0) => None,
        (true, _) => results.into_iter().next().map(|(_, v)| v),
        (false, _) => Some(serde_json::Value::Object(results)),
    };
    let first = &outputs[0];
    Ok(NewChat {
        user_id: prepared.user_id,
        session_id: prepared.session_id.clone(),
        agent_id: if single { first.agent_id } else { None }
            .or(prepared.agent.as_ref().map(|a| a.id)),
        project_id: prepared.project.as_ref().map(|p| p.id),
        message: prepared.message.clone(),
        response: response.trim_end().to_owned(),
        result,
        agent: Some(
            outputs
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        provider: Some(first.provider.to_owned()),
        model: Some(first.model.clone()),
        prompt_tokens: i64::try_from(usage.prompt_tokens).unwrap_or(i64::MAX),
        completion_tokens: i64::try_from(usage.completion_tokens).unwrap_or(i64::MAX),
        latency_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        complete,
    })
}
