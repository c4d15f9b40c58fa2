//! The per-IP limit on `/auth/*` (`RATE_LIMIT_AUTH_PER_MINUTE`), as a middleware.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{error::Error, http::rate_limit::client_ip, state::AppState};

pub async fn limit_auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    if let Some(ip) = client_ip(req.headers(), peer, state.config.http.trust_proxy_headers) {
        if let Err(retry_after_secs) = state.limits.check_auth(ip).await {
            tracing::warn!(%ip, "auth rate limit exceeded");
            return Error::RateLimited { retry_after_secs }.into_response();
        }
    }
    next.run(req).await
}
