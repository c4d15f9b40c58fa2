//! Liveness, readiness and the Prometheus endpoint.

use std::time::Duration;

use axum::{extract::State, http::header, response::IntoResponse};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::{ok, responses::envelope_schema, Error, ErrorBody, Result},
    state::AppState,
};

/// `/health`, `/health/ready` and `/metrics` with their OpenAPI.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
        .routes(routes!(metrics))
}

envelope_schema!(HealthResponse, Health);
envelope_schema!(ReadinessResponse, Readiness);

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
    /// `ok`, or `not_configured` without `REDIS_URL`.
    #[schema(example = "ok")]
    pub redis: &'static str,
}

#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The process is up", body = HealthResponse)))]
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
        (status = 200, description = "Dependencies reachable", body = ReadinessResponse),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    ))]
pub async fn ready(State(state): State<AppState>) -> Result<impl IntoResponse> {
    let database = async {
        matches!(
            tokio::time::timeout(Duration::from_secs(2), state.db.ping()).await,
            Ok(Ok(()))
        )
    };
    let redis = async {
        match &state.redis {
            None => "not_configured",
            // Reachable and carrying broadcasts.
            Some(redis) if redis.is_subscribed() && redis.ping().await => "ok",
            Some(_) => "unavailable",
        }
    };
    let (database_ok, redis) = tokio::join!(database, redis);
    if !database_ok {
        return Err(Error::Unavailable("Database is unavailable"));
    }
    if redis == "unavailable" {
        // This instance still serves alone; the load balancer should know it is degraded.
        return Err(Error::Unavailable(
            "Redis is unavailable; serving this instance's sockets and limits only",
        ));
    }
    Ok(ok(
        Readiness {
            database: "ok",
            database_backend: state.db.backend(),
            redis,
        },
        "Ready",
    ))
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "OpenMetrics text exposition (Prometheus scrapes it)",
            content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (status = 500, description = "Internal error", body = ErrorBody),
    ))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let sockets = i64::try_from(state.hub.connections()).unwrap_or(i64::MAX);
    state.metrics.websocket_connections.set(sockets);
    if let Err(err) = state.jobs.refresh_metrics().await {
        tracing::warn!(error = %err, "cannot count jobs for /metrics");
    }
    if let Err(err) =
        crate::integrations::whatsapp::refresh_metrics(&state.db, &state.metrics).await
    {
        tracing::warn!(error = %err, "cannot count WhatsApp deliveries for /metrics");
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
