//! WhatsApp over the Meta Cloud API (SPEC §6.3): the verified webhook, phone linking
//! proven by the phone, and replies that arrive once and whole.
//!
//! A notification is stored (one row per message id) before Meta gets its 200; the
//! reply is then worked out and sent by `worker`, which survives restarts.

pub mod client;
pub mod format;
pub mod link;
pub mod payload;
pub mod reply;
pub mod store;
pub mod webhook;
pub mod worker;

use axum::Router;
use tokio::sync::Notify;

use self::client::GraphClient;
use crate::{config::WhatsappConfig, state::AppState};

/// What the WhatsApp slice shares through `AppState`.
pub struct Whatsapp {
    pub graph: GraphClient,
    /// Rung when new messages are stored, so a reply starts at once rather than at the
    /// next poll.
    pub wake: Notify,
}

impl Whatsapp {
    pub fn new(config: &WhatsappConfig) -> Self {
        Whatsapp {
            graph: GraphClient::new(config),
            wake: Notify::new(),
        }
    }
}

/// `/user/whatsapp…` and `/integrations/whatsapp/webhook`, under `/api/v1`.
pub fn router() -> Router<AppState> {
    webhook::router().merge(link::router())
}
