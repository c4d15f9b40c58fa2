//! WhatsApp over the Meta Cloud API (SPEC §6.3): the verified webhook, phone linking
//! proven by the phone, replies that arrive once, whole, in order and paced as Meta asks,
//! files of code shared from the phone, delivery statuses, and review notifications.
//!
//! A notification is stored (one row per message id, with its `whatsapp.reply` job)
//! before Meta gets its 200; the job then works out the reply and sends it.

pub mod client;
pub mod delivery;
pub mod files;
pub mod format;
pub mod job;
pub mod link;
pub mod notifications;
pub mod notify;
pub mod pace;
pub mod payload;
pub mod reply;
pub mod settings;
pub mod store;
pub mod webhook;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    db::Db, error::responses::envelope_schema, http::metrics::Metrics, jobs::Workers,
    state::AppState,
};

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

/// Registers the handlers of the reply and notification jobs, and the retention of
/// messages, notices and expired link codes.
pub fn register_jobs(workers: &mut Workers, state: &AppState) {
    job::register(workers, state);
    notify::register(workers, state);
    workers
        .prune(store::PRUNE_MESSAGES)
        .prune(store::PRUNE_NOTICES)
        .prune(delivery::PRUNE_STATUSES)
        .prune(notifications::PRUNE_NOTIFICATIONS)
        .prune(link::PRUNE_EXPIRED_CODES);
}

/// Copies the delivery and notification totals into `/metrics`.
pub async fn refresh_metrics(db: &Db, metrics: &Metrics) -> crate::error::Result<()> {
    delivery::refresh_metrics(db, metrics).await
}
