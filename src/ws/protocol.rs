//! The WebSocket protocol: what a client may send and the frames the server answers.

use serde_json::{json, Value};

use crate::chat::ChatRequest;

/// A client frame, already checked.
#[derive(Debug)]
pub enum ClientFrame {
    Chat {
        request_id: String,
        input: ChatRequest,
    },
    Cancel {
        request_id: String,
    },
    Ping,
    Auth {
        token: String,
    },
}

/// Why a frame was refused: `(code, reason)`, sent back as an `error` frame.
#[derive(Debug, PartialEq)]
pub struct Refusal {
    pub code: &'static str,
    pub reason: String,
    pub request_id: Option<String>,
}

fn refuse(code: &'static str, reason: impl Into<String>, request_id: Option<String>) -> Refusal {
    Refusal {
        code,
        reason: reason.into(),
        request_id,
    }
}

/// Reads `request_id` as a string whether the client sent a string or a number.
fn request_id_of(frame: &Value) -> Option<String> {
    match &frame["request_id"] {
        Value::String(id) if !id.is_empty() && id.len() <= 128 => Some(id.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub fn parse(text: &str) -> Result<ClientFrame, Refusal> {
    let frame: Value = serde_json::from_str(text)
        .map_err(|_| refuse("bad_request", "Frames must be valid JSON", None))?;
    if !frame.is_object() {
        return Err(refuse("bad_request", "Frames must be JSON objects", None));
    }
    let request_id = request_id_of(&frame);
    // The seed's clients send `{message, session_id}` with no type: that is a chat.
    let kind = match &frame["type"] {
        Value::String(kind) => kind.as_str(),
        Value::Null if frame.get("message").is_some() => "chat",
        Value::Null => return Err(refuse("validation_error", "Missing `type`", request_id)),
        _ => {
            return Err(refuse(
                "validation_error",
                "`type` must be a string",
                request_id,
            ))
        }
    };
    match kind {
        "chat" => {
            let input: ChatRequest = serde_json::from_value(frame.clone()).map_err(|err| {
                let reason = if frame.get("message").is_none() {
                    "A chat frame needs `message`".to_owned()
                } else {
                    format!("Invalid chat frame: {err}")
                };
                refuse("validation_error", reason, request_id.clone())
            })?;
            let request_id = request_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            Ok(ClientFrame::Chat { request_id, input })
        }
        "cancel" => match request_id {
            Some(request_id) => Ok(ClientFrame::Cancel { request_id }),
            None => Err(refuse(
                "validation_error",
                "A cancel frame needs `request_id`",
                None,
            )),
        },
        "ping" => Ok(ClientFrame::Ping),
        "auth" => match frame["token"].as_str() {
            Some(token) if !token.is_empty() => Ok(ClientFrame::Auth {
                token: token.to_owned(),
            }),
            _ => Err(refuse(
                "validation_error",
                "An auth frame needs `token`",
                request_id,
            )),
        },
        other => Err(refuse(
            "unknown_type",
            format!("Unknown frame type `{other}`"),
            request_id,
        )),
    }
}

pub fn error_frame(code: &str, reason: &str, request_id: Option<&str>) -> Value {
    let mut frame = json!({"type": "error", "content": reason, "code": code});
    if let Some(id) = request_id {
        frame["request_id"] = json!(id);
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chats_with_and_without_type() {
        let typed =
            parse(r#"{"type":"chat","message":"hi","request_id":"r1","agent_id":3}"#).unwrap();
        match typed {
            ClientFrame::Chat { request_id, input } => {
                assert_eq!(request_id, "r1");
                assert_eq!((input.message.as_str(), input.agent_id), ("hi", Some(3)));
            }
            other => panic!("{other:?}"),
        }
        let seed = parse(r#"{"message":"hi","session_id":"s"}"#).unwrap();
        assert!(matches!(
            seed,
            ClientFrame::Chat {
                input: ChatRequest {
                    session_id: Some(_),
                    ..
                },
                ..
            }
        ));
    }

    #[test]
    fn bad_frames_are_refused_with_reasons() {
        assert_eq!(parse("{not json").unwrap_err().code, "bad_request");
        assert_eq!(parse("[1,2]").unwrap_err().code, "bad_request");
        assert_eq!(
            parse(r#"{"type":"dance"}"#).unwrap_err().code,
            "unknown_type"
        );
        let missing = parse(r#"{"type":"chat","request_id":7}"#).unwrap_err();
        assert_eq!(
            (missing.code, missing.request_id.as_deref()),
            ("validation_error", Some("7"))
        );
        assert_eq!(
            parse(r#"{"type":"cancel"}"#).unwrap_err().code,
            "validation_error"
        );
        assert_eq!(
            parse(r#"{"type":"chat","message":5}"#).unwrap_err().code,
            "validation_error"
        );
        assert_eq!(parse(r#"{}"#).unwrap_err().code, "validation_error");
        assert!(matches!(
            parse(r#"{"type":"ping"}"#).unwrap(),
            ClientFrame::Ping
        ));
    }
}
