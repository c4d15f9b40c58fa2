//! A project's sync state: where the index of its code stands (the project's `sync`
//! object) and which generation of that index is live. These are columns of the project's
//! row, so their SQL is here; codebase writes the index itself, and GitHub's sync job
//! queues and runs syncs, both through these functions.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, SqliteConnection};
use utoipa::ToSchema;

use crate::{
    db::{now, Db},
    error::{responses::envelope_schema, Error, Result},
    in_transaction,
    jobs::{self, Enqueued, NewJob},
    with_pool,
};

envelope_schema!(SyncStateResponse, SyncState);

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

/// An entry left out, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Skipped {
    #[schema(example = "assets/logo.png")]
    pub path: String,
    #[schema(example = "binary file")]
    pub reason: String,
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

/// What a finished index looks like, for the project's `sync` object.
pub struct Indexed {
    pub commit: Option<String>,
    pub files: i64,
    pub skipped: Vec<Skipped>,
}

/// Records a status change that carries no new files (queued, running, failed).
pub async fn mark(
    db: &Db,
    project_id: i64,
    status: SyncStatus,
    reason: Option<&str>,
) -> Result<()> {
    let sql = "UPDATE projects SET sync_status = $2, sync_reason = $3 WHERE id = $1";
    with_pool!(db, |pool| sqlx::query(sql)
        .bind(project_id)
        .bind(status.as_str())
        .bind(reason)
        .execute(pool)
        .await
        .map(drop))?;
    Ok(())
}

/// Queues `job`, the project's sync, and marks the project queued in the same
/// transaction; a job already queued under its dedupe key changes nothing. The caller
/// wakes the queue once this returns.
pub async fn queue(db: &Db, project_id: i64, job: &NewJob) -> Result<Enqueued> {
    in_transaction!(db, |tx| {
        let enqueued = jobs::enqueue(&mut *tx, job).await?;
        if enqueued.is_new() {
            sqlx::query("UPDATE projects SET sync_status = $2, sync_reason = NULL WHERE id = $1")
                .bind(project_id)
                .bind(SyncStatus::Queued.as_str())
                .execute(&mut *tx)
                .await?;
        }
        enqueued
    })
}

/// Reserves the number of a new index generation; `None` when the project is gone.
pub async fn next_generation(db: &Db, project_id: i64) -> Result<Option<i64>> {
    let sql = "UPDATE projects SET sync_last_generation = sync_last_generation + 1 \
               WHERE id = $1 RETURNING sync_last_generation";
    let row: Option<(i64,)> = with_pool!(db, |pool| sqlx::query_as(sql)
        .bind(project_id)
        .fetch_optional(pool)
        .await)?;
    Ok(row.map(|(generation,)| generation))
}

/// Flipping a project's live index generation, on a connection inside the caller's
/// transaction: codebase flips it in the same transaction that opens the new
/// generation's rows and ends the ones it replaces.
pub trait LiveGeneration: Send {
    /// Makes `generation` live if `base` (0: nothing) still is; false otherwise.
    fn make_live<'c>(
        &'c mut self,
        project_id: i64,
        generation: i64,
        base: i64,
        indexed: &'c Indexed,
    ) -> BoxFuture<'c, Result<bool, sqlx::Error>>;
}

/// See [`LiveGeneration::make_live`].
pub async fn make_live<C: LiveGeneration + ?Sized>(
    conn: &mut C,
    project_id: i64,
    generation: i64,
    base: i64,
    indexed: &Indexed,
) -> Result<bool, sqlx::Error> {
    conn.make_live(project_id, generation, base, indexed).await
}

macro_rules! impl_live_generation {
    ($connection:ty) => {
        impl LiveGeneration for $connection {
            fn make_live<'c>(
                &'c mut self,
                project_id: i64,
                generation: i64,
                base: i64,
                indexed: &'c Indexed,
            ) -> BoxFuture<'c, Result<bool, sqlx::Error>> {
                Box::pin(async move {
                    let sql = "UPDATE projects SET sync_generation = $2, sync_status = $3, \
                               sync_commit = $4, sync_files = $5, sync_skipped = $6, \
                               synced_at = $7, sync_reason = NULL \
                               WHERE id = $1 AND COALESCE(sync_generation, 0) = $8";
                    let done = sqlx::query(sql)
                        .bind(project_id)
                        .bind(generation)
                        .bind(SyncStatus::Done.as_str())
                        .bind(&indexed.commit)
                        .bind(indexed.files)
                        .bind(Json(&indexed.skipped))
                        .bind(now())
                        .bind(base)
                        .execute(&mut *self)
                        .await?;
                    Ok(done.rows_affected() == 1)
                })
            }
        }
    };
}

impl_live_generation!(SqliteConnection);
impl_live_generation!(PgConnection);

/// The live generation, if anything is indexed. Every read of the index starts from it.
pub async fn live_generation(db: &Db, project_id: i64) -> Result<Option<i64>> {
    Ok(generation_row(db, project_id, None).await?.flatten())
}

/// [`live_generation`] of the user's project, read with the check that it is theirs:
/// 404 otherwise (another user's project is simply not found).
pub async fn owned_live_generation(db: &Db, user_id: i64, project_id: i64) -> Result<Option<i64>> {
    generation_row(db, project_id, Some(user_id))
        .await?
        .ok_or(Error::NotFound("Project"))
}

/// The project's row (of this user, when given): its live generation. On SQLite it is
/// read in place, a row by its key, rather than through a pool's worker thread.
async fn generation_row(
    db: &Db,
    project_id: i64,
    user_id: Option<i64>,
) -> Result<Option<Option<i64>>> {
    const ANY: &str = "SELECT sync_generation FROM projects WHERE id = $1";
    const OWNED: &str = "SELECT sync_generation FROM projects WHERE id = $1 AND user_id = $2";
    let sql = if user_id.is_some() { OWNED } else { ANY };
    let params: Vec<i64> = [Some(project_id), user_id].into_iter().flatten().collect();
    Ok(match db {
        Db::Sqlite(_, readers, _) => {
            let read = move |conn: &rusqlite::Connection| {
                use rusqlite::OptionalExtension;
                conn.prepare_cached(sql)?
                    .query_row(rusqlite::params_from_iter(&params), |row| row.get(0))
                    .optional()
            };
            match readers.read_now(read.clone()) {
                Some(row) => row?,
                None => readers.read(read).await?,
            }
        }
        Db::Postgres(pool, _) => {
            params
                .iter()
                .fold(sqlx::query_scalar(sql), |query, param| query.bind(*param))
                .fetch_optional(pool)
                .await?
        }
    })
}
