//! One storage layer over SQLite (embedded default) and PostgreSQL (production).
//!
//! Queries are written once with `$n` placeholders and `RETURNING`, which both backends
//! understand; `with_pool!` compiles each query once per backend so both stay type-checked.

mod busy;
pub mod owned;
pub mod page;
pub mod pages;
mod reader;
mod revisions;
pub mod settings;
pub mod together;
mod wal;

pub use settings::Settings;

use std::{
    any::{Any, TypeId},
    collections::HashMap,
    str::FromStr,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    Connection, PgPool, SqlitePool,
};

/// The most disk SQLite's write-ahead log keeps: cut back to it when the log restarts,
/// emptied by a checkpoint when it grows past it ([`wal`]).
pub const WAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;

/// How long a request waits for a connection before answering 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A PostgreSQL connection idle longer than this is pinged before it is handed out. sqlx
/// would ping before every use (a network round trip per query, a fifth of a list's cost).
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub enum Db {
    /// The pool, the connections that read list pages ([`reader`]), and what this
    /// instance keeps in memory of this database ([`Kept`]).
    Sqlite(SqlitePool, Arc<reader::Readers>, Kept),
    Postgres(PgPool, Kept),
}

/// What slices keep in memory of one database, one value per type: caches of what the
/// database holds, which belong to the database they were read from (a test process
/// runs many servers, each on a database of its own, in one address space).
#[derive(Clone, Default)]
pub struct Kept(Arc<Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>>);

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kept")
    }
}

/// Runs `$body` with `$pool` bound to whichever backend `$db` holds.
#[macro_export]
macro_rules! with_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool, ..) => $body,
            $crate::db::Db::Postgres($pool, _) => $body,
        }
    };
}

/// Runs `$body` inside one transaction on either backend; commits when it returns `Ok`.
///
/// On SQLite the transaction is `BEGIN IMMEDIATE`: it takes the write lock up front, where
/// the busy timeout can wait for it. A deferred transaction that reads and then writes
/// cannot wait: its upgrade fails at once with SQLITE_BUSY (BUSY_SNAPSHOT) whenever
/// another writer committed since its read, and the request would answer 500.
#[macro_export]
macro_rules! in_transaction {
    ($db:expr, |$tx:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite(pool, ..) => {
                async {
                    let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                    let value = $body;
                    $tx.commit().await?;
                    Ok::<_, $crate::error::Error>(value)
                }
                .await
            }
            $crate::db::Db::Postgres(pool, _) => {
                async {
                    let mut $tx = pool.begin().await?;
                    let value = $body;
                    $tx.commit().await?;
                    Ok::<_, $crate::error::Error>(value)
                }
                .await
            }
        }
    };
}

impl Db {
    /// Connects to `sqlite://…`, `sqlite:///./…` (SQLAlchemy style), `sqlite::memory:`
    /// or `postgres://…` / `postgresql://…`.
    ///
    /// Both pools are of a fixed size: they open `max_connections` at start and reopen any
    /// that closes, so a burst of requests never waits for new ones (a PostgreSQL
    /// connection takes milliseconds to open; bench/README.md, "Pools of a fixed size").
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, sqlx::Error> {
        if let Some(options) = postgres_options(url)? {
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .min_connections(max_connections)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        // A connection in steady use is known to be alive; one that sat idle
                        // may have been cut (a restart, a proxy's timeout): check it first.
                        if meta.idle_for > IDLE_BEFORE_PING {
                            conn.ping().await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(options)
                .await?;
            return Ok(Db::Postgres(pool, Kept::default()));
        }
        // An embedded database cannot hang up: no liveness ping before each use.
        let options = sqlite_options(url)?;
        let in_memory = is_memory(url);
        let readers = reader::Readers::new(options.get_filename(), in_memory, max_connections)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .min_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .after_connect(|conn, _| Box::pin(busy::install(conn)))
            .connect_with(options.clone())
            .await?;
        if !in_memory {
            wal::watch(pool.clone(), options.get_filename().to_path_buf());
        }
        Ok(Db::Sqlite(pool, readers, Kept::default()))
    }

    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self {
            Db::Sqlite(pool, ..) => sqlx::migrate!("./migrations/sqlite").run(pool).await,
            Db::Postgres(pool, _) => sqlx::migrate!("./migrations/postgres").run(pool).await,
        }
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        with_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(drop))
    }

    /// This database's `T`, made with `make` on first use (later callers get that one).
    pub fn kept<T: Send + Sync + 'static>(&self, make: impl FnOnce() -> T) -> Arc<T> {
        let kept = match self {
            Db::Sqlite(_, _, kept) | Db::Postgres(_, kept) => kept,
        };
        let mut values = kept.0.lock().expect("kept lock");
        let id = TypeId::of::<T>();
        if let Some(value) = values.get(&id).and_then(|v| v.clone().downcast().ok()) {
            return value;
        }
        let value = Arc::new(make());
        values.insert(id, value.clone());
        value
    }

    /// The VALUES of a multi-row INSERT: `rows` tuples of `columns` parameters, `($1,
    /// $2), ($3, $4)` on PostgreSQL and `(?, ?), (?, ?)` on SQLite, whose anonymous
    /// parameters are bound in order. sqlx asks SQLite each named parameter's name, which
    /// SQLite finds by walking its list of names: a thousand `$n` cost a million steps.
    pub fn values(&self, rows: usize, columns: usize) -> String {
        values(matches!(self, Db::Sqlite(..)), rows, columns)
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(..) => "sqlite",
            Db::Postgres(..) => "postgres",
        }
    }

    /// ` FOR SHARE` on PostgreSQL, to hold a row steady until the transaction ends; empty
    /// on SQLite, whose IMMEDIATE transactions already run one writer at a time.
    pub fn for_share(&self) -> &'static str {
        match self {
            Db::Sqlite(..) => "",
            Db::Postgres(..) => " FOR SHARE",
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool, readers, _) => {
                readers.close();
                pool.close().await
            }
            Db::Postgres(pool, _) => pool.close().await,
        }
    }
}

/// See [`Db::values`].
fn values(sqlite: bool, rows: usize, columns: usize) -> String {
    let tuples: Vec<String> = (0..rows)
        .map(|row| {
            let params: Vec<String> = (1..=columns)
                .map(|n| match sqlite {
                    true => "?".to_owned(),
                    false => format!("${}", row * columns + n),
                })
                .collect();
            format!("({})", params.join(", "))
        })
        .collect();
    tuples.join(", ")
}

/// The current time at the precision both backends store (microseconds).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn postgres_options(url: &str) -> Result<Option<PgConnectOptions>, sqlx::Error> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Ok(None);
    };
    // SQLAlchemy spells drivers into the scheme: postgresql+psycopg2://
    let scheme = scheme.split('+').next().unwrap_or(scheme);
    if scheme != "postgres" && scheme != "postgresql" {
        return Ok(None);
    }
    PgConnectOptions::from_str(&format!("postgres://{rest}")).map(Some)
}

/// SQLite with WAL, a busy timeout and enforced foreign keys.
fn sqlite_options(url: &str) -> Result<SqliteConnectOptions, sqlx::Error> {
    let options = if is_memory(url) {
        SqliteConnectOptions::from_str("sqlite::memory:")?
    } else {
        SqliteConnectOptions::new().filename(sqlite_path(url)?)
    };
    Ok(options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // NORMAL in WAL mode survives a process crash (kill -9); FULL adds power-loss safety.
        .synchronous(SqliteSynchronous::Normal)
        // What a connection outside the pool would use; pooled ones get `busy::install`.
        .busy_timeout(busy::BUSY_TIMEOUT)
        // SQLite reuses its write-ahead log file rather than shrink it: after a sustained
        // write burst (where readers keep it from restarting) it stayed at its peak, 2.9 GB
        // for a 33 MB database (bench/lists.sh). Cut back to this after each restart; the
        // log that never restarts is emptied by [`wal`].
        .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string())
        .foreign_keys(true))
}

fn is_memory(url: &str) -> bool {
    url == "sqlite::memory:" || url == "sqlite://:memory:"
}

/// `sqlite://app.db` and `sqlite:///./app.db` are relative; `sqlite:///srv/app.db` and
/// SQLAlchemy's `sqlite:////srv/app.db` are absolute; a bare path is taken as is.
fn sqlite_path(url: &str) -> Result<String, sqlx::Error> {
    let path = match url.strip_prefix("sqlite:") {
        None if !url.contains("://") => url,
        None => {
            return Err(sqlx::Error::Configuration(
                format!(
                    "unsupported DATABASE_URL scheme in `{}`",
                    settings::redact_url(url)
                )
                .into(),
            ))
        }
        Some(rest) => {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let rest = rest.split('?').next().unwrap_or(rest);
            if rest.starts_with("/./") || rest.starts_with("/../") {
                &rest[1..]
            } else if let Some(absolute) = rest.strip_prefix("//") {
                return Ok(format!("/{absolute}"));
            } else {
                rest
            }
        }
    };
    if path.is_empty() {
        return Err(sqlx::Error::Configuration(
            "DATABASE_URL names no SQLite file".into(),
        ));
    }
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_row_values_number_their_parameters_on_postgresql_only() {
        assert_eq!(values(false, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(values(true, 2, 3), "(?, ?, ?), (?, ?, ?)");
    }

    #[test]
    fn sqlite_urls_in_both_styles() {
        assert_eq!(
            sqlite_path("sqlite://codesherpa.db").unwrap(),
            "codesherpa.db"
        );
        assert_eq!(
            sqlite_path("sqlite:///./codesherpa.db").unwrap(),
            "./codesherpa.db"
        );
        assert_eq!(
            sqlite_path("sqlite:///../data/c.db").unwrap(),
            "../data/c.db"
        );
        assert_eq!(sqlite_path("sqlite:///srv/c.db").unwrap(), "/srv/c.db");
        assert_eq!(sqlite_path("sqlite:////srv/c.db").unwrap(), "/srv/c.db");
        assert_eq!(sqlite_path("sqlite:c.db").unwrap(), "c.db");
        assert_eq!(sqlite_path("./c.db").unwrap(), "./c.db");
        assert!(sqlite_path("mysql://x/y").is_err());
        assert!(sqlite_path("sqlite://").is_err());
    }

    #[test]
    fn postgres_urls_in_both_styles() {
        for url in [
            "postgres://u@localhost/db",
            "postgresql://u@localhost/db",
            "postgresql+psycopg2://u@localhost/db",
        ] {
            let options = postgres_options(url).unwrap().expect(url);
            assert_eq!(options.get_database(), Some("db"));
        }
        assert!(postgres_options("sqlite://x.db").unwrap().is_none());
    }
}
