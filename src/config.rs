//! Every setting the server reads, composed from the slices' own settings (each slice's
//! `settings.rs` names its variables, defaults and checks), validated once at start-up.

// Each slice's settings file, not its `mod.rs`: the settings import nothing of the slice.
use crate::{
    auth::settings as auth,
    codebase::settings as codebase,
    db::settings as db,
    env::Env,
    http::settings as http,
    integrations::{github::settings as github, whatsapp::settings as whatsapp},
    jobs::settings as jobs,
    llm::settings as llm,
    redis_bus, telemetry,
    ws::settings as ws,
};

pub use crate::env::ConfigError;

/// Every slice's settings. `.env.example` and the README list the variable names.
#[derive(Clone, Debug)]
pub struct Config {
    /// `DEBUG` and `LOG_FORMAT`.
    pub telemetry: telemetry::Settings,
    pub db: db::Settings,
    pub redis: redis_bus::Settings,
    pub http: http::Settings,
    pub auth: auth::Settings,
    pub ws: ws::Settings,
    pub codebase: codebase::Settings,
    pub llm: llm::Settings,
    pub jobs: jobs::Settings,
    pub github: github::Settings,
    pub whatsapp: whatsapp::Settings,
}

impl Config {
    /// Reads the process environment (after loading `.env` if present).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from any variable source; unit tests pass a map.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(&lookup);
        let telemetry = telemetry::Settings::from_env(&env)?;
        Ok(Config {
            // DEBUG lets a missing or weak SECRET_KEY be replaced by a random one.
            auth: auth::Settings::from_env(&env, telemetry.debug)?,
            telemetry,
            db: db::Settings::from_env(&env)?,
            redis: redis_bus::Settings::from_env(&env),
            http: http::Settings::from_env(&env)?,
            ws: ws::Settings::from_env(&env)?,
            codebase: codebase::Settings::from_env(&env)?,
            llm: llm::Settings::from_env(&env)?,
            jobs: jobs::Settings::from_env(&env)?,
            github: github::Settings::from_env(&env)?,
            whatsapp: whatsapp::Settings::from_env(&env)?,
        })
    }

    /// A configuration suited to tests: fast hashing, no rate limits, a fixed secret.
    pub fn for_tests(database_url: impl Into<String>) -> Self {
        Config {
            telemetry: telemetry::Settings::for_tests(),
            db: db::Settings::for_tests(database_url),
            redis: redis_bus::Settings::for_tests(),
            http: http::Settings::for_tests(),
            auth: auth::Settings::for_tests(),
            ws: ws::Settings::for_tests(),
            codebase: codebase::Settings::for_tests(),
            llm: llm::Settings::for_tests(),
            jobs: jobs::Settings::for_tests(),
            github: github::Settings::for_tests(),
            whatsapp: whatsapp::Settings::for_tests(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{llm::ProviderKind, telemetry::LogFormat};
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_work_with_no_configuration() {
        let config = config(&[]).unwrap();
        assert!(config.telemetry.debug);
        assert_eq!(config.http.port, 8000);
        assert_eq!(config.db.url, "sqlite://codesherpa.db");
        assert_eq!(config.auth.bcrypt_rounds, 12);
        assert_eq!(config.auth.access_token_expire_minutes, 30);
        assert_eq!(config.http.rate_limit_auth_per_minute, 20);
        assert_eq!(config.http.rate_limit_ai_per_minute, 60);
        assert_eq!(config.http.cors_origins, vec!["http://localhost:5173"]);
        assert_eq!(config.db.list_cache_bytes, 16 << 20);
        assert_eq!(config.auth.secret_key.len(), 64, "a random development key");
        assert_eq!(config.auth.secret_key_replaced, Some("is not set"));
        assert_eq!(config.auth.secret_key_previous, None);
        assert_eq!(config.llm.provider, ProviderKind::Local);
        assert_eq!(config.llm.openai_base_url, "https://api.openai.com/v1");
        assert_eq!(config.whatsapp.api_url, "https://graph.facebook.com");
        assert_eq!(config.whatsapp.api_version, "v21.0");
        assert!(config.whatsapp.app_secret.is_none());
        assert_eq!(config.whatsapp.link_attempts_per_minute, 60);
        assert_eq!(config.jobs.retention_days, 14);
    }

    #[test]
    fn github_sign_in_needs_both_client_settings() {
        let defaults = config(&[("PORT", "9000")]).unwrap().github;
        assert_eq!(defaults.web_url, "https://github.com");
        assert_eq!(defaults.public_url, "http://localhost:9000");
        assert!(defaults.oauth.is_none());
        let set = config(&[
            ("GITHUB_CLIENT_ID", "Iv1.x"),
            ("GITHUB_CLIENT_SECRET", "s"),
            ("PUBLIC_URL", "https://cs.example/"),
        ])
        .unwrap()
        .github;
        assert_eq!(set.oauth.map(|o| o.client_id).as_deref(), Some("Iv1.x"));
        assert_eq!(set.public_url, "https://cs.example");
        let half = config(&[("GITHUB_CLIENT_ID", "Iv1.x")]).unwrap_err();
        assert_eq!(half.name, "GITHUB_CLIENT_SECRET");
        let other = config(&[("GITHUB_CLIENT_SECRET", "s")]).unwrap_err();
        assert_eq!(other.name, "GITHUB_CLIENT_ID");
        let bad = config(&[("PUBLIC_URL", "codesherpa.example")]).unwrap_err();
        assert_eq!(bad.name, "PUBLIC_URL");
    }

    #[test]
    fn production_refuses_missing_placeholder_or_short_secret() {
        for secret in [None, Some("your-secret-key"), Some("short-but-not-empty")] {
            let mut vars = vec![("DEBUG", "false")];
            if let Some(secret) = secret {
                vars.push(("SECRET_KEY", secret));
            }
            let err = config(&vars).expect_err("must refuse");
            assert_eq!(err.name, "SECRET_KEY");
        }
        let strong = "0123456789abcdef0123456789abcdef";
        let ok = config(&[("DEBUG", "false"), ("SECRET_KEY", strong)]).unwrap();
        assert_eq!(ok.auth.secret_key, strong);
        assert_eq!(ok.telemetry.log_format, LogFormat::Json);
    }

    #[test]
    fn debug_replaces_a_short_secret_and_says_why() {
        let replaced = config(&[("DEBUG", "true"), ("SECRET_KEY", "short")]).unwrap();
        assert_ne!(replaced.auth.secret_key, "short");
        assert_eq!(
            replaced.auth.secret_key_replaced,
            Some("is shorter than 32 bytes")
        );
        let strong = "0123456789abcdef0123456789abcdef";
        let kept = config(&[("DEBUG", "true"), ("SECRET_KEY", strong)]).unwrap();
        assert_eq!(kept.auth.secret_key, strong);
        assert_eq!(kept.auth.secret_key_replaced, None);
    }

    #[test]
    fn previous_secret_is_optional_but_never_weak() {
        let strong = "0123456789abcdef0123456789abcdef";
        let previous = "fedcba9876543210fedcba9876543210";
        let rotated = config(&[("SECRET_KEY", strong), ("SECRET_KEY_PREVIOUS", previous)]).unwrap();
        assert_eq!(rotated.auth.secret_key_previous.as_deref(), Some(previous));
        for debug in ["true", "false"] {
            let err = config(&[
                ("DEBUG", debug),
                ("SECRET_KEY", strong),
                ("SECRET_KEY_PREVIOUS", "short"),
            ])
            .expect_err("a weak previous key must be refused");
            assert_eq!(err.name, "SECRET_KEY_PREVIOUS");
        }
        assert!(!format!("{rotated:?}").contains(previous), "redacted");
    }

    #[test]
    fn bad_values_are_named() {
        let err = config(&[("PORT", "eighty")]).expect_err("must refuse");
        assert_eq!(err.name, "PORT");
        assert!(err.to_string().contains("eighty"));
        let err = config(&[("RETENTION_DAYS", "0")]).expect_err("must refuse");
        assert_eq!(err.name, "RETENTION_DAYS");
        assert!(err.to_string().contains("greater than zero"));
        let err = config(&[("LIST_CACHE_MB", "-1")]).expect_err("must refuse");
        assert_eq!(err.name, "LIST_CACHE_MB");
        assert_eq!(
            config(&[("LIST_CACHE_MB", "0")])
                .unwrap()
                .db
                .list_cache_bytes,
            0
        );
        assert_eq!(
            config(&[("BCRYPT_ROUNDS", "3")])
                .expect_err("must refuse")
                .name,
            "BCRYPT_ROUNDS"
        );
        assert_eq!(
            config(&[("LOG_FORMAT", "xml")])
                .expect_err("must refuse")
                .name,
            "LOG_FORMAT"
        );
        assert_eq!(
            config(&[("CORS_ORIGINS", "ftp://x")])
                .expect_err("must refuse")
                .name,
            "CORS_ORIGINS"
        );
        assert_eq!(
            config(&[("DEBUG", "maybe")]).expect_err("must refuse").name,
            "DEBUG"
        );
    }

    #[test]
    fn cors_origins_are_split_and_trimmed() {
        let config = config(&[("CORS_ORIGINS", "https://a.dev/, http://b.dev:3000 ,")]).unwrap();
        assert_eq!(
            config.http.cors_origins,
            vec!["https://a.dev", "http://b.dev:3000"]
        );
    }
}
