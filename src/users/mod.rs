//! Users: the account model, its queries and the `/user/me` routes.

pub mod cache;
pub mod routes;
pub mod store;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// A user as stored; the password hash is never serialised.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub email: String,
    #[serde(skip)]
    pub hashed_password: String,
    pub is_active: bool,
    pub whatsapp_number: Option<String>,
    /// Opted in to a WhatsApp message when a pull-request review of one of the user's
    /// projects finishes (sent to the linked number; default false).
    pub whatsapp_notify: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

// `User` in the envelope, for the API document.
crate::error::responses::envelope_schema!(UserResponse, User);
