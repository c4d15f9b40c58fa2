//! Workers: one claiming loop per job kind, at most `concurrency` of its jobs at once,
//! each run under a renewed lease; shutdown waits for running jobs, then hands back the
//! ones that did not finish in time.

use std::{panic::AssertUnwindSafe, sync::Arc, time::Duration};

use futures_util::FutureExt;
use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument;

use super::{
    backoff,
    retention::{self, Prune, Retention, RETENTION_JOB},
    store::{self, Claim, ClaimedRow, Transition},
    Handler, Job, Outcome, Queue,
};

/// Handlers registered at start-up, before the workers start.
pub struct Workers {
    queue: Queue,
    kinds: Vec<(String, usize, Arc<dyn Handler>)>,
    prunes: Vec<Prune>,
}

impl Workers {
    pub fn new(queue: Queue) -> Self {
        Workers {
            queue,
            kinds: Vec::new(),
            prunes: Vec::new(),
        }
    }

    /// Runs jobs of `kind` with `handler`, at most `concurrency` at once in this instance.
    pub fn register(
        &mut self,
        kind: impl Into<String>,
        concurrency: usize,
        handler: impl Handler,
    ) -> &mut Self {
        let kind = kind.into();
        self.queue.know(&kind);
        self.kinds
            .push((kind, concurrency.max(1), Arc::new(handler)));
        self
    }

    /// How many runs a job gets before it fails (`JOB_MAX_ATTEMPTS`).
    pub fn max_attempts(&self) -> u32 {
        self.queue.config().max_attempts
    }

    /// The handler registered for `kind`, for an operator's retry or cancel.
    pub fn handler(&self, kind: &str) -> Option<Arc<dyn Handler>> {
        self.kinds
            .iter()
            .find(|(known, _, _)| known == kind)
            .map(|(_, _, handler)| handler.clone())
    }

    /// Deletes a table's old rows in the hourly retention job ([`retention`]), which
    /// runs once anything is registered here.
    pub fn prune(&mut self, prune: Prune) -> &mut Self {
        self.prunes.push(prune);
        self
    }

    /// Starts claiming; `stop` ends the claiming (then call [`RunningWorkers::shutdown`]).
    pub fn start(mut self, stop: CancellationToken) -> RunningWorkers {
        let retains = !self.prunes.is_empty();
        if retains {
            let prunes = std::mem::take(&mut self.prunes);
            self.register(RETENTION_JOB, 1, Retention::new(self.queue.clone(), prunes));
        }
        let running = RunningWorkers {
            loops: TaskTracker::new(),
            jobs: TaskTracker::new(),
            hand_back: CancellationToken::new(),
            stop,
            grace: self.queue.config().shutdown_grace,
        };
        for (kind, concurrency, handler) in self.kinds {
            let worker = KindWorker {
                queue: self.queue.clone(),
                kind,
                handler,
                slots: Arc::new(Semaphore::new(concurrency)),
                jobs: running.jobs.clone(),
                hand_back: running.hand_back.clone(),
            };
            running.loops.spawn(worker.claim_loop(running.stop.clone()));
        }
        if retains {
            let schedule = retention::schedule(self.queue.clone(), running.stop.clone());
            running.loops.spawn(schedule);
        }
        running.loops.close();
        running
    }
}

/// The started workers.
pub struct RunningWorkers {
    loops: TaskTracker,
    jobs: TaskTracker,
    hand_back: CancellationToken,
    stop: CancellationToken,
    grace: Duration,
}

impl RunningWorkers {
    /// Stops claiming, lets running jobs finish within `JOB_SHUTDOWN_GRACE_SECONDS`, and
    /// hands the others back to the queue (not counted as an attempt).
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.loops.wait().await;
        self.jobs.close();
        if tokio::time::timeout(self.grace, self.jobs.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                running = self.jobs.len(),
                "jobs still running at shutdown are handed back"
            );
            self.hand_back.cancel();
            self.jobs.wait().await;
        }
    }
}

struct KindWorker {
    queue: Queue,
    kind: String,
    handler: Arc<dyn Handler>,
    slots: Arc<Semaphore>,
    jobs: TaskTracker,
    hand_back: CancellationToken,
}

impl KindWorker {
    async fn claim_loop(self, stop: CancellationToken) {
        let waker = self.queue.waker(&self.kind);
        let config = self.queue.config().clone();
        loop {
            let slot = tokio::select! {
                _ = stop.cancelled() => return,
                slot = self.slots.clone().acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => return,
                },
            };
            let claimed = store::claim(
                self.queue.db(),
                &self.kind,
                &self.queue.inner.worker_id,
                config.lease,
            )
            .await;
            match claimed {
                Ok(Some(row)) => {
                    let run = self.run(row);
                    self.jobs.spawn(async move {
                        run.await;
                        drop(slot);
                    });
                    continue;
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(kind = %self.kind, error = %err, "cannot claim jobs");
                }
            }
            drop(slot);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = waker.notified() => {}
                _ = tokio::time::sleep(config.poll_interval) => {}
            }
        }
    }

    fn run(&self, row: ClaimedRow) -> impl std::future::Future<Output = ()> + Send + 'static {
        let queue = self.queue.clone();
        let handler = self.handler.clone();
        let hand_back = self.hand_back.clone();
        let claim = Claim {
            id: row.id,
            worker_id: queue.inner.worker_id.clone(),
            attempts: row.attempts,
            serial_key: row.serial_key.clone(),
        };
        let job = Job {
            id: row.id,
            kind: row.kind,
            payload: row.payload.0,
            dedupe_key: row.dedupe_key,
            serial_key: row.serial_key.clone(),
            attempt: u32::try_from(row.attempts).unwrap_or(u32::MAX),
            max_attempts: queue.config().max_attempts,
        };
        let span = tracing::info_span!("job", id = job.id, kind = %job.kind, attempt = job.attempt);
        async move {
            if let Err(err) = run_claimed(&queue, handler.as_ref(), job, &claim, &hand_back).await {
                // The lease runs out and the job is claimed again.
                tracing::warn!(error = %err, "cannot record a job's outcome");
            }
        }
        .instrument(span)
    }
}

async fn run_claimed(
    queue: &Queue,
    handler: &dyn Handler,
    job: Job,
    claim: &Claim,
    hand_back: &CancellationToken,
) -> Result<(), sqlx::Error> {
    let db = queue.db();
    if job.attempt > job.max_attempts {
        // Its earlier runs died with their worker (crash, kill -9) until none were left.
        let reason = format!(
            "gave up after {} attempts: the worker running it stopped",
            job.max_attempts
        );
        handler.failed(job, reason.clone()).await;
        store::finish(db, claim, Transition::Failed(&reason)).await?;
        return Ok(());
    }
    let run = AssertUnwindSafe(handler.run(job.clone())).catch_unwind();
    let outcome = tokio::select! {
        outcome = run => outcome.unwrap_or_else(|_| Outcome::retry("the job handler panicked")),
        () = keep_lease(queue, claim) => {
            tracing::warn!("lease lost to another worker; this run is abandoned");
            return Ok(());
        }
        () = hand_back.cancelled() => {
            store::finish(db, claim, Transition::HandBack).await?;
            return Ok(());
        }
    };
    let config = queue.config();
    let transition = match &outcome {
        Outcome::Done => Transition::Done,
        Outcome::Retry { reason, after } if !job.is_last_attempt() => {
            let wait = after.unwrap_or_else(|| {
                backoff::delay(job.attempt, config.backoff_base, config.backoff_cap)
            });
            tracing::info!(reason = %reason, retry_in_ms = wait.as_millis() as u64, "job will be retried");
            Transition::Retry {
                at: crate::db::now() + wait,
                reason,
            }
        }
        Outcome::Retry { reason, .. } | Outcome::Failed(reason) => {
            tracing::warn!(reason = %reason, "job failed");
            handler.failed(job, reason.clone()).await;
            Transition::Failed(reason)
        }
    };
    if !store::finish(db, claim, transition).await? {
        tracing::warn!("job finished after its lease was taken over");
    }
    Ok(())
}

/// Renews the lease every third of its length; returns only when the claim is lost.
async fn keep_lease(queue: &Queue, claim: &Claim) {
    let lease = queue.config().lease;
    let mut ticks = tokio::time::interval(lease / 3);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match store::renew(queue.db(), claim, lease).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(err) => tracing::warn!(error = %err, "cannot renew a job lease"),
        }
    }
}
