//! AWS Bedrock Runtime through the official SDK: ConverseStream for streaming (Converse
//! semantics: a system prompt plus alternating user/assistant messages).

use aws_config::{retry::RetryConfig, timeout::TimeoutConfig, BehaviorVersion, Region};
use aws_sdk_bedrockruntime::{
    error::{ProvideErrorMetadata, SdkError},
    types::{
        ContentBlock, ContentBlockDelta, ConversationRole, ConverseOutput, ConverseStreamOutput,
        InferenceConfiguration, Message, SystemContentBlock, TokenUsage,
    },
    Client,
};

use futures_util::future::BoxFuture;

use super::{
    Chunk, ChunkStream, Completion, LlmError, LlmRequest, Provider, Role, Settings, Usage,
};

#[derive(Clone)]
pub struct Bedrock {
    client: Client,
    model_id: String,
}

impl Bedrock {
    /// Region and credentials come from the standard AWS chain (environment, profile, SSO,
    /// container or instance role); `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` overrides the endpoint.
    pub async fn from_env(config: &Settings) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.aws_region.clone()))
            // Throttling and 5xx are retried with exponential backoff and jitter.
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(std::time::Duration::from_secs(10))
                    .read_timeout(config.timeout)
                    .build(),
            );
        if let Some(endpoint) = &config.bedrock_endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(credentials) = &config.aws_credentials {
            loader = loader.credentials_provider(aws_sdk_bedrockruntime::config::Credentials::new(
                &credentials.access_key_id,
                &credentials.secret_access_key,
                credentials.session_token.clone(),
                None,
                "codesherpa-config",
            ));
        }
        let shared = loader.load().await;
        Bedrock {
            client: Client::new(&shared),
            model_id: config.bedrock_model_id.clone(),
        }
    }

    fn inference(request: &LlmRequest) -> InferenceConfiguration {
        InferenceConfiguration::builder()
            .max_tokens(i32::try_from(request.max_tokens).unwrap_or(i32::MAX))
            .build()
    }

    fn messages(request: &LlmRequest) -> Result<Vec<Message>, LlmError> {
        request
            .messages
            .iter()
            .map(|turn| {
                Message::builder()
                    .role(match turn.role {
                        Role::User => ConversationRole::User,
                        Role::Assistant => ConversationRole::Assistant,
                    })
                    .content(ContentBlock::Text(turn.content.clone()))
                    .build()
                    .map_err(|err| LlmError::Rejected(err.to_string()))
            })
            .collect()
    }
}

fn usage_of(usage: &TokenUsage) -> Usage {
    Usage {
        prompt_tokens: u64::try_from(usage.input_tokens).unwrap_or(0),
        completion_tokens: u64::try_from(usage.output_tokens).unwrap_or(0),
    }
}

/// Maps a Bedrock failure to what the user is told.
fn classify<E: ProvideErrorMetadata + std::fmt::Debug, R>(err: &SdkError<E, R>) -> LlmError {
    match err {
        SdkError::TimeoutError(_) => LlmError::Timeout,
        SdkError::DispatchFailure(_) => LlmError::Unavailable("connection failed".into()),
        SdkError::ResponseError(_) => LlmError::BadResponse("unreadable Bedrock response".into()),
        SdkError::ServiceError(service) => {
            let err = service.err();
            let message: String = err
                .message()
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect();
            match err.code().unwrap_or_default() {
                "ThrottlingException" | "ServiceQuotaExceededException" => LlmError::Throttled,
                "ModelTimeoutException" => LlmError::Timeout,
                "InternalServerException"
                | "ServiceUnavailableException"
                | "ModelNotReadyException"
                | "ModelStreamErrorException" => LlmError::Unavailable(message),
                "" => LlmError::Unavailable("unexpected Bedrock error".into()),
                // Their messages name the account and identity: keep those to the logs.
                "AccessDeniedException"
                | "UnrecognizedClientException"
                | "ExpiredTokenException" => {
                    tracing::warn!(code = err.code().unwrap_or_default(), %message, "Bedrock refused our credentials");
                    LlmError::Rejected(super::CREDENTIALS_REFUSED.into())
                }
                code => LlmError::Rejected(format!("{code}: {message}")),
            }
        }
        _ => LlmError::Unavailable("request failed".into()),
    }
}

impl Provider for Bedrock {
    fn name(&self) -> &'static str {
        "bedrock"
    }

    fn default_model(&self) -> &str {
        &self.model_id
    }

    fn stream(&self, request: LlmRequest) -> ChunkStream {
        let this = self.clone();
        Box::pin(async_stream::try_stream! {
            let messages = Self::messages(&request)?;
            let model_id = request.model.clone().unwrap_or_else(|| this.model_id.clone());
            let mut output = this
                .client
                .converse_stream()
                .model_id(model_id)
                .system(SystemContentBlock::Text(request.system.clone()))
                .set_messages(Some(messages))
                .inference_config(Self::inference(&request))
                .send()
                .await
                .map_err(|err| classify(&err))?;
            loop {
                let event = output.stream.recv().await.map_err(|err| classify(&err))?;
                match event {
                    None => break,
                    Some(ConverseStreamOutput::ContentBlockDelta(event)) => {
                        if let Some(ContentBlockDelta::Text(text)) = event.delta {
                            yield Chunk::Delta(text);
                        }
                    }
                    Some(ConverseStreamOutput::Metadata(event)) => {
                        if let Some(usage) = &event.usage {
                            yield Chunk::Usage(usage_of(usage));
                        }
                    }
                    Some(_) => {}
                }
            }
        })
    }

    /// Converse: the whole answer in one JSON response.
    fn complete(&self, request: LlmRequest) -> BoxFuture<'static, Result<Completion, LlmError>> {
        let this = self.clone();
        Box::pin(async move {
            let output = this
                .client
                .converse()
                .model_id(
                    request
                        .model
                        .clone()
                        .unwrap_or_else(|| this.model_id.clone()),
                )
                .system(SystemContentBlock::Text(request.system.clone()))
                .set_messages(Some(Self::messages(&request)?))
                .inference_config(Self::inference(&request))
                .send()
                .await
                .map_err(|err| classify(&err))?;
            let text = match output.output {
                Some(ConverseOutput::Message(message)) => message
                    .content
                    .into_iter()
                    .filter_map(|block| match block {
                        ContentBlock::Text(text) => Some(text),
                        _ => None,
                    })
                    .collect(),
                _ => return Err(LlmError::BadResponse("Converse returned no message".into())),
            };
            Ok(Completion {
                text,
                usage: output.usage.as_ref().map(usage_of).unwrap_or_default(),
            })
        })
    }
}
