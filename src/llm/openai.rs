//! OpenAI-compatible Chat Completions with `stream: true` (OpenAI, Ollama, vLLM,
//! llama.cpp server): server-sent events of `chat.completion.chunk`, then `[DONE]`.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::{header, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::{
    Chunk, ChunkStream, LlmError, LlmRequest, Provider, Role, Settings, Usage, CREDENTIALS_REFUSED,
};

const ATTEMPTS: u32 = 3;

#[derive(Clone)]
pub struct OpenAi {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    model: String,
}

impl OpenAi {
    pub fn new(config: &Settings) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(config.timeout)
            .build()
            .expect("HTTP client");
        OpenAi {
            client,
            base_url: config.openai_base_url.clone(),
            api_key: config.openai_api_key.clone(),
            model: config.openai_model.clone(),
        }
    }

    fn body(&self, request: &LlmRequest) -> serde_json::Value {
        let mut messages = vec![json!({"role": "system", "content": request.system})];
        messages.extend(request.messages.iter().map(|turn| {
            let role = match turn.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({"role": role, "content": turn.content})
        }));
        json!({
            "model": request.model.as_deref().unwrap_or(&self.model),
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": request.max_tokens,
        })
    }

    /// Sends the request, retrying throttling, 5xx and connection failures with backoff.
    async fn send(&self, body: &serde_json::Value) -> Result<reqwest::Response, LlmError> {
        let url = format!("{}/chat/completions", self.base_url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self.client.post(&url).json(body);
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key);
            }
            let error = match request.send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(&response);
                    let detail = error_detail(response).await;
                    match status {
                        StatusCode::TOO_MANY_REQUESTS => (LlmError::Throttled, retry_after),
                        // The provider's text may echo part of our key: say only what failed.
                        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                            return Err(LlmError::Rejected(CREDENTIALS_REFUSED.into()))
                        }
                        s if s.is_server_error() => (
                            LlmError::Unavailable(format!("HTTP {}: {detail}", s.as_u16())),
                            retry_after,
                        ),
                        s => {
                            return Err(LlmError::Rejected(format!(
                                "HTTP {}: {detail}",
                                s.as_u16()
                            )))
                        }
                    }
                }
                Err(err) if err.is_timeout() => (LlmError::Timeout, None),
                Err(err) => (LlmError::Unavailable(connection_error(&err)), None),
            };
            if attempt >= ATTEMPTS {
                return Err(error.0);
            }
            let backoff = error
                .1
                .unwrap_or(Duration::from_millis(200 * 2u64.pow(attempt - 1)))
                .min(Duration::from_secs(5));
            tracing::warn!(attempt, error = %error.0, detail = error.0.detail(), "retrying the OpenAI-compatible provider");
            tokio::time::sleep(backoff).await;
        }
    }
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The provider's own error message, bounded; never our request or key.
async fn error_detail(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or(text);
    message.chars().take(300).collect()
}

fn connection_error(err: &reqwest::Error) -> String {
    if err.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

#[derive(Deserialize)]
struct StreamChunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<Message>,
    /// Non-streaming answers carry `message` instead of `delta`.
    #[serde(default)]
    message: Option<Message>,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

fn chunks_of(chunk: StreamChunk) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = chunk
        .choices
        .into_iter()
        .filter_map(|choice| choice.delta.or(choice.message)?.content)
        .filter(|text| !text.is_empty())
        .map(Chunk::Delta)
        .collect();
    if let Some(usage) = chunk.usage {
        out.push(Chunk::Usage(Usage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        }));
    }
    out
}

impl Provider for OpenAi {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn default_model(&self) -> &str {
        &self.model
    }

    fn stream(&self, request: LlmRequest) -> ChunkStream {
        let body = self.body(&request);
        let this = self.clone();
        Box::pin(async_stream::try_stream! {
            let response = this.send(&body).await?;
            let is_sse = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"));
            if !is_sse {
                // A server that ignored `stream: true` answers one JSON completion.
                let text = response.text().await.map_err(|e| LlmError::BadResponse(e.to_string()))?;
                let chunk: StreamChunk = serde_json::from_str(&text)
                    .map_err(|_| LlmError::BadResponse("expected server-sent events or a JSON completion".into()))?;
                for piece in chunks_of(chunk) {
                    yield piece;
                }
                return;
            }
            let mut events = response.bytes_stream().eventsource();
            let mut finished = false;
            while let Some(event) = events.next().await {
                let event = event.map_err(|err| match err {
                    eventsource_stream::EventStreamError::Transport(e) if e.is_timeout() => LlmError::Timeout,
                    other => LlmError::BadResponse(other.to_string()),
                })?;
                let data = event.data.trim();
                if data == "[DONE]" {
                    finished = true;
                    break;
                }
                if data.is_empty() {
                    continue;
                }
                let value: serde_json::Value = serde_json::from_str(data)
                    .map_err(|_| LlmError::BadResponse("a streamed chunk is not JSON".into()))?;
                if let Some(message) = value["error"]["message"].as_str() {
                    Err(LlmError::Unavailable(message.chars().take(300).collect()))?;
                }
                let chunk: StreamChunk = serde_json::from_value(value)
                    .map_err(|_| LlmError::BadResponse("a streamed chunk has an unexpected shape".into()))?;
                for piece in chunks_of(chunk) {
                    yield piece;
                }
            }
            if !finished {
                Err(LlmError::BadResponse("the stream ended before [DONE]".into()))?;
            }
        })
    }
}
