//! The one AI pipeline. Every exchange — a chat over REST or server-sent events, a
//! WebSocket `chat` frame, a WhatsApp message, a pull request's review — is [`admit`]ted
//! (within the user's AI rate limit, validated, its context gathered, before any
//! generation starts), then [`Exchange::run`] picks the agent(s) (the one asked for, the
//! specialist an [`Assignment`] names, or the orchestrator's choice), runs them (several
//! in parallel) with their progress streamed to whoever listens, shapes their answers,
//! stores the chat and tells the user's sockets. Callers differ only in how they deliver
//! it: SSE events, socket frames, a WhatsApp message, a PR comment.

pub mod activity;
mod answer;
mod context;
mod generate;
mod plan;
mod types;

use std::time::Instant;

use tokio::sync::mpsc;

pub use self::context::CODE_CONTEXT_MAX;
pub use self::types::{Assignment, ChatEvent, ChatInput, Delivery, ExchangeError};
use self::{answer::combine, generate::run_all, plan::plan, types::Prepared};
use crate::{
    chat::{store as chats, Chat},
    error::{Error, Result},
    state::AppState,
};

/// An admitted exchange: checked, with everything its agents need, ready to run.
pub struct Exchange {
    state: AppState,
    prepared: Prepared,
}

/// Every exchange, however it arrives: a user's message within their AI rate limit and
/// validated; then its context gathered. Fails before any generation starts, so a caller
/// can still answer with a status.
pub async fn admit(state: &AppState, user_id: i64, input: ChatInput) -> Result<Exchange> {
    let message = match &input.assignment {
        Some(_) => input.message.clone(),
        None => {
            state
                .limits
                .check_ai(user_id)
                .await
                .map_err(|retry_after_secs| Error::RateLimited { retry_after_secs })?;
            context::validate(&input)?
        }
    };
    let prepared = context::gather(state, user_id, input, message).await?;
    Ok(Exchange {
        state: state.clone(),
        prepared,
    })
}

impl Exchange {
    /// The exchange's session: the one asked for, or a new one.
    pub fn session_id(&self) -> &str {
        &self.prepared.session_id
    }

    /// Runs the agents, stores the chat and tells the user's sockets (all but the one that
    /// asked). Agents' statuses are restored on every path.
    pub async fn run(self, delivery: Delivery) -> std::result::Result<Chat, ExchangeError> {
        let Exchange { state, prepared } = self;
        // With nobody listening, events go nowhere.
        let events = delivery.events.unwrap_or_else(|| mpsc::channel(1).0);
        let started = Instant::now();
        let (workers, routing_usage) = plan(&state, &prepared, &events).await?;
        let outputs = run_all(&state, &prepared, workers, &events, &delivery.cancel).await;
        drop(events);
        let chat = combine(&prepared, outputs, routing_usage, started)?;
        let chat = chats::insert(&state.db, chat).await?;
        state.hub.broadcast_chat(&chat, delivery.socket).await;
        Ok(chat)
    }
}
