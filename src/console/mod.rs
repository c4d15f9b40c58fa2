//! The web console: a single-page client of the public API (REST, tokens, `/ws`), shipped
//! inside the binary and served at `/` with its own Content-Security-Policy.

mod assets;

use axum::{
    extract::Path,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use self::assets::Asset;
use crate::{
    error::{Error, ErrorBody, Result},
    state::AppState,
};

/// `/` and `/console/{*path}` with their OpenAPI. The asset route catches nested paths
/// (`js/main.js`), which an OpenAPI path cannot say, so `routes!` (which routes what the
/// document says) does not serve it: [`AssetDoc`] documents it as `/console/{path}`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(AssetDoc::openapi())
        .routes(routes!(index))
        .route("/console/{*path}", get(asset))
}

#[derive(OpenApi)]
#[openapi(paths(asset))]
struct AssetDoc;

/// The console page: an empty shell that loads `/console/js/main.js`.
#[utoipa::path(get, path = "/", tag = "console",
    params(("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer")),
    responses(
        (status = 200, description = "The web console", content_type = "text/html", body = String),
        (status = 304, description = "Unchanged since the ETag sent"),
    ))]
pub async fn index(headers: HeaderMap) -> Response {
    serve(assets::index(), &headers)
}

/// A script, style sheet or icon of the console.
#[utoipa::path(get, path = "/console/{path}", tag = "console",
    params(
        ("path" = String, Path, description = "The asset's path", example = "js/main.js"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer"),
    ),
    responses(
        (status = 200, description = "The asset", content(
            (String = "text/javascript"),
            (String = "text/css"),
            (String = "image/svg+xml"),
        )),
        (status = 304, description = "Unchanged since the ETag sent"),
        (status = 400, description = "The path is not valid UTF-8 once decoded", body = ErrorBody),
        (status = 404, description = "No such asset", body = ErrorBody),
    ))]
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Result<Response> {
    let asset = assets::find(&path).ok_or(Error::NotFound("Asset"))?;
    Ok(serve(asset, &headers))
}

/// Answers an asset, or 304 when the client's copy is current. `no-cache` makes browsers
/// revalidate, so a new binary's console is picked up at once; the ETag keeps that cheap.
fn serve(asset: &Asset, headers: &HeaderMap) -> Response {
    let etag = HeaderValue::from_str(&asset.etag).expect("hex ETag");
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == asset.etag
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let response_headers = response.headers_mut();
    response_headers.insert(header::ETAG, etag);
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response_headers.insert(
        header::CONTENT_SECURITY_POLICY,
        content_security_policy(headers),
    );
    response
}

/// Scripts, styles and images from this origin only, no inline script or style, and
/// network access to this origin's API and WebSocket. `connect-src 'self'` covers
/// same-host `ws:`/`wss:` in CSP 3; the explicit pair serves older engines.
fn content_security_policy(headers: &HeaderMap) -> HeaderValue {
    const BASE: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
        img-src 'self' data:; font-src 'self'; object-src 'none'; base-uri 'none'; \
        form-action 'self'; frame-ancestors 'none'";
    let socket = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .filter(|host| is_plain_host(host))
        .map(|host| format!(" ws://{host} wss://{host}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!("{BASE}; connect-src 'self'{socket}"))
        .expect("CSP of visible ASCII")
}

/// A `Host` header fit to be echoed into the policy: a name or address and a port, nothing
/// that could end a directive or add a source.
fn is_plain_host(host: &str) -> bool {
    (1..=255).contains(&host.len())
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_that_could_inject_sources_are_refused() {
        assert!(is_plain_host("localhost:8000"));
        assert!(is_plain_host("[::1]:8000"));
        assert!(!is_plain_host("evil.com; script-src *"));
        assert!(!is_plain_host("a b"));
        assert!(!is_plain_host(""));
    }
}
