//! Meta's webhook body: `entry[].changes[].value` carrying `messages[]` (what users
//! wrote) or `statuses[]` (delivery receipts of what we sent). Unknown fields are
//! ignored and missing ones default, so a new field or event type never fails a delivery.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value as JsonValue;

#[derive(Debug, Default, Deserialize)]
pub struct Notification {
    #[serde(default)]
    pub entry: Vec<Entry>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Entry {
    #[serde(default)]
    pub changes: Vec<Change>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Change {
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Default, Deserialize)]
pub struct Value {
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub messages: Vec<Message>,
    #[serde(default)]
    pub statuses: Vec<Status>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub phone_number_id: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct Message {
    #[serde(default)]
    pub id: String,
    /// The sender's phone number; Meta omits it for users it only names by a
    /// business-scoped user id (usernames).
    pub from: Option<String>,
    pub from_user_id: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: String,
    pub text: Option<Text>,
    pub document: Option<Document>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Text {
    #[serde(default)]
    pub body: String,
}

/// A file the user shared: Meta keeps it, we get its media id.
#[derive(Debug, Default, Deserialize)]
pub struct Document {
    #[serde(default)]
    pub id: String,
    pub mime_type: Option<String>,
    pub filename: Option<String>,
    pub caption: Option<String>,
}

/// A delivery receipt of a message we sent: `sent`, `delivered`, `read` or `failed`.
#[derive(Debug, Default, Deserialize)]
pub struct Status {
    /// The wamid Meta gave the message when it accepted it.
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub status: String,
    /// Unix seconds (Meta sends a string).
    pub timestamp: Option<JsonValue>,
    #[serde(default)]
    pub errors: Vec<StatusError>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StatusError {
    pub code: Option<JsonValue>,
}

/// An integer Meta may send as a number or as a string.
fn integer(value: &JsonValue) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

/// The statuses a receipt may carry; others (Meta's `deleted`, future ones) are ignored.
pub const STATUSES: [&str; 4] = ["sent", "delivered", "read", "failed"];

/// One delivery status, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub wamid: String,
    pub status: &'static str,
    pub at: Option<DateTime<Utc>>,
    pub error_code: Option<i64>,
}

/// A shared file, as its reply job reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Media {
    pub id: String,
    pub mime_type: Option<String>,
    pub filename: Option<String>,
}

/// One incoming message, as stored for its reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub wamid: String,
    pub phone_number_id: String,
    pub sender_number: Option<String>,
    pub sender_user_id: Option<String>,
    pub kind: String,
    /// The text, or a document's caption.
    pub body: Option<String>,
    pub media: Option<Media>,
}

/// What a notification carries: messages to answer and receipts to record.
#[derive(Debug, Default)]
pub struct Contents {
    pub incoming: Vec<Incoming>,
    pub statuses: Vec<Delivery>,
}

impl Notification {
    /// Every message and every status of every change of every entry, in order. Messages
    /// nobody could answer (no id, no business number, no sender at all) are dropped.
    pub fn contents(self) -> Contents {
        let mut contents = Contents::default();
        for change in self.entry.into_iter().flat_map(|e| e.changes) {
            if !(change.field.is_empty() || change.field == "messages") {
                continue;
            }
            contents
                .statuses
                .extend(change.value.statuses.into_iter().filter_map(delivery));
            let phone_number_id = change.value.metadata.phone_number_id;
            for message in change.value.messages {
                let sender_number = message.from.filter(|n| !n.trim().is_empty());
                let sender_user_id = message.from_user_id.filter(|u| !u.trim().is_empty());
                if message.id.is_empty()
                    || phone_number_id.is_empty()
                    || (sender_number.is_none() && sender_user_id.is_none())
                {
                    tracing::warn!(
                        "WhatsApp message without id, business number or sender skipped"
                    );
                    continue;
                }
                let (body, media) = match (message.kind.as_str(), message.document) {
                    ("text", _) => (message.text.map(|t| t.body), None),
                    ("document", Some(document)) if !document.id.is_empty() => (
                        document.caption,
                        Some(Media {
                            id: document.id,
                            mime_type: document.mime_type,
                            filename: document.filename,
                        }),
                    ),
                    _ => (None, None),
                };
                contents.incoming.push(Incoming {
                    wamid: message.id,
                    phone_number_id: phone_number_id.clone(),
                    sender_number,
                    sender_user_id,
                    body,
                    media,
                    kind: message.kind,
                });
            }
        }
        contents
    }
}

/// A receipt worth recording: it names a message and one of the known statuses.
fn delivery(status: Status) -> Option<Delivery> {
    let known = STATUSES.into_iter().find(|s| *s == status.status)?;
    if status.id.is_empty() {
        return None;
    }
    let at = status
        .timestamp
        .as_ref()
        .and_then(integer)
        .and_then(|secs| DateTime::from_timestamp(secs, 0));
    Some(Delivery {
        wamid: status.id,
        status: known,
        at,
        error_code: status
            .errors
            .iter()
            .find_map(|e| e.code.as_ref().and_then(integer)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_message_and_status_of_a_batch_and_senders_without_numbers_kept() {
        let body = json!({
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "1", "changes": [{"field": "messages", "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550001111", "phone_number_id": "111"},
                    "contacts": [{"profile": {"name": "A"}, "wa_id": "15551230001"}],
                    "messages": [
                        {"from": "15551230001", "id": "wamid.A", "timestamp": "1", "type": "text", "text": {"body": "hi"}},
                        {"from": "15551230001", "id": "wamid.B", "timestamp": "2", "type": "image", "image": {"id": "m"}}
                    ]}}]},
                {"id": "2", "changes": [
                    {"field": "messages", "value": {"metadata": {"phone_number_id": "222"},
                        "statuses": [{"id": "wamid.S", "status": "delivered", "recipient_id": "1"}]}},
                    {"field": "messages", "value": {"metadata": {"phone_number_id": "222"},
                        "messages": [{"from_user_id": "US.1349", "id": "wamid.C", "type": "text", "text": {"body": "yo"}}]}}
                ]}
            ]
        });
        let contents = serde_json::from_value::<Notification>(body)
            .unwrap()
            .contents();
        let incoming = contents.incoming;
        let ids: Vec<_> = incoming.iter().map(|m| m.wamid.as_str()).collect();
        assert_eq!(ids, ["wamid.A", "wamid.B", "wamid.C"]);
        assert_eq!(incoming[0].body.as_deref(), Some("hi"));
        assert_eq!(incoming[1].body, None);
        assert_eq!(incoming[1].kind, "image");
        assert_eq!(incoming[2].phone_number_id, "222");
        assert_eq!(incoming[2].sender_number, None);
        assert_eq!(incoming[2].sender_user_id.as_deref(), Some("US.1349"));
        assert_eq!(
            contents.statuses,
            [Delivery {
                wamid: "wamid.S".into(),
                status: "delivered",
                at: None,
                error_code: None
            }]
        );
    }

    #[test]
    fn documents_keep_their_media_and_caption_and_failed_statuses_their_code() {
        let body = json!({"entry": [{"changes": [{"field": "messages", "value": {
        "metadata": {"phone_number_id": "111"},
        "messages": [{"from": "1555", "id": "wamid.D", "type": "document", "document": {
            "caption": "review this", "filename": "main.rs", "mime_type": "text/x-rust",
            "sha256": "abc", "id": "1234567890"}}],
        "statuses": [
            {"id": "wamid.F", "status": "failed", "timestamp": "1750857384", "recipient_id": "1",
             "errors": [{"code": 131026, "title": "Message undeliverable"}]},
            {"id": "wamid.G", "status": "deleted", "timestamp": "1"},
            {"id": "wamid.H", "status": "read", "timestamp": 1750857390, "errors": [{"code": "131000"}]}
        ]}}]}]});
        let contents = serde_json::from_value::<Notification>(body)
            .unwrap()
            .contents();
        let document = &contents.incoming[0];
        assert_eq!(document.kind, "document");
        assert_eq!(document.body.as_deref(), Some("review this"));
        assert_eq!(
            document.media,
            Some(Media {
                id: "1234567890".into(),
                mime_type: Some("text/x-rust".into()),
                filename: Some("main.rs".into()),
            })
        );
        let statuses: Vec<_> = contents
            .statuses
            .iter()
            .map(|s| (s.wamid.as_str(), s.status, s.error_code))
            .collect();
        assert_eq!(
            statuses,
            [
                ("wamid.F", "failed", Some(131_026)),
                ("wamid.H", "read", Some(131_000))
            ]
        );
        assert_eq!(
            contents.statuses[0].at,
            DateTime::from_timestamp(1_750_857_384, 0)
        );
    }
}
