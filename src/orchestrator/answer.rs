//! From what the agents said to the stored chat: structured answers validated (prose
//! kept when a model ignored the schema), several answers merged into one.

use std::time::Instant;

use super::types::{ExchangeError, Prepared};
use crate::{
    chat::store::NewChat,
    error::Error,
    llm::{LlmError, Task, Usage},
    specialists::schemas::{extract_json, Explanation, Review},
};

pub(super) enum Outcome {
    Complete,
    Cancelled,
    Failed(LlmError),
}

pub(super) struct Output {
    pub(super) name: String,
    pub(super) agent_id: Option<i64>,
    pub(super) task: Task,
    pub(super) text: String,
    pub(super) usage: Usage,
    pub(super) provider: &'static str,
    pub(super) model: String,
    pub(super) outcome: Outcome,
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

/// The chat to store, unless every agent failed: the first one's failure is then the
/// exchange's.
pub(super) fn combine(
    prepared: &Prepared,
    outputs: Vec<Output>,
    routing: Usage,
    started: Instant,
) -> Result<NewChat, ExchangeError> {
    if outputs
        .iter()
        .all(|o| matches!(o.outcome, Outcome::Failed(_)))
    {
        return Err(match outputs.into_iter().next() {
            Some(Output {
                outcome: Outcome::Failed(err),
                ..
            }) => ExchangeError::Provider(err),
            _ => Error::internal("no agent ran").into(),
        });
    }
    let complete = outputs
        .iter()
        .all(|o| matches!(o.outcome, Outcome::Complete));
    let single = outputs.len() == 1;
    let (response, result) = merge(&outputs);
    let usage = outputs.iter().fold(routing, |mut usage, output| {
        usage.prompt_tokens += output.usage.prompt_tokens;
        usage.completion_tokens += output.usage.completion_tokens;
        usage
    });
    let first = &outputs[0];
    let names: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
    Ok(NewChat {
        user_id: prepared.user_id,
        session_id: prepared.session_id.clone(),
        agent_id: if single { first.agent_id } else { None }
            .or(prepared.agent.as_ref().map(|a| a.id)),
        project_id: prepared.project.as_ref().map(|p| p.id),
        message: prepared.message.clone(),
        response,
        result,
        agent: Some(names.join(", ")),
        provider: Some(first.provider.to_owned()),
        model: Some(first.model.clone()),
        prompt_tokens: i64::try_from(usage.prompt_tokens).unwrap_or(i64::MAX),
        completion_tokens: i64::try_from(usage.completion_tokens).unwrap_or(i64::MAX),
        latency_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        complete,
    })
}

/// The readable answer and the structured one: one agent's own, or several agents' under
/// their names.
fn merge(outputs: &[Output]) -> (String, Option<serde_json::Value>) {
    let single = outputs.len() == 1;
    let mut response = String::new();
    let mut results = serde_json::Map::new();
    for output in outputs {
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
    (response.trim_end().to_owned(), result)
}
