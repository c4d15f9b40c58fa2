//! The answers shared by many routes, declared once for the OpenAPI document: the failure
//! sets a route lists next to its own responses, and the success envelope each slice
//! declares for its own data with [`envelope_schema!`].

#![allow(dead_code)] // Never built: these types only describe answers to utoipa.

use utoipa::{IntoResponses, ToSchema};

use super::ErrorBody;

/// Documents `{success: true, data: <T>, message}` for one `T`:
/// `envelope_schema!(AgentResponse, Agent)` next to the slice's routes.
macro_rules! envelope_schema {
    ($name:ident, $data:ty) => {
        #[derive(utoipa::ToSchema)]
        #[allow(dead_code)]
        pub struct $name {
            success: bool,
            data: $data,
            message: String,
        }
    };
}
pub(crate) use envelope_schema;

/// `{success: true, data: null, message}`.
#[derive(ToSchema)]
pub struct EmptyResponse {
    success: bool,
    #[schema(value_type = Option<Object>)]
    data: (),
    message: String,
}

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
    #[response(
        status = 408,
        description = "The body did not arrive within `BODY_TIMEOUT_SECONDS`"
    )]
    TooSlow(ErrorBody),
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
