//! Reading settings from environment variables: the lookup every slice's `settings.rs`
//! reads through, the shared value parsers, and the start-up error that names the variable.
//!
//! Why not clap's `env` derive: clap reads `std::env` itself (when the argument is built),
//! so tests could not build settings from a map without changing the process environment,
//! and it would neither trim values, treat an empty value as unset, derive one default from
//! another variable (`DEBUG`, `PORT`) nor word its errors as ours. This small reader keeps
//! all of that, and each slice still owns its variables.

use std::{fmt, str::FromStr};

/// A bad setting, named, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

/// A source of variables: the process environment or, in tests, a map.
pub struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl<'a> Env<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Env(lookup)
    }

    /// The value, trimmed; `None` when unset.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).map(|value| value.trim().to_owned())
    }

    /// The value, trimmed; `None` when unset or empty.
    pub fn non_empty(&self, name: &str) -> Option<String> {
        self.get(name).filter(|value| !value.is_empty())
    }

    /// The parsed value, `default` when unset or empty; a bad value names the variable.
    pub fn parse<T>(
        &self,
        name: &'static str,
        default: T,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match self.non_empty(name) {
            None => Ok(default),
            Some(raw) => parse(&raw).map_err(|reason| ConfigError {
                name,
                reason: format!("{reason} (got `{raw}`)"),
            }),
        }
    }

    /// An http(s) URL setting without its trailing slash.
    pub fn http_url(&self, name: &'static str, default: String) -> Result<String, ConfigError> {
        let url = self
            .non_empty(name)
            .unwrap_or(default)
            .trim_end_matches('/')
            .to_owned();
        if url.starts_with("http://") || url.starts_with("https://") {
            Ok(url)
        } else {
            Err(ConfigError {
                name,
                reason: "must be an http(s) URL".into(),
            })
        }
    }
}

pub fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

pub fn from_str<T: FromStr>(raw: &str) -> Result<T, String>
where
    T::Err: fmt::Display,
{
    raw.parse().map_err(|e: T::Err| e.to_string())
}

pub fn positive<T: FromStr + PartialOrd + Default>(raw: &str) -> Result<T, String>
where
    T::Err: fmt::Display,
{
    let value: T = from_str(raw)?;
    if value > T::default() {
        Ok(value)
    } else {
        Err("must be greater than zero".into())
    }
}
