//! Liveness, readiness and the Prometheus endpoint.

use std::time::Duration;

use axum::{extract::State, http::header, response::IntoResponse, routing::get, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    error::{ok, Error, ErrorBody, Result},
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
    pub version: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ok")]
    pub database: &'static str,
    #[schema(example = "sqlite")]
    pub database_backend: &'static str,
}

#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The process is up", body = crate::docs::HealthResponse)))]
pub async fn live() -> impl IntoResponse {
    ok(
        Health {
            status: "ok",
            version: env!("CARGO_PKG_VERSION"),
        },
        "Service is running",
    )
}

#[utoipa::path(get, path = "/health/ready", tag = "operations",
    responses(
        (status = 200, description = "Dependencies reachable", body = crate::docs::ReadinessResponse),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    ))]
pub async fn ready(State(state): State<AppState>) -> Result<impl IntoResponse> {
    match tokio::time::timeout(Duration::from_secs(2), state.db.ping()).await {
        Ok(Ok(())) => Ok(ok(
            Readiness {
                database: "ok",
                database_backend: state.db.backend(),
            },
            "Ready",
        )),
        _ => Err(Error::Unavailable("Database is unavailable")),
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain"),
        (status = 500, description = "Internal error", body = ErrorBody),
    ))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
