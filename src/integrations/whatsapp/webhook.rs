//! `/api/v1/integrations/whatsapp/webhook`: Meta's verification handshake (GET) and its
//! signed notifications (POST), which are stored as work before the 200 goes back.

use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{header, HeaderMap},
    response::IntoResponse,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{delivery, payload::Notification, store};
use crate::{
    error::{ok, Error, ErrorBody, Result},
    extract::{has_content_type, parse_form, parse_json},
    integrations::signature::verify_webhook,
    state::AppState,
};

/// What Meta sends when the webhook URL is saved in the app dashboard.
#[derive(Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Handshake {
    /// `subscribe`.
    #[serde(rename = "hub.mode")]
    #[param(rename = "hub.mode")]
    pub mode: Option<String>,
    /// Must equal `WHATSAPP_VERIFY_TOKEN`.
    #[serde(rename = "hub.verify_token")]
    #[param(rename = "hub.verify_token")]
    pub verify_token: Option<String>,
    /// Echoed back as the whole body.
    #[serde(rename = "hub.challenge")]
    #[param(rename = "hub.challenge")]
    pub challenge: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/integrations/whatsapp/webhook", tag = "whatsapp",
    params(Handshake),
    responses(
        (status = 200, description = "The bare `hub.challenge`, not wrapped in the envelope: Meta compares the body", content_type = "text/plain", body = String),
        (status = 403, description = "Not `subscribe`, or the verify token does not match (or is not configured)", body = ErrorBody),
    ))]
pub async fn verify(State(state): State<AppState>, RawQuery(query): RawQuery) -> impl IntoResponse {
    // Any malformed query is just a failed handshake.
    let handshake: Handshake = parse_form(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let expected = state.config.whatsapp.verify_token.as_deref();
    match (
        handshake.mode.as_deref(),
        handshake.verify_token,
        handshake.challenge,
        expected,
    ) {
        (Some("subscribe"), Some(given), Some(challenge), Some(expected))
            if constant_time_eq(given.as_bytes(), expected.as_bytes()) =>
        {
            (
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                challenge,
            )
                .into_response()
        }
        _ => Error::Forbidden("Webhook verification failed").into_response(),
    }
}

/// What a notification became.
#[derive(Debug, Serialize, ToSchema)]
pub struct Received {
    /// Messages in the notification.
    pub messages: usize,
    /// Of those, the ones not seen before, now queued for a reply.
    pub queued: usize,
    /// Delivery statuses (`sent`, `delivered`, `read`, `failed`) in the notification.
    pub statuses: usize,
}

#[utoipa::path(post, path = "/api/v1/integrations/whatsapp/webhook", tag = "whatsapp",
    params(("X-Hub-Signature-256" = String, Header, description = "`sha256=` and the hex HMAC-SHA256 of the raw body keyed with `WHATSAPP_APP_SECRET`")),
    request_body(content = Object, description = "Meta's notification: `{object, entry: [{id, changes: [{field, value: {metadata, messages?, statuses?}}]}]}`", content_type = "application/json"),
    responses(
        (status = 200, description = "Stored: every new message has its reply queued, every delivery status recorded; repeats are acknowledged", body = super::WhatsappReceivedResponse),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "Signature missing or wrong", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "The body is JSON but not a notification", body = ErrorBody),
        (status = 408, description = "The body did not arrive within `BODY_TIMEOUT_SECONDS`", body = ErrorBody),
        (status = 500, description = "Internal error (details are logged, never sent)", body = ErrorBody),
        (status = 503, description = "`WHATSAPP_APP_SECRET` is not configured (`not_configured`), or the database is unavailable", body = ErrorBody),
    ))]
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse> {
    verify_webhook(
        state.config.whatsapp.app_secret.as_deref(),
        "WhatsApp is not configured on this server (WHATSAPP_APP_SECRET)",
        &headers,
        &body,
    )?;
    if !has_content_type(&headers, "application/json") {
        return Err(Error::UnsupportedMediaType(
            "Expected a JSON body with Content-Type: application/json",
        ));
    }
    let notification: Notification = parse_json(&body)?;
    let contents = notification.contents();
    let incoming = contents.incoming;
    if !contents.statuses.is_empty() {
        delivery::record(&state.db, &contents.statuses).await?;
    }
    let queued = if incoming.is_empty() {
        Vec::new()
    } else {
        store::insert_new(&state.db, &incoming).await?
    };
    for job in &queued {
        state.jobs.wake(job);
    }
    Ok(ok(
        Received {
            messages: incoming.len(),
            queued: queued.iter().filter(|job| job.is_new()).count(),
            statuses: contents.statuses.len(),
        },
        "Notification received",
    ))
}

/// Compares secrets without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
