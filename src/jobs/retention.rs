//! Retention (SPEC §6.1): the periodic `jobs.retention` job deletes rows that have served
//! their purpose — finished jobs, webhook deliveries, WhatsApp messages, expired codes —
//! in small batches, so no lock is held long and serving never pauses.
//!
//! The period is an hour and each run is a job like any other, so the schedule survives
//! crashes and restarts and needs no timer: every instance queues the current hour's run
//! at start-up, and each run first queues the next hour's. The dedupe key names the hour
//! (`retention:2025-01-31T13:00Z`), so however many instances start, each hour has one
//! run. A run that fails is retried; the next hour's is already queued.
//!
//! Slices register what to prune in their `register_jobs` ([`Workers::prune`]), each
//! with the one statement that deletes a batch of its table's old rows.
//!
//! [`Workers::prune`]: super::Workers::prune

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use futures_util::future::BoxFuture;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Handler, Job, NewJob, Outcome, Queue, Stop};
use crate::{db::now, error::Error};

/// The job kind of a retention run.
pub const RETENTION_JOB: &str = "jobs.retention";

/// How long Meta retries a webhook delivery: records that make a retry a no-op are kept
/// at least this long, whatever `RETENTION_DAYS` says.
const DEDUPE_WINDOW_DAYS: u32 = 7;

/// Rows one statement deletes: on SQLite a few milliseconds of the write lock.
pub const BATCH: i64 = 500;

/// The least pause between two batches. Each pause is at least as long as the batch
/// before it, so pruning takes at most half of the database's write time.
const MIN_PAUSE: Duration = Duration::from_millis(5);

/// How often an instance tries again to queue the current run when the database is down.
const SCHEDULE_RETRY: Duration = Duration::from_secs(30);

/// How old a table's rows must be before they are deleted.
#[derive(Clone, Copy, Debug)]
pub enum Keep {
    /// `RETENTION_DAYS`.
    Retention,
    /// `RETENTION_DAYS`, but never less than [`DEDUPE_WINDOW_DAYS`]: records that make a
    /// redelivered webhook a no-op.
    Dedupe,
    /// A fixed time (zero for rows whose column is an expiry).
    For(TimeDelta),
}

impl Keep {
    /// The instant before which rows are old.
    pub fn cutoff(self, now: DateTime<Utc>, retention_days: u32) -> DateTime<Utc> {
        let days = |days: u32| TimeDelta::days(i64::from(days));
        match self {
            Keep::Retention => now - days(retention_days),
            Keep::Dedupe => now - days(retention_days.max(DEDUPE_WINDOW_DAYS)),
            Keep::For(age) => now - age,
        }
    }
}

/// One table's retention, declared by the slice that owns the table.
#[derive(Clone, Copy, Debug)]
pub struct Prune {
    /// The table, as `/metrics` labels it.
    pub table: &'static str,
    pub keep: Keep,
    /// Deletes at most `$2` of the oldest rows older than the cutoff `$1`: one short
    /// statement, found through an index. Repeat the age test in the outer `WHERE`, so
    /// a row changed meanwhile (a job retried) is left alone on PostgreSQL too.
    pub sql: &'static str,
}

/// The handler of [`RETENTION_JOB`].
#[derive(Clone)]
pub(super) struct Retention {
    queue: Queue,
    prunes: Arc<[Prune]>,
}

impl Retention {
    pub(super) fn new(queue: Queue, prunes: Vec<Prune>) -> Self {
        for prune in &prunes {
            queue.metrics().add_pruned(prune.table, 0);
        }
        Retention {
            queue,
            prunes: prunes.into(),
        }
    }

    async fn prune_all(self) -> Result<(), Stop> {
        let now = now();
        self.queue
            .enqueue(&run_of(period_of(now) + TimeDelta::hours(1)))
            .await
            .map_err(database_stop)?;
        for prune in self.prunes.iter() {
            let cutoff = prune.keep.cutoff(now, self.queue.config().retention_days);
            let started = Instant::now();
            let deleted = self
                .prune_table(prune, cutoff)
                .await
                .map_err(database_stop)?;
            if deleted > 0 {
                let seconds = started.elapsed().as_secs_f64();
                tracing::info!(table = prune.table, deleted, seconds, "old rows pruned");
            }
        }
        Ok(())
    }

    /// Deletes batch after batch until one comes back short; answers the rows deleted.
    async fn prune_table(&self, prune: &Prune, cutoff: DateTime<Utc>) -> Result<u64, sqlx::Error> {
        let mut total = 0;
        loop {
            let started = Instant::now();
            let deleted = delete_batch(&self.queue, prune.sql, cutoff).await?;
            self.queue.metrics().add_pruned(prune.table, deleted);
            total += deleted;
            if deleted < BATCH as u64 {
                return Ok(total);
            }
            tokio::time::sleep(started.elapsed().max(MIN_PAUSE)).await;
        }
    }
}

impl Handler for Retention {
    fn run(&self, _job: Job) -> BoxFuture<'static, Outcome> {
        let retention = self.clone();
        Box::pin(async move {
            match retention.prune_all().await {
                Ok(()) => Outcome::Done,
                Err(stop) => stop.into(),
            }
        })
    }
}

async fn delete_batch(queue: &Queue, sql: &str, cutoff: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    Ok(crate::with_pool!(queue.db(), |pool| sqlx::query(sql)
        .bind(cutoff)
        .bind(BATCH)
        .execute(pool)
        .await?
        .rows_affected()))
}

fn database_stop(err: sqlx::Error) -> Stop {
    Stop::from(Error::from(err))
}

/// Queues this hour's run (a no-op when another instance did), trying again while the
/// database is unreachable; ends early when the instance stops.
pub(super) async fn schedule(queue: Queue, stop: CancellationToken) {
    loop {
        match queue.enqueue(&run_of(period_of(now()))).await {
            Ok(_) => return,
            Err(err) => tracing::warn!(error = %err, "cannot queue the retention run"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(SCHEDULE_RETRY) => {}
        }
    }
}

/// The start of the hour `at` falls in.
pub fn period_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::hours(1)).unwrap_or(at)
}

/// The run of the period starting at `period`, due then. (No serial key: a run queued
/// for a later hour must never hold back one queued again for this hour; two runs that
/// meet only race to delete the same old rows, each deleted once.)
pub fn run_of(period: DateTime<Utc>) -> NewJob {
    NewJob::new(RETENTION_JOB, json!({}))
        .dedupe_key(format!("retention:{}", period.format("%Y-%m-%dT%H:%MZ")))
        .run_at(period)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_period_is_an_hour_named_by_its_start() {
        let period = period_of(at("2025-01-31T13:59:59.999Z"));
        assert_eq!(period, at("2025-01-31T13:00:00Z"));
        let run = run_of(period + TimeDelta::hours(1));
        assert_eq!(
            run.dedupe_key.as_deref(),
            Some("retention:2025-01-31T14:00Z")
        );
        assert_eq!(run.run_at, Some(at("2025-01-31T14:00:00Z")));
        assert_eq!(run.kind, RETENTION_JOB);
    }

    #[test]
    fn dedupe_records_outlive_meta_retries() {
        let now = at("2025-01-31T12:00:00Z");
        assert_eq!(Keep::Retention.cutoff(now, 1), at("2025-01-30T12:00:00Z"));
        assert_eq!(Keep::Dedupe.cutoff(now, 1), at("2025-01-24T12:00:00Z"));
        assert_eq!(Keep::Dedupe.cutoff(now, 14), at("2025-01-17T12:00:00Z"));
        let notice = Keep::For(TimeDelta::hours(1));
        assert_eq!(notice.cutoff(now, 14), at("2025-01-31T11:00:00Z"));
    }
}
