//! The Graph API calls the WhatsApp slice needs: send a text or a template, mark a message
//! read (with the typing indicator), look up and download a shared file. Errors are
//! classified once here: what a later attempt may fix, what only needs time (Meta's
//! throttling), and what never will.

use std::time::Duration;

use reqwest::{header::RETRY_AFTER, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::settings::Settings;
use crate::jobs::Stop;

/// Meta's "re-engagement message": more than 24 hours since the user last wrote.
pub const OUTSIDE_WINDOW: i64 = 131_047;

/// Meta's pair rate limit: too many messages to one number (about one every 6 s).
pub const PAIR_RATE: i64 = 131_056;

/// After a pair-rate refusal, messages to that number go out at least this far apart.
pub const PAIR_RATE_GAP: Duration = Duration::from_secs(6);

/// Graph error codes that mean "slow down", whatever HTTP status carries them: `4` (the
/// app's call rate), `80007` (the business account's rate), `130429` (the number's
/// throughput) and `131056` (the pair rate).
const THROTTLING_CODES: &[i64] = &[4, 80_007, 130_429, PAIR_RATE];

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Worth another attempt: 5xx, 429, timeouts, network failures.
    #[error("{reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Meta asked us to slow down: retried with backoff (after a pair-rate refusal, at
    /// least [`PAIR_RATE_GAP`] later), and never a failure.
    #[error("{reason}")]
    Throttled {
        code: i64,
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Never succeeds as is: other 4xx (131047 among them), missing credentials.
    #[error("{reason}")]
    Permanent { code: Option<i64>, reason: String },
}

impl GraphError {
    fn permanent(reason: impl Into<String>) -> Self {
        GraphError::Permanent {
            code: None,
            reason: reason.into(),
        }
    }

    /// Meta refused a message for the pair rate.
    pub fn is_pair_rate(&self) -> bool {
        matches!(self, GraphError::Throttled { code, .. } if *code == PAIR_RATE)
    }

    /// The earliest a throttled call may be tried again: what Meta said, and never sooner
    /// than [`PAIR_RATE_GAP`] after a pair-rate refusal.
    pub fn throttle_wait(code: i64, retry_after: Option<Duration>) -> Option<Duration> {
        if code == PAIR_RATE {
            Some(retry_after.unwrap_or_default().max(PAIR_RATE_GAP))
        } else {
            retry_after
        }
    }
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
            GraphError::Throttled {
                code,
                reason,
                retry_after,
            } => Stop::Retry {
                reason,
                after: GraphError::throttle_wait(code, retry_after),
            },
            GraphError::Permanent { reason, .. } => Stop::Failed(reason),
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

/// An approved message template and the values of its body's `{{n}}` parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template<'a> {
    pub name: &'a str,
    pub language: &'a str,
    pub parameters: Vec<String>,
}

/// Where a shared file can be downloaded (for 5 minutes), as `GET /{media-id}` says.
#[derive(Clone, Debug, Deserialize)]
pub struct MediaInfo {
    pub url: String,
    pub mime_type: Option<String>,
    /// Bytes; Meta sends a string (`"303833"`), some versions a number.
    #[serde(default, deserialize_with = "lenient_size")]
    pub file_size: Option<u64>,
}

fn lenient_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    Ok(value.and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
    }))
}

/// A downloaded file: its bytes, or that it is larger than the limit asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Downloaded {
    Bytes(Vec<u8>),
    TooLarge,
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
        let message = json!({
            "type": "text",
            "text": {"preview_url": false, "body": body},
        });
        self.send(phone_number_id, to, message).await
    }

    /// Sends an approved template (the only message Meta delivers outside the 24-hour
    /// window); answers the wamid Meta gave it.
    pub async fn send_template(
        &self,
        phone_number_id: &str,
        to: &Recipient,
        template: &Template<'_>,
    ) -> Result<String, GraphError> {
        let parameters: Vec<Value> = template
            .parameters
            .iter()
            .map(|text| json!({"type": "text", "text": text}))
            .collect();
        let message = json!({
            "type": "template",
            "template": {
                "name": template.name,
                "language": {"code": template.language},
                "components": [{"type": "body", "parameters": parameters}],
            },
        });
        self.send(phone_number_id, to, message).await
    }

    async fn send(
        &self,
        phone_number_id: &str,
        to: &Recipient,
        mut message: Value,
    ) -> Result<String, GraphError> {
        message["messaging_product"] = json!("whatsapp");
        message["recipient_type"] = json!("individual");
        match to {
            Recipient::Number(number) => message["to"] = json!(number),
            Recipient::UserId(user_id) => message["recipient"] = json!(user_id),
        }
        let reply = self.post(phone_number_id, &message).await?;
        let sent: Sent = serde_json::from_value(reply)
            .map_err(|_| GraphError::permanent("Graph API answered an unexpected body"))?;
        sent.messages
            .into_iter()
            .next()
            .map(|m| m.id)
            .ok_or_else(|| GraphError::permanent("Graph API answered no message id"))
    }

    /// The blue ticks, and "typing…" while the answer is worked out: Meta shows the
    /// indicator for up to 25 seconds, or until the reply arrives.
    pub async fn mark_read(&self, phone_number_id: &str, wamid: &str) -> Result<(), GraphError> {
        let receipt = json!({
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": wamid,
            "typing_indicator": {"type": "text"},
        });
        self.post(phone_number_id, &receipt).await.map(drop)
    }

    /// `GET /{version}/{media-id}`: where a shared file can be downloaded, checked to
    /// belong to the business number it was sent to.
    pub async fn media(
        &self,
        media_id: &str,
        phone_number_id: &str,
    ) -> Result<MediaInfo, GraphError> {
        let url = format!(
            "{}/{}/{}?phone_number_id={}",
            self.api_url,
            self.api_version,
            urlencode(media_id),
            urlencode(phone_number_id)
        );
        let response = self.call(self.http.get(url)).await?;
        let (status, retry_after, body) = read(response).await;
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(classify(status, &parsed, retry_after));
        }
        serde_json::from_value(parsed)
            .map_err(|_| GraphError::permanent("Graph API answered no media URL"))
    }

    /// Downloads a media URL (with the access token, as Meta requires), reading at most
    /// `limit` bytes: a larger file is [`Downloaded::TooLarge`], never held in memory.
    pub async fn download(&self, url: &str, limit: usize) -> Result<Downloaded, GraphError> {
        let mut response = self.call(self.http.get(url)).await?;
        let status = response.status();
        if !status.is_success() {
            let (status, retry_after, body) = read(response).await;
            let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            return Err(classify(status, &parsed, retry_after));
        }
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Ok(Downloaded::TooLarge);
        }
        let mut bytes = Vec::new();
        loop {
            let chunk = response
                .chunk()
                .await
                .map_err(|err| GraphError::Retryable {
                    reason: format!("media download failed: {}", without_url(&err)),
                    retry_after: None,
                })?;
            let Some(chunk) = chunk else {
                return Ok(Downloaded::Bytes(bytes));
            };
            if bytes.len() + chunk.len() > limit {
                return Ok(Downloaded::TooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
    }

    async fn post(&self, phone_number_id: &str, body: &Value) -> Result<Value, GraphError> {
        let url = format!(
            "{}/{}/{}/messages",
            self.api_url,
            self.api_version,
            urlencode(phone_number_id)
        );
        let response = self.call(self.http.post(url).json(body)).await?;
        let (status, retry_after, text) = read(response).await;
        let parsed: Value = serde_json::from_slice(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(parsed);
        }
        Err(classify(status, &parsed, retry_after))
    }

    /// Sends `request` with the access token.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, GraphError> {
        let Some(token) = &self.access_token else {
            return Err(GraphError::permanent("WHATSAPP_ACCESS_TOKEN is not set"));
        };
        request
            .bearer_auth(token)
            .send()
            .await
            .map_err(|err| GraphError::Retryable {
                reason: format!("Graph API unreachable: {}", without_url(&err)),
                retry_after: None,
            })
    }
}

/// The status, `Retry-After` and body of an answer (an unreadable body reads as empty).
async fn read(response: reqwest::Response) -> (StatusCode, Option<Duration>, Vec<u8>) {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response
        .bytes()
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    (status, retry_after, body)
}

/// The error as a retry policy sees it. Meta's own message is kept for the record (it
/// names the problem, never a secret); the response body is not.
fn classify(status: StatusCode, body: &Value, retry_after: Option<Duration>) -> GraphError {
    let code = body["error"]["code"]
        .as_i64()
        .or_else(|| body["error"]["code"].as_str().and_then(|c| c.parse().ok()));
    let message = body["error"]["message"].as_str().unwrap_or("no message");
    let reason = match code {
        Some(code) => format!("Graph API {status} (code {code}): {message}"),
        None => format!("Graph API {status}"),
    };
    match code {
        Some(code) if THROTTLING_CODES.contains(&code) => GraphError::Throttled {
            code,
            reason,
            retry_after,
        },
        _ if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT =>
        {
            GraphError::Retryable {
                reason,
                retry_after,
            }
        }
        code => GraphError::Permanent { code, reason },
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
    fn server_errors_are_retried_throttling_waits_the_rest_is_permanent() {
        let retryable = |e: GraphError| matches!(e, GraphError::Retryable { .. });
        let throttled = |e: GraphError| matches!(e, GraphError::Throttled { .. });
        assert!(retryable(classify(
            StatusCode::BAD_GATEWAY,
            &Value::Null,
            None
        )));
        assert!(retryable(classify(
            StatusCode::TOO_MANY_REQUESTS,
            &Value::Null,
            None
        )));
        for code in [4, 80_007, 130_429, PAIR_RATE] {
            assert!(throttled(classify(
                StatusCode::BAD_REQUEST,
                &error(code),
                None
            )));
            assert!(throttled(classify(
                StatusCode::TOO_MANY_REQUESTS,
                &error(code),
                None
            )));
        }
        let GraphError::Permanent { code, reason } =
            classify(StatusCode::BAD_REQUEST, &error(OUTSIDE_WINDOW), None)
        else {
            panic!("131047 is permanent");
        };
        assert_eq!(code, Some(OUTSIDE_WINDOW));
        assert!(reason.contains("131047"), "{reason}");
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, &error(190), None),
            GraphError::Permanent { .. }
        ));
    }

    #[test]
    fn a_pair_rate_refusal_waits_at_least_six_seconds() {
        let stop = |code, after| {
            Stop::from(GraphError::Throttled {
                code,
                reason: "slow down".into(),
                retry_after: after,
            })
        };
        let after = |stop: Stop| match stop {
            Stop::Retry { after, .. } => after,
            other => panic!("retried, not {other:?}"),
        };
        assert_eq!(after(stop(PAIR_RATE, None)), Some(PAIR_RATE_GAP));
        assert_eq!(
            after(stop(PAIR_RATE, Some(Duration::from_secs(1)))),
            Some(PAIR_RATE_GAP)
        );
        assert_eq!(
            after(stop(PAIR_RATE, Some(Duration::from_secs(30)))),
            Some(Duration::from_secs(30))
        );
        assert_eq!(after(stop(130_429, None)), None, "the queue's backoff");
    }

    #[test]
    fn media_sizes_are_read_as_strings_or_numbers() {
        let info: MediaInfo =
            serde_json::from_value(json!({"url": "u", "file_size": "303833"})).unwrap();
        assert_eq!(info.file_size, Some(303_833));
        let info: MediaInfo = serde_json::from_value(json!({"url": "u", "file_size": 12})).unwrap();
        assert_eq!(info.file_size, Some(12));
        let info: MediaInfo = serde_json::from_value(json!({"url": "u"})).unwrap();
        assert_eq!(info.file_size, None);
    }
}
