//! Codebase knowledge: a project's files — uploaded as an archive or synced from its
//! repository — indexed for substring search, listed, read, and retrieved into chats.

pub mod archive;
pub mod files;
pub mod index;
pub mod retrieval;
pub mod routes;
pub mod search;
pub mod settings;
pub mod sync;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

pub use archive::Skipped;
pub use settings::Settings;

use crate::{jobs::Workers, state::AppState};

/// Registers the repository sync job's handler.
pub fn register_jobs(workers: &mut Workers, state: &AppState) {
    workers.register(
        sync::SYNC_JOB,
        sync::SYNC_CONCURRENCY,
        sync::SyncJob::new(state.clone()),
    );
}

/// Where a project's index stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncStatus {
    Never,
    Queued,
    Running,
    Done,
    Failed,
}

impl SyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Never => "never",
            SyncStatus::Queued => "queued",
            SyncStatus::Running => "running",
            SyncStatus::Done => "done",
            SyncStatus::Failed => "failed",
        }
    }
}

impl TryFrom<String> for SyncStatus {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        [
            SyncStatus::Never,
            SyncStatus::Queued,
            SyncStatus::Running,
            SyncStatus::Done,
            SyncStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == value)
        .ok_or_else(|| format!("unknown sync status `{value}`"))
    }
}

/// The project's `sync` object: the last index of its code and what was left out.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct SyncState {
    #[sqlx(rename = "sync_status", try_from = "String")]
    pub status: SyncStatus,
    /// The commit indexed, when known (GitHub tarballs carry it).
    #[sqlx(rename = "sync_commit")]
    pub commit: Option<String>,
    /// How many files are indexed.
    #[sqlx(rename = "sync_files")]
    pub files: i64,
    /// Entries left out of the last index, with the reason.
    #[sqlx(rename = "sync_skipped", json)]
    pub skipped: Vec<Skipped>,
    pub synced_at: Option<DateTime<Utc>>,
    /// Why the last sync failed.
    #[sqlx(rename = "sync_reason")]
    pub reason: Option<String>,
}
