//! AI providers behind one streaming trait: AWS Bedrock (Converse), any OpenAI-compatible
//! endpoint, and the offline local engine.

pub mod bedrock;
pub mod local;
pub mod map;
pub mod openai;
pub mod settings;

use std::{sync::Arc, time::Duration};

use futures_util::{future::BoxFuture, stream::BoxStream, StreamExt};

pub use map::ProjectMap;
pub use settings::{ProviderKind, Settings};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

#[derive(Clone, Debug)]
pub struct Turn {
    pub role: Role,
    pub content: String,
}

/// What a call is for. Remote models learn it from the system prompt; the local engine,
/// which has no model, dispatches on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    Route,
    Review,
    Explain,
    Docs,
    Chat,
}

/// The user's own words, kept apart from the composed prompt for the local engine.
#[derive(Clone, Debug, Default)]
pub struct Subject {
    pub message: String,
    pub code_context: Option<String>,
    /// Windows of the project's indexed code that match the message.
    pub project_snippets: Vec<Snippet>,
    /// The files related to the message with their definitions, and where the names it
    /// asks about are defined and used (`codebase::map`).
    pub project_map: Option<ProjectMap>,
    /// What a reviewed change touches that the project uses elsewhere (a review's
    /// "context from the code").
    pub uses: Vec<Uses>,
}

/// A function or type a reviewed diff changes, and places elsewhere in the project that
/// use it by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uses {
    pub name: String,
    /// Where the diff changes it: a file and a line of the diff's new side.
    pub path: String,
    pub line: u32,
    /// Each use as its one line (`start == line`).
    pub places: Vec<Snippet>,
}

/// A window of a project file around a matching line (`codebase::retrieval` finds them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snippet {
    pub path: String,
    /// The matching line (1-based): what an answer cites as `path:line`.
    pub line: usize,
    /// The first line of `text`.
    pub start: usize,
    pub text: String,
}

impl Snippet {
    pub fn citation(&self) -> String {
        format!("{}:{}", self.path, self.line)
    }
}

#[derive(Clone, Debug)]
pub struct LlmRequest {
    pub system: String,
    /// Earlier turns, oldest first, then the new user turn last.
    pub messages: Vec<Turn>,
    /// A model id overriding the provider's default.
    pub model: Option<String>,
    pub max_tokens: u32,
    pub task: Task,
    pub subject: Subject,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chunk {
    Delta(String),
    Usage(Usage),
}

pub type ChunkStream = BoxStream<'static, Result<Chunk, LlmError>>;

/// A provider failure. What it displays is all a client or a chat row ever sees; the
/// `String` is the provider's own detail (its error text may hold a traceback or name a
/// cloud account), for the logs only: see [`LlmError::detail`].
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum LlmError {
    #[error("the AI provider is throttling requests; try again shortly")]
    Throttled,
    #[error("the AI provider is unavailable")]
    Unavailable(String),
    #[error("the AI provider did not answer in time")]
    Timeout,
    #[error("the AI provider sent a response that could not be read")]
    BadResponse(String),
    #[error("the AI provider refused the request")]
    Rejected(String),
}

impl LlmError {
    /// The provider's detail, for the logs.
    pub fn detail(&self) -> &str {
        match self {
            LlmError::Unavailable(detail)
            | LlmError::BadResponse(detail)
            | LlmError::Rejected(detail) => detail,
            LlmError::Throttled | LlmError::Timeout => "",
        }
    }
}

/// What a client is told when the provider failed: busy (503), too slow (504) or broken (502).
impl From<LlmError> for crate::error::Error {
    fn from(err: LlmError) -> Self {
        use crate::error::Error;
        match err {
            LlmError::Throttled => Error::Unavailable("The AI provider is busy; try again shortly"),
            LlmError::Timeout => Error::GatewayTimeout(err.to_string()),
            other => Error::BadGateway(other.to_string()),
        }
    }
}

/// The detail logged when a provider refuses our key or role; the provider's own text
/// may echo part of the key, so not even the logs get it.
pub const CREDENTIALS_REFUSED: &str =
    "the provider refused the server's credentials (check the API key or role)";

/// A source of streamed completions.
pub trait Provider: Send + Sync {
    /// `bedrock`, `openai` or `local`, as recorded on each chat.
    fn name(&self) -> &'static str;
    fn default_model(&self) -> &str;
    /// Starts a generation. Dropping the stream cancels it.
    fn stream(&self, request: LlmRequest) -> ChunkStream;

    /// One whole answer: the stream, collected, unless the provider has a dedicated
    /// non-streaming API (Bedrock's Converse).
    fn complete(&self, request: LlmRequest) -> BoxFuture<'static, Result<Completion, LlmError>> {
        let mut stream = self.stream(request);
        Box::pin(async move {
            let mut completion = Completion::default();
            while let Some(chunk) = stream.next().await {
                match chunk? {
                    Chunk::Delta(text) => completion.text.push_str(&text),
                    Chunk::Usage(usage) => completion.usage = usage,
                }
            }
            Ok(completion)
        })
    }
}

#[derive(Debug, Default)]
pub struct Completion {
    pub text: String,
    pub usage: Usage,
}

/// The non-streaming call, bounded by `timeout` as a whole.
pub async fn complete(
    provider: &dyn Provider,
    request: LlmRequest,
    timeout: Duration,
) -> Result<Completion, LlmError> {
    tokio::time::timeout(timeout, provider.complete(request))
        .await
        .unwrap_or(Err(LlmError::Timeout))
}

/// [`complete`] as a stream of one piece and its usage: for an answer nobody watches being
/// written (the provider's non-streaming API where it has one; bounded as a whole).
pub fn whole(provider: Arc<dyn Provider>, request: LlmRequest, timeout: Duration) -> ChunkStream {
    Box::pin(async_stream::stream! {
        match complete(provider.as_ref(), request, timeout).await {
            Ok(completion) => {
                yield Ok(Chunk::Delta(completion.text));
                yield Ok(Chunk::Usage(completion.usage));
            }
            Err(err) => yield Err(err),
        }
    })
}

/// Fails the stream when no piece arrives within `idle`.
pub fn with_idle_timeout(mut inner: ChunkStream, idle: Duration) -> ChunkStream {
    Box::pin(async_stream::stream! {
        loop {
            match tokio::time::timeout(idle, inner.next()).await {
                Ok(Some(item)) => {
                    let failed = item.is_err();
                    yield item;
                    if failed {
                        break;
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    yield Err(LlmError::Timeout);
                    break;
                }
            }
        }
    })
}

/// The configured providers; an agent's `model` may pick one by prefix
/// (`openai:gpt-4o`, `bedrock:anthropic.claude…`, `local`).
#[derive(Clone)]
pub struct Providers {
    default: Arc<dyn Provider>,
    local: Arc<dyn Provider>,
    openai: Option<Arc<dyn Provider>>,
    bedrock: Option<Arc<dyn Provider>>,
}

impl Providers {
    /// The local engine alone, for commands that run no exchange (`codesherpa jobs`).
    pub fn local_only() -> Self {
        let local: Arc<dyn Provider> = Arc::new(local::LocalEngine);
        Providers {
            default: local.clone(),
            local,
            openai: None,
            bedrock: None,
        }
    }

    pub async fn from_config(config: &Settings) -> Self {
        let local: Arc<dyn Provider> = Arc::new(local::LocalEngine);
        let openai: Option<Arc<dyn Provider>> = (config.provider == ProviderKind::OpenAi
            || config.openai_api_key.is_some())
        .then(|| Arc::new(openai::OpenAi::new(config)) as Arc<dyn Provider>);
        let bedrock: Option<Arc<dyn Provider>> = if config.provider == ProviderKind::Bedrock {
            Some(Arc::new(bedrock::Bedrock::from_env(config).await))
        } else {
            None
        };
        let default = match config.provider {
            ProviderKind::Local => local.clone(),
            ProviderKind::OpenAi => openai.clone().unwrap_or_else(|| local.clone()),
            ProviderKind::Bedrock => bedrock.clone().unwrap_or_else(|| local.clone()),
        };
        Providers {
            default,
            local,
            openai,
            bedrock,
        }
    }

    pub fn default_name(&self) -> &'static str {
        self.default.name()
    }

    /// The provider and model id for an agent's `model` setting.
    pub fn select(&self, agent_model: Option<&str>) -> (Arc<dyn Provider>, Option<String>) {
        let Some(spec) = agent_model.map(str::trim).filter(|m| !m.is_empty()) else {
            return (self.default.clone(), None);
        };
        let (prefix, model) = spec.split_once(':').unwrap_or((spec, ""));
        let model = (!model.is_empty()).then(|| model.to_owned());
        match ProviderKind::parse(prefix) {
            Some(ProviderKind::Local) => (self.local.clone(), None),
            Some(ProviderKind::OpenAi) if self.openai.is_some() => {
                (self.openai.clone().unwrap(), model)
            }
            Some(ProviderKind::Bedrock) if self.bedrock.is_some() => {
                (self.bedrock.clone().unwrap(), model)
            }
            // A provider that is not configured, or a bare model id for the default one.
            Some(_) => (self.default.clone(), None),
            None if self.default.name() == "local" => (self.default.clone(), None),
            None => (self.default.clone(), Some(spec.to_owned())),
        }
    }
}

/// Rough token count (about four characters a token), for budgeting history.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_timeout_ends_a_silent_stream() {
        let silent: ChunkStream = Box::pin(futures_util::stream::pending());
        let mut stream = with_idle_timeout(silent, Duration::from_millis(20));
        assert_eq!(stream.next().await, Some(Err(LlmError::Timeout)));
        assert_eq!(stream.next().await, None);
    }

    #[tokio::test]
    async fn agent_models_select_providers() {
        let providers = Providers::from_config(&Settings::for_tests()).await;
        assert_eq!(providers.select(None).0.name(), "local");
        assert_eq!(providers.select(Some("local")).0.name(), "local");
        // OpenAI is not configured in tests: the default answers.
        assert_eq!(providers.select(Some("openai:gpt-4o")).0.name(), "local");
        assert_eq!(estimate_tokens("abcdefgh"), 2);
    }
}
