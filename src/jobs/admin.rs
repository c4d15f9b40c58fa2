//! What operators do to jobs from the command line (`codesherpa jobs …`, SPEC §6.1): list
//! them, queue a failed one again, cancel a queued one. It works on the database of
//! `DATABASE_URL` with or without a server running: a running server's workers find a
//! retried job by polling, and a fenced update never takes a job from a worker.

use std::fmt::Write as _;

use clap::{Subcommand, ValueEnum};

use super::{
    store::{self, JobRow, Operated, Operation, CANCELLED},
    Job, Workers,
};
use crate::db::Db;

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first: id, kind, state, attempts, run_at, last reason.
    List {
        /// Only jobs in this state.
        #[arg(long, value_enum)]
        state: Option<State>,
        /// Only jobs of this kind (e.g. github.review).
        #[arg(long)]
        kind: Option<String>,
        /// At most this many jobs.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        limit: i64,
    },
    /// Queue a failed job again, its attempts reset.
    Retry {
        /// The job's id, as `jobs list` shows it.
        id: i64,
    },
    /// End a queued job as failed ("cancelled by an operator").
    Cancel {
        /// The job's id, as `jobs list` shows it.
        id: i64,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum State {
    Queued,
    Running,
    Done,
    Failed,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no job has id {0}")]
    NoSuchJob(i64),
    #[error("job {id} is {state}: only a {needed} job can be {verb}")]
    WrongState {
        id: i64,
        state: String,
        needed: &'static str,
        verb: &'static str,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Runs `command` and returns what to print. `workers` holds the slices' handlers, whose
/// hooks keep their own records (a review, a message, a sync) in step with the job.
pub async fn run(command: JobsCommand, db: &Db, workers: &Workers) -> Result<String, AdminError> {
    match command {
        JobsCommand::List { state, kind, limit } => {
            let jobs = store::list(db, state.map(State::as_str), kind.as_deref(), limit).await?;
            Ok(jobs.iter().fold(String::new(), |mut out, job| {
                let _ = writeln!(out, "{}", line(job));
                out
            }))
        }
        JobsCommand::Retry { id } => {
            let job = expect_state(db, id, Operation::Retry).await?;
            if let Some(handler) = workers.handler(&job.kind) {
                // Before the job can run again, so that it finds its record reset.
                handler.retried(as_job(&job, workers)).await;
            }
            let job = operated(
                store::operate(db, id, Operation::Retry).await?,
                id,
                Operation::Retry,
            )?;
            Ok(format!(
                "job {} ({}) queued again, attempts reset\n",
                job.id, job.kind
            ))
        }
        JobsCommand::Cancel { id } => {
            let job = operated(
                store::operate(db, id, Operation::Cancel).await?,
                id,
                Operation::Cancel,
            )?;
            if let Some(handler) = workers.handler(&job.kind) {
                handler
                    .failed(as_job(&job, workers), CANCELLED.to_owned())
                    .await;
            }
            Ok(format!("job {} ({}) cancelled\n", job.id, job.kind))
        }
    }
}

/// One job as `jobs list` prints it; the id comes first.
fn line(job: &JobRow) -> String {
    format!(
        "{:<8} {:<16} {:<8} {:>3}  {}  {}",
        job.id,
        job.kind,
        job.status,
        job.attempts,
        job.run_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        job.last_error.as_deref().unwrap_or("-").replace('\n', " "),
    )
}

/// The state `operation` needs, and its words for an error.
fn needs(operation: Operation) -> (&'static str, &'static str) {
    match operation {
        Operation::Retry => ("failed", "retried"),
        Operation::Cancel => ("queued", "cancelled"),
    }
}

fn wrong_state(job: &JobRow, operation: Operation) -> AdminError {
    let (needed, verb) = needs(operation);
    AdminError::WrongState {
        id: job.id,
        state: job.status.clone(),
        needed,
        verb,
    }
}

/// The job, if it exists and is in the state `operation` needs.
async fn expect_state(db: &Db, id: i64, operation: Operation) -> Result<JobRow, AdminError> {
    let job = store::find(db, id)
        .await?
        .ok_or(AdminError::NoSuchJob(id))?;
    if job.status == needs(operation).0 {
        Ok(job)
    } else {
        Err(wrong_state(&job, operation))
    }
}

fn operated(result: Option<Operated>, id: i64, operation: Operation) -> Result<JobRow, AdminError> {
    match result {
        None => Err(AdminError::NoSuchJob(id)),
        Some(Operated { changed: true, job }) => Ok(job),
        Some(Operated { job, .. }) => Err(wrong_state(&job, operation)),
    }
}

fn as_job(row: &JobRow, workers: &Workers) -> Job {
    Job {
        id: row.id,
        kind: row.kind.clone(),
        payload: row.payload.0.clone(),
        dedupe_key: row.dedupe_key.clone(),
        serial_key: row.serial_key.clone(),
        attempt: u32::try_from(row.attempts).unwrap_or(0),
        max_attempts: workers.max_attempts(),
    }
}
