//! Authentication's settings: the signing keys (`SECRET_KEY`, `SECRET_KEY_PREVIOUS`),
//! token lifetimes, bcrypt's cost and how long an authenticated user is cached.

use std::time::Duration;

use crate::env::{from_str, positive, ConfigError, Env};

/// Values that ship in examples and must never reach production.
const PLACEHOLDER_SECRETS: &[&str] = &[
    "your-secret-key",
    "change-me",
    "changeme",
    "secret",
    "replace-me-with-at-least-32-random-bytes",
];
const MIN_SECRET_BYTES: usize = 32;

#[derive(Clone)]
pub struct Settings {
    pub secret_key: String,
    /// The key tokens were signed with before a rotation: still accepted for verifying.
    pub secret_key_previous: Option<String>,
    /// Why `SECRET_KEY` was replaced by a random key (DEBUG only), said loudly at start-up.
    pub secret_key_replaced: Option<&'static str>,
    pub access_token_expire_minutes: i64,
    pub refresh_token_expire_days: i64,
    pub bcrypt_rounds: u32,
    /// `AUTH_CACHE_TTL_MS`: how long an authenticated user's row may be reused (0 disables
    /// the cache).
    pub cache_ttl: Duration,
}

// Hand-written so that the keys never reach a log line through `{:?}`.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("secret_key", &"<redacted>")
            .field(
                "secret_key_previous",
                &self.secret_key_previous.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "access_token_expire_minutes",
                &self.access_token_expire_minutes,
            )
            .field("refresh_token_expire_days", &self.refresh_token_expire_days)
            .field("bcrypt_rounds", &self.bcrypt_rounds)
            .field("cache_ttl", &self.cache_ttl)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// `debug` (`DEBUG`) lets a missing or weak `SECRET_KEY` be replaced by a random one.
    pub fn from_env(env: &Env, debug: bool) -> Result<Self, ConfigError> {
        let (secret_key, secret_key_replaced) = secret_key(env.get("SECRET_KEY"), debug)?;
        Ok(Settings {
            secret_key,
            secret_key_previous: previous_secret_key(env.get("SECRET_KEY_PREVIOUS"))?,
            secret_key_replaced,
            access_token_expire_minutes: env.parse("ACCESS_TOKEN_EXPIRE_MINUTES", 30, positive)?,
            refresh_token_expire_days: env.parse("REFRESH_TOKEN_EXPIRE_DAYS", 7, positive)?,
            bcrypt_rounds: env.parse("BCRYPT_ROUNDS", 12, bcrypt_cost)?,
            cache_ttl: Duration::from_millis(env.parse("AUTH_CACHE_TTL_MS", 1000, from_str)?),
        })
    }

    /// Fast hashing and a fixed secret.
    pub fn for_tests() -> Self {
        Settings {
            secret_key: "test-secret-key-that-is-at-least-32-bytes-long".into(),
            secret_key_previous: None,
            secret_key_replaced: None,
            access_token_expire_minutes: 30,
            refresh_token_expire_days: 7,
            bcrypt_rounds: 4,
            cache_ttl: Duration::from_millis(1000),
        }
    }

    /// Says loudly that tokens are signed with a throw-away key: they stop working at the
    /// next restart and are not accepted by other instances.
    pub fn warn_if_secret_replaced(&self) {
        if let Some(reason) = self.secret_key_replaced {
            tracing::warn!(
                "SECURITY: SECRET_KEY {reason}; DEBUG=true, so a random key signs tokens for \
                 this process only: every token dies at restart and other instances reject \
                 it. Set SECRET_KEY to a random value of at least 32 bytes \
                 (`openssl rand -hex 32`); DEBUG=false refuses to start without one."
            );
        }
    }
}

/// Why a secret is unfit for signing tokens, if it is.
fn weak_secret(value: Option<&str>) -> Option<&'static str> {
    match value {
        None => Some("is not set"),
        Some(v) if PLACEHOLDER_SECRETS.contains(&v.to_ascii_lowercase().as_str()) => {
            Some("is a placeholder value")
        }
        Some(v) if v.len() < MIN_SECRET_BYTES => Some("is shorter than 32 bytes"),
        Some(_) => None,
    }
}

/// The signing key, and why it was replaced by a random one (DEBUG only).
fn secret_key(
    value: Option<String>,
    debug: bool,
) -> Result<(String, Option<&'static str>), ConfigError> {
    let value = value.filter(|value| !value.is_empty());
    match (weak_secret(value.as_deref()), debug) {
        (None, _) => Ok((value.unwrap_or_default(), None)),
        (Some(reason), false) => Err(ConfigError {
            name: "SECRET_KEY",
            reason: format!(
                "{reason}; with DEBUG=false set a random value of at least 32 bytes \
                 (for example `openssl rand -hex 32`)"
            ),
        }),
        // Development: a fresh random key each start, so no well-known key ever signs tokens.
        (Some(reason), true) => Ok((random_secret(), Some(reason))),
    }
}

/// `SECRET_KEY_PREVIOUS` only verifies, but a weak key would still let anyone forge
/// tokens, so it is held to the same bar in every mode.
fn previous_secret_key(value: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(value) = value.filter(|value| !value.is_empty()) else {
        return Ok(None);
    };
    match weak_secret(Some(&value)) {
        None => Ok(Some(value)),
        Some(reason) => Err(ConfigError {
            name: "SECRET_KEY_PREVIOUS",
            reason: format!("{reason}; it must be the former SECRET_KEY (at least 32 bytes)"),
        }),
    }
}

fn random_secret() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn bcrypt_cost(raw: &str) -> Result<u32, String> {
    let cost: u32 = from_str(raw)?;
    if (4..=31).contains(&cost) {
        Ok(cost)
    } else {
        Err("must be between 4 and 31".into())
    }
}
