//! Why a job's run stopped short, turned into the queue's [`Outcome`] in one place: a
//! transient failure is retried (after the wait the remote named, if any), a permanent
//! one fails the job, and work that became moot ends it done.
//!
//! Each error type says once which of its cases are transient (`impl From<ItsError> for
//! Stop` beside the error), so a handler's steps use `?` and its `run` ends with
//! `Outcome::from(stop)`.

use std::time::Duration;

use super::Outcome;
use crate::error::Error;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Transient (an outage, a rate limit, a timeout): retried after `after` when the
    /// remote said when, else with backoff.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Permanent: never retried; the reason is stored with the job.
    Failed(String),
    /// Nothing (more) to do: the job ends done, and the slice records why.
    Skipped(String),
}

impl Stop {
    pub fn retry(reason: impl Into<String>) -> Self {
        Stop::Retry {
            reason: reason.into(),
            after: None,
        }
    }

    pub fn failed(reason: impl Into<String>) -> Self {
        Stop::Failed(reason.into())
    }

    /// The same verdict told with `reason`: one fit to show the user, while the error's
    /// own text stays in the logs.
    pub fn because(self, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        match self {
            Stop::Retry { after, .. } => Stop::Retry { reason, after },
            Stop::Failed(_) => Stop::Failed(reason),
            Stop::Skipped(_) => Stop::Skipped(reason),
        }
    }
}

impl From<Stop> for Outcome {
    fn from(stop: Stop) -> Self {
        match stop {
            Stop::Retry { reason, after } => Outcome::Retry { reason, after },
            Stop::Failed(reason) => Outcome::Failed(reason),
            Stop::Skipped(_) => Outcome::Done,
        }
    }
}

/// The API's own errors are storage failures and outages as far as a job can tell:
/// retried. A database error is told as `database error` (reasons reach users, in a
/// review's or a message's record); its detail, like every error's, goes to the logs.
impl From<Error> for Stop {
    fn from(err: Error) -> Self {
        tracing::warn!(error = %err, "a job's step failed");
        match err {
            Error::Database(_) => Stop::retry("database error"),
            err => Stop::retry(err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_become_the_queues_outcomes() {
        let wait = Some(Duration::from_secs(9));
        assert_eq!(
            Outcome::from(Stop::Retry {
                reason: "busy".into(),
                after: wait
            }),
            Outcome::Retry {
                reason: "busy".into(),
                after: wait
            }
        );
        assert_eq!(Outcome::from(Stop::failed("gone")), Outcome::failed("gone"));
        assert_eq!(Outcome::from(Stop::Skipped("moot".into())), Outcome::Done);
        assert_eq!(
            Stop::Retry {
                reason: "GitHub answered 502: x".into(),
                after: wait
            }
            .because("GitHub answered 502"),
            Stop::Retry {
                reason: "GitHub answered 502".into(),
                after: wait
            }
        );
    }

    #[test]
    fn database_errors_keep_their_detail_out_of_the_reason() {
        let stop = Stop::from(Error::Database(sqlx::Error::PoolTimedOut));
        assert_eq!(stop, Stop::retry("database error"));
        let stop = Stop::from(Error::Unavailable("Service temporarily unavailable"));
        assert_eq!(stop, Stop::retry("Service temporarily unavailable"));
    }
}
