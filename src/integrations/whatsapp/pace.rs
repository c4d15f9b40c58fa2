//! Meta's throttling (SPEC §6.3): a call refused with a "slow down" code (`130429`,
//! `131056`, `80007`, `4`) is tried again later and never ends a job as failed, and after
//! a pair-rate refusal (`131056`) the messages to that number go out at least
//! [`PAIR_RATE_GAP`] apart.
//!
//! A throttled call normally ends the run with a retry at the time Meta allows, so the
//! worker is free meanwhile and the job's serial key keeps later replies behind it. On
//! the job's last attempt a retry would fail it, so the wait happens in the run instead.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::client::{GraphError, PAIR_RATE, PAIR_RATE_GAP};
use crate::{
    db::now,
    jobs::{self, Job, Stop},
};

/// How one run of a job spaces its messages and meets Meta's throttling.
#[derive(Debug)]
pub struct Pacer {
    /// The job is on its last attempt: wait here rather than retry.
    wait_here: bool,
    backoff_base: Duration,
    backoff_cap: Duration,
    /// Throttled calls waited for in this run (their backoff doubles).
    waited: u32,
    /// Meta refused a message for the pair rate: from then on messages keep the gap.
    paced: bool,
    /// The last message sent or refused, while paced.
    last: Option<DateTime<Utc>>,
}

impl Pacer {
    /// A pacer for one run of `job`; `paced_at` is when a message of this work was last
    /// refused for the pair rate, `last_sent` when its last message went out.
    pub fn new(
        job: &Job,
        queue: &jobs::Settings,
        paced_at: Option<DateTime<Utc>>,
        last_sent: Option<DateTime<Utc>>,
    ) -> Self {
        Pacer {
            wait_here: job.is_last_attempt(),
            backoff_base: queue.backoff_base,
            backoff_cap: queue.backoff_cap,
            waited: 0,
            paced: paced_at.is_some(),
            last: paced_at.max(last_sent),
        }
    }

    /// Before a message goes out: while paced, waits until the gap since the last one
    /// has passed.
    pub async fn before_send(&self) {
        if !self.paced {
            return;
        }
        if let Some(last) = self.last {
            let due = last + PAIR_RATE_GAP;
            if let Ok(wait) = (due - now()).to_std() {
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// A message went out.
    pub fn sent(&mut self) {
        self.last = Some(now());
    }

    /// A call failed with `err`. Throttling waits: `Ok(())` once the call may be tried
    /// again in this run (last attempt), else the retry that ends the run. Other errors
    /// end the run as they are.
    pub async fn after_error(&mut self, err: GraphError) -> Result<(), Stop> {
        let GraphError::Throttled {
            code, retry_after, ..
        } = &err
        else {
            return Err(err.into());
        };
        let (code, retry_after) = (*code, *retry_after);
        if code == PAIR_RATE {
            self.paced = true;
            self.last = Some(now());
        }
        if !self.wait_here {
            return Err(err.into());
        }
        let wait = GraphError::throttle_wait(code, retry_after).unwrap_or_else(|| self.backoff());
        tracing::info!(
            code,
            wait_ms = wait.as_millis() as u64,
            "Graph API throttled on the last attempt; waiting before trying again"
        );
        self.waited = self.waited.saturating_add(1);
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// The queue's backoff, doubling with each wait in this run.
    fn backoff(&self) -> Duration {
        self.backoff_base
            .saturating_mul(1 << self.waited.min(20))
            .min(self.backoff_cap)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn job(attempt: u32) -> Job {
        Job {
            id: 1,
            kind: "whatsapp.reply".into(),
            payload: json!({}),
            dedupe_key: None,
            serial_key: None,
            attempt,
            max_attempts: 3,
        }
    }

    fn throttled(code: i64) -> GraphError {
        GraphError::Throttled {
            code,
            reason: format!("code {code}"),
            retry_after: None,
        }
    }

    #[tokio::test]
    async fn throttling_retries_the_job_and_a_pair_rate_refusal_paces_what_follows() {
        let queue = jobs::Settings::for_tests();
        let mut pacer = Pacer::new(&job(1), &queue, None, None);
        let stop = pacer.after_error(throttled(130_429)).await.unwrap_err();
        assert!(matches!(stop, Stop::Retry { after: None, .. }), "{stop:?}");
        assert!(!pacer.paced);
        let stop = pacer.after_error(throttled(PAIR_RATE)).await.unwrap_err();
        assert_eq!(
            stop,
            Stop::Retry {
                reason: "code 131056".into(),
                after: Some(PAIR_RATE_GAP)
            }
        );
        assert!(pacer.paced && pacer.last.is_some());
        let permanent = GraphError::Permanent {
            code: Some(131_047),
            reason: "window".into(),
        };
        assert_eq!(
            pacer.after_error(permanent).await,
            Err(Stop::Failed("window".into()))
        );
    }

    #[tokio::test]
    async fn on_the_last_attempt_throttling_waits_in_the_run_instead_of_failing() {
        let queue = jobs::Settings::for_tests();
        let mut pacer = Pacer::new(&job(3), &queue, None, None);
        let started = std::time::Instant::now();
        assert_eq!(pacer.after_error(throttled(4)).await, Ok(()));
        assert_eq!(pacer.after_error(throttled(80_007)).await, Ok(()));
        assert!(
            started.elapsed() >= queue.backoff_base * 3,
            "backoff doubles"
        );
        assert_eq!(pacer.waited, 2);
    }

    #[tokio::test]
    async fn a_paced_run_keeps_the_gap_from_what_went_before() {
        let queue = jobs::Settings::for_tests();
        let refused = now() - chrono::Duration::milliseconds(5_800);
        let pacer = Pacer::new(&job(1), &queue, Some(refused), None);
        let started = std::time::Instant::now();
        pacer.before_send().await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(150) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        let unpaced = Pacer::new(&job(1), &queue, None, Some(now()));
        let started = std::time::Instant::now();
        unpaced.before_send().await;
        assert!(started.elapsed() < Duration::from_millis(50));
    }
}
