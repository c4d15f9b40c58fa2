//! The `whatsapp.reply` job: one per incoming message, run on the durable queue (§6.1),
//! so a reply survives crashes and is retried with backoff.

use futures_util::future::BoxFuture;

use super::{
    pace::Pacer,
    reply::process,
    store::{self, Stored, KIND},
};
use crate::{
    jobs::{Handler, Job, Outcome, Stop, Workers},
    state::AppState,
};

/// Replies worked on at once by one instance.
const CONCURRENCY: usize = 4;

/// Registers the reply handler with the instance's workers.
pub fn register(workers: &mut Workers, state: &AppState) {
    workers.register(
        KIND,
        CONCURRENCY,
        ReplyJob {
            state: state.clone(),
        },
    );
}

struct ReplyJob {
    state: AppState,
}

fn message_id(job: &Job) -> Option<i64> {
    job.payload["message_id"].as_i64()
}

/// This run's pacing: after a pair-rate refusal, the gap counts from the last part sent.
async fn pacer(state: &AppState, job: &Job, message: &Stored) -> crate::error::Result<Pacer> {
    let last_sent = match message.paced_at {
        Some(_) => store::last_sent_at(&state.db, message.id).await?,
        None => None,
    };
    Ok(Pacer::new(
        job,
        state.jobs.config(),
        message.paced_at,
        last_sent,
    ))
}

impl Handler for ReplyJob {
    fn run(&self, job: Job) -> BoxFuture<'static, Outcome> {
        let state = self.state.clone();
        Box::pin(async move {
            let Some(id) = message_id(&job) else {
                return Outcome::failed("the job names no message");
            };
            let message = match store::get(&state.db, id).await {
                Ok(Some(message)) => message,
                Ok(None) => return Outcome::failed("the message is gone"),
                Err(err) => return Stop::from(err).into(),
            };
            let mut pacer = match pacer(&state, &job, &message).await {
                Ok(pacer) => pacer,
                Err(err) => return Stop::from(err).into(),
            };
            match process(&state, &message, &mut pacer).await {
                Ok(()) => match store::finish(&state.db, id, None).await {
                    Ok(()) => Outcome::Done,
                    // Every step is remembered: a re-run only records the end.
                    Err(err) => Stop::from(err).into(),
                },
                Err(stop) => stop.into(),
            }
        })
    }

    fn failed(&self, job: Job, reason: String) -> BoxFuture<'static, ()> {
        let state = self.state.clone();
        Box::pin(async move {
            tracing::warn!(%reason, "WhatsApp reply failed");
            if let Some(id) = message_id(&job) {
                if let Err(err) = store::finish(&state.db, id, Some(&reason)).await {
                    tracing::warn!(error = %err, "cannot record a failed WhatsApp reply");
                }
            }
        })
    }

    fn retried(&self, job: Job) -> BoxFuture<'static, ()> {
        let state = self.state.clone();
        Box::pin(async move {
            if let Some(id) = message_id(&job) {
                if let Err(err) = store::requeue(&state.db, id).await {
                    tracing::warn!(error = %err, "cannot record a retried WhatsApp reply");
                }
            }
        })
    }
}
