//! Start-up: connect, migrate, assemble the router and serve until told to stop.

use std::{convert::Infallible, future::Future};

use axum::{
    extract::{DefaultBodyLimit, Request},
    middleware,
    response::Response,
    Router,
};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder};
use tower_http::{catch_panic::CatchPanicLayer, limit::RequestBodyLimitLayer};
use utoipa_axum::router::OpenApiRouter;

use crate::{
    agents, auth, chat, codebase,
    config::Config,
    console,
    db::{settings::redact_url, Db},
    docs, health,
    http::{
        edge::{EdgeLayer, RememberRouteLayer},
        layers, serve,
    },
    integrations, jobs,
    llm::Providers,
    orchestrator::activity::recover_stale,
    projects,
    redis_bus::RedisBus,
    state::AppState,
    users, ws,
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot connect to the database at {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("invalid REDIS_URL {0}")]
    Redis(String),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Connects to the configured database and brings its schema up to date.
pub async fn connect_and_migrate(config: &Config) -> Result<Db, StartupError> {
    let db = Db::connect(&config.db.url, config.db.max_connections)
        .await
        .map_err(|source| StartupError::Connect {
            url: redact_url(&config.db.url),
            source,
        })?;
    db.migrate().await?;
    Ok(db)
}

/// Serves the API on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    config.auth.warn_if_secret_replaced();
    let db = connect_and_migrate(&config).await?;
    match recover_stale(&db).await {
        Ok(0) => {}
        Ok(recovered) => tracing::warn!(
            recovered,
            "agents left processing by a crash are active again"
        ),
        Err(err) => tracing::warn!(error = %err, "could not recover stale agent statuses"),
    }
    let providers = Providers::from_config(&config.llm).await;
    let redis = match &config.redis.url {
        Some(url) => Some(
            RedisBus::new(url, &config.redis.prefix)
                .map_err(|err| StartupError::Redis(format!("{}: {err}", redact_url(url))))?,
        ),
        None => None,
    };
    let repo_access = &integrations::github::access::GithubAccess;
    let state = AppState::new(config, db.clone(), providers, redis, repo_access);
    let passwords = state.passwords.clone();
    tokio::spawn(async move { passwords.warm_up().await });
    tracing::info!(
        address = %listener.local_addr()?,
        database = db.backend(),
        llm_provider = state.providers.default_name(),
        "CodeSherpa API listening"
    );
    let closing = state.shutdown.clone();
    let workers = workers(&state).start(closing.child_token());
    let header_timeout = state.config.http.header_timeout;
    serve::serve(listener, app(state), header_timeout, async move {
        shutdown.await;
        // WebSockets are long-lived: tell them to close (1001) so draining can finish.
        closing.cancel();
    })
    .await;
    workers.shutdown().await;
    db.close().await;
    tracing::info!("server stopped");
    Ok(())
}

/// Every slice's job handlers.
fn workers(state: &AppState) -> jobs::Workers {
    let mut workers = jobs::Workers::new(state.jobs.clone());
    jobs::register_jobs(&mut workers);
    integrations::whatsapp::register_jobs(&mut workers, state);
    integrations::github::register_jobs(&mut workers, state);
    workers
}

/// The database and the slices' job handlers (not started), for an operator's
/// `codesherpa jobs` command: a retry or cancel tells the job's slice through its hooks.
pub async fn operator(config: Config) -> Result<(Db, jobs::Workers), StartupError> {
    let db = connect_and_migrate(&config).await?;
    let repo_access = &integrations::github::access::GithubAccess;
    let state = AppState::new(
        config,
        db.clone(),
        Providers::local_only(),
        None,
        repo_access,
    );
    Ok((db, workers(&state)))
}

/// The whole HTTP surface with its middleware, as the service each connection serves.
pub fn app(
    state: AppState,
) -> impl Service<Request<Incoming>, Response = Response, Error = Infallible, Future: Send>
       + Clone
       + Send
       + 'static {
    let body_limit = state.config.http.body_limit_bytes;
    ServiceBuilder::new()
        .layer(EdgeLayer {
            metrics: state.metrics.clone(),
            body_timeout: state.config.http.body_timeout,
        })
        .layer(layers::cors(&state.config.http.cors_origins))
        .layer(CatchPanicLayer::custom(layers::panic_response))
        // Uploads and GitHub's webhook have their own, larger limits; every other
        // body is held to `body_limit` by the extractors (DefaultBodyLimit).
        .layer(RequestBodyLimitLayer::new(
            body_limit
                .max(state.config.codebase.upload_limit_bytes)
                .max(integrations::github::routes::BODY_LIMIT),
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .service(router(state))
}

/// Every slice's routes and the document they make, each route telling [`EdgeLayer`] its
/// template.
fn router(state: AppState) -> Router {
    // The auth routes' per-IP limit reads the state, which routers get only at the end.
    let auth_routes = auth::routes::router().route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::limit::limit_auth,
    ));
    let (routes, openapi) = OpenApiRouter::new()
        .merge(auth_routes)
        .merge(users::routes::router())
        .merge(agents::routes::router())
        .merge(projects::routes::router())
        .merge(codebase::routes::router())
        .merge(chat::routes::router())
        .merge(integrations::whatsapp::router())
        .merge(integrations::github::routes::router())
        .merge(health::router())
        .merge(ws::router())
        .merge(console::router())
        .split_for_parts();
    routes
        .merge(docs::router(openapi))
        .route_layer(RememberRouteLayer)
        .with_state(state)
}
