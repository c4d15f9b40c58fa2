//! The Graph API calls a reply needs: send a text message, mark a message read. Errors
//! are classified once here: what a later attempt may fix, and what it never will.

use std::time::Duration;

use reqwest::{header::RETRY_AFTER, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::settings::Settings;
use crate::jobs::Stop;

/// Meta's "re-engagement message": more than 24 hours since the user last wrote.
pub const OUTSIDE_WINDOW: i64 = 131_047;

/// Graph error codes that mean "too many calls", whatever HTTP status carries them.
const THROTTLING_CODES: &[i64] = &[4, 80_007, 130_429, 131_048, 131_056];

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Worth another attempt: 5xx, 429 and throttling codes, timeouts, network failures.
    #[error("{reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Never succeeds as is: other 4xx (131047 among them), missing credentials.
    #[error("{0}")]
    Permanent(String),
}

impl From<GraphError> for Stop {
    fn from(err: GraphError) -> Self {
        match err {
            GraphError::Retryable {
                reason,
                retry_after,
            } => Stop::Retry {
                reason,
                after: retry_after,
            },
            GraphError::Permanent(reason) => Stop::Failed(reason),
        }
    }
}

/// Who a message goes to: a phone number, or a business-scoped user id when Meta
/// withheld the number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    Number(String),
    UserId(String),
}

#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    api_url: String,
    api_version: String,
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct Sent {
    #[serde(default)]
    messages: Vec<SentMessage>,
}

#[derive(Deserialize)]
struct SentMessage {
    id: String,
}

impl GraphClient {
    pub fn new(config: &Settings) -> Self {
        GraphClient {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .connect_timeout(Duration::from_secs(5))
                .build()
                .expect("a reqwest client with timeouts builds"),
            api_url: config.api_url.clone(),
            api_version: config.api_version.clone(),
            access_token: config.access_token.clone(),
        }
    }

    /// Sends `body` as a text message; answers the wamid Meta gave it.
    pub async fn send_text(
        &self,
        phone_number_id: &str,
        to: &Recipient,
        body: &str,
    ) -> Result<String, GraphError> {
        let mut message = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "type": "text",
            "text": {"preview_url": false, "body": body},
        });
        match to {
            Recipient::Number(number) => message["to"] = json!(number),
            Recipient::UserId(user_id) => message["recipient"] = json!(user_id),
        }
        let reply = self.post(phone_number_id, &message).await?;
        let sent: Sent = serde_json::from_value(reply)
            .map_err(|_| GraphError::Permanent("Graph API answered an unexpected body".into()))?;
        sent.messages
            .into_iter()
            .next()
            .map(|m| m.id)
            .ok_or_else(|| GraphError::Permanent("Graph API answered no message id".into()))
    }

    /// The blue ticks: tells the sender their message was read.
    pub async fn mark_read(&self, phone_number_id: &str, wamid: &str) -> Result<(), GraphError> {
        let receipt =
            json!({"messaging_product": "whatsapp", "status": "read", "message_id": wamid});
        self.post(phone_number_id, &receipt).await.map(drop)
    }

    async fn post(&self, phone_number_id: &str, body: &Value) -> Result<Value, GraphError> {
        let Some(token) = &self.access_token else {
            return Err(GraphError::Permanent(
                "WHATSAPP_ACCESS_TOKEN is not set".into(),
            ));
        };
        let url = format!(
            "{}/{}/{}/messages",
            self.api_url,
            self.api_version,
            urlencode(phone_number_id)
        );
        let response = self
            .http
            .post(url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|err| GraphError::Retryable {
                reason: format!("Graph API unreachable: {}", without_url(&err)),
                retry_after: None,
            })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.unwrap_or_default();
        let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(parsed);
        }
        Err(classify(status, &parsed, retry_after))
    }
}

/// The error as a retry policy sees it. Meta's own message is kept for the record (it
/// names the problem, never a secret); the response body is not.
fn classify(status: StatusCode, body: &Value, retry_after: Option<Duration>) -> GraphError {
    let code = body["error"]["code"].as_i64();
    let message = body["error"]["message"].as_str().unwrap_or("no message");
    let reason = match code {
        Some(code) => format!("Graph API {status} (code {code}): {message}"),
        None => format!("Graph API {status}"),
    };
    let throttled = code.is_some_and(|c| THROTTLING_CODES.contains(&c));
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || throttled
    {
        GraphError::Retryable {
            reason,
            retry_after,
        }
    } else {
        GraphError::Permanent(reason)
    }
}

/// reqwest's messages carry the URL; keep only the kind of failure.
fn without_url(err: &reqwest::Error) -> &'static str {
    if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
}

/// A phone number id is digits; anything else is escaped rather than trusted into a path.
fn urlencode(segment: &str) -> String {
    form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

/// What the WhatsApp slice shares through `AppState`.
pub struct Whatsapp {
    pub graph: GraphClient,
}

impl Whatsapp {
    pub fn new(config: &Settings) -> Self {
        Whatsapp {
            graph: GraphClient::new(config),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: i64) -> Value {
        json!({"error": {"message": "m", "type": "OAuthException", "code": code, "fbtrace_id": "x"}})
    }

    #[test]
    fn server_errors_and_throttling_are_retried_the_rest_is_permanent() {
        let retryable = |e: GraphError| matches!(e, GraphError::Retryable { .. });
        assert!(retryable(classify(
            StatusCode::BAD_GATEWAY,
            &Value::Null,
            None
        )));
        assert!(retryable(classify(
            StatusCode::TOO_MANY_REQUESTS,
            &error(4),
            None
        )));
        assert!(retryable(classify(
            StatusCode::BAD_REQUEST,
            &error(130_429),
            None
        )));
        assert!(!retryable(classify(
            StatusCode::BAD_REQUEST,
            &error(OUTSIDE_WINDOW),
            None
        )));
        assert!(!retryable(classify(
            StatusCode::UNAUTHORIZED,
            &error(190),
            None
        )));
        let GraphError::Permanent(reason) =
            classify(StatusCode::BAD_REQUEST, &error(OUTSIDE_WINDOW), None)
        else {
            panic!("131047 is permanent");
        };
        assert!(reason.contains("131047"), "{reason}");
    }
}
