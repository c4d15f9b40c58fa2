//! Typed settings read from the environment (and `.env`), validated once at start-up.

use std::{fmt, net::IpAddr, str::FromStr};

/// Values that ship in examples and must never reach production.
const PLACEHOLDER_SECRETS: &[&str] = &[
    "your-secret-key",
    "change-me",
    "changeme",
    "secret",
    "replace-me-with-at-least-32-random-bytes",
];
const MIN_SECRET_BYTES: usize = 32;
pub const DEFAULT_BEDROCK_MODEL: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    Local,
    OpenAi,
    Bedrock,
}

impl ProviderKind {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.to_ascii_lowercase().as_str() {
            "local" => Some(ProviderKind::Local),
            "openai" => Some(ProviderKind::OpenAi),
            "bedrock" => Some(ProviderKind::Bedrock),
            _ => None,
        }
    }
}

/// Settings of the AI providers and the chat pipeline.
#[derive(Clone, Debug)]
pub struct LlmConfig {
    pub provider: ProviderKind,
    pub openai_base_url: String,
    pub openai_api_key: Option<String>,
    pub openai_model: String,
    pub bedrock_model_id: String,
    pub aws_region: String,
    /// `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` (or `AWS_ENDPOINT_URL`): VPC endpoints, tests.
    pub bedrock_endpoint_url: Option<String>,
    /// Static keys when set in the environment; otherwise the SDK's standard chain.
    pub aws_credentials: Option<AwsCredentials>,
    /// Longest wait for a provider's first byte, and between two streamed pieces.
    pub timeout: std::time::Duration,
    pub max_tokens: u32,
    /// Approximate tokens of earlier session turns sent as history.
    pub history_token_budget: usize,
}

#[derive(Clone)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AwsCredentials(<redacted>)")
    }
}

/// WhatsApp over the Meta Cloud API (§6.3): the webhook's secrets and the Graph API.
#[derive(Clone)]
pub struct WhatsappConfig {
    /// `WHATSAPP_VERIFY_TOKEN`: what Meta echoes in the webhook verification handshake.
    pub verify_token: Option<String>,
    /// `WHATSAPP_APP_SECRET`: the key of the `X-Hub-Signature-256` HMAC.
    pub app_secret: Option<String>,
    /// `WHATSAPP_ACCESS_TOKEN`: the bearer token replies are sent with.
    pub access_token: Option<String>,
    /// `WHATSAPP_API_URL`, without a trailing slash.
    pub api_url: String,
    /// `WHATSAPP_API_VERSION`, e.g. `v21.0`.
    pub api_version: String,
    /// `WHATSAPP_LINK_ATTEMPTS_PER_MINUTE`: failed `link <code>` attempts a minute across
    /// every number (0 disables this budget; each number also has the auth budget).
    pub link_attempts_per_minute: u32,
}

impl fmt::Debug for WhatsappConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhatsappConfig")
            .field(
                "verify_token",
                &self.verify_token.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "app_secret",
                &self.app_secret.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "<redacted>"),
            )
            .field("api_url", &self.api_url)
            .field("api_version", &self.api_version)
            .field("link_attempts_per_minute", &self.link_attempts_per_minute)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Settings of the background job queue (§6.1).
#[derive(Clone, Debug)]
pub struct JobsConfig {
    /// How long a claimed job stays claimed without its worker renewing it.
    pub lease: std::time::Duration,
    pub max_attempts: u32,
    /// How often idle workers look for jobs queued by other instances or come due.
    pub poll_interval: std::time::Duration,
    /// How long shutdown waits for running jobs before handing them back.
    pub shutdown_grace: std::time::Duration,
    /// The first retry delay (doubling each attempt); tests shorten it.
    pub backoff_base: std::time::Duration,
    pub backoff_cap: std::time::Duration,
}

/// GitHub pull-request reviews (§6.2).
#[derive(Clone)]
pub struct GithubConfig {
    /// Unset: the webhook answers 503.
    pub webhook_secret: Option<String>,
    /// `https://api.github.com`, or `https://host/api/v3` for GitHub Enterprise.
    pub api_url: String,
    pub token: Option<String>,
    /// A GitHub App: its id and private key (PEM); preferred over `token` when set.
    pub app: Option<GithubApp>,
    pub review_max_diff_bytes: usize,
    /// Reviews run at once in one instance.
    pub review_concurrency: usize,
    /// `https://github.com`, or the Enterprise host: where users authorize (OAuth web flow).
    pub web_url: String,
    /// The GitHub App's or OAuth App's client credentials; unset: connecting answers 503.
    pub oauth: Option<GithubOAuth>,
    /// Scopes asked for in the OAuth web flow (`repo` for an OAuth App that must see
    /// private repositories; a GitHub App needs none).
    pub oauth_scope: Option<String>,
    /// This server's address as browsers reach it: GitHub sends them back to
    /// `{public_url}/api/v1/integrations/github/callback`.
    pub public_url: String,
}

#[derive(Clone)]
pub struct GithubOAuth {
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Clone)]
pub struct GithubApp {
    pub id: String,
    pub private_key_pem: String,
}

impl fmt::Debug for GithubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubConfig")
            .field("api_url", &self.api_url)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("app_id", &self.app.as_ref().map(|app| &app.id))
            .field("web_url", &self.web_url)
            .field(
                "client_id",
                &self.oauth.as_ref().map(|oauth| &oauth.client_id),
            )
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// Every setting the server reads. `Config::from_env` documents the variable names.
#[derive(Clone)]
pub struct Config {
    pub debug: bool,
    pub secret_key: String,
    /// The key tokens were signed with before a rotation: still accepted for verifying.
    pub secret_key_previous: Option<String>,
    /// Why `SECRET_KEY` was replaced by a random key (DEBUG only), said loudly at start-up.
    pub secret_key_replaced: Option<&'static str>,
    pub database_url: String,
    pub database_max_connections: u32,
    pub access_token_expire_minutes: i64,
    pub refresh_token_expire_days: i64,
    pub bcrypt_rounds: u32,
    /// How long an authenticated user's row may be reused (0 disables the cache).
    pub auth_cache_ttl: std::time::Duration,
    /// Bytes of list pages an instance keeps while they are current (0 keeps none).
    pub list_cache_bytes: u64,
    pub cors_origins: Vec<String>,
    pub host: IpAddr,
    pub port: u16,
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel (several deployments may share one Redis).
    pub redis_prefix: String,
    /// How often a WebSocket is pinged; a peer silent for two intervals is dropped.
    pub ws_ping_interval: std::time::Duration,
    /// Frames queued for one WebSocket before it counts as too slow and is closed.
    pub ws_queue_capacity: usize,
    /// Open WebSockets one user may hold on this instance; more are refused with 429.
    pub ws_max_per_user: usize,
    /// Open WebSockets on this instance; more are refused with 429.
    pub ws_max_connections: usize,
    /// Longest wait for a request's headers: from a new connection's start, and from the
    /// end of the previous answer on a keep-alive connection (so idle ones close too).
    pub header_timeout: std::time::Duration,
    /// Longest time to receive a request body; slower bodies get 408.
    pub body_timeout: std::time::Duration,
    pub rate_limit_auth_per_minute: u32,
    pub rate_limit_ai_per_minute: u32,
    pub trust_proxy_headers: bool,
    pub body_limit_bytes: usize,
    /// Body limit of `PUT /projects/{id}/files` (archives of code).
    pub upload_limit_bytes: usize,
    /// Archive extractions and indexings (uploads and syncs) running at once on this
    /// instance; an upload beyond them gets 429, a sync waits its turn.
    pub index_concurrency: usize,
    pub log_format: LogFormat,
    pub llm: LlmConfig,
    pub whatsapp: WhatsappConfig,
    pub jobs: JobsConfig,
    pub github: GithubConfig,
}

// Hand-written so that the secret never reaches a log line through `{:?}`.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("debug", &self.debug)
            .field("secret_key", &"<redacted>")
            .field(
                "secret_key_previous",
                &self.secret_key_previous.as_ref().map(|_| "<redacted>"),
            )
            .field("database", &redact_url(&self.database_url))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("cors_origins", &self.cors_origins)
            .field("redis", &self.redis_url.as_deref().map(redact_url))
            .field("llm_provider", &self.llm.provider)
            .finish_non_exhaustive()
    }
}

/// A bad setting, named, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

impl Config {
    /// Reads the process environment (after loading `.env` if present).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from any variable source; unit tests pass a map.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let debug = env.parse("DEBUG", true, parse_bool)?;
        let (secret_key, secret_key_replaced) = secret_key(env.get("SECRET_KEY"), debug)?;
        let config = Config {
            debug,
            secret_key,
            secret_key_previous: previous_secret_key(env.get("SECRET_KEY_PREVIOUS"))?,
            secret_key_replaced,
            database_url: env
                .get("DATABASE_URL")
                .unwrap_or_else(|| "sqlite://codesherpa.db".into()),
            database_max_connections: env.parse("DATABASE_MAX_CONNECTIONS", 10, positive)?,
            access_token_expire_minutes: env.parse("ACCESS_TOKEN_EXPIRE_MINUTES", 30, positive)?,
            refresh_token_expire_days: env.parse("REFRESH_TOKEN_EXPIRE_DAYS", 7, positive)?,
            bcrypt_rounds: env.parse("BCRYPT_ROUNDS", 12, bcrypt_cost)?,
            auth_cache_ttl: std::time::Duration::from_millis(env.parse(
                "AUTH_CACHE_TTL_MS",
                1000,
                from_str,
            )?),
            list_cache_bytes: env
                .parse::<u64>("LIST_CACHE_MB", 16, from_str)?
                .saturating_mul(1 << 20),
            cors_origins: env
                .get("CORS_ORIGINS")
                .unwrap_or_else(|| "http://localhost:5173".into())
                .split(',')
                .map(|origin| origin.trim().trim_end_matches('/').to_owned())
                .filter(|origin| !origin.is_empty())
                .collect(),
            host: env.parse("HOST", IpAddr::from([0, 0, 0, 0]), from_str)?,
            port: env.parse("PORT", 8000, from_str)?,
            redis_url: env.get("REDIS_URL").filter(|url| !url.trim().is_empty()),
            redis_prefix: env
                .get("REDIS_PREFIX")
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "codesherpa".into()),
            ws_ping_interval: std::time::Duration::from_secs(env.parse(
                "WS_PING_INTERVAL_SECONDS",
                30,
                positive,
            )?),
            ws_queue_capacity: env.parse("WS_QUEUE_CAPACITY", 256, positive)?,
            ws_max_per_user: env.parse("WS_MAX_PER_USER", 20, positive)?,
            ws_max_connections: env.parse("WS_MAX_CONNECTIONS", 10_000, positive)?,
            header_timeout: std::time::Duration::from_secs(env.parse(
                "HEADER_TIMEOUT_SECONDS",
                10,
                positive,
            )?),
            body_timeout: std::time::Duration::from_secs(env.parse(
                "BODY_TIMEOUT_SECONDS",
                30,
                positive,
            )?),
            rate_limit_auth_per_minute: env.parse("RATE_LIMIT_AUTH_PER_MINUTE", 20, from_str)?,
            rate_limit_ai_per_minute: env.parse("RATE_LIMIT_AI_PER_MINUTE", 60, from_str)?,
            trust_proxy_headers: env.parse("TRUST_PROXY_HEADERS", false, parse_bool)?,
            body_limit_bytes: env.parse("BODY_LIMIT_BYTES", 1024 * 1024, positive)?,
            upload_limit_bytes: env.parse("UPLOAD_LIMIT_BYTES", 50 * 1024 * 1024, positive)?,
            index_concurrency: env.parse("INDEX_CONCURRENCY", 2, positive)?,
            log_format: env.parse(
                "LOG_FORMAT",
                if debug {
                    LogFormat::Pretty
                } else {
                    LogFormat::Json
                },
                parse_log_format,
            )?,
            llm: LlmConfig {
                provider: env.parse("LLM_PROVIDER", ProviderKind::Local, |raw| {
                    ProviderKind::parse(raw)
                        .ok_or_else(|| "expected local, openai or bedrock".into())
                })?,
                openai_base_url: env
                    .get("OPENAI_BASE_URL")
                    .filter(|url| !url.is_empty())
                    .unwrap_or_else(|| "https://api.openai.com/v1".into())
                    .trim_end_matches('/')
                    .to_owned(),
                openai_api_key: env.get("OPENAI_API_KEY").filter(|key| !key.is_empty()),
                openai_model: env
                    .get("OPENAI_MODEL")
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| "gpt-4o-mini".into()),
                bedrock_model_id: env
                    .get("BEDROCK_MODEL_ID")
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| DEFAULT_BEDROCK_MODEL.into()),
                aws_region: env
                    .get("AWS_REGION")
                    .or_else(|| env.get("AWS_DEFAULT_REGION"))
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "us-east-1".into()),
                bedrock_endpoint_url: env
                    .get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
                    .or_else(|| env.get("AWS_ENDPOINT_URL"))
                    .filter(|url| !url.is_empty()),
                aws_credentials: match (
                    env.get("AWS_ACCESS_KEY_ID").filter(|v| !v.is_empty()),
                    env.get("AWS_SECRET_ACCESS_KEY").filter(|v| !v.is_empty()),
                ) {
                    (Some(access_key_id), Some(secret_access_key)) => Some(AwsCredentials {
                        access_key_id,
                        secret_access_key,
                        session_token: env.get("AWS_SESSION_TOKEN").filter(|v| !v.is_empty()),
                    }),
                    _ => None,
                },
                timeout: std::time::Duration::from_secs(env.parse(
                    "LLM_TIMEOUT_SECONDS",
                    60,
                    positive,
                )?),
                max_tokens: env.parse("LLM_MAX_TOKENS", 2048, positive)?,
                history_token_budget: env.parse("CHAT_HISTORY_TOKEN_BUDGET", 4000, from_str)?,
            },
            whatsapp: WhatsappConfig {
                verify_token: env.get("WHATSAPP_VERIFY_TOKEN").filter(|v| !v.is_empty()),
                app_secret: env.get("WHATSAPP_APP_SECRET").filter(|v| !v.is_empty()),
                access_token: env.get("WHATSAPP_ACCESS_TOKEN").filter(|v| !v.is_empty()),
                api_url: env
                    .get("WHATSAPP_API_URL")
                    .filter(|url| !url.is_empty())
                    .unwrap_or_else(|| "https://graph.facebook.com".into())
                    .trim_end_matches('/')
                    .to_owned(),
                api_version: env
                    .get("WHATSAPP_API_VERSION")
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| "v21.0".into())
                    .trim_matches('/')
                    .to_owned(),
                link_attempts_per_minute: env.parse(
                    "WHATSAPP_LINK_ATTEMPTS_PER_MINUTE",
                    60,
                    from_str,
                )?,
            },
            jobs: JobsConfig {
                lease: std::time::Duration::from_secs(env.parse(
                    "JOB_LEASE_SECONDS",
                    30,
                    positive,
                )?),
                max_attempts: env.parse("JOB_MAX_ATTEMPTS", 8, positive)?,
                poll_interval: std::time::Duration::from_millis(env.parse(
                    "JOB_POLL_INTERVAL_MS",
                    1000,
                    positive,
                )?),
                shutdown_grace: std::time::Duration::from_secs(env.parse(
                    "JOB_SHUTDOWN_GRACE_SECONDS",
                    10,
                    from_str,
                )?),
                backoff_base: std::time::Duration::from_secs(2),
                backoff_cap: std::time::Duration::from_secs(600),
            },
            github: github_config(&env)?,
        };
        if !(config.whatsapp.api_url.starts_with("http://")
            || config.whatsapp.api_url.starts_with("https://"))
        {
            return Err(ConfigError {
                name: "WHATSAPP_API_URL",
                reason: "must be an http(s) URL".into(),
            });
        }
        if !(config.llm.openai_base_url.starts_with("http://")
            || config.llm.openai_base_url.starts_with("https://"))
        {
            return Err(ConfigError {
                name: "OPENAI_BASE_URL",
                reason: "must be an http(s) URL".into(),
            });
        }
        for origin in &config.cors_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(ConfigError {
                    name: "CORS_ORIGINS",
                    reason: format!("`{origin}` is not an http(s) origin"),
                });
            }
        }
        Ok(config)
    }

    /// A configuration suited to tests: fast hashing, no rate limits, a fixed secret.
    pub fn for_tests(database_url: impl Into<String>) -> Self {
        Config {
            debug: true,
            secret_key: "test-secret-key-that-is-at-least-32-bytes-long".into(),
            secret_key_previous: None,
            secret_key_replaced: None,
            database_url: database_url.into(),
            database_max_connections: 5,
            access_token_expire_minutes: 30,
            refresh_token_expire_days: 7,
            bcrypt_rounds: 4,
            auth_cache_ttl: std::time::Duration::from_millis(1000),
            list_cache_bytes: 16 << 20,
            cors_origins: vec!["http://localhost:5173".into()],
            host: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            redis_url: None,
            redis_prefix: "codesherpa-test".into(),
            ws_ping_interval: std::time::Duration::from_secs(30),
            ws_queue_capacity: 256,
            ws_max_per_user: 20,
            ws_max_connections: 10_000,
            header_timeout: std::time::Duration::from_secs(10),
            body_timeout: std::time::Duration::from_secs(30),
            rate_limit_auth_per_minute: 0,
            rate_limit_ai_per_minute: 0,
            trust_proxy_headers: false,
            body_limit_bytes: 1024 * 1024,
            upload_limit_bytes: 50 * 1024 * 1024,
            index_concurrency: 2,
            log_format: LogFormat::Pretty,
            llm: LlmConfig {
                provider: ProviderKind::Local,
                openai_base_url: "http://127.0.0.1:9/v1".into(),
                openai_api_key: None,
                openai_model: "test-model".into(),
                bedrock_model_id: DEFAULT_BEDROCK_MODEL.into(),
                aws_region: "us-east-1".into(),
                bedrock_endpoint_url: None,
                aws_credentials: None,
                timeout: std::time::Duration::from_secs(10),
                max_tokens: 1024,
                history_token_budget: 4000,
            },
            whatsapp: WhatsappConfig {
                verify_token: None,
                app_secret: None,
                access_token: None,
                api_url: "http://127.0.0.1:9".into(),
                api_version: "v21.0".into(),
                link_attempts_per_minute: 0,
            },
            jobs: JobsConfig {
                lease: std::time::Duration::from_secs(30),
                max_attempts: 8,
                poll_interval: std::time::Duration::from_millis(200),
                shutdown_grace: std::time::Duration::from_secs(5),
                backoff_base: std::time::Duration::from_millis(50),
                backoff_cap: std::time::Duration::from_secs(2),
            },
            github: GithubConfig {
                webhook_secret: None,
                api_url: "http://127.0.0.1:9".into(),
                token: None,
                app: None,
                review_max_diff_bytes: 400 * 1024,
                review_concurrency: 4,
                web_url: "http://127.0.0.1:9".into(),
                oauth: None,
                oauth_scope: None,
                public_url: "http://localhost:8000".into(),
            },
        }
    }
}

struct Env<'a, F>(&'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).map(|value| value.trim().to_owned())
    }

    fn parse<T>(
        &self,
        name: &'static str,
        default: T,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) if raw.is_empty() => Ok(default),
            Some(raw) => parse(&raw).map_err(|reason| ConfigError {
                name,
                reason: format!("{reason} (got `{raw}`)"),
            }),
        }
    }
}

fn github_config<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<GithubConfig, ConfigError> {
    let non_empty = |name| env.get(name).filter(|value| !value.is_empty());
    let api_url = http_url(env, "GITHUB_API_URL", "https://api.github.com".into())?;
    let web_url = http_url(env, "GITHUB_WEB_URL", "https://github.com".into())?;
    let port = non_empty("PORT").unwrap_or_else(|| "8000".into());
    let public_url = http_url(env, "PUBLIC_URL", format!("http://localhost:{port}"))?;
    let oauth = github_oauth(env)?;
    let app = github_app(env)?;
    Ok(GithubConfig {
        webhook_secret: non_empty("GITHUB_WEBHOOK_SECRET"),
        api_url,
        token: non_empty("GITHUB_TOKEN"),
        app,
        review_max_diff_bytes: env.parse("GITHUB_REVIEW_MAX_DIFF_BYTES", 400 * 1024, positive)?,
        web_url,
        oauth,
        oauth_scope: non_empty("GITHUB_OAUTH_SCOPE"),
        public_url,
        review_concurrency: env.parse("GITHUB_REVIEW_CONCURRENCY", 4, positive)?,
    })
}

/// A GitHub App: `GITHUB_APP_ID` with its private key (PEM text or file), both or neither.
fn github_app<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<Option<GithubApp>, ConfigError> {
    let non_empty = |name| env.get(name).filter(|value| !value.is_empty());
    let private_key_pem = match (
        non_empty("GITHUB_APP_PRIVATE_KEY"),
        non_empty("GITHUB_APP_PRIVATE_KEY_FILE"),
    ) {
        // Environment files often carry a PEM on one line with literal \n.
        (Some(pem), _) => Some(pem.replace("\\n", "\n")),
        (None, Some(path)) => Some(std::fs::read_to_string(&path).map_err(|err| ConfigError {
            name: "GITHUB_APP_PRIVATE_KEY_FILE",
            reason: format!("cannot read {path}: {err}"),
        })?),
        (None, None) => None,
    };
    Ok(match (non_empty("GITHUB_APP_ID"), private_key_pem) {
        (Some(id), Some(pem)) => {
            if jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).is_err() {
                return Err(ConfigError {
                    name: "GITHUB_APP_PRIVATE_KEY",
                    reason: "is not an RSA private key in PEM form".into(),
                });
            }
            Some(GithubApp {
                id,
                private_key_pem: pem,
            })
        }
        (Some(_), None) => {
            return Err(ConfigError {
                name: "GITHUB_APP_PRIVATE_KEY",
                reason: "GITHUB_APP_ID is set: set GITHUB_APP_PRIVATE_KEY or \
                         GITHUB_APP_PRIVATE_KEY_FILE too"
                    .into(),
            })
        }
        (None, Some(_)) => {
            return Err(ConfigError {
                name: "GITHUB_APP_ID",
                reason: "a GitHub App private key is set without its app id".into(),
            })
        }
        (None, None) => None,
    })
}

/// An http(s) URL setting without its trailing slash.
fn http_url<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    name: &'static str,
    default: String,
) -> Result<String, ConfigError> {
    let url = env
        .get(name)
        .filter(|value| !value.is_empty())
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

/// GitHub's OAuth client (`GITHUB_CLIENT_ID` and `GITHUB_CLIENT_SECRET`): both or neither.
fn github_oauth<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<Option<GithubOAuth>, ConfigError> {
    let non_empty = |name| env.get(name).filter(|value| !value.is_empty());
    match (
        non_empty("GITHUB_CLIENT_ID"),
        non_empty("GITHUB_CLIENT_SECRET"),
    ) {
        (Some(client_id), Some(client_secret)) => Ok(Some(GithubOAuth {
            client_id,
            client_secret,
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError {
            name: "GITHUB_CLIENT_SECRET",
            reason: "GITHUB_CLIENT_ID is set: set its client secret too".into(),
        }),
        (None, Some(_)) => Err(ConfigError {
            name: "GITHUB_CLIENT_ID",
            reason: "a client secret is set without its client id".into(),
        }),
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

impl Config {
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

fn random_secret() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn parse_log_format(raw: &str) -> Result<LogFormat, String> {
    match raw.to_ascii_lowercase().as_str() {
        "pretty" => Ok(LogFormat::Pretty),
        "json" => Ok(LogFormat::Json),
        _ => Err("expected `pretty` or `json`".into()),
    }
}

fn from_str<T: FromStr>(raw: &str) -> Result<T, String>
where
    T::Err: fmt::Display,
{
    raw.parse().map_err(|e: T::Err| e.to_string())
}

fn positive<T: FromStr + PartialOrd + Default>(raw: &str) -> Result<T, String>
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

fn bcrypt_cost(raw: &str) -> Result<u32, String> {
    let cost: u32 = from_str(raw)?;
    if (4..=31).contains(&cost) {
        Ok(cost)
    } else {
        Err("must be between 4 and 31".into())
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
    use super::*;
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
        assert!(config.debug);
        assert_eq!(config.port, 8000);
        assert_eq!(config.database_url, "sqlite://codesherpa.db");
        assert_eq!(config.bcrypt_rounds, 12);
        assert_eq!(config.access_token_expire_minutes, 30);
        assert_eq!(config.rate_limit_auth_per_minute, 20);
        assert_eq!(config.rate_limit_ai_per_minute, 60);
        assert_eq!(config.cors_origins, vec!["http://localhost:5173"]);
        assert_eq!(config.list_cache_bytes, 16 << 20);
        assert_eq!(config.secret_key.len(), 64, "a random development key");
        assert_eq!(config.secret_key_replaced, Some("is not set"));
        assert_eq!(config.secret_key_previous, None);
        assert_eq!(config.llm.provider, ProviderKind::Local);
        assert_eq!(config.llm.openai_base_url, "https://api.openai.com/v1");
        assert_eq!(config.whatsapp.api_url, "https://graph.facebook.com");
        assert_eq!(config.whatsapp.api_version, "v21.0");
        assert!(config.whatsapp.app_secret.is_none());
        assert_eq!(config.whatsapp.link_attempts_per_minute, 60);
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
        assert_eq!(ok.secret_key, strong);
        assert_eq!(ok.log_format, LogFormat::Json);
    }

    #[test]
    fn debug_replaces_a_short_secret_and_says_why() {
        let replaced = config(&[("DEBUG", "true"), ("SECRET_KEY", "short")]).unwrap();
        assert_ne!(replaced.secret_key, "short");
        assert_eq!(
            replaced.secret_key_replaced,
            Some("is shorter than 32 bytes")
        );
        let strong = "0123456789abcdef0123456789abcdef";
        let kept = config(&[("DEBUG", "true"), ("SECRET_KEY", strong)]).unwrap();
        assert_eq!(kept.secret_key, strong);
        assert_eq!(kept.secret_key_replaced, None);
    }

    #[test]
    fn previous_secret_is_optional_but_never_weak() {
        let strong = "0123456789abcdef0123456789abcdef";
        let previous = "fedcba9876543210fedcba9876543210";
        let rotated = config(&[("SECRET_KEY", strong), ("SECRET_KEY_PREVIOUS", previous)]).unwrap();
        assert_eq!(rotated.secret_key_previous.as_deref(), Some(previous));
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
        let err = config(&[("LIST_CACHE_MB", "-1")]).expect_err("must refuse");
        assert_eq!(err.name, "LIST_CACHE_MB");
        assert_eq!(
            config(&[("LIST_CACHE_MB", "0")]).unwrap().list_cache_bytes,
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
            config.cors_origins,
            vec!["https://a.dev", "http://b.dev:3000"]
        );
    }

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
