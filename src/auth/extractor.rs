//! `AuthUser`: the extractor that guards every resource route.

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts, HeaderMap},
};

use crate::{
    error::{Error, Result},
    state::AppState,
    users::User,
};

/// The authenticated, active user behind the request's bearer token.
pub struct AuthUser(pub User);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let token = bearer_token(&parts.headers).ok_or(Error::Unauthorized("Not authenticated"))?;
        authenticate(state, token)
            .await
            .map(|(user, _)| AuthUser(user))
    }
}

/// Checks an access token and loads its user, refusing deactivated accounts. Also
/// returns the token's expiry (Unix seconds), which a WebSocket enforces.
pub async fn authenticate(state: &AppState, token: &str) -> Result<(User, i64)> {
    let token = state.tokens.verify_access(token)?;
    let user = state
        .user_cache
        .get(&state.db, token.user_id)
        .await?
        .ok_or(Error::Unauthorized("Invalid token"))?;
    if !user.is_active {
        return Err(Error::Forbidden("Account is deactivated"));
    }
    Ok((user, token.exp))
}

pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
