//! A short-lived cache of user rows for authentication, so an authenticated read costs
//! one query instead of two. Writes through this instance are seen at once; changes made
//! elsewhere (another instance, an operator deactivating an account) within the TTL.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

use super::{store, User};
use crate::{db::Db, error::Result};

/// Beyond this many users the cache starts over rather than grow without bound.
const MAX_ENTRIES: usize = 100_000;

pub struct UserCache {
    ttl: Duration,
    entries: RwLock<HashMap<i64, (Instant, User)>>,
}

impl UserCache {
    /// A zero `ttl` disables caching.
    pub fn new(ttl: Duration) -> Self {
        UserCache {
            ttl,
            entries: RwLock::default(),
        }
    }

    pub async fn get(&self, db: &Db, id: i64) -> Result<Option<User>> {
        if self.ttl.is_zero() {
            return store::find_by_id(db, id).await;
        }
        if let Some((loaded, user)) = self.entries.read().expect("cache lock").get(&id) {
            if loaded.elapsed() < self.ttl {
                return Ok(Some(user.clone()));
            }
        }
        let user = store::find_by_id(db, id).await?;
        let mut entries = self.entries.write().expect("cache lock");
        match &user {
            Some(user) => {
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
                entries.insert(id, (Instant::now(), user.clone()));
            }
            None => {
                entries.remove(&id);
            }
        }
        Ok(user)
    }

    /// Drops a user whose row this instance just changed.
    pub fn forget(&self, id: i64) {
        self.entries.write().expect("cache lock").remove(&id);
    }
}
