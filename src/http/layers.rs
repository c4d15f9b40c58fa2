//! Middleware: request ids and logging, metrics, the envelope for framework-level
//! failures, panics, security headers and CORS.

use std::{any::Any, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{header, HeaderName, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::Response,
};
use tower_http::cors::{AllowOrigin, Any as AnyOrigin, CorsLayer};
use tracing::Instrument;
use uuid::Uuid;

use crate::{error::status_envelope, extract::has_content_type, state::AppState};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    /// The id of the request being handled, for error messages that name it.
    static REQUEST_ID: String;
}

/// The id of the request this task is handling, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Gives every request an id (the caller's, when it is sane), a span carrying it, one log
/// line when answered, and a metrics sample. Query strings are never logged: `/ws` takes
/// its token there.
pub async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_sane_request_id(id))
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned);
    let id_header = HeaderValue::from_str(&request_id).expect("sanitised request id");
    req.headers_mut().insert(X_REQUEST_ID, id_header.clone());

    let method = req.method().clone();
    let span = tracing::info_span!("request", %method, path = %req.uri().path(), %request_id);
    let started = Instant::now();
    let mut response = REQUEST_ID
        .scope(request_id, next.run(req).instrument(span.clone()))
        .await;
    let elapsed = started.elapsed();

    let route = response
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let status = response.status().as_u16();
    state.metrics.record(&method, route, status, elapsed);
    crate::memory::request_finished();
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = elapsed.as_secs_f64() * 1e3,
            "request completed"
        )
    });
    response.headers_mut().insert(X_REQUEST_ID, id_header);
    response
}

fn is_sane_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Route layer: hands the matched route template to `observe` via the response.
pub async fn remember_route(req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(req).await;
    if let Some(matched) = matched {
        response.extensions_mut().insert(matched);
    }
    response
}

/// Wraps any non-JSON error answer (unknown route, wrong method, a layer's refusal) in
/// the envelope, keeping headers such as `Allow` and `Retry-After`.
pub async fn envelope_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || has_content_type(response.headers(), "application/json")
    {
        return response;
    }
    let mut enveloped = status_envelope(status, default_message(status));
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = response.headers().get(&name) {
            enveloped.headers_mut().insert(name, value.clone());
        }
    }
    enveloped
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_sanitised() {
        assert!(is_sane_request_id("abc-123_x.y:z"));
        assert!(!is_sane_request_id(""));
        assert!(!is_sane_request_id("has space"));
        assert!(!is_sane_request_id("line\nbreak"));
        assert!(!is_sane_request_id(&"a".repeat(129)));
    }
}
