//! The one error type of the API and the envelope every response is wrapped in.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use sqlx::sqlite::SqliteError;
use utoipa::ToSchema;

pub mod responses;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `{success, data, message}`: the shape of every successful answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiResponse<T> {
    pub success: bool,
    pub data: T,
    pub message: String,
}

/// `{success: false, data: null, message, code, errors?}`: the shape of every failure.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub success: bool,
    /// Always null.
    #[schema(value_type = Option<Object>)]
    pub data: Option<()>,
    pub message: String,
    /// A stable, machine-readable code such as `validation_error` or `not_found`.
    pub code: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One problem with one input field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A 200 answer in the envelope.
pub fn ok<T: Serialize>(data: T, message: &str) -> Json<ApiResponse<T>> {
    Json(ApiResponse {
        success: true,
        data,
        message: message.to_owned(),
    })
}

/// A 201 answer in the envelope.
pub fn created<T: Serialize>(data: T, message: &str) -> (StatusCode, Json<ApiResponse<T>>) {
    (StatusCode::CREATED, ok(data, message))
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is too large")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(&'static str),
    /// A feature whose settings are missing on this server (503, `not_configured`).
    #[error("{0}")]
    NotConfigured(&'static str),
    /// The AI provider failed or answered garbage.
    #[error("{0}")]
    BadGateway(String),
    /// The AI provider did not answer in time.
    #[error("{0}")]
    GatewayTimeout(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(field, message)])
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        Error::Internal(err.to_string())
    }

    /// `err` for each of the requests one query answered: the status and message the
    /// query's own request would get.
    pub fn shared(err: &sqlx::Error) -> Self {
        if is_outage(err) {
            Error::Unavailable("Service temporarily unavailable")
        } else {
            Error::Internal(format!("database error: {err}"))
        }
    }

    /// This error as a request that waited for the failed work gets it: the same status,
    /// for the reasons a shared read fails (an outage, a database error).
    pub fn for_waiter(&self) -> Self {
        match self {
            Error::Database(err) => Error::shared(err),
            Error::Unavailable(message) => Error::Unavailable(message),
            other => Error::internal(other),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable(_) | Error::NotConfigured(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Error::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::Database(err) if is_outage(err) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Database(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client reads: never the internals of a 5xx.
    pub fn client_message(&self) -> String {
        match self {
            Error::Validation(errors) => match errors.as_slice() {
                [only] => format!("Validation failed: {}: {}", only.field, only.message),
                _ => "Validation failed".into(),
            },
            Error::NotFound(what) => format!("{what} not found"),
            Error::RateLimited { retry_after_secs } => {
                format!("Too many requests; retry in {retry_after_secs} s")
            }
            Error::Database(_) | Error::Internal(_) => match self.status() {
                StatusCode::SERVICE_UNAVAILABLE => "Service temporarily unavailable".into(),
                _ => "Internal server error".into(),
            },
            // The provider's detail is logged where it failed; the client gets a generic
            // reason and the id to quote when asking what happened.
            Error::BadGateway(reason) | Error::GatewayTimeout(reason) => {
                match crate::http::request_id::current_request_id() {
                    Some(id) => format!("{reason} (request id {id})"),
                    None => reason.clone(),
                }
            }
            other => other.to_string(),
        }
    }
}

/// Connection-level database failures are an outage (503), not a bug (500).
/// SQLite's primary result codes for a database another connection holds (the extended
/// codes keep them in their low byte).
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;

fn is_outage(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        // A PostgreSQL server going down answers in-flight queries with SQLSTATE 57P01-03
        // (shutdown, crash, not accepting connections) or class 08 (connection lost).
        // SQLite still busy (or locked) after its busy timeout: writers queued longer
        // than 5 s, an overload that passes, not a fault of the request.
        sqlx::Error::Database(db_err) if db_err.try_downcast_ref::<SqliteError>().is_some() => {
            db_err
                .code()
                .and_then(|code| code.parse::<i32>().ok())
                .is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
        }
        sqlx::Error::Database(db_err) => db_err
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P0")),
        _ => false,
    }
}

/// The stable `code` string for a status.
pub fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "validation_error",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "service_unavailable",
        StatusCode::BAD_GATEWAY => "provider_error",
        StatusCode::GATEWAY_TIMEOUT | StatusCode::REQUEST_TIMEOUT => "timeout",
        s if s.is_client_error() => "bad_request",
        _ => "internal_error",
    }
}

/// An envelope for a bare status (used for framework-level failures).
pub fn status_envelope(status: StatusCode, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        success: false,
        data: None,
        message: message.into(),
        code: code_for(status),
        errors: Vec::new(),
    };
    (status, Json(body)).into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() && !matches!(self, Error::NotConfigured(_)) {
            // Logged inside the request span, so the request id comes along.
            tracing::error!(error = %self, "request failed");
        }
        let body = ErrorBody {
            success: false,
            data: None,
            message: self.client_message(),
            code: match self {
                Error::NotConfigured(_) => "not_configured",
                _ => code_for(status),
            },
            errors: match &self {
                Error::Validation(errors) => errors.clone(),
                _ => Vec::new(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            Error::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, retry_after_secs.into());
            }
            Error::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}
