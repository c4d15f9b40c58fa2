//! Integrations with outside services (GitHub, WhatsApp) and what they share.

pub mod signature;
pub mod whatsapp;
