//! Chats: each exchange with the AI, grouped in sessions, over REST and server-sent events.

pub mod routes;
pub mod store;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use utoipa::ToSchema;

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

/// A conversation: the chats sharing a `session_id`.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct ChatSession {
    pub id: String,
    /// The session's first message, shortened.
    pub title: String,
    pub message_count: i64,
    pub last_activity: DateTime<Utc>,
}
