//! `/projects` routes.

use axum::{extract::State, response::IntoResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    repo_url::{parse_repo_url, RepoUrl},
    store::{self, ProjectFields},
    Project, ProjectResponse,
};
use crate::{
    auth::AuthUser,
    db::pages::{List, PageKey},
    error::{
        created, ok,
        responses::{envelope_schema, Authenticated, EmptyResponse, JsonBody, ServerErrors},
        Error, ErrorBody, Result,
    },
    extract::{nullable, Id, Json, Query},
    pagination::{JsonPage, Page, PageParams},
    state::AppState,
    validate::Violations,
};

/// `/api/v1/projects` and `/api/v1/projects/{id}` with their OpenAPI.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update, remove))
}

envelope_schema!(ProjectPageResponse, Page<Project>);

#[derive(Deserialize, ToSchema)]
pub struct CreateProject {
    /// Not blank; surrounding whitespace is trimmed.
    #[schema(
        example = "payments-service",
        min_length = 1,
        max_length = 200,
        pattern = r"^[\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    pub name: String,
    #[schema(max_length = 5_000, pattern = r"^[^\x00]*$")]
    pub description: Option<String>,
    /// An http(s) URL; blank means none. On github.com (or the GitHub Enterprise host) it
    /// must be `https://github.com/{owner}/{repo}` (optional `.git` or `/`): owners of
    /// letters, digits and `-`, names of letters, digits, `.`, `_`, `-` (not `.` or `..`).
    #[schema(
        example = "https://github.com/acme/payments-service",
        max_length = 500,
        pattern = r"^[\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(https?://[^\x00\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000/][^\x00\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?[\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub repo_url: Option<String>,
    /// Review pull requests of the linked GitHub repository automatically (default true).
    pub auto_review: Option<bool>,
}

/// Every field is optional; `null` clears a nullable field.
#[derive(Deserialize, ToSchema)]
pub struct UpdateProject {
    /// Not blank.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 5_000, pattern = r"^[^\x00]*$")]
    pub description: Option<Option<String>>,
    /// An http(s) URL; blank or `null` means none. On github.com (or the GitHub Enterprise
    /// host) it must be `https://github.com/{owner}/{repo}` (optional `.git` or `/`).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 500, pattern = r"^[\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(https?://[^\x00\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000/][^\x00\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?[\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$")]
    pub repo_url: Option<Option<String>>,
    pub auto_review: Option<bool>,
}

fn validated(state: &AppState, fields: ProjectFields) -> Result<ProjectFields> {
    let mut check = Violations::default();
    let repo_url = check.http_url("repo_url", fields.repo_url.as_deref());
    let api_url = state.github.api_url();
    let checked = repo_url.as_deref().filter(|_| !check.has("repo_url"));
    let on_github = match checked.map(|url| parse_repo_url(url, api_url)) {
        Some(Ok(RepoUrl::Github(_))) => true,
        Some(Err(rule)) => {
            check.add("repo_url", rule);
            false
        }
        Some(Ok(RepoUrl::Elsewhere)) | None => false,
    };
    let fields = ProjectFields {
        name: check.text("name", &fields.name, 1, 200),
        description: check.optional_text("description", fields.description.as_deref(), 5_000),
        repo_url,
        auto_review: fields.auto_review,
        on_github,
    };
    check.finish()?;
    Ok(fields)
}

#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "The user's projects, newest first", body = ProjectPageResponse),
        Authenticated, ServerErrors,
        (status = 422, description = "Invalid paging", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Query(params): Query<PageParams>,
) -> Result<impl IntoResponse> {
    let page = params.validate()?;
    let key = PageKey::new(user.id, List::Projects, page);
    JsonPage::serve(
        &state.pages,
        &state.db,
        key,
        "Projects retrieved",
        store::list(&state.db, user.id, page),
    )
    .await
}

#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", security(("bearer" = [])),
    request_body = CreateProject,
    responses(
        (status = 201, description = "Created", body = ProjectResponse),
        Authenticated, JsonBody, ServerErrors,
    ))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Json(input): Json<CreateProject>,
) -> Result<impl IntoResponse> {
    let fields = validated(
        &state,
        ProjectFields {
            name: input.name,
            description: input.description,
            repo_url: input.repo_url,
            auto_review: input.auto_review.unwrap_or(true),
            on_github: false,
        },
    )?;
    let project = store::create(&state.db, user.id, fields).await?;
    let project = state.repo_access.check(&state, project).await?;
    Ok(created(project, "Project created"))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id")),
    responses(
        (status = 200, description = "The project", body = ProjectResponse),
        Authenticated, ServerErrors,
        (status = 404, description = "No such project of this user", body = ErrorBody),
    ))]
pub async fn read(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
) -> Result<impl IntoResponse> {
    Ok(ok(
        store::owned(&state.db, user.id, id).await?,
        "Project retrieved",
    ))
}

#[utoipa::path(put, path = "/api/v1/projects/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id")),
    request_body = UpdateProject,
    responses(
        (status = 200, description = "Updated", body = ProjectResponse),
        Authenticated, JsonBody, ServerErrors,
        (status = 404, description = "No such project of this user", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
    Json(input): Json<UpdateProject>,
) -> Result<impl IntoResponse> {
    let current = store::owned(&state.db, user.id, id).await?;
    let fields = validated(
        &state,
        ProjectFields {
            name: input.name.unwrap_or(current.name),
            description: input.description.unwrap_or(current.description),
            repo_url: input.repo_url.unwrap_or(current.repo_url.clone()),
            auto_review: input.auto_review.unwrap_or(current.auto_review),
            on_github: false,
        },
    )?;
    // A project made before access was proven (status unset) is checked once saved too.
    let changed = fields.repo_url != current.repo_url
        || (fields.on_github && current.repo_access.status.is_none());
    let project = store::update(&state.db, user.id, id, fields)
        .await?
        .ok_or(Error::NotFound("Project"))?;
    let project = if changed {
        state.repo_access.check(&state, project).await?
    } else {
        project
    };
    Ok(ok(project, "Project updated"))
}

#[utoipa::path(delete, path = "/api/v1/projects/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id")),
    responses(
        (status = 200, description = "Deleted; the project's chats are kept without the link", body = EmptyResponse),
        Authenticated, ServerErrors,
        (status = 404, description = "No such project of this user", body = ErrorBody),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
) -> Result<impl IntoResponse> {
    if !store::delete(&state.db, user.id, id).await? {
        return Err(Error::NotFound("Project"));
    }
    Ok(ok(None::<()>, "Project deleted"))
}
