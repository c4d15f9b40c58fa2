//! SQLite list pages, read on plain connections of their own.
//!
//! sqlx runs each SQLite connection on a worker thread and hands every row of a result to
//! the request's task through a channel: for a 50-row page those hand-offs were most of
//! a list's cost, and having SQLite write the page as JSON itself (the way around them)
//! made SQLite's JSON functions the cost instead (bench/README.md, "List pages"). Here a
//! page is read on a reader thread with rusqlite, on the same SQLite library: the count,
//! every row and the JSON in one go, then one hand-off back. sqlx keeps every write and
//! every other read.

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    path::Path,
    sync::{Arc, Mutex},
};

use rusqlite::{types::Value, Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// A read, given its thread's connection (or the error opening it).
type Job = Box<dyn FnOnce(rusqlite::Result<&Connection>) + Send>;

/// Threads reading one SQLite database, [`readers`]`(max)` of them, each with its own
/// connection, taking reads from one queue.
///
/// Threads of their own rather than tokio's blocking pool: a thread that finishes a page
/// takes the next queued one without sleeping, and keeps its connection (and its warm
/// caches), where a pool call per page meant a wake-up per page and a connection passed
/// from thread to thread (bench/README.md, "Reader threads").
pub struct Readers {
    /// Taken by [`Readers::close`]: the threads end once the queue is empty.
    queue: Mutex<Option<flume::Sender<Job>>>,
    /// Connections for [`Readers::read_now`], one per caller at a time, opened as needed.
    idle: Mutex<Vec<Connection>>,
    path: String,
    flags: OpenFlags,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").field("path", &self.path).finish()
    }
}

impl Readers {
    /// `filename` as sqlx names it; an in-memory database (`file:sqlx-in-memory-N`) is
    /// shared with sqlx's connections through SQLite's shared cache (where a read that
    /// meets a write in progress fails with SQLITE_LOCKED, answered 503: in-memory
    /// databases are for trying the server out, not for serving).
    pub fn new(filename: &Path, in_memory: bool, max: u32) -> std::io::Result<Arc<Readers>> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if in_memory {
            flags |= OpenFlags::SQLITE_OPEN_MEMORY | OpenFlags::SQLITE_OPEN_SHARED_CACHE;
        }
        let path = filename.to_string_lossy().into_owned();
        let (queue, jobs) = flume::unbounded();
        for _ in 0..readers(max) {
            let (jobs, path) = (jobs.clone(), path.clone());
            std::thread::Builder::new()
                .name("sqlite-reader".into())
                .spawn(move || serve(&jobs, &path, flags))?;
        }
        Ok(Arc::new(Readers {
            queue: Mutex::new(Some(queue)),
            idle: Mutex::default(),
            path,
            flags,
        }))
    }

    /// Runs `read` on a reader thread's connection.
    pub async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // A request that went away while its read was queued needs no page.
            if !reply.is_closed() {
                let _ = reply.send(conn.and_then(read));
            }
        });
        let queue = self.queue.lock().expect("readers lock").clone();
        queue
            .and_then(|queue| queue.send(job).ok())
            .ok_or(Error::Unavailable("Service temporarily unavailable"))?;
        answer
            .await
            .map_err(|_| Error::Internal("sqlite read: the reader stopped".into()))?
            .map_err(from_rusqlite)
    }

    /// Runs `read` here, on the caller's thread, if SQLite can answer at once: for reads of
    /// a few microseconds (one row by its key), which cost less than the hand-off to a
    /// reader thread and back. Its connection never waits for a lock: `None` when the
    /// database is busy (the caller then queues the read, which may wait).
    pub fn read_now<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Option<Result<T>> {
        let kept = self.idle.lock().expect("readers lock").pop();
        let conn = match kept.map_or_else(|| self.connect_now(), Ok) {
            Ok(conn) => conn,
            Err(err) => return Some(Err(from_rusqlite(err))),
        };
        let answer = read(&conn);
        self.idle.lock().expect("readers lock").push(conn);
        match answer {
            Err(err) if busy(&err) => None,
            answer => Some(answer.map_err(from_rusqlite)),
        }
    }

    fn connect_now(&self) -> rusqlite::Result<Connection> {
        let conn = connect(&self.path, self.flags)?;
        conn.busy_timeout(std::time::Duration::ZERO)?;
        Ok(conn)
    }

    /// Lets the threads end (and close their connections) once the queued reads are done.
    pub fn close(&self) {
        self.queue.lock().expect("readers lock").take();
    }
}

/// One reader thread: its connection opened at its first read, and again after a read
/// that panicked (whose answer is then an error; the thread goes on).
fn serve(jobs: &flume::Receiver<Job>, path: &str, flags: OpenFlags) {
    let mut kept = None;
    while let Ok(job) = jobs.recv() {
        match kept.take().map_or_else(|| connect(path, flags), Ok) {
            Ok(conn) => {
                if catch_unwind(AssertUnwindSafe(|| job(Ok(&conn)))).is_ok() {
                    kept = Some(conn);
                }
            }
            Err(err) => job(Err(err)),
        }
    }
}

fn connect(path: &str, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(super::busy::BUSY_TIMEOUT)?;
    // These connections only read; SQLite refuses any write on them.
    conn.pragma_update(None, "query_only", true)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// How many reader threads: `max`, but no more than one per core and one more. A page of
/// a cached database is CPU work: more threads only take turns on the cores (and lengthen
/// the tail); the extra one keeps reading while another is preempted (bench/README.md,
/// "Reader threads").
fn readers(max: u32) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (max as usize).min(cores + 1)
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
    if busy(&err) {
        Error::Unavailable("Service temporarily unavailable")
    } else {
        Error::Internal(format!("sqlite read: {err}"))
    }
}

fn busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}
