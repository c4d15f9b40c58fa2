//! The WebSocket's settings: keep-alive pings, the send queue and connection caps.

use std::time::Duration;

use crate::env::{positive, ConfigError, Env};

#[derive(Clone, Debug)]
pub struct Settings {
    /// How often a WebSocket is pinged; a peer silent for two intervals is dropped.
    pub ping_interval: Duration,
    /// Frames queued for one WebSocket before it counts as too slow and is closed.
    pub queue_capacity: usize,
    /// Open WebSockets one user may hold on this instance; more are refused with 429.
    pub max_per_user: usize,
    /// Open WebSockets on this instance; more are refused with 429.
    pub max_connections: usize,
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Settings {
            ping_interval: Duration::from_secs(env.parse(
                "WS_PING_INTERVAL_SECONDS",
                30,
                positive,
            )?),
            queue_capacity: env.parse("WS_QUEUE_CAPACITY", 256, positive)?,
            max_per_user: env.parse("WS_MAX_PER_USER", 20, positive)?,
            max_connections: env.parse("WS_MAX_CONNECTIONS", 10_000, positive)?,
        })
    }

    pub fn for_tests() -> Self {
        Settings {
            ping_interval: Duration::from_secs(30),
            queue_capacity: 256,
            max_per_user: 20,
            max_connections: 10_000,
        }
    }
}
