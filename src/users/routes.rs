//! `/user/me` routes.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, State},
    http::HeaderMap,
    response::IntoResponse,
    Extension,
};
use serde::Deserialize;
use utoipa::{
    openapi::{schema::Type, Object, ObjectBuilder},
    ToSchema,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    store::{self, Changes, PasswordChange, Updated},
    UserResponse,
};
use crate::{
    auth::AuthUser,
    error::{
        ok,
        responses::{Authenticated, JsonBody, Limited, ServerErrors},
        Error, ErrorBody, Result,
    },
    extract::{nullable, Json},
    http::rate_limit::client_ip,
    state::AppState,
    validate::Violations,
};

/// `/api/v1/user/me` with its OpenAPI.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me, update_me))
}

#[utoipa::path(get, path = "/api/v1/user/me", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "The current user", body = UserResponse),
        Authenticated, ServerErrors,
    ))]
pub async fn me(AuthUser(user): AuthUser) -> impl IntoResponse {
    ok(user, "User retrieved")
}

/// Every field is optional and only the fields sent change. Changing `password` needs
/// `current_password`.
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
    /// Read-only: `null` unlinks WhatsApp; a number is linked with
    /// `POST /api/v1/user/whatsapp/link`, never set here.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = null_only)]
    pub whatsapp_number: Option<Option<String>>,
    /// `true`: a WhatsApp message to the linked number when a pull-request review of one
    /// of the user's projects finishes; `false` (the default): none.
    pub whatsapp_notify: Option<bool>,
}

fn null_only() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Null)
        .description(Some(
            "Only `null`, which unlinks WhatsApp; link a number with POST /api/v1/user/whatsapp/link",
        ))
        .build()
}

const LINK_FLOW: &str = "is read-only: send null to unlink, or link a number with \
                         POST /api/v1/user/whatsapp/link";

#[utoipa::path(put, path = "/api/v1/user/me", tag = "users", security(("bearer" = [])),
    request_body = UpdateMe,
    responses(
        (status = 200, description = "Updated", body = UserResponse),
        Authenticated, JsonBody, Limited, ServerErrors,
        (status = 409, description = "Email taken", body = ErrorBody),
    ))]
pub async fn update_me(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Json(input): Json<UpdateMe>,
) -> Result<impl IntoResponse> {
    let mut check = Violations::default();
    let mut changes = Changes {
        name: input
            .name
            .as_deref()
            .map(|name| check.text("name", name, 1, 100)),
        email: input
            .email
            .as_deref()
            .map(|email| check.email("email", email)),
        whatsapp_notify: input.whatsapp_notify,
        ..Changes::default()
    };
    match &input.whatsapp_number {
        None => {}
        Some(None) => changes.unlink_whatsapp = true,
        Some(Some(_)) => check.add("whatsapp_number", LINK_FLOW),
    }
    if let Some(password) = &input.password {
        check.password("password", password);
        if input.current_password.is_none() {
            check.add("current_password", "field required to change the password");
        }
    }
    check.finish()?;

    if let (Some(password), Some(current)) = (input.password, input.current_password) {
        let peer = connect_info.map(|Extension(ConnectInfo(peer))| peer);
        let ip = client_ip(&headers, peer, state.config.http.trust_proxy_headers);
        // Before bcrypt: guesses must cost the guesser, not the login queue.
        if let Err(retry_after_secs) = state.limits.check_password(user.id, ip).await {
            tracing::warn!(user_id = user.id, "current_password rate limit exceeded");
            return Err(Error::RateLimited { retry_after_secs });
        }
        // The stored hash, not the one cached for authentication.
        let stored = store::find_by_id(&state.db, user.id)
            .await?
            .ok_or(Error::Unauthorized("Invalid token"))?;
        if !state
            .passwords
            .verify(current, stored.hashed_password.clone())
            .await?
        {
            return Err(Error::invalid("current_password", "is incorrect"));
        }
        changes.password = Some(PasswordChange {
            new_hash: state.passwords.hash(password).await?,
            verified_hash: stored.hashed_password,
        });
    }

    let nothing_to_change = changes.name.is_none()
        && changes.email.is_none()
        && !changes.unlink_whatsapp
        && changes.whatsapp_notify.is_none()
        && changes.password.is_none();
    let password_changed = changes.password.is_some();
    let updated = if nothing_to_change {
        store::find_by_id(&state.db, user.id).await?
    } else {
        match store::update(&state.db, user.id, changes).await? {
            Updated::Done(updated) => Some(updated),
            // Another request changed the password after ours was checked.
            Updated::PasswordMoved => {
                return Err(Error::invalid("current_password", "is incorrect"))
            }
            Updated::Missing => None,
        }
    };
    state.user_cache.forget(user.id);
    let updated = updated.ok_or(Error::Unauthorized("Invalid token"))?;
    if password_changed {
        tracing::info!(
            user_id = user.id,
            "password changed; refresh tokens revoked"
        );
    }
    Ok(ok(updated, "User updated"))
}
