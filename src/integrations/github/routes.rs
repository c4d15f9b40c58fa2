//! The GitHub slice's HTTP surface: the webhook (with its own 25 MiB body limit), the
//! reviews of a project and its sync from GitHub.

use axum::{
    extract::{DefaultBodyLimit, State},
    response::IntoResponse,
};
use utoipa_axum::{
    router::{OpenApiRouter, UtoipaMethodRouterExt},
    routes,
};

use super::{access, connect, store, sync, webhook};
use crate::{
    auth::AuthUser,
    error::{ok, responses::envelope_schema, ErrorBody, Result},
    extract::{Id, Query},
    pagination::{Page, PageParams},
    projects,
    state::AppState,
};

pub use webhook::{BODY_LIMIT, PATH as WEBHOOK_PATH};

pub use super::store::PullReview;

/// `/api/v1/integrations/github/*`, `/api/v1/user/github…` and a project's reviews and
/// repository access, with their OpenAPI.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(webhook::receive).layer(DefaultBodyLimit::max(BODY_LIMIT)))
        .routes(routes!(list))
        .routes(routes!(sync::start))
        .routes(routes!(access::recheck))
        .routes(routes!(connect::connect))
        .routes(routes!(connect::show, connect::disconnect))
        .routes(routes!(connect::callback))
}

envelope_schema!(ReviewPageResponse, Page<PullReview>);

#[utoipa::path(get, path = "/api/v1/projects/{id}/reviews", tag = "integrations", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id"), PageParams),
    responses(
        (status = 200, description = "The project's pull-request reviews, newest first", body = ReviewPageResponse),
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
