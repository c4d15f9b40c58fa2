//! Logging: pretty for development, JSON for production; `RUST_LOG` overrides the level.

use tracing_subscriber::{fmt, prelude::*, EnvFilter};

use crate::env::{parse_bool, ConfigError, Env};

/// `DEBUG` (development mode: more logging, pretty logs; other slices' defaults follow it
/// too) and `LOG_FORMAT`.
#[derive(Clone, Debug)]
pub struct Settings {
    pub debug: bool,
    pub log_format: LogFormat,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let debug = env.parse("DEBUG", true, parse_bool)?;
        let default_format = if debug {
            LogFormat::Pretty
        } else {
            LogFormat::Json
        };
        Ok(Settings {
            debug,
            log_format: env.parse("LOG_FORMAT", default_format, parse_log_format)?,
        })
    }

    pub fn for_tests() -> Self {
        Settings {
            debug: true,
            log_format: LogFormat::Pretty,
        }
    }
}

fn parse_log_format(raw: &str) -> Result<LogFormat, String> {
    match raw.to_ascii_lowercase().as_str() {
        "pretty" => Ok(LogFormat::Pretty),
        "json" => Ok(LogFormat::Json),
        _ => Err("expected `pretty` or `json`".into()),
    }
}

pub fn init(config: &Settings) {
    let default_level = if config.debug {
        "info,codesherpa=debug"
    } else {
        "info"
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let registry = tracing_subscriber::registry().with(filter);
    match config.log_format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .init(),
        LogFormat::Pretty => registry.with(fmt::layer().with_target(false)).init(),
    }
}
