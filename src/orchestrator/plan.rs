//! Who answers a chat: the agent asked for, the specialist an assignment names, or the
//! specialists the orchestrator picks (its model's routing JSON, or keywords when that
//! fails).

use tokio::sync::mpsc;

use super::types::{ChatEvent, Prepared};
use crate::{
    agents::{self, builtin::BUILTIN_AGENTS, Agent},
    error::Result,
    llm::{self, LlmRequest, Role, Task, Turn, Usage},
    specialists::routing::{parse_routing, route_by_keywords, Specialist},
    state::AppState,
};

/// One agent's part in a chat.
pub(super) struct Worker {
    pub(super) name: String,
    pub(super) agent: Option<Agent>,
    pub(super) task: Task,
    pub(super) system_prompt: String,
    pub(super) model: Option<String>,
    /// Its `thinking` status was already sent (the orchestrator answering small talk
    /// itself, right after routing), so the client does not get it twice.
    pub(super) announced: bool,
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
            announced: false,
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
            announced: false,
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

/// Who answers: the agent asked for, the assigned specialist, or the orchestrator's pick
/// among the specialists.
pub(super) async fn plan(
    state: &AppState,
    prepared: &Prepared,
    events: &mpsc::Sender<ChatEvent>,
) -> Result<(Vec<Worker>, Usage)> {
    if let Some(assignment) = &prepared.assignment {
        let worker = staff(state, prepared.user_id, assignment.specialist).await?;
        return Ok((vec![worker], Usage::default()));
    }
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
        small_talk.announced = true;
        small_talk.system_prompt =
            "You are CodeSherpa, a friendly assistant for developers. Answer briefly; \
            offer to review, explain or document code."
                .into();
        return Ok((vec![small_talk], usage));
    }
    let mut workers = Vec::new();
    for specialist in specialists {
        workers.push(staff(state, prepared.user_id, specialist).await?);
    }
    Ok((workers, usage))
}

/// The user's agent playing `specialist` (their first of its role), else the built-in one.
async fn staff(state: &AppState, user_id: i64, specialist: Specialist) -> Result<Worker> {
    Ok(
        match agents::store::by_role(&state.db, user_id, specialist.role()).await? {
            Some(agent) => Worker::from_agent(agent),
            None => Worker::builtin(specialist.role()),
        },
    )
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
        subject: prepared.subject(Task::Route),
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
            tracing::warn!(error = %err, detail = err.detail(), "routing call failed; routing by keywords");
            (
                route_by_keywords(&prepared.message, has_code),
                Usage::default(),
            )
        }
    }
}
