//! OpenAPI 3.1 generated from the handlers, Swagger UI and ReDoc, all served offline.

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
    Modify, OpenApi, ToSchema,
};
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    agents::{self, Agent},
    auth::{self, routes::TokenPair},
    chat::{self, Chat, ChatSession},
    error::{ErrorBody, FieldError},
    health::{self, Health, Readiness},
    http::layers::DOCS_CSP,
    integrations::github,
    pagination::Page,
    projects::{self, Project},
    state::AppState,
    users::{self, User},
};

/// Documents `{success: true, data: <T>, message}` for one `T`.
macro_rules! envelope_schema {
    ($name:ident, $data:ty) => {
        #[derive(ToSchema)]
        #[allow(dead_code)]
        pub struct $name {
            success: bool,
            data: $data,
            message: String,
        }
    };
}

envelope_schema!(UserResponse, User);
envelope_schema!(TokenPairResponse, TokenPair);
envelope_schema!(AgentResponse, Agent);
envelope_schema!(AgentPageResponse, Page<Agent>);
envelope_schema!(ProjectResponse, Project);
envelope_schema!(ProjectPageResponse, Page<Project>);
envelope_schema!(ChatResponse, Chat);
envelope_schema!(ChatPageResponse, Page<Chat>);
envelope_schema!(SessionPageResponse, Page<ChatSession>);
envelope_schema!(HealthResponse, Health);
envelope_schema!(ReadinessResponse, Readiness);
envelope_schema!(
    LinkCodeResponse,
    crate::integrations::whatsapp::link::LinkCode
);
envelope_schema!(
    WhatsappReceivedResponse,
    crate::integrations::whatsapp::webhook::Received
);
envelope_schema!(WebhookReceiptResponse, github::routes::Receipt);
envelope_schema!(ReviewPageResponse, Page<github::routes::PullReview>);
envelope_schema!(GithubAuthorizationResponse, github::connect::Authorization);
envelope_schema!(GithubIdentityResponse, github::identity::GithubIdentity);

/// `{success: true, data: null, message}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EmptyResponse {
    success: bool,
    #[schema(value_type = Option<Object>)]
    data: (),
    message: String,
}

/// The OAuth2 password form (`username` is the email).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OAuth2Form {
    username: String,
    password: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CodeSherpa API",
        description = "AI developer-productivity platform: users, projects, agents and chat. \
            Every response is wrapped in `{success, data, message}`; errors add `code` and, \
            for validation, `errors`.",
    ),
    paths(
        auth::routes::register,
        auth::routes::login,
        auth::routes::refresh,
        auth::routes::logout,
        users::routes::me,
        users::routes::update_me,
        agents::routes::list,
        agents::routes::create,
        agents::routes::read,
        agents::routes::update,
        agents::routes::remove,
        projects::routes::list,
        projects::routes::create,
        projects::routes::read,
        projects::routes::update,
        projects::routes::remove,
        chat::routes::create,
        chat::routes::stream,
        chat::routes::list,
        chat::routes::sessions,
        chat::routes::read,
        crate::ws::upgrade,
        health::live,
        health::ready,
        health::metrics,
        crate::integrations::whatsapp::link::create_code,
        crate::integrations::whatsapp::link::unlink,
        crate::integrations::whatsapp::webhook::verify,
        crate::integrations::whatsapp::webhook::receive,
        github::webhook::receive,
        github::routes::list,
        github::sync::start,
        github::access::recheck,
        github::connect::connect,
        github::connect::callback,
        github::connect::show,
        github::connect::disconnect,
        crate::console::index,
        crate::console::asset,
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

/// `/api/v1/openapi.json`, `/api/v1/docs` (Swagger UI) and `/api/v1/redoc`.
pub fn router() -> Router<AppState> {
    let api = ApiDoc::openapi().merge_from(crate::codebase::routes::CodebaseApi::openapi());
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
