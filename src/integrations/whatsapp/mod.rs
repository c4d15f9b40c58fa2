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

use axum::Router;

use crate::state::AppState;

pub use settings::Settings;

/// `/user/whatsapp…` and `/integrations/whatsapp/webhook`, under `/api/v1`.
pub fn router() -> Router<AppState> {
    webhook::router().merge(link::router())
}
