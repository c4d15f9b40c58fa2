//! The HTTP edge's settings: where to listen, CORS, body limits, timeouts and rate limits.

use std::{net::IpAddr, time::Duration};

use crate::env::{from_str, parse_bool, positive, ConfigError, Env};

#[derive(Clone, Debug)]
pub struct Settings {
    pub host: IpAddr,
    pub port: u16,
    /// `CORS_ORIGINS`, comma-separated, without trailing slashes; `*` allows any.
    pub cors_origins: Vec<String>,
    /// Longest wait for a request's headers: from a new connection's start, and from the
    /// end of the previous answer on a keep-alive connection (so idle ones close too).
    pub header_timeout: Duration,
    /// Longest time to receive a request body; slower bodies get 408.
    pub body_timeout: Duration,
    pub body_limit_bytes: usize,
    pub rate_limit_auth_per_minute: u32,
    pub rate_limit_ai_per_minute: u32,
    /// Behind a proxy that overwrites `X-Forwarded-For`: rate-limit by its last address.
    pub trust_proxy_headers: bool,
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Settings {
            host: env.parse("HOST", IpAddr::from([0, 0, 0, 0]), from_str)?,
            port: env.parse("PORT", 8000, from_str)?,
            cors_origins: cors_origins(env)?,
            header_timeout: Duration::from_secs(env.parse(
                "HEADER_TIMEOUT_SECONDS",
                10,
                positive,
            )?),
            body_timeout: Duration::from_secs(env.parse("BODY_TIMEOUT_SECONDS", 30, positive)?),
            body_limit_bytes: env.parse("BODY_LIMIT_BYTES", 1024 * 1024, positive)?,
            rate_limit_auth_per_minute: env.parse("RATE_LIMIT_AUTH_PER_MINUTE", 20, from_str)?,
            rate_limit_ai_per_minute: env.parse("RATE_LIMIT_AI_PER_MINUTE", 60, from_str)?,
            trust_proxy_headers: env.parse("TRUST_PROXY_HEADERS", false, parse_bool)?,
        })
    }

    /// Loopback on a free port, no rate limits.
    pub fn for_tests() -> Self {
        Settings {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            cors_origins: vec!["http://localhost:5173".into()],
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            body_limit_bytes: 1024 * 1024,
            rate_limit_auth_per_minute: 0,
            rate_limit_ai_per_minute: 0,
            trust_proxy_headers: false,
        }
    }
}

/// `CORS_ORIGINS` split on commas, each an http(s) origin or `*`.
fn cors_origins(env: &Env) -> Result<Vec<String>, ConfigError> {
    let origins: Vec<String> = env
        .get("CORS_ORIGINS")
        .unwrap_or_else(|| "http://localhost:5173".into())
        .split(',')
        .map(|origin| origin.trim().trim_end_matches('/').to_owned())
        .filter(|origin| !origin.is_empty())
        .collect();
    for origin in &origins {
        if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
            return Err(ConfigError {
                name: "CORS_ORIGINS",
                reason: format!("`{origin}` is not an http(s) origin"),
            });
        }
    }
    Ok(origins)
}
