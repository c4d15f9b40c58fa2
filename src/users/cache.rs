//! A short-lived cache of user rows for authentication, so an authenticated read costs
//! one query instead of two. Writes through this instance are seen at once; changes made
//! elsewhere (another instance, an operator deactivating an account) within the TTL.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, RwLock,
    },
    time::{Duration, Instant},
};

use tokio::sync::watch;

use super::{store, User};
use crate::{db::Db, error::Result};

/// Beyond this many users the cache starts over rather than grow without bound.
const MAX_ENTRIES: usize = 100_000;

/// A finished load as the requests that waited for it see it: the row or the failure, and
/// the count of forgets when it began.
struct Loaded {
    user: Result<Option<User>>,
    forgotten: u64,
}

pub struct UserCache {
    ttl: Duration,
    entries: RwLock<HashMap<i64, (Instant, User)>>,
    /// Loads in flight: requests that miss while a user's row is being read (a burst on a
    /// cold or expired entry) take that read's result instead of each reading the row.
    loads: Mutex<HashMap<i64, watch::Receiver<Option<Loaded>>>>,
    /// Moved by every [`UserCache::forget`]: a row read before a change made through this
    /// instance is neither cached nor handed to requests that came after the change.
    forgotten: AtomicU64,
}

impl UserCache {
    /// A zero `ttl` disables caching.
    pub fn new(ttl: Duration) -> Self {
        UserCache {
            ttl,
            entries: RwLock::default(),
            loads: Mutex::default(),
            forgotten: AtomicU64::new(0),
        }
    }

    pub async fn get(&self, db: &Db, id: i64) -> Result<Option<User>> {
        if self.ttl.is_zero() {
            return store::find_by_id(db, id).await;
        }
        if let Some(user) = self.fresh(id) {
            return Ok(Some(user));
        }
        let forgotten = self.forgotten.load(Ordering::Acquire);
        let waiting = {
            let mut loads = self.loads.lock().expect("loads lock");
            match loads.get(&id) {
                Some(load) => Ok(load.clone()),
                None => {
                    let (done, load) = watch::channel(None);
                    loads.insert(id, load);
                    Err(done)
                }
            }
        };
        let mut load = match waiting {
            Ok(load) => load,
            Err(done) => return self.lead(db, id, done).await,
        };
        // The load began before this request: its row stands unless the user changed since
        // (a failure stands as it is).
        let shared = match load.wait_for(Option::is_some).await {
            Ok(loaded) => match loaded.as_ref().expect("a finished load") {
                Loaded {
                    user: Ok(user),
                    forgotten: since,
                } if *since == forgotten => Some(Ok(user.clone())),
                Loaded { user: Ok(_), .. } => None,
                Loaded { user: Err(err), .. } => Some(Err(err.for_waiter())),
            },
            Err(_) => None,
        };
        if let Some(answer) = shared {
            return answer;
        }
        // The load went away unfinished, or the user changed meanwhile: read it anew.
        self.load(db, id).await.map(|(user, _)| user)
    }

    /// Reads the row for every request that asks while it is being read.
    async fn lead(
        &self,
        db: &Db,
        id: i64,
        done: watch::Sender<Option<Loaded>>,
    ) -> Result<Option<User>> {
        let _registered = Registered { cache: self, id };
        let read = self.load(db, id).await;
        let loaded = match &read {
            Ok((user, forgotten)) => Loaded {
                user: Ok(user.clone()),
                forgotten: *forgotten,
            },
            Err(err) => Loaded {
                user: Err(err.for_waiter()),
                forgotten: 0,
            },
        };
        done.send_replace(Some(loaded));
        read.map(|(user, _)| user)
    }

    fn fresh(&self, id: i64) -> Option<User> {
        let entries = self.entries.read().expect("cache lock");
        let (loaded, user) = entries.get(&id)?;
        (loaded.elapsed() < self.ttl).then(|| user.clone())
    }

    /// Reads the row and caches it unless a change was made meanwhile; also returns the
    /// count of forgets it began at.
    async fn load(&self, db: &Db, id: i64) -> Result<(Option<User>, u64)> {
        let forgotten = self.forgotten.load(Ordering::Acquire);
        let user = store::find_by_id(db, id).await?;
        let mut entries = self.entries.write().expect("cache lock");
        match &user {
            Some(user) if self.forgotten.load(Ordering::Acquire) == forgotten => {
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
                entries.insert(id, (Instant::now(), user.clone()));
            }
            _ => {
                entries.remove(&id);
            }
        }
        Ok((user, forgotten))
    }

    /// Drops a user whose row this instance just changed.
    pub fn forget(&self, id: i64) {
        let mut entries = self.entries.write().expect("cache lock");
        self.forgotten.fetch_add(1, Ordering::AcqRel);
        entries.remove(&id);
    }
}

/// A load in flight, listed until it ends (finished, failed or dropped with its request).
struct Registered<'a> {
    cache: &'a UserCache,
    id: i64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        if let Ok(mut loads) = self.cache.loads.lock() {
            loads.remove(&self.id);
        }
    }
}
