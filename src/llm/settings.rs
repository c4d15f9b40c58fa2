//! The AI providers' settings (which one answers, their endpoints, keys and models) and
//! the chat pipeline's limits.

use std::{fmt, time::Duration};

use crate::env::{from_str, positive, ConfigError, Env};

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
#[derive(Clone)]
pub struct Settings {
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
    pub timeout: Duration,
    pub max_tokens: u32,
    /// Approximate tokens of earlier session turns sent as history.
    pub history_token_budget: usize,
}

// Hand-written so that the API key never reaches a log line through `{:?}`.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("provider", &self.provider)
            .field("openai_base_url", &self.openai_base_url)
            .field(
                "openai_api_key",
                &self.openai_api_key.as_ref().map(|_| "<redacted>"),
            )
            .field("openai_model", &self.openai_model)
            .field("bedrock_model_id", &self.bedrock_model_id)
            .field("aws_region", &self.aws_region)
            .field("aws_credentials", &self.aws_credentials)
            .finish_non_exhaustive()
    }
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

impl Settings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Settings {
            provider: env.parse("LLM_PROVIDER", ProviderKind::Local, |raw| {
                ProviderKind::parse(raw).ok_or_else(|| "expected local, openai or bedrock".into())
            })?,
            openai_base_url: env.http_url("OPENAI_BASE_URL", "https://api.openai.com/v1".into())?,
            openai_api_key: env.non_empty("OPENAI_API_KEY"),
            openai_model: env
                .non_empty("OPENAI_MODEL")
                .unwrap_or_else(|| "gpt-4o-mini".into()),
            bedrock_model_id: env
                .non_empty("BEDROCK_MODEL_ID")
                .unwrap_or_else(|| DEFAULT_BEDROCK_MODEL.into()),
            // An empty AWS_REGION means the default, not AWS_DEFAULT_REGION.
            aws_region: env
                .get("AWS_REGION")
                .or_else(|| env.get("AWS_DEFAULT_REGION"))
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "us-east-1".into()),
            bedrock_endpoint_url: env
                .get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
                .or_else(|| env.get("AWS_ENDPOINT_URL"))
                .filter(|url| !url.is_empty()),
            aws_credentials: aws_credentials(env),
            timeout: Duration::from_secs(env.parse("LLM_TIMEOUT_SECONDS", 60, positive)?),
            max_tokens: env.parse("LLM_MAX_TOKENS", 2048, positive)?,
            history_token_budget: env.parse("CHAT_HISTORY_TOKEN_BUDGET", 4000, from_str)?,
        })
    }

    /// The local engine; the OpenAI URL points at a closed port.
    pub fn for_tests() -> Self {
        Settings {
            provider: ProviderKind::Local,
            openai_base_url: "http://127.0.0.1:9/v1".into(),
            openai_api_key: None,
            openai_model: "test-model".into(),
            bedrock_model_id: DEFAULT_BEDROCK_MODEL.into(),
            aws_region: "us-east-1".into(),
            bedrock_endpoint_url: None,
            aws_credentials: None,
            timeout: Duration::from_secs(10),
            max_tokens: 1024,
            history_token_budget: 4000,
        }
    }
}

/// `AWS_ACCESS_KEY_ID` with `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`), both or none.
fn aws_credentials(env: &Env) -> Option<AwsCredentials> {
    match (
        env.non_empty("AWS_ACCESS_KEY_ID"),
        env.non_empty("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(access_key_id), Some(secret_access_key)) => Some(AwsCredentials {
            access_key_id,
            secret_access_key,
            session_token: env.non_empty("AWS_SESSION_TOKEN"),
        }),
        _ => None,
    }
}
