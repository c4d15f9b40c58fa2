//! `/agents` routes.

use axum::{extract::State, response::IntoResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    store::{self, AgentFields},
    Agent, AgentStatus,
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

/// `/api/v1/agents` and `/api/v1/agents/{id}` with their OpenAPI.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update, remove))
}

envelope_schema!(AgentResponse, Agent);
envelope_schema!(AgentPageResponse, Page<Agent>);

const NAME_MAX: usize = 100;
const DESCRIPTION_MAX: usize = 2_000;
const PROMPT_MAX: usize = 20_000;
const MODEL_MAX: usize = 200;
const ROLE_MAX: usize = 50;

#[derive(Deserialize, ToSchema)]
pub struct CreateAgent {
    /// Not blank; surrounding whitespace is trimmed.
    #[schema(
        example = "Security Reviewer",
        min_length = 1,
        max_length = 100,
        pattern = r"^[\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    pub name: String,
    #[schema(max_length = 2_000, pattern = r"^[^\x00]*$")]
    pub description: Option<String>,
    /// Default `active`.
    pub status: Option<AgentStatus>,
    #[schema(max_length = 20_000, pattern = r"^[^\x00]*$")]
    pub system_prompt: Option<String>,
    #[schema(max_length = 200, pattern = r"^[^\x00]*$")]
    pub model: Option<String>,
    /// Default `custom`; not blank.
    #[schema(
        min_length = 1,
        max_length = 50,
        pattern = r"^[\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    pub role: Option<String>,
}

/// Every field is optional; `null` clears a nullable field.
#[derive(Deserialize, ToSchema)]
pub struct UpdateAgent {
    /// Not blank.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 2_000, pattern = r"^[^\x00]*$")]
    pub description: Option<Option<String>>,
    pub status: Option<AgentStatus>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 20_000, pattern = r"^[^\x00]*$")]
    pub system_prompt: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 200, pattern = r"^[^\x00]*$")]
    pub model: Option<Option<String>>,
    /// Not blank.
    #[schema(
        min_length = 1,
        max_length = 50,
        pattern = r"^[\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    pub role: Option<String>,
}

fn validated(fields: AgentFields) -> Result<AgentFields> {
    let mut check = Violations::default();
    let fields = AgentFields {
        name: check.text("name", &fields.name, 1, NAME_MAX),
        description: check.optional_text(
            "description",
            fields.description.as_deref(),
            DESCRIPTION_MAX,
        ),
        status: fields.status,
        role: check.text("role", &fields.role, 1, ROLE_MAX),
        system_prompt: check.optional_text(
            "system_prompt",
            fields.system_prompt.as_deref(),
            PROMPT_MAX,
        ),
        model: check.optional_text("model", fields.model.as_deref(), MODEL_MAX),
    };
    check.finish()?;
    Ok(fields)
}

#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "The user's agents, newest first", body = AgentPageResponse),
        Authenticated, ServerErrors,
        (status = 422, description = "Invalid paging", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Query(params): Query<PageParams>,
) -> Result<impl IntoResponse> {
    let page = params.validate()?;
    let key = PageKey::new(user.id, List::Agents, page);
    JsonPage::serve(
        &state.pages,
        &state.db,
        key,
        "Agents retrieved",
        store::list(&state.db, user.id, page),
    )
    .await
}

#[utoipa::path(post, path = "/api/v1/agents", tag = "agents", security(("bearer" = [])),
    request_body = CreateAgent,
    responses(
        (status = 201, description = "Created", body = AgentResponse),
        Authenticated, JsonBody, ServerErrors,
    ))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Json(input): Json<CreateAgent>,
) -> Result<impl IntoResponse> {
    let fields = validated(AgentFields {
        name: input.name,
        description: input.description,
        status: input.status.unwrap_or(AgentStatus::Active).as_str(),
        role: input.role.unwrap_or_else(|| "custom".into()),
        system_prompt: input.system_prompt,
        model: input.model,
    })?;
    let agent = store::create(&state.db, user.id, fields).await?;
    Ok(created(agent, "Agent created"))
}

#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "agents", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The agent", body = AgentResponse),
        Authenticated, ServerErrors,
        (status = 404, description = "No such agent of this user", body = ErrorBody),
    ))]
pub async fn read(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
) -> Result<impl IntoResponse> {
    let agent = owned(&state, user.id, id).await?;
    Ok(ok(agent, "Agent retrieved"))
}

#[utoipa::path(put, path = "/api/v1/agents/{id}", tag = "agents", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Agent id")),
    request_body = UpdateAgent,
    responses(
        (status = 200, description = "Updated", body = AgentResponse),
        Authenticated, JsonBody, ServerErrors,
        (status = 404, description = "No such agent of this user", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
    Json(input): Json<UpdateAgent>,
) -> Result<impl IntoResponse> {
    let current = owned(&state, user.id, id).await?;
    let status_sent = input.status.is_some();
    let fields = validated(AgentFields {
        name: input.name.unwrap_or(current.name),
        description: input.description.unwrap_or(current.description),
        status: input
            .status
            .map_or_else(|| AgentStatus::parse(&current.status), AgentStatus::as_str),
        role: input.role.unwrap_or(current.role),
        system_prompt: input.system_prompt.unwrap_or(current.system_prompt),
        model: input.model.unwrap_or(current.model),
    })?;
    let agent = store::update(&state.db, user.id, id, fields, status_sent)
        .await?
        .ok_or(Error::NotFound("Agent"))?;
    Ok(ok(agent, "Agent updated"))
}

#[utoipa::path(delete, path = "/api/v1/agents/{id}", tag = "agents", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Agent id")),
    responses(
        (status = 200, description = "Deleted; the agent's chats are kept without the link", body = EmptyResponse),
        Authenticated, ServerErrors,
        (status = 404, description = "No such agent of this user", body = ErrorBody),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
) -> Result<impl IntoResponse> {
    if !store::delete(&state.db, user.id, id).await? {
        return Err(Error::NotFound("Agent"));
    }
    Ok(ok(None::<()>, "Agent deleted"))
}

async fn owned(state: &AppState, user_id: i64, id: i64) -> Result<Agent> {
    store::get(&state.db, user_id, id)
        .await?
        .ok_or(Error::NotFound("Agent"))
}
