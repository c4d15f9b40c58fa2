//! Admitting an exchange: a user's message checked against a request's limits, then its
//! context gathered — the agent and project it names (the user's own), the session's
//! history and the project's code that matches, with the map of its related files — before any generation starts.

use std::future::Future;

use super::types::{ChatInput, Prepared};
use crate::{
    agents,
    chat::store as chats,
    codebase::retrieval,
    error::{Error, Result},
    projects,
    state::AppState,
    validate::Violations,
};

const MESSAGE_MAX: usize = 32_000;
/// The most characters of `code_context` a chat takes.
pub const CODE_CONTEXT_MAX: usize = 200_000;

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

/// Checks a user's message; returns it trimmed.
pub(super) fn validate(input: &ChatInput) -> Result<String> {
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
    Ok(message)
}

/// Everything the agents need for `message`; fails before any generation starts.
pub(super) async fn gather(
    state: &AppState,
    user_id: i64,
    input: ChatInput,
    message: String,
) -> Result<Prepared> {
    // A conversation the client did not name is new: it has no history to read. An
    // assignment reads none either: its caller composed all the model is to see.
    let (session_id, continued) = match input.session_id {
        Some(id) => (id, input.assignment.is_none()),
        None => (uuid::Uuid::new_v4().to_string(), false),
    };
    // Independent reads, so at once: on PostgreSQL each is a round trip, and a chat's
    // first token waits for them. Their errors are looked at in a fixed order.
    let db = &state.db;
    let (agent, project, history) = tokio::join!(
        named(input.agent_id, "Agent", |id| agents::store::get(
            db, user_id, id
        )),
        named(input.project_id, "Project", |id| {
            projects::store::get(db, user_id, id)
        }),
        async {
            if !continued {
                return Ok(Vec::new());
            }
            let budget = state.config.llm.history_token_budget;
            chats::history(db, user_id, &session_id, budget).await
        },
    );
    let (agent, project, history) = (agent?, project?, history?);
    let retrieved = match &project {
        Some(project) if input.assignment.is_none() => {
            retrieval::retrieve(db, project.id, &message).await?
        }
        _ => retrieval::Retrieved::default(),
    };
    Ok(Prepared {
        user_id,
        session_id,
        message,
        code_context: input.code_context.filter(|c| !c.trim().is_empty()),
        agent,
        project,
        history,
        snippets: retrieved.snippets,
        map: retrieved.map,
        assignment: input.assignment,
    })
}

/// The user's `what` with the `id` a request names: `None` when it names none, not found
/// when the user has no such row.
async fn named<T, F>(
    id: Option<i64>,
    what: &'static str,
    fetch: impl FnOnce(i64) -> F,
) -> Result<Option<T>>
where
    F: Future<Output = Result<Option<T>>>,
{
    match id {
        Some(id) => fetch(id).await?.ok_or(Error::NotFound(what)).map(Some),
        None => Ok(None),
    }
}
