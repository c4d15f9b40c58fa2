//! Integrations with outside services (GitHub, WhatsApp) and what they share.

pub mod github;
pub mod signature;
pub mod whatsapp;
