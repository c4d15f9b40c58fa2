//! The job queue's settings (SPEC §6.1): leases, attempts, polling, shutdown and retention.

use std::time::Duration;

use crate::env::{from_str, positive, ConfigError, Env};

#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a claimed job stays claimed without its worker renewing it.
    pub lease: Duration,
    pub max_attempts: u32,
    /// How often idle workers look for jobs queued by other instances or come due.
    pub poll_interval: Duration,
    /// How long shutdown waits for running jobs before handing them back.
    pub shutdown_grace: Duration,
    /// The first retry delay (doubling each attempt); tests shorten it.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Days finished jobs and other spent records are kept ([`super::retention`]).
    pub retention_days: u32,
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Settings {
            lease: Duration::from_secs(env.parse("JOB_LEASE_SECONDS", 30, positive)?),
            max_attempts: env.parse("JOB_MAX_ATTEMPTS", 8, positive)?,
            poll_interval: Duration::from_millis(env.parse(
                "JOB_POLL_INTERVAL_MS",
                1000,
                positive,
            )?),
            shutdown_grace: Duration::from_secs(env.parse(
                "JOB_SHUTDOWN_GRACE_SECONDS",
                10,
                from_str,
            )?),
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(600),
            retention_days: env.parse("RETENTION_DAYS", 14, positive)?,
        })
    }

    /// Quick polling and short backoffs, so retries show within a test.
    pub fn for_tests() -> Self {
        Settings {
            lease: Duration::from_secs(30),
            max_attempts: 8,
            poll_interval: Duration::from_millis(200),
            shutdown_grace: Duration::from_secs(5),
            backoff_base: Duration::from_millis(50),
            backoff_cap: Duration::from_secs(2),
            retention_days: 14,
        }
    }
}
