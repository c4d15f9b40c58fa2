//! Projects: code bases (often GitHub repositories) owned by one user.

pub mod routes;
pub mod store;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Clone, Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct Project {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub repo_url: Option<String>,
    /// Review pull requests of the linked GitHub repository automatically.
    pub auto_review: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The index of the project's code: what was uploaded or synced, and when.
    #[sqlx(flatten)]
    pub sync: crate::codebase::SyncState,
}
