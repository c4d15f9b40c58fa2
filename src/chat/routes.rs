//! `/chat` routes: REST and server-sent events.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::State,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse,
    },
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{store, Chat, ChatRequest, ChatSession};
use crate::{
    auth::AuthUser,
    db::pages::{List, PageKey},
    error::responses::{envelope_schema, Authenticated, JsonBody, Limited, ServerErrors},
    error::{code_for, created, ok, Error, ErrorBody, Result},
    extract::{Id, Json, Query},
    orchestrator::{self, ChatEvent, Delivery},
    pagination::{JsonPage, Page, PageParams},
    state::AppState,
    validate::NUL_REFUSED,
};

/// `/api/v1/chat…` with their OpenAPI.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(stream))
        .routes(routes!(sessions))
        .routes(routes!(read))
}

envelope_schema!(ChatResponse, Chat);
envelope_schema!(ChatPageResponse, Page<Chat>);
envelope_schema!(SessionPageResponse, Page<ChatSession>);

#[utoipa::path(post, path = "/api/v1/chat", tag = "chat", security(("bearer" = [])),
    request_body = ChatRequest,
    responses(
        (status = 201, description = "The stored chat with the AI's answer", body = ChatResponse),
        Authenticated, JsonBody, Limited, ServerErrors,
        (status = 404, description = "No such agent or project of this user", body = ErrorBody),
        (status = 502, description = "The AI provider failed", body = ErrorBody),
        (status = 503, description = "The AI provider is throttling", body = ErrorBody),
        (status = 504, description = "The AI provider timed out", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Json(input): Json<ChatRequest>,
) -> Result<impl IntoResponse> {
    let exchange = orchestrator::admit(&state, user.id, input.into()).await?;
    // The generation runs on its own task: a client that hangs up does not lose the answer.
    let task = tokio::spawn(exchange.run(Delivery::default()));
    let chat = task.await.map_err(Error::internal)??;
    Ok(created(chat, "Chat created"))
}

fn sse_event(kind: &str, data: serde_json::Value) -> Event {
    Event::default().event(kind).data(data.to_string())
}

/// A `status` or `delta` event: the event's own fields and the session's id.
fn progress_event(event: &ChatEvent, session_id: &str) -> Event {
    #[derive(Serialize)]
    struct Progress<'a> {
        #[serde(flatten)]
        event: &'a ChatEvent,
        session_id: &'a str,
    }
    let kind = match event {
        ChatEvent::Status { .. } => "status",
        ChatEvent::Delta { .. } => "delta",
    };
    let data =
        serde_json::to_string(&Progress { event, session_id }).expect("a chat event serialises");
    Event::default().event(kind).data(data)
}

#[utoipa::path(post, path = "/api/v1/chat/stream", tag = "chat", security(("bearer" = [])),
    request_body = ChatRequest,
    responses(
        (status = 200, description = "Server-sent events: `status`, `delta`… then `response` (with the stored chat) or `error`. \
            Disconnecting cancels the generation; the partial answer is stored with `complete: false`.",
            content_type = "text/event-stream"),
        Authenticated, JsonBody, Limited, ServerErrors,
        (status = 404, description = "No such agent or project of this user", body = ErrorBody),
    ))]
pub async fn stream(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Json(input): Json<ChatRequest>,
) -> Result<impl IntoResponse> {
    let exchange = orchestrator::admit(&state, user.id, input.into()).await?;
    let session_id = exchange.session_id().to_owned();
    let (events_tx, mut events) = mpsc::channel::<ChatEvent>(64);
    let (done_tx, done) = oneshot::channel();
    let cancel = CancellationToken::new();
    let on_disconnect = cancel.clone().drop_guard();
    let delivery = Delivery {
        events: Some(events_tx),
        cancel,
        socket: None,
    };
    tokio::spawn(async move {
        let _ = done_tx.send(exchange.run(delivery).await.map_err(Error::from));
    });
    let body = async_stream::stream! {
        // Dropped with the response body when the client goes away: cancels the generation.
        let _on_disconnect = on_disconnect;
        while let Some(event) = events.recv().await {
            yield Ok::<_, Infallible>(progress_event(&event, &session_id));
        }
        yield Ok(match done.await {
            Ok(Ok(chat)) => sse_event("response", json!({
                "type": "response",
                "content": chat.final_content(),
                "session_id": session_id,
                "chat": chat,
            })),
            Ok(Err(err)) => {
                let status = err.status();
                sse_event("error", json!({
                    "type": "error",
                    "content": err.client_message(),
                    "code": code_for(status),
                    "session_id": session_id,
                }))
            }
            Err(_) => sse_event("error", json!({"type": "error", "content": "Internal server error", "code": "internal_error"})),
        });
    };
    Ok(Sse::new(body).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChatQuery {
    #[param(pattern = r"^[^\x00]*$")]
    pub session_id: Option<String>,
    pub agent_id: Option<i64>,
    pub project_id: Option<i64>,
    /// 1 to 100; default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Rows to skip; default 0.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/chat", tag = "chat", security(("bearer" = [])),
    params(ChatQuery),
    responses(
        (status = 200, description = "Chat history: newest first, or oldest first within one session", body = ChatPageResponse),
        Authenticated, ServerErrors,
        (status = 422, description = "Invalid filter or paging", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Query(query): Query<ChatQuery>,
) -> Result<impl IntoResponse> {
    let page = PageParams {
        limit: query.limit,
        offset: query.offset,
    }
    .validate()?;
    if query
        .session_id
        .as_ref()
        .is_some_and(|id| id.contains('\0'))
    {
        return Err(Error::invalid("session_id", NUL_REFUSED));
    }
    let filter = store::Filter {
        session_id: query.session_id,
        agent_id: query.agent_id,
        project_id: query.project_id,
    };
    let key = PageKey {
        filter: Some((
            filter.session_id.clone(),
            filter.agent_id,
            filter.project_id,
        )),
        ..PageKey::new(user.id, List::Chats, page)
    };
    let read = store::list(&state.db, user.id, &filter, page);
    JsonPage::serve(&state.pages, &state.db, key, "Chats retrieved", read).await
}

#[utoipa::path(get, path = "/api/v1/chat/sessions", tag = "chat", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "The user's sessions, most recently active first", body = SessionPageResponse),
        Authenticated, ServerErrors,
        (status = 422, description = "Invalid paging", body = ErrorBody),
    ))]
pub async fn sessions(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Query(params): Query<PageParams>,
) -> Result<impl IntoResponse> {
    let page = params.validate()?;
    let (items, total) = store::sessions(&state.db, user.id, page).await?;
    Ok(ok(Page::new(items, total, page), "Sessions retrieved"))
}

#[utoipa::path(get, path = "/api/v1/chat/{id}", tag = "chat", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Chat id")),
    responses(
        (status = 200, description = "The chat", body = ChatResponse),
        Authenticated, ServerErrors,
        (status = 404, description = "No such chat of this user", body = ErrorBody),
    ))]
pub async fn read(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
) -> Result<impl IntoResponse> {
    let chat = store::get(&state.db, user.id, id)
        .await?
        .ok_or(Error::NotFound("Chat"))?;
    Ok(ok(chat, "Chat retrieved"))
}
