//! The database's settings: `DATABASE_URL`, its pool and the list-page cache.

use crate::env::{from_str, positive, ConfigError, Env};

#[derive(Clone)]
pub struct Settings {
    /// `DATABASE_URL`: `sqlite://…` (the default) or `postgres://…`.
    pub url: String,
    /// `DATABASE_MAX_CONNECTIONS`.
    pub max_connections: u32,
    /// `LIST_CACHE_MB`, in bytes: list pages an instance keeps while they are current
    /// (0 keeps none).
    pub list_cache_bytes: u64,
}

// Hand-written so that a password in the URL never reaches a log line through `{:?}`.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("list_cache_bytes", &self.list_cache_bytes)
            .finish()
    }
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Settings {
            url: env
                .get("DATABASE_URL")
                .unwrap_or_else(|| "sqlite://codesherpa.db".into()),
            max_connections: env.parse("DATABASE_MAX_CONNECTIONS", 10, positive)?,
            list_cache_bytes: env
                .parse::<u64>("LIST_CACHE_MB", 16, from_str)?
                .saturating_mul(1 << 20),
        })
    }

    pub fn for_tests(url: impl Into<String>) -> Self {
        Settings {
            url: url.into(),
            max_connections: 5,
            list_cache_bytes: 16 << 20,
        }
    }
}

/// Hides the password part of a connection URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://user:pw@db:5432/app"),
            "postgres://***@db:5432/app"
        );
        assert_eq!(
            redact_url("sqlite://codesherpa.db"),
            "sqlite://codesherpa.db"
        );
    }
}
