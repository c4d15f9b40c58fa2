//! Linking a phone to an account, proven by the phone: the user asks for a code here and
//! sends `link <code>` from WhatsApp (the reply job finishes the link). Unlinking is
//! one call.

use axum::{extract::State, response::IntoResponse};
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    auth::AuthUser,
    db::{now, Db},
    error::{
        created, ok,
        responses::{Authenticated, ServerErrors},
        Error, Result,
    },
    jobs::{Keep, Prune},
    state::AppState,
    users::{store as users, User},
};

/// How long a code may be used.
pub const CODE_LIFETIME_MINUTES: i64 = 10;

/// Digits in a code: with the link budgets (SPEC §6.3), guessing one of the codes alive
/// at any time takes months.
pub const CODE_DIGITS: usize = 8;

/// Expired codes, which no message can use (a new code also drops them).
pub const PRUNE_EXPIRED_CODES: Prune = Prune {
    table: "whatsapp_link_codes",
    keep: Keep::For(Duration::zero()),
    sql: "DELETE FROM whatsapp_link_codes WHERE expires_at <= $1 AND user_id IN \
          (SELECT user_id FROM whatsapp_link_codes WHERE expires_at <= $1 LIMIT $2)",
};

/// A one-time code that links the phone which sends it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkCode {
    /// Eight digits; single use.
    #[schema(pattern = "^[0-9]{8}$", example = "49381726")]
    pub code: String,
    /// Ten minutes after it was made; a new code replaces this one.
    pub expires_at: DateTime<Utc>,
    /// What to send from WhatsApp.
    #[schema(
        example = "Send \"link 49381726\" to the CodeSherpa WhatsApp number within 10 minutes."
    )]
    pub instructions: String,
}

#[utoipa::path(post, path = "/api/v1/user/whatsapp/link", tag = "whatsapp", security(("bearer" = [])),
    responses(
        (status = 201, description = "A fresh link code; any earlier code of the user stops working", body = super::LinkCodeResponse),
        Authenticated, ServerErrors,
    ))]
pub async fn create_code(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<impl IntoResponse> {
    let (code, expires_at) = issue(&state.db, user.id).await?;
    let instructions = format!(
        "Send \"link {code}\" to the CodeSherpa WhatsApp number within \
         {CODE_LIFETIME_MINUTES} minutes. The code works once."
    );
    Ok(created(
        LinkCode {
            code,
            expires_at,
            instructions,
        },
        "WhatsApp link code created",
    ))
}

#[utoipa::path(delete, path = "/api/v1/user/whatsapp", tag = "whatsapp", security(("bearer" = [])),
    responses(
        (status = 200, description = "Unlinked (also when no number was linked); the updated user", body = crate::users::UserResponse),
        Authenticated, ServerErrors,
    ))]
pub async fn unlink(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<impl IntoResponse> {
    let user = clear(&state.db, user.id).await?;
    state.user_cache.forget(user.id);
    Ok(ok(user, "WhatsApp unlinked"))
}

/// Replaces the user's code with a fresh one. Codes are unique among live ones; a
/// collision (one in a hundred million per live code) draws again.
async fn issue(db: &Db, user_id: i64) -> Result<(String, DateTime<Utc>)> {
    for _ in 0..5 {
        let code = format!(
            "{:0width$}",
            rand::rng().random_range(0..10u32.pow(CODE_DIGITS as u32)),
            width = CODE_DIGITS
        );
        let now = now();
        let expires_at = now + Duration::minutes(CODE_LIFETIME_MINUTES);
        let stored = crate::in_transaction!(db, |tx| {
            // Expired codes are dead weight; they also must not block a new code's digits.
            sqlx::query("DELETE FROM whatsapp_link_codes WHERE user_id = $1 OR expires_at <= $2")
                .bind(user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO whatsapp_link_codes (user_id, code, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(user_id)
            .bind(&code)
            .bind(expires_at)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        })?;
        if stored == 1 {
            return Ok((code, expires_at));
        }
    }
    Err(Error::internal("no free WhatsApp link code after 5 draws"))
}

/// Unlinks the user's number and drops any code still pending.
async fn clear(db: &Db, user_id: i64) -> Result<User> {
    crate::in_transaction!(db, |tx| {
        sqlx::query("DELETE FROM whatsapp_link_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        users::clear_whatsapp_number(&mut *tx, user_id).await?;
    })?;
    users::find_by_id(db, user_id)
        .await?
        .ok_or(Error::Unauthorized("Invalid token"))
}

/// The active user a phone number is linked to.
pub async fn owner_of(db: &Db, number: &str) -> Result<Option<User>> {
    users::find_by_whatsapp_number(db, number).await
}
