//! Meta's webhook body: `entry[].changes[].value` carrying `messages[]` (what users
//! wrote) or `statuses[]` (delivery receipts of what we sent). Unknown fields are
//! ignored and missing ones default, so a new field or event type never fails a delivery.

use serde::Deserialize;

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
}

#[derive(Debug, Default, Deserialize)]
pub struct Text {
    #[serde(default)]
    pub body: String,
}

/// One incoming message, as stored for its reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub wamid: String,
    pub phone_number_id: String,
    pub sender_number: Option<String>,
    pub sender_user_id: Option<String>,
    pub kind: String,
    pub body: Option<String>,
}

impl Notification {
    /// Every message of every change of every entry, in order. Messages nobody could
    /// answer (no id, no business number, no sender at all) are dropped.
    pub fn incoming(self) -> Vec<Incoming> {
        let mut all = Vec::new();
        for change in self.entry.into_iter().flat_map(|e| e.changes) {
            if !(change.field.is_empty() || change.field == "messages") {
                continue;
            }
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
                all.push(Incoming {
                    wamid: message.id,
                    phone_number_id: phone_number_id.clone(),
                    sender_number,
                    sender_user_id,
                    body: match message.kind.as_str() {
                        "text" => message.text.map(|t| t.body),
                        _ => None,
                    },
                    kind: message.kind,
                });
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_message_of_a_batch_statuses_ignored_and_senders_without_numbers_kept() {
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
        let incoming = serde_json::from_value::<Notification>(body)
            .unwrap()
            .incoming();
        let ids: Vec<_> = incoming.iter().map(|m| m.wamid.as_str()).collect();
        assert_eq!(ids, ["wamid.A", "wamid.B", "wamid.C"]);
        assert_eq!(incoming[0].body.as_deref(), Some("hi"));
        assert_eq!(incoming[1].body, None);
        assert_eq!(incoming[1].kind, "image");
        assert_eq!(incoming[2].phone_number_id, "222");
        assert_eq!(incoming[2].sender_number, None);
        assert_eq!(incoming[2].sender_user_id.as_deref(), Some("US.1349"));
    }
}
