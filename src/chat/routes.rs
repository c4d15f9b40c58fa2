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
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{store, Chat, ChatSession};
use crate::{
    auth::AuthUser,
    db::pages::{List, PageKey},
    error::responses::{envelope_schema, Authenticated, JsonBody, Limited, ServerErrors},
    error::{code_for, created, ok, Error, ErrorBody, Result},
    extract::{optional_integer, Id, Json, Query},
    orchestrator::{self, ChatEvent, ChatInput},
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

/// A chat, over REST, server-sent events or a WebSocket `chat` frame.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatRequest {
    /// Not blank.
    #[schema(
        example = "Review this diff for security problems",
        min_length = 1,
        max_length = 32_000,
        pattern = r"^[\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00\x09-\x0d \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    pub message: String,
    /// Continue a conversation; omitted, a new session starts and its id is returned.
    #[schema(min_length = 1, max_length = 200, pattern = r"^[A-Za-z0-9_:.+@/#-]*$")]
    pub session_id: Option<String>,
    /// Ask this agent; omitted, the orchestrator picks the specialist(s).
    #[serde(default, deserialize_with = "optional_integer")]
    pub agent_id: Option<i64>,
    #[serde(default, deserialize_with = "optional_integer")]
    pub project_id: Option<i64>,
    /// Code or a diff the message is about.
    #[schema(max_length = 200_000, pattern = r"^[^\x00]*$")]
    pub code_context: Option<String>,
}

impl From<ChatRequest> for ChatInput {
    fn from(r: ChatRequest) -> Self {
        ChatInput {
            message: r.message,
            session_id: r.session_id,
            agent_id: r.agent_id,
            project_id: r.project_id,
            code_context: r.code_context,
        }
    }
}

/// Every chat, however it arrives: within the user's AI rate limit, validated, with its
/// context gathered, before any generation starts.
pub async fn admit(
    state: &AppState,
    user_id: i64,
    input: ChatInput,
) -> Result<orchestrator::Prepared> {
    state
        .limits
        .check_ai(user_id)
        .await
        .map_err(|retry_after_secs| Error::RateLimited { retry_after_secs })?;
    orchestrator::prepare(state, user_id, input).await
}

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
    let prepared = admit(&state, user.id, input.into()).await?;
    // The generation runs on its own task: a client that hangs up does not lose the answer.
    let task = tokio::spawn(async move {
        let (events, _) = mpsc::channel(1);
        let chat =
            orchestrator::execute(&state, prepared, &events, &CancellationToken::new()).await?;
        state.hub.broadcast_chat(&chat, None).await;
        Ok::<_, Error>(chat)
    });
    let chat = task.await.map_err(Error::internal)??;
    Ok(created(chat, "Chat created"))
}

/// The final answer as a client reads it: the structured object, else the text.
pub fn final_content(chat: &Chat) -> serde_json::Value {
    match &chat.result {
        Some(result) => result.0.clone(),
        None => json!(chat.response),
    }
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
    let prepared = admit(&state, user.id, input.into()).await?;
    let session_id = prepared.session_id.clone();
    let (events_tx, mut events) = mpsc::channel::<ChatEvent>(64);
    let (done_tx, done) = oneshot::channel::<Result<Chat>>();
    let cancel = CancellationToken::new();
    let on_disconnect = cancel.clone().drop_guard();
    tokio::spawn(async move {
        let result = orchestrator::execute(&state, prepared, &events_tx, &cancel).await;
        drop(events_tx);
        if let Ok(chat) = &result {
            state.hub.broadcast_chat(chat, None).await;
        }
        let _ = done_tx.send(result);
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
                "content": final_content(&chat),
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
    JsonPage::serve(&state, key, "Chats retrieved", read).await
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
