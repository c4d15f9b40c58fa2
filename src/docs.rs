//! The API document and its pages: the slices' routers bring their paths and schemas
//! (each handler's `#[utoipa::path]`, collected by `routes!`); this module adds what
//! belongs to the whole API (info, tags, security schemes, shared schemas) and serves
//! OpenAPI 3.1, Swagger UI and ReDoc, all offline.

use axum::{
    http::{header, HeaderValue},
    response::{Html, IntoResponse},
    routing::get,
    Router,
};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::{
    openapi::security::{
        Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
    },
    Modify, OpenApi,
};
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    error::{ErrorBody, FieldError},
    http::layers::DOCS_CSP,
    state::AppState,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CodeSherpa API",
        description = "AI developer-productivity platform: users, projects, agents and chat. \
            Every response is wrapped in `{success, data, message}`; errors add `code` and, \
            for validation, `errors`.",
    ),
    components(schemas(
        ErrorBody,
        FieldError,
        crate::specialists::schemas::Review,
        crate::specialists::schemas::Explanation,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Registration, login and tokens"),
        (name = "users", description = "The current user"),
        (name = "agents", description = "AI specialists"),
        (name = "projects", description = "Code bases"),
        (name = "codebase", description = "A project's indexed code: upload, list, read, search"),
        (name = "chat", description = "AI chat: REST and server-sent events"),
        (name = "realtime", description = "WebSocket chat and broadcasts"),
        (name = "operations", description = "Health and metrics"),
        (name = "whatsapp", description = "WhatsApp: linking a phone, and Meta's webhook"),
        (name = "integrations", description = "GitHub: connecting an account, proven repository access, pull-request reviews"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        // Lets Swagger UI's Authorize button log in with email and password.
        components.add_security_scheme(
            "oauth2",
            SecurityScheme::OAuth2(OAuth2::new([Flow::Password(Password::new(
                "/api/v1/auth/login",
                Scopes::new(),
            ))])),
        );
    }
}

const REDOC_JS: &[u8] = include_bytes!("../assets/redoc/redoc.standalone.js");
const REDOC_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>CodeSherpa API — ReDoc</title>
  <style>body { margin: 0; padding: 0; }</style>
</head>
<body>
  <redoc spec-url="/api/v1/openapi.json"></redoc>
  <script src="/api/v1/redoc/redoc.standalone.js"></script>
</body>
</html>
"#;

/// `/api/v1/openapi.json`, `/api/v1/docs` (Swagger UI) and `/api/v1/redoc`, documenting
/// `paths`: what the slices' routers collected.
pub fn router(paths: utoipa::openapi::OpenApi) -> Router<AppState> {
    let api = ApiDoc::openapi().merge_from(paths);
    let swagger = SwaggerUi::new("/api/v1/docs").url("/api/v1/openapi.json", api);
    Router::new()
        .route("/api/v1/redoc", get(|| async { Html(REDOC_PAGE) }))
        .route(
            "/api/v1/redoc/redoc.standalone.js",
            get(|| async {
                (
                    [
                        (
                            header::CONTENT_TYPE,
                            "application/javascript; charset=utf-8",
                        ),
                        (header::CACHE_CONTROL, "public, max-age=86400"),
                    ],
                    REDOC_JS,
                )
                    .into_response()
            }),
        )
        .merge(swagger)
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CSP),
        ))
}
