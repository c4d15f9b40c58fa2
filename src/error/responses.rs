//! The failure answers shared by many routes, declared once for the OpenAPI document.
//! A route lists the sets that can happen to it next to its own responses.

#![allow(dead_code)] // Never built: these enums only describe answers to utoipa.

use utoipa::IntoResponses;

use super::ErrorBody;

/// Every route behind `Authorization: Bearer <access token>`.
#[derive(IntoResponses)]
pub enum Authenticated {
    #[response(
        status = 401,
        description = "Missing, invalid or expired access token",
        headers(("WWW-Authenticate" = String, description = "`Bearer`"))
    )]
    Unauthorized(ErrorBody),
    #[response(status = 403, description = "Account deactivated")]
    Forbidden(ErrorBody),
}

/// Every route that reads a JSON body.
#[derive(IntoResponses)]
pub enum JsonBody {
    #[response(status = 400, description = "Malformed JSON")]
    Malformed(ErrorBody),
    #[response(status = 413, description = "Request body over `BODY_LIMIT_BYTES`")]
    TooLarge(ErrorBody),
    #[response(status = 415, description = "Content-Type is not `application/json`")]
    UnsupportedMediaType(ErrorBody),
    #[response(
        status = 422,
        description = "Invalid input: `errors` names each field and its problem"
    )]
    Invalid(ErrorBody),
}

/// A route under a rate limit.
#[derive(IntoResponses)]
pub enum Limited {
    #[response(
        status = 429,
        description = "Rate limited",
        headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))
    )]
    TooManyRequests(ErrorBody),
}

/// Every route that touches the database.
#[derive(IntoResponses)]
pub enum ServerErrors {
    #[response(
        status = 500,
        description = "Internal error (details are logged, never sent)"
    )]
    Internal(ErrorBody),
    #[response(status = 503, description = "The database is unavailable; retry later")]
    Unavailable(ErrorBody),
}
