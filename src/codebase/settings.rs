//! The codebase's settings: how large an uploaded archive may be, how many
//! extractions and indexings run at once, and how long a search may run.

use std::time::Duration;

use crate::env::{from_str, positive, ConfigError, Env};

#[derive(Clone, Debug)]
pub struct Settings {
    /// Body limit of `PUT /projects/{id}/files` (archives of code).
    pub upload_limit_bytes: usize,
    /// Archive extractions and indexings (uploads and syncs) running at once on this
    /// instance; an upload beyond them gets 429, a sync waits its turn.
    pub index_concurrency: usize,
    /// A search stops after this long and answers what it found, marked partial.
    pub search_timeout: Duration,
    /// `CODE_CACHE_MB`, in bytes: what an instance keeps in memory of the indexes (the
    /// live generations' files and symbols, files' texts; `codebase::snapshot`).
    pub cache_bytes: u64,
}

impl Settings {
    pub const DEFAULT_CACHE_BYTES: u64 = 256 << 20;

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Settings {
            upload_limit_bytes: env.parse("UPLOAD_LIMIT_BYTES", 50 * 1024 * 1024, positive)?,
            index_concurrency: env.parse("INDEX_CONCURRENCY", 2, positive)?,
            search_timeout: Duration::from_millis(env.parse("SEARCH_TIMEOUT_MS", 250, positive)?),
            cache_bytes: env
                .parse::<u64>("CODE_CACHE_MB", Self::DEFAULT_CACHE_BYTES >> 20, from_str)?
                .saturating_mul(1 << 20),
        })
    }

    pub fn for_tests() -> Self {
        Settings {
            upload_limit_bytes: 50 * 1024 * 1024,
            index_concurrency: 2,
            search_timeout: Duration::from_millis(250),
            cache_bytes: Self::DEFAULT_CACHE_BYTES,
        }
    }
}
