//! Reading lists' revisions ([`super::pages`]): in place on SQLite, and on PostgreSQL
//! many requests' revisions in one query.
//!
//! On PostgreSQL a kept page costs one round trip, the revision's, and that round trip
//! was the whole cost of a list request (a list served from its kept page ran exactly as
//! fast as one row read by its key: bench/README.md, "Revisions read together"). So the
//! revisions asked while one query is out are read together by the next: one query answers
//! every request waiting, whoever's list it asks for. Each answer is still read *after* its
//! request asked (a query never answers a request that arrived once it had started), so it
//! shows every write committed before the request arrived, exactly as a query of its own
//! would.

use std::collections::HashMap;

use sqlx::PgPool;
use tokio::sync::oneshot;

use super::{together::Together, Db, ACQUIRE_TIMEOUT};
use crate::error::{Error, Result};

/// The lists kept, named as their revisions are (the triggers' `list` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum List {
    Agents,
    Projects,
    Chats,
}

impl List {
    pub(super) fn name(self) -> &'static str {
        match self {
            List::Agents => "agents",
            List::Projects => "projects",
            List::Chats => "chats",
        }
    }
}

/// A request's list (its user's id and which list), and where its revision goes.
type Waiting = (i64, List, oneshot::Sender<Result<i64>>);

/// Revision reads of one instance.
#[derive(Default)]
pub struct Revisions {
    asked: Together<Waiting>,
}

impl Revisions {
    /// The list's revision (the sum of its shards): 0 until its first write.
    pub async fn read(&self, db: &Db, user_id: i64, list: List) -> Result<i64> {
        const SQL: &str = "SELECT CAST(COALESCE(SUM(revision), 0) AS BIGINT) \
                           FROM list_revisions WHERE user_id = $1 AND list = $2";
        match db {
            // A few rows by their key: read in place unless SQLite is busy.
            Db::Sqlite(_, readers, _) => {
                let list = list.name();
                let read = move |conn: &rusqlite::Connection| {
                    conn.prepare_cached(SQL)?
                        .query_row((user_id, list), |row| row.get(0))
                };
                match readers.read_now(read) {
                    Some(revision) => revision,
                    None => readers.read(read).await,
                }
            }
            Db::Postgres(pool, _) => self.read_together(pool, user_id, list).await,
        }
    }

    /// Asks for the revision and waits for the next query, starting one if none is out.
    async fn read_together(&self, pool: &PgPool, user_id: i64, list: List) -> Result<i64> {
        let (sender, revision) = oneshot::channel();
        let pool = pool.clone();
        // One query reads every revision asked so far.
        self.asked
            .ask((user_id, list, sender), usize::MAX, move |waiting| {
                let pool = pool.clone();
                async move { answer(&pool, waiting).await }
            });
        // A request waits for the query out before its own: bounded as a pool's wait is,
        // so a database that does not answer gets a 503 after 5 s, not after two queries'.
        match tokio::time::timeout(ACQUIRE_TIMEOUT, revision).await {
            Ok(answer) => answer.map_err(|_| Error::internal("revision read stopped"))?,
            Err(_) => Err(Error::Unavailable("Service temporarily unavailable")),
        }
    }
}

/// One query for every list asked (each once), and each request its list's revision.
async fn answer(pool: &PgPool, mut waiting: Vec<Waiting>) {
    const SQL: &str = "SELECT CAST(k.n AS BIGINT), CAST(COALESCE(SUM(r.revision), 0) AS BIGINT) \
                       FROM UNNEST($1::BIGINT[], $2::TEXT[]) WITH ORDINALITY AS k(user_id, list, n) \
                       LEFT JOIN list_revisions r ON r.user_id = k.user_id AND r.list = k.list \
                       GROUP BY k.n";
    // Requests that went away (or stopped waiting) need no revision.
    waiting.retain(|(.., answer)| !answer.is_closed());
    if waiting.is_empty() {
        return;
    }
    let mut lists: HashMap<(i64, List), usize> = HashMap::new();
    let (mut users, mut names) = (Vec::new(), Vec::new());
    for &(user_id, list, _) in &waiting {
        lists.entry((user_id, list)).or_insert_with(|| {
            users.push(user_id);
            names.push(list.name());
            users.len()
        });
    }
    let read: Result<HashMap<i64, i64>, sqlx::Error> = sqlx::query_as(SQL)
        .bind(users)
        .bind(names)
        .fetch_all(pool)
        .await
        .map(|rows: Vec<(i64, i64)>| rows.into_iter().collect());
    if let Err(err) = &read {
        tracing::error!(error = %err, lists = lists.len(), "reading list revisions failed");
    }
    for (user_id, list, answer) in waiting {
        let revision = match &read {
            Ok(revisions) => {
                let n = lists[&(user_id, list)] as i64;
                revisions
                    .get(&n)
                    .copied()
                    .ok_or_else(|| Error::internal("revision missing from its query"))
            }
            Err(err) => Err(Error::shared(err)),
        };
        // A request that went away meanwhile needs no answer.
        let _ = answer.send(revision);
    }
}
