//! The GitHub slice's HTTP surface: the webhook (with its own 25 MiB body limit), the
//! reviews of a project and its sync from GitHub.

use axum::{
    extract::{DefaultBodyLimit, State},
    response::IntoResponse,
    routing::{get, post},
    Router,
};

use super::{access, connect, store, sync, webhook};
use crate::{
    auth::AuthUser,
    error::{ok, ErrorBody, Result},
    extract::{Id, Query},
    pagination::{Page, PageParams},
    projects,
    state::AppState,
};

pub use webhook::{Receipt, BODY_LIMIT, PATH as WEBHOOK_PATH};

pub use super::store::PullReview;

/// Routes under `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/integrations/github/webhook",
            post(webhook::receive).layer(DefaultBodyLimit::max(BODY_LIMIT)),
        )
        .route("/projects/{id}/reviews", get(list))
        .route("/projects/{id}/sync", post(sync::start))
        .route("/projects/{id}/repo-access", post(access::recheck))
        .route("/user/github/connect", post(connect::connect))
        .route(
            "/user/github",
            get(connect::show).delete(connect::disconnect),
        )
        .route("/integrations/github/callback", get(connect::callback))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/reviews", tag = "integrations", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id"), PageParams),
    responses(
        (status = 200, description = "The project's pull-request reviews, newest first", body = crate::docs::ReviewPageResponse),
        crate::error::responses::Authenticated, crate::error::responses::ServerErrors,
        (status = 404, description = "No such project of this user", body = ErrorBody),
        (status = 422, description = "Invalid paging", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
    Query(params): Query<PageParams>,
) -> Result<impl IntoResponse> {
    let page = params.validate()?;
    projects::store::owned(&state.db, user.id, id).await?;
    let (items, total) = store::list(&state.db, id, page).await?;
    Ok(ok(Page::new(items, total, page), "Reviews retrieved"))
}
