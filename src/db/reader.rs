//! SQLite list pages, read on plain connections of their own.
//!
//! sqlx runs each SQLite connection on a worker thread and hands every row of a result to
//! the request's task through a channel: for a 50-row page those hand-offs were most of
//! a list's cost, and having SQLite write the page as JSON itself (the way around them)
//! made SQLite's JSON functions the cost instead (bench/README.md, "List pages"). Here a
//! page is read on a blocking thread with rusqlite, on the same SQLite library: the count,
//! every row and the JSON in one go, then one hand-off back. sqlx keeps every write and
//! every other read.

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use rusqlite::{types::Value, Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// Connections for reading one SQLite database, at most [`readers`]`(max)` at a time.
#[derive(Debug)]
pub struct Readers {
    path: String,
    flags: OpenFlags,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    /// `filename` as sqlx names it; an in-memory database (`file:sqlx-in-memory-N`) is
    /// shared with sqlx's connections through SQLite's shared cache (where a read that
    /// meets a write in progress fails with SQLITE_LOCKED, answered 503: in-memory
    /// databases are for trying the server out, not for serving).
    pub fn new(filename: &Path, in_memory: bool, max: u32) -> Arc<Readers> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if in_memory {
            flags |= OpenFlags::SQLITE_OPEN_MEMORY | OpenFlags::SQLITE_OPEN_SHARED_CACHE;
        }
        Arc::new(Readers {
            path: filename.to_string_lossy().into_owned(),
            flags,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(readers(max))),
        })
    }

    /// Runs `read` on a connection on the blocking pool.
    pub async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        // The permit goes with the blocking call: a request dropped meanwhile does not free
        // its connection's place before the call ends.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(Error::internal)?;
        let readers = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let idle = readers.idle.lock().expect("readers lock").pop();
            let conn = match idle {
                Some(conn) => conn,
                None => readers.connect()?,
            };
            let value = read(&conn)?;
            readers.idle.lock().expect("readers lock").push(conn);
            Ok(value)
        })
        .await
        .map_err(Error::internal)?
        .map_err(from_rusqlite)
    }

    /// Closes the idle connections; a read still running keeps its own until it ends.
    pub fn close(&self) {
        self.idle.lock().expect("readers lock").clear();
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(&self.path, self.flags)?;
        conn.busy_timeout(super::busy::BUSY_TIMEOUT)?;
        // These connections only read; SQLite refuses any write on them.
        conn.pragma_update(None, "query_only", true)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }
}

/// How many pages are read at once: `max`, but no more than twice the cores. A page of a
/// cached database is CPU work; more readers than that only take turns on the cores, and
/// measured slower (bench/README.md, "How many readers").
fn readers(max: u32) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (max as usize).min(2 * cores)
}

/// Binds `params` to a statement written with `$1`, `$2`… (SQLite reads them as named
/// parameters, numbered in order of appearance); a statement may use only the first few.
pub fn bind(
    statement: &mut rusqlite::CachedStatement<'_>,
    params: &[Value],
) -> rusqlite::Result<()> {
    for (n, value) in params.iter().enumerate() {
        if let Some(index) = statement.parameter_index(&format!("${}", n + 1))? {
            statement.raw_bind_parameter(index, value)?;
        }
    }
    Ok(())
}

/// SQLite still busy after its busy timeout is an overload that passes (503), as on the
/// sqlx side; anything else is a bug (500, logged, never shown).
fn from_rusqlite(err: rusqlite::Error) -> Error {
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            Error::Unavailable("Service temporarily unavailable")
        }
        _ => Error::Internal(format!("sqlite read: {err}")),
    }
}
