//! What the HTTP layers do: the envelope for framework-level failures,
//! panics, security headers and CORS (assembled in `edge` and `app`).

use std::any::Any;

use super::request_id::X_REQUEST_ID;
use crate::{error::status_envelope, extract::has_content_type};
use axum::{
    http::{header, HeaderName, HeaderValue, Method, StatusCode},
    response::Response,
};
use tower_http::cors::{AllowOrigin, Any as AnyOrigin, CorsLayer};

/// Wraps any non-JSON error answer (unknown route, wrong method, a layer's refusal) in
/// the envelope, keeping its headers (`Allow`, `Retry-After`, CORS).
pub fn envelope_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || has_content_type(response.headers(), "application/json")
    {
        return response;
    }
    answer_instead(response, status_envelope(status, default_message(status)))
}

/// `replacement`'s status and body with `original`'s headers and extensions (those the
/// layers beneath set: CORS, `Allow`, the matched route), less those describing the body.
pub fn answer_instead(original: Response, replacement: Response) -> Response {
    let (mut parts, _) = original.into_parts();
    let (new, body) = replacement.into_parts();
    parts.status = new.status;
    for name in [header::CONTENT_LENGTH, header::CONTENT_ENCODING] {
        parts.headers.remove(name);
    }
    parts.headers.extend(new.headers);
    Response::from_parts(parts, body)
}

fn default_message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "Resource not found",
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "Request body is too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "Unsupported content type",
        StatusCode::REQUEST_TIMEOUT => "Request timed out",
        s if s.is_server_error() => "Internal server error",
        s => s.canonical_reason().unwrap_or("Request failed"),
    }
}

/// A panicking handler answers 500 in the envelope; the detail goes to the log only.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "handler panicked");
    status_envelope(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
}

/// Headers every answer carries unless a route set its own.
pub const SECURITY_HEADERS: [(HeaderName, &str); 5] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'",
    ),
    (
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000; includeSubDomains",
    ),
];

/// The documentation pages run scripts and styles of their own (served by us).
pub const DOCS_CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:; \
    connect-src 'self'; frame-ancestors 'none'";

/// Listed origins may send credentials; `*` allows any origin, never with credentials.
pub fn cors(origins: &[String]) -> CorsLayer {
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
    ];
    let base = CorsLayer::new()
        .allow_methods(methods)
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, X_REQUEST_ID])
        .expose_headers([X_REQUEST_ID, header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(600));
    if origins.iter().any(|origin| origin == "*") {
        return base.allow_origin(AnyOrigin);
    }
    let listed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    base.allow_origin(AllowOrigin::list(listed))
        .allow_credentials(true)
}
