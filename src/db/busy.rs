//! How a SQLite connection waits for another connection's write to finish.
//!
//! SQLite runs one writer at a time; a connection that finds the write lock taken calls its
//! busy handler until the lock is free or the handler gives up. The handler sqlx installs
//! (`sqlite3_busy_timeout`) sleeps 1, 2, 5, 10, 15, 20, 25… ms between tries, while a
//! write here holds the lock for a fraction of a millisecond: a write that has to wait a
//! few times sleeps far past the moment the lock came free, holding its pooled connection.
//! Retrying every 100 µs instead cut the p99 of `POST /projects` at 64 connections from
//! 79–87 ms to 16–21 ms at the same throughput (bench/README.md, "Concurrent writes on
//! SQLite"). sqlx has no option for it, so the handler is set here through the SQLite C
//! API, with the same timeout.

use std::{
    cell::Cell,
    ffi::{c_int, c_void},
    ptr,
    time::{Duration, Instant},
};

use libsqlite3_sys::{sqlite3_busy_handler, SQLITE_OK};
use sqlx::SqliteConnection;

/// How long a connection waits for the write lock before the statement fails with
/// SQLITE_BUSY (answered 503).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The pause between two tries for the lock.
const STEP: Duration = Duration::from_micros(100);

thread_local! {
    /// When this thread's current wait began. sqlx runs each SQLite connection on its own
    /// worker thread, and SQLite calls the handler on the thread running the statement.
    static WAITING_SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The busy handler: `tries` counts the calls for the current wait, from 0. Returns
/// non-zero to try again.
extern "C" fn wait_for_lock(_: *mut c_void, tries: c_int) -> c_int {
    let now = Instant::now();
    let since = WAITING_SINCE.with(|cell| {
        let since = match cell.get() {
            Some(since) if tries > 0 => since,
            _ => now,
        };
        cell.set(Some(since));
        since
    });
    if now.duration_since(since) >= BUSY_TIMEOUT {
        return 0;
    }
    std::thread::sleep(STEP);
    1
}

/// Installs the handler on a new connection (it replaces the one `busy_timeout` set).
pub async fn install(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the handle is a live connection, locked for us while we hold `handle`; the
    // handler is a plain function that uses no argument and cannot unwind.
    let status = unsafe {
        sqlite3_busy_handler(
            handle.as_raw_handle().as_ptr(),
            Some(wait_for_lock),
            ptr::null_mut(),
        )
    };
    if status == SQLITE_OK {
        Ok(())
    } else {
        Err(sqlx::Error::Configuration(
            format!("sqlite3_busy_handler failed with code {status}").into(),
        ))
    }
}
