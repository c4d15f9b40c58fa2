//! Agents: AI specialists with their own instructions, owned by one user.

pub mod builtin;
pub mod routes;
pub mod store;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    Active,
    Inactive,
    Processing,
}

impl AgentStatus {
    /// The stored text back as a status (anything unexpected reads as `active`).
    pub fn parse(stored: &str) -> &'static str {
        match stored {
            "inactive" => AgentStatus::Inactive.as_str(),
            "processing" => AgentStatus::Processing.as_str(),
            _ => AgentStatus::Active.as_str(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Active => "active",
            AgentStatus::Inactive => "inactive",
            AgentStatus::Processing => "processing",
        }
    }
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct Agent {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub description: Option<String>,
    #[schema(value_type = AgentStatus)]
    pub status: String,
    /// `orchestrator`, `code_review`, `code_explanation`, `documentation` or `custom`.
    pub role: String,
    pub system_prompt: Option<String>,
    /// A model id for this agent; empty means the server's default.
    pub model: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
