//! `/user/me` routes.

use axum::{extract::State, response::IntoResponse, routing::get, Router};
use serde::Deserialize;
use utoipa::ToSchema;

use super::store::{self, Changes};
use crate::{
    auth::AuthUser,
    error::{
        ok,
        responses::{Authenticated, JsonBody, ServerErrors},
        Error, ErrorBody, Result,
    },
    extract::{nullable, Json},
    state::AppState,
    validate::{normalize_phone, Violations},
};

pub fn router() -> Router<AppState> {
    Router::new().route("/user/me", get(me).put(update_me))
}

#[utoipa::path(get, path = "/api/v1/user/me", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "The current user", body = crate::docs::UserResponse),
        Authenticated, ServerErrors,
    ))]
pub async fn me(AuthUser(user): AuthUser) -> impl IntoResponse {
    ok(user, "User retrieved")
}

/// Every field is optional. Changing `password` needs `current_password`.
#[derive(Deserialize, ToSchema)]
pub struct UpdateMe {
    /// Not blank.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    pub name: Option<String>,
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    /// 8 characters to 72 bytes of UTF-8.
    #[schema(format = Password, min_length = 8, max_length = 72)]
    pub password: Option<String>,
    #[schema(format = Password)]
    pub current_password: Option<String>,
    /// E.164, e.g. `+919876543210`; `null` unlinks WhatsApp.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub whatsapp_number: Option<Option<String>>,
}

#[utoipa::path(put, path = "/api/v1/user/me", tag = "users", security(("bearer" = [])),
    request_body = UpdateMe,
    responses(
        (status = 200, description = "Updated", body = crate::docs::UserResponse),
        Authenticated, JsonBody, ServerErrors,
        (status = 409, description = "Email or WhatsApp number taken", body = ErrorBody),
    ))]
pub async fn update_me(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Json(input): Json<UpdateMe>,
) -> Result<impl IntoResponse> {
    // The row as stored now, not as cached for authentication: the password check and
    // the update must start from the truth.
    let user = store::find_by_id(&state.db, user.id)
        .await?
        .ok_or(Error::Unauthorized("Invalid token"))?;
    let mut check = Violations::default();
    let name = match &input.name {
        Some(name) => check.text("name", name, 1, 100),
        None => user.name.clone(),
    };
    let email = match &input.email {
        Some(email) => check.email("email", email),
        None => user.email.clone(),
    };
    let whatsapp_number = match &input.whatsapp_number {
        None => user.whatsapp_number.clone(),
        Some(None) => None,
        Some(Some(raw)) => {
            let number = normalize_phone(raw);
            if number.is_none() {
                check.add(
                    "whatsapp_number",
                    "must be a phone number in E.164 form, e.g. +14155550100",
                );
            }
            number
        }
    };
    if let Some(password) = &input.password {
        check.password("password", password);
        if input.current_password.is_none() {
            check.add("current_password", "field required to change the password");
        }
    }
    check.finish()?;

    let mut hashed_password = user.hashed_password.clone();
    if let (Some(password), Some(current)) = (input.password, input.current_password) {
        if !state
            .passwords
            .verify(current, user.hashed_password.clone())
            .await?
        {
            return Err(Error::invalid("current_password", "is incorrect"));
        }
        hashed_password = state.passwords.hash(password).await?;
    }
    let password_changed = hashed_password != user.hashed_password;
    let updated = store::update(
        &state.db,
        user.id,
        Changes {
            name,
            email,
            hashed_password,
            whatsapp_number,
            password_changed,
        },
    )
    .await?;
    state.user_cache.forget(user.id);
    Ok(ok(updated, "User updated"))
}
