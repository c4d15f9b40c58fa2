//! List pages kept per instance, and served again only while they are current.
//!
//! Every write to a list's rows raises the list's revision in the same transaction (a
//! database trigger, so no writer can forget it: migration `0006_list_revisions`). A
//! request reads its list's revision (a few rows by their key: [`super::revisions`]),
//! and the page kept with that revision is the page it would read: nothing written
//! since, on any instance, by any writer. Otherwise the page is read and kept with the
//! revision read *before* it, so a page is never older than its revision; a write
//! committed between the two reads makes the next request's revision differ, and it
//! reads again. A revision only grows (user ids are never reused), so a kept page can
//! never match a later state by accident.
//!
//! What it saves is the page's query and its JSON (on PostgreSQL a 50-row page costs the
//! database ~150 µs of CPU, the revision a few µs): bench/README.md, "Pages kept while
//! current".

use std::future::Future;

use axum::body::Bytes;
use quick_cache::{sync::Cache, Weighter};

pub use super::revisions::List;
use super::{
    page::{Page, PageRequest},
    revisions::Revisions,
    Db,
};
use crate::error::Result;

/// What a page answers: whose list, which page, and the list's filter (chat history's
/// session, agent and project; none for the others).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PageKey {
    pub user_id: i64,
    pub list: List,
    pub limit: i64,
    pub offset: i64,
    pub filter: Option<(Option<String>, Option<i64>, Option<i64>)>,
}

impl PageKey {
    pub fn new(user_id: i64, list: List, request: PageRequest) -> Self {
        PageKey {
            user_id,
            list,
            limit: request.limit,
            offset: request.offset,
            filter: None,
        }
    }
}

/// A kept answer: the revision it was read at, and its body.
#[derive(Clone)]
struct Kept {
    revision: i64,
    body: Bytes,
}

/// Weighs a kept page by its size, so the cache is bounded in bytes.
#[derive(Clone)]
struct BySize;

impl Weighter<PageKey, Kept> for BySize {
    fn weight(&self, key: &PageKey, kept: &Kept) -> u64 {
        let filter = key
            .filter
            .as_ref()
            .map_or(0, |(session, ..)| session.as_ref().map_or(0, String::len));
        (std::mem::size_of::<(PageKey, Kept)>() + filter + kept.body.len()) as u64
    }
}

/// The pages this instance keeps, at most `capacity` bytes of them; none when 0.
pub struct Pages {
    cache: Option<Cache<PageKey, Kept, BySize>>,
    revisions: Revisions,
}

impl Pages {
    pub fn new(capacity: u64) -> Self {
        // An estimate for the table's first size: pages of ~16 KB.
        let items = usize::try_from(capacity / 16_384)
            .unwrap_or(usize::MAX)
            .max(16);
        Pages {
            cache: (capacity > 0).then(|| Cache::with_weighter(items, capacity, BySize)),
            revisions: Revisions::default(),
        }
    }

    /// The answer's body for `key`: the kept one while its revision is current, otherwise
    /// `read`'s page written by `body` (and kept).
    pub async fn get_or_read(
        &self,
        db: &Db,
        key: PageKey,
        read: impl Future<Output = Result<Page>>,
        body: impl FnOnce(Page) -> String,
    ) -> Result<Bytes> {
        let Some(cache) = &self.cache else {
            return Ok(body(read.await?).into());
        };
        let revision = self.revisions.read(db, key.user_id, key.list).await?;
        if let Some(kept) = cache.get(&key).filter(|kept| kept.revision == revision) {
            return Ok(kept.body);
        }
        let body = Bytes::from(body(read.await?));
        // A request that read a later revision may have kept its page meanwhile.
        if cache.get(&key).is_none_or(|kept| kept.revision < revision) {
            cache.insert(
                key,
                Kept {
                    revision,
                    body: body.clone(),
                },
            );
        }
        Ok(body)
    }
}
