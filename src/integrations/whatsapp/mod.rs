//! WhatsApp over the Meta Cloud API (SPEC §6.3): the verified webhook, phone linking
//! proven by the phone, and replies that arrive once and whole.
//!
//! A notification is stored (one row per message id, with its `whatsapp.reply` job)
//! before Meta gets its 200; the job then works out the reply and sends it.

pub mod client;
pub mod format;
pub mod job;
pub mod link;
pub mod payload;
pub mod reply;
pub mod settings;
pub mod store;
pub mod webhook;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{error::responses::envelope_schema, jobs::Workers, state::AppState};

pub use settings::Settings;

/// `/api/v1/user/whatsapp…` and `/api/v1/integrations/whatsapp/webhook` with their OpenAPI.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(webhook::verify, webhook::receive))
        .routes(routes!(link::create_code))
        .routes(routes!(link::unlink))
}

envelope_schema!(LinkCodeResponse, link::LinkCode);
envelope_schema!(WhatsappReceivedResponse, webhook::Received);

/// Registers the reply job's handler, and the retention of messages, notices and
/// expired link codes.
pub fn register_jobs(workers: &mut Workers, state: &AppState) {
    job::register(workers, state);
    workers
        .prune(store::PRUNE_MESSAGES)
        .prune(store::PRUNE_NOTICES)
        .prune(link::PRUNE_EXPIRED_CODES);
}
