//! Runs the reply jobs: claims due messages under a lease (renewed while it works), so
//! a crashed instance's work is picked up again; retries with exponential backoff and
//! jitter; records why a message finally failed.

use std::{sync::Arc, time::Duration};

use rand::Rng;
use tokio::sync::Semaphore;

use super::{
    reply::{process, Failure},
    store::{self, Stored},
};
use crate::{db::now, state::AppState};

/// Replies worked on at once by one instance.
const CONCURRENCY: usize = 4;
/// How often due retries and expired leases are looked for when nothing wakes us.
const POLL: Duration = Duration::from_secs(1);
const MAX_ATTEMPTS: i32 = 8;
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// Starts the worker; it stops claiming when the server shuts down. A reply cut short
/// by the shutdown is claimed again once its lease runs out.
pub fn spawn(state: AppState) {
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(CONCURRENCY));
        loop {
            let permit = tokio::select! {
                () = state.shutdown.cancelled() => break,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            match store::claim(&state.db, lease(&state)).await {
                Ok(Some(message)) => {
                    let state = state.clone();
                    tokio::spawn(async move {
                        run(&state, message).await;
                        drop(permit);
                    });
                    continue;
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "cannot claim WhatsApp replies"),
            }
            drop(permit);
            tokio::select! {
                () = state.shutdown.cancelled() => break,
                () = state.whatsapp.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    });
}

/// A claim holds this long without renewal; a run renews it every third of that.
fn lease(state: &AppState) -> chrono::Duration {
    chrono::Duration::from_std(state.config.jobs.lease).unwrap_or(chrono::Duration::seconds(30))
}

async fn run(state: &AppState, message: Stored) {
    let renewing = async {
        loop {
            tokio::time::sleep(state.config.jobs.lease / 3).await;
            if let Err(err) = store::renew(&state.db, message.id, lease(state)).await {
                tracing::warn!(error = %err, "cannot renew a WhatsApp reply's lease");
            }
        }
    };
    let outcome = tokio::select! {
        outcome = process(state, &message) => outcome,
        () = renewing => unreachable!("renewal never ends"),
    };
    let recorded = match outcome {
        Ok(()) => store::finish(&state.db, message.id, None).await,
        Err(Failure::Permanent(reason)) => {
            tracing::warn!(message_id = message.id, %reason, "WhatsApp reply failed");
            store::finish(&state.db, message.id, Some(&reason)).await
        }
        Err(Failure::Retry { reason, .. }) if message.attempts >= MAX_ATTEMPTS => {
            tracing::warn!(message_id = message.id, %reason, "WhatsApp reply failed after every attempt");
            store::finish(&state.db, message.id, Some(&reason)).await
        }
        Err(Failure::Retry { reason, after }) => {
            let wait = after.unwrap_or_default().max(backoff(message.attempts));
            tracing::info!(message_id = message.id, %reason, retry_in_ms = wait.as_millis() as u64, "WhatsApp reply will be retried");
            let run_at =
                now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::minutes(10));
            store::retry_at(&state.db, message.id, run_at, &reason).await
        }
    };
    if let Err(err) = recorded {
        // The lease runs out and another run picks the message up.
        tracing::warn!(error = %err, "cannot record a WhatsApp reply's outcome");
    }
}

/// 2 s, 4 s, 8 s … capped at 10 minutes, each within ±20 % so retries spread out.
fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    let base = FIRST_BACKOFF.saturating_mul(1 << exponent).min(MAX_BACKOFF);
    base.mul_f64(rand::rng().random_range(0.8..=1.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_two_seconds_and_caps_at_ten_minutes() {
        let b1 = backoff(1);
        assert!(b1 >= Duration::from_millis(1600) && b1 <= Duration::from_millis(2400));
        let b3 = backoff(3);
        assert!(b3 >= Duration::from_millis(6400) && b3 <= Duration::from_millis(9600));
        assert!(backoff(30) <= Duration::from_secs(720));
    }
}
