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
pub mod symbols;
pub mod trigrams;
pub mod usages;

use tokio::task::JoinError;

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
