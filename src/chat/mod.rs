//! Chats: each exchange with the AI, grouped in sessions, over REST and server-sent events;
//! what a client sends to ask (`ChatRequest`) and how it reads the answer, on any channel.

pub mod routes;
pub mod store;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::types::Json;
use utoipa::ToSchema;

use crate::extract::optional_integer;

/// A chat, over REST, server-sent events or a WebSocket `chat` frame.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatRequest {
    /// Not blank.
    #[schema(
        example = "Review this diff for security problems",
        min_length = 1,
        max_length = 32_000,
        pattern = r"^[\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    pub message: String,
    /// Continue a conversation; omitted, a new session starts and its id is returned.
    #[schema(min_length = 1, max_length = 200, pattern = r"^[A-Za-z0-9_:.+@/#-]*$")]
    pub session_id: Option<String>,
    /// Ask this agent; omitted, the orchestrator picks the specialist(s).
    #[serde(default, deserialize_with = "optional_integer")]
    pub agent_id: Option<i64>,
    #[serde(default, deserialize_with = "optional_integer")]
    pub project_id: Option<i64>,
    /// Code or a diff the message is about.
    #[schema(max_length = 200_000, pattern = r"^[^\x00]*$")]
    pub code_context: Option<String>,
}

/// One stored exchange.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct Chat {
    pub id: i64,
    pub user_id: i64,
    pub session_id: String,
    pub agent_id: Option<i64>,
    pub project_id: Option<i64>,
    pub message: String,
    /// The readable answer (text or Markdown).
    pub response: String,
    /// The agent's structured answer when it has one (Review Monk, Codebase Sherpa).
    #[schema(value_type = Option<Object>)]
    pub result: Option<Json<serde_json::Value>>,
    /// The name of the agent (or agents) that answered.
    pub agent: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub latency_ms: i64,
    /// False when the generation was cancelled or cut off: `response` is partial.
    pub complete: bool,
    pub created_at: DateTime<Utc>,
}

impl Chat {
    /// The final answer as a client reads it: the structured object, else the text.
    pub fn final_content(&self) -> serde_json::Value {
        match &self.result {
            Some(result) => result.0.clone(),
            None => json!(self.response),
        }
    }
}

/// A conversation: the chats sharing a `session_id`.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct ChatSession {
    pub id: String,
    /// The session's first message, shortened.
    pub title: String,
    pub message_count: i64,
    pub last_activity: DateTime<Utc>,
}
