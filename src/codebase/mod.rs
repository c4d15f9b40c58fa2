//! Codebase knowledge: a project's files — uploaded as an archive or synced from its
//! repository — indexed for substring search, listed, read, and retrieved into chats.
//!
//! The way in, for whoever brings the code (an upload here, GitHub's sync job): [`extract`]
//! an archive, then [`index::replace`] the project's files with it; the project's `sync`
//! state around that is recorded with `projects::sync`.

pub mod archive;
pub mod files;
pub mod index;
pub mod map;
pub mod matcher;
pub mod retrieval;
pub mod routes;
pub mod search;
pub mod settings;
pub mod snapshot;
pub mod symbols;
pub mod trigrams;
pub mod usages;

use std::future::Future;

use tokio::task::JoinError;

use crate::{db::Db, error::Error, projects::sync::live_generation};
use archive::{ArchiveError, Extracted};

pub use settings::Settings;

/// Why an archive gave nothing to index.
#[derive(Debug)]
pub enum Unread {
    /// The bytes are not a readable archive.
    Archive(ArchiveError),
    /// The extraction's thread was lost (it panicked, or the runtime is shutting down).
    Interrupted(JoinError),
}

/// Extracts `archive` on a blocking thread: inflating up to 200 MiB must not hold up the
/// async workers.
pub async fn extract(archive: impl AsRef<[u8]> + Send + 'static) -> Result<Extracted, Unread> {
    match tokio::task::spawn_blocking(move || archive::extract(archive.as_ref())).await {
        Ok(Ok(extracted)) => Ok(extracted),
        Ok(Err(err)) => Err(Unread::Archive(err)),
        Err(err) => Err(Unread::Interrupted(err)),
    }
}

/// Bounded retries when a re-index makes another generation live mid-read.
const ATTEMPTS: usize = 3;

/// Runs `read` on the live generation, again if another one became live meanwhile and
/// part of what was read may be gone (the older one's replaced rows are deleted then);
/// `None` when nothing is indexed.
pub async fn on_live_generation<T, F, Fut>(
    db: &Db,
    project_id: i64,
    read: F,
) -> crate::error::Result<Option<T>>
where
    F: Fn(i64) -> Fut,
    Fut: Future<Output = crate::error::Result<T>>,
{
    let live = live_generation(db, project_id).await?;
    on_generation(db, project_id, live, read).await
}

/// [`on_live_generation`] from `live`, the live generation just read (with the project's
/// ownership, say). A read that met nothing gone ([`snapshot::Kept::gone`]) read its
/// generation whole: its answer stands without a second look at the live one.
pub async fn on_generation<T, F, Fut>(
    db: &Db,
    project_id: i64,
    mut live: Option<i64>,
    read: F,
) -> crate::error::Result<Option<T>>
where
    F: Fn(i64) -> Fut,
    Fut: Future<Output = crate::error::Result<T>>,
{
    let kept = snapshot::Kept::of(db);
    for _ in 0..ATTEMPTS {
        let Some(generation) = live else {
            return Ok(None);
        };
        let gone = kept.gone();
        let value = read(generation).await?;
        if kept.gone() == gone {
            return Ok(Some(value));
        }
        live = live_generation(db, project_id).await?;
        if live == Some(generation) {
            return Ok(Some(value));
        }
    }
    Err(reindexing())
}

/// The answer when every attempt met another generation.
fn reindexing() -> Error {
    Error::Unavailable("The project is being re-indexed; try again shortly")
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A database with one project, whose live generation is `live`.
    async fn project_at(dir: &std::path::Path, live: i64) -> (Db, i64) {
        let url = format!("sqlite://{}", dir.join("index.db").display());
        let db = Db::connect(&url, 2).await.unwrap();
        db.migrate().await.unwrap();
        let at = "2026-01-01T00:00:00Z";
        let Db::Sqlite(pool, ..) = &db else {
            unreachable!("a SQLite URL")
        };
        sqlx::query(
            "INSERT INTO users (name, email, hashed_password, created_at, updated_at) \
             VALUES ('a', 'a@example.com', 'x', $1, $1)",
        )
        .bind(at)
        .execute(pool)
        .await
        .unwrap();
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO projects (user_id, name, created_at, updated_at, sync_generation) \
             VALUES (1, 'p', $1, $1, $2) RETURNING id",
        )
        .bind(at)
        .bind(live)
        .fetch_one(pool)
        .await
        .unwrap();
        (db, id)
    }

    #[tokio::test]
    async fn a_read_that_met_a_row_gone_is_read_again_on_the_live_generation() {
        let dir = tempfile::tempdir().unwrap();
        let (db, id) = project_at(dir.path(), 2).await;
        let (db, reads) = (&db, &Mutex::new(Vec::new()));
        // Generation 1 was live when the caller looked; its reader meets a text gone (no
        // such file now): it reads again, on generation 2, which is still live after.
        let read = |generation| async move {
            reads.lock().unwrap().push(generation);
            snapshot::texts(db, &[i64::MAX]).await?;
            Ok(generation)
        };
        assert_eq!(on_generation(db, id, Some(1), read).await.unwrap(), Some(2));
        assert_eq!(*reads.lock().unwrap(), [1, 2]);
        // A read that met nothing gone read its generation whole: it stands as it is,
        // with no second look, even though generation 2 went live meanwhile.
        reads.lock().unwrap().clear();
        let read = |generation| async move {
            reads.lock().unwrap().push(generation);
            Ok(generation)
        };
        assert_eq!(on_generation(db, id, Some(1), read).await.unwrap(), Some(1));
        assert_eq!(*reads.lock().unwrap(), [1]);
        assert_eq!(on_generation(db, id, None, read).await.unwrap(), None);
    }
}
