//! Keeps SQLite's write-ahead log near [`WAL_SIZE_LIMIT`] while writes never pause.
//!
//! SQLite appends every commit to the log and copies it into the database at each
//! automatic checkpoint, but it can only start the log over from its beginning when a
//! write finds no reader still using the log; under a sustained mix of reads and writes
//! that moment may never come, and the file grows with every commit (4.3 GB beside a 49 MB
//! database after `bench/lists.sh`). `journal_size_limit` trims the file only once the log
//! restarts. So a task looks at the file's size a few times a second and, past the limit,
//! copies the log into the database (a `PASSIVE` checkpoint, holding no one back), then
//! runs a `TRUNCATE` checkpoint: it holds new writers back until the readers are on the
//! latest snapshot (list pages take milliseconds), copies what was committed meanwhile and
//! empties the file.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use rusqlite::{Connection, OpenFlags};
use sqlx::SqlitePool;

use super::WAL_SIZE_LIMIT;

/// How often the log's size is looked at (one `stat`).
const EVERY: Duration = Duration::from_millis(250);

/// How long the checkpoint waits for the writer and the readers, holding writers back
/// meanwhile, before it gives up until the next look. Far below the 5 s a request's write
/// waits for the lock, so no request fails because of it.
const PATIENCE: Duration = Duration::from_millis(200);

/// Watches the log of the database at `path` until `pool` closes.
pub fn watch(pool: SqlitePool, path: PathBuf) {
    let mut log = path.clone().into_os_string();
    log.push("-wal");
    let log = PathBuf::from(log);
    tokio::spawn(async move {
        let mut conn = None;
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                return;
            }
            // A `stat` of a cached inode takes microseconds: done in place, not handed to the
            // blocking pool through `tokio::fs` (which, four times a second, measured list
            // pages 10–15 % slower; bench/README.md, "The write-ahead log under a burst").
            let size = std::fs::metadata(&log).map_or(0, |meta| meta.len());
            if size > WAL_SIZE_LIMIT {
                conn = checkpoint(conn, path.clone(), size).await;
            }
        }
    });
}

/// Runs the checkpoint on the blocking pool; gives back the connection unless it failed.
async fn checkpoint(conn: Option<Connection>, path: PathBuf, size: u64) -> Option<Connection> {
    let run = tokio::task::spawn_blocking(move || {
        let conn = match conn {
            Some(conn) => conn,
            None => connect(&path)?,
        };
        // Copy the log into the database first without holding writers back (that copy
        // and its fsync are most of the work), then again, briefly holding them, for the
        // commits made meanwhile, and empty the file.
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        // (busy, frames in the log): busy = 1 when the patience ran out first.
        let (busy, frames) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
        })?;
        Ok::<_, rusqlite::Error>((conn, busy, frames))
    });
    match run.await {
        Ok(Ok((conn, 0, _))) => {
            tracing::debug!(size, "write-ahead log checkpointed and emptied");
            Some(conn)
        }
        Ok(Ok((conn, _, frames))) => {
            tracing::debug!(size, frames, "write-ahead log busy; trying again");
            Some(conn)
        }
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "write-ahead log checkpoint failed");
            None
        }
        Err(err) => {
            tracing::warn!(error = %err, "write-ahead log checkpoint stopped");
            None
        }
    }
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(PATIENCE)?;
    Ok(conn)
}
