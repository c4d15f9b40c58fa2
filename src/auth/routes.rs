//! `/auth/*` routes.

use axum::{
    extract::{FromRequest, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    store::{self, NewToken, Rotation},
    tokens::TokenKind,
};
use crate::{
    error::{
        created, ok,
        responses::{envelope_schema, EmptyResponse, JsonBody, Limited, ServerErrors},
        Error, ErrorBody, Result,
    },
    extract::{has_content_type, parse_form, read_body, Json},
    state::AppState,
    users::{self, User, UserResponse},
    validate::{normalize_email, Violations, PASSWORD_MAX_BYTES},
};

const BAD_CREDENTIALS: &str = "Incorrect email or password";

/// `/api/v1/auth/*` with their OpenAPI.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
}

envelope_schema!(TokenPairResponse, TokenPair);

/// The OAuth2 password form (`username` is the email).
#[derive(ToSchema)]
#[allow(dead_code)] // Never built: it only describes the form to utoipa.
pub struct OAuth2Form {
    username: String,
    password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// Not blank; surrounding whitespace is trimmed.
    #[schema(
        example = "Ada Lovelace",
        min_length = 1,
        max_length = 100,
        pattern = r"^[\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    pub name: String,
    #[schema(example = "ada@example.com", format = Email, max_length = 254)]
    pub email: String,
    /// 8 characters to 72 bytes of UTF-8 (bcrypt's limit; longer is refused, not truncated).
    #[schema(example = "correct horse battery", format = Password, min_length = 8, max_length = 72)]
    pub password: String,
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered", body = UserResponse),
        JsonBody, Limited, ServerErrors,
        (status = 409, description = "Email already registered", body = ErrorBody),
    ))]
pub async fn register(
    State(state): State<AppState>,
    Json(input): Json<RegisterRequest>,
) -> Result<impl IntoResponse> {
    let mut check = Violations::default();
    let name = check.text("name", &input.name, 1, 100);
    let email = check.email("email", &input.email);
    check.password("password", &input.password);
    check.finish()?;

    let hashed_password = state.passwords.hash(input.password).await?;
    let user = users::store::register(&state.db, &name, &email, &hashed_password).await?;
    tracing::info!(user_id = user.id, "user registered");
    Ok(created(user, "User registered successfully"))
}

/// JSON `{email, password}`; Swagger's Authorize sends the OAuth2 form `username`/`password`.
#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(example = "ada@example.com")]
    pub email: String,
    #[schema(example = "correct horse battery")]
    pub password: String,
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

/// Accepts a JSON or an OAuth2 password-form body.
pub struct Credentials {
    login: LoginRequest,
    from_oauth2_form: bool,
}

impl<S: Send + Sync> FromRequest<S> for Credentials {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        if has_content_type(req.headers(), "application/x-www-form-urlencoded") {
            let form: LoginForm = parse_form(&read_body(req, state).await?)?;
            return Ok(Credentials {
                login: LoginRequest {
                    email: form.username,
                    password: form.password,
                },
                from_oauth2_form: true,
            });
        }
        let Json(login) = Json::from_request(req, state).await?;
        Ok(Credentials {
            login,
            from_oauth2_form: false,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub user: User,
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body(content(
        (LoginRequest = "application/json"),
        (inline(OAuth2Form) = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Logged in", body = TokenPairResponse),
        JsonBody, Limited, ServerErrors,
        (status = 401, description = "Incorrect email or password", body = ErrorBody),
        (status = 403, description = "Account deactivated", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    Credentials {
        login: input,
        from_oauth2_form,
    }: Credentials,
) -> Result<Response> {
    let email = normalize_email(&input.email);
    // No account has a NUL in its email, and PostgreSQL cannot even compare one.
    let user = match email.contains('\0') {
        true => None,
        false => users::store::find_by_email(&state.db, &email).await?,
    };
    // Unknown email and wrong password cost one bcrypt check each and answer alike.
    let verified = match &user {
        Some(user) if input.password.len() <= PASSWORD_MAX_BYTES => {
            state
                .passwords
                .verify(input.password, user.hashed_password.clone())
                .await?
        }
        _ => state.passwords.verify_decoy(input.password).await?,
    };
    let Some(user) = user.filter(|_| verified) else {
        return Err(Error::Unauthorized(BAD_CREDENTIALS));
    };
    if !user.is_active {
        return Err(Error::Forbidden("Account is deactivated"));
    }
    let family = Uuid::new_v4().simple().to_string();
    let pair = issue_pair(&state, user, &family, None).await?;
    tracing::info!(user_id = pair.user.id, "user logged in");
    if !from_oauth2_form {
        return Ok(ok(pair, "Login successful").into_response());
    }
    // OAuth2 clients (Swagger UI's Authorize) read the token at the top level; the
    // envelope stays intact beside it.
    let access_token = pair.access_token.clone();
    let mut body = serde_json::to_value(ok(pair, "Login successful").0).map_err(Error::internal)?;
    body["access_token"] = access_token.into();
    body["token_type"] = "bearer".into();
    Ok(axum::Json(body).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair; the presented token is spent", body = TokenPairResponse),
        JsonBody, Limited, ServerErrors,
        (status = 401, description = "Invalid, expired, spent or revoked refresh token", body = ErrorBody),
        (status = 403, description = "Account deactivated", body = ErrorBody),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    Json(input): Json<RefreshRequest>,
) -> Result<impl IntoResponse> {
    let claims = state
        .tokens
        .verify(&input.refresh_token, TokenKind::Refresh)?;
    let family = claims
        .fam
        .clone()
        .ok_or(Error::Unauthorized("Invalid token"))?;
    let user = users::store::find_by_id(&state.db, claims.user_id()?)
        .await?
        .ok_or(Error::Unauthorized("Invalid token"))?;
    if !user.is_active {
        return Err(Error::Forbidden("Account is deactivated"));
    }
    let pair = issue_pair(&state, user, &family, Some(&claims.jti)).await?;
    Ok(ok(pair, "Token refreshed"))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "The refresh token and its family are revoked", body = EmptyResponse),
        JsonBody, Limited, ServerErrors,
        (status = 401, description = "Invalid refresh token", body = ErrorBody),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    Json(input): Json<RefreshRequest>,
) -> Result<impl IntoResponse> {
    let claims = state
        .tokens
        .verify(&input.refresh_token, TokenKind::Refresh)?;
    if !store::revoke_family_of(&state.db, &claims.jti).await? {
        return Err(Error::Unauthorized("Invalid token"));
    }
    Ok((StatusCode::OK, ok(None::<()>, "Logged out")))
}

/// Issues an access token and a refresh token in `family`; with `spent`, that refresh
/// token is rotated out first (and a replay of it revokes the family).
async fn issue_pair(
    state: &AppState,
    user: User,
    family: &str,
    spent: Option<&str>,
) -> Result<TokenPair> {
    let access = state.tokens.issue(user.id, TokenKind::Access, None)?;
    let refresh = state
        .tokens
        .issue(user.id, TokenKind::Refresh, Some(family))?;
    let next = NewToken {
        jti: &refresh.jti,
        user_id: user.id,
        family_id: family,
        expires_at: refresh.expires_at,
    };
    match spent {
        None => {
            if !store::insert_for_password(&state.db, next, &user.hashed_password).await? {
                // The password changed between the check and now: the login is void.
                return Err(Error::Unauthorized(BAD_CREDENTIALS));
            }
        }
        Some(old) => match store::rotate(&state.db, old, next).await? {
            Rotation::Rotated => {}
            Rotation::Reused => {
                tracing::warn!(user_id = user.id, "refresh token reuse: family revoked");
                return Err(Error::Unauthorized(
                    "Refresh token was already used; all sessions from that login are revoked",
                ));
            }
            Rotation::Unknown => return Err(Error::Unauthorized("Invalid token")),
        },
    }
    Ok(TokenPair {
        access_token: access.token,
        refresh_token: refresh.token,
        token_type: "bearer",
        expires_in: state.tokens.access_ttl.num_seconds(),
        user,
    })
}
