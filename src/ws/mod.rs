//! `/ws`: chat in real time. Authenticated before the upgrade; every chat the user makes
//! anywhere reaches their other sockets; slow or dead peers are closed with a reason.

pub mod hub;
pub mod protocol;
pub mod settings;
pub mod slots;

pub use settings::Settings;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::{
        ws::{
            rejection::WebSocketUpgradeRejection, CloseFrame, Message, Utf8Bytes, WebSocket,
            WebSocketUpgrade,
        },
        State,
    },
    http::{header, HeaderMap},
    response::Response,
};
use futures_util::{stream::SplitSink, SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::{
    sync::mpsc,
    time::{Instant, MissedTickBehavior},
};
use tokio_util::sync::CancellationToken;
use utoipa_axum::{router::OpenApiRouter, routes};

use self::protocol::{error_frame, ClientFrame, Refusal};
use crate::{
    auth::extractor::{authenticate, bearer_token},
    error::{code_for, Error, Result},
    extract::Query,
    orchestrator::{self, ChatInput, Delivery},
    state::AppState,
    users,
};

/// Chats one socket may have in flight at once.
const MAX_IN_FLIGHT: usize = 8;
/// How long a close frame may wait behind unread data before the connection is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
const TOO_SLOW: (u16, &str) = (4008, "too slow: messages were not read in time");
const GOING_AWAY: (u16, &str) = (1001, "server shutting down");
/// What a refused upgrade is told to wait: sockets come and go, so a short while.
const SLOT_RETRY_AFTER_SECS: u64 = 5;

/// `/ws` with its OpenAPI.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upgrade))
}

#[derive(Deserialize)]
pub struct WsQuery {
    pub token: Option<String>,
}

fn origin_allowed(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true; // not a browser
    };
    let origin = origin.trim_end_matches('/');
    same_origin(origin, headers)
        || state
            .config
            .http
            .cors_origins
            .iter()
            .any(|allowed| allowed == "*" || allowed == origin)
}

/// A page served by this host (the web console) may always open a socket to it.
fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|origin_host| origin_host.eq_ignore_ascii_case(host))
}

/// The WebSocket protocol is described in the README: client frames `chat`, `cancel`,
/// `ping`, `auth`; server frames `status`, `delta`, `response`, `error`, `message`, `pong`.
#[utoipa::path(get, path = "/ws", tag = "realtime",
    params(
        ("token" = Option<String>, Query, description = "Access token (or an `Authorization: Bearer` header)"),
        ("Connection" = String, Header, description = "A list naming `Upgrade` (any case)",
            pattern = "^(.*,)?[ \t]*[Uu][Pp][Gg][Rr][Aa][Dd][Ee][ \t]*(,.*)?$"),
        ("Upgrade" = String, Header, description = "`websocket` (any case)",
            pattern = "^[Ww][Ee][Bb][Ss][Oo][Cc][Kk][Ee][Tt]$"),
        ("Sec-WebSocket-Version" = String, Header, pattern = "^13$"),
        ("Sec-WebSocket-Key" = String, Header, description = "16 random bytes in base64"),
    ),
    responses(
        (status = 101, description = "Upgraded to a WebSocket of JSON text frames"),
        (status = 400, description = "Not a WebSocket upgrade", body = crate::error::ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = crate::error::ErrorBody),
        (status = 403, description = "Origin not allowed, or account deactivated", body = crate::error::ErrorBody),
        (status = 429, description = "Too many open WebSockets for this user (`WS_MAX_PER_USER`) or this server (`WS_MAX_CONNECTIONS`)",
            body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before reconnecting"))),
        crate::error::responses::ServerErrors,
    ))]
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<WsQuery>,
    upgrade: std::result::Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response> {
    if !origin_allowed(&state, &headers) {
        return Err(Error::Forbidden("Origin not allowed"));
    }
    let token = query
        .token
        .or_else(|| bearer_token(&headers).map(str::to_owned))
        .ok_or(Error::Unauthorized("Not authenticated"))?;
    let (user, expires_at) = authenticate(&state, &token).await?;
    let upgrade = upgrade.map_err(|_| Error::BadRequest("Expected a WebSocket upgrade".into()))?;
    let slot = state.hub.slots.take(user.id).map_err(|full| {
        tracing::warn!(user_id = user.id, ?full, "WebSocket refused: too many open");
        Error::RateLimited {
            retry_after_secs: SLOT_RETRY_AFTER_SECS,
        }
    })?;
    let limit = state.config.http.body_limit_bytes;
    Ok(upgrade
        // Frames over the limit get an error frame; far larger ones end the connection.
        .max_message_size(limit * 4)
        .max_frame_size(limit * 4)
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .on_upgrade(move |socket| async move {
            serve(state, user.id, expires_at, socket).await;
            // Given back only once the socket is done (also when the upgrade fails).
            drop(slot);
        }))
}

/// What a socket's chat tasks share with it.
#[derive(Clone)]
struct Context {
    state: AppState,
    user_id: i64,
    connection_id: u64,
    frames: mpsc::Sender<Utf8Bytes>,
    in_flight: Arc<Mutex<HashMap<String, CancellationToken>>>,
}

enum Next {
    Continue,
    Reauthenticated(i64),
    Close(u16, &'static str),
}

fn deadline_of(expires_at: i64) -> Instant {
    let left = expires_at - chrono::Utc::now().timestamp();
    Instant::now() + Duration::from_secs(u64::try_from(left).unwrap_or(0))
}

async fn serve(state: AppState, user_id: i64, expires_at: i64, socket: WebSocket) {
    let connection = state.hub.register(user_id);
    // The socket's own frames wait for the client (backpressure on its generations);
    // only broadcasts, which cannot wait, can find their queue full.
    let (own_sender, mut own) = mpsc::channel(state.config.ws.queue_capacity);
    let context = Context {
        state: state.clone(),
        user_id,
        connection_id: connection.id,
        frames: own_sender,
        in_flight: Arc::default(),
    };
    let mut broadcasts = connection.frames;
    let (mut sink, mut stream) = socket.split();
    let interval = state.config.ws.ping_interval;
    let mut ping = tokio::time::interval_at(Instant::now() + interval, interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let expiry = tokio::time::sleep_until(deadline_of(expires_at));
    tokio::pin!(expiry);

    let close: Option<(u16, &str)> = loop {
        tokio::select! {
            incoming = stream.next() => {
                let Some(Ok(message)) = incoming else { break None };
                last_heard = Instant::now();
                let next = match message {
                    Message::Text(text) => context.on_text(text.as_str()).await,
                    Message::Binary(_) => {
                        context.reply(error_frame("bad_request", "Binary frames are not supported; send JSON text", None));
                        Next::Continue
                    }
                    Message::Close(_) => break None,
                    Message::Ping(_) | Message::Pong(_) => Next::Continue,
                };
                match next {
                    Next::Continue => {}
                    Next::Reauthenticated(expires_at) => expiry.as_mut().reset(deadline_of(expires_at)),
                    Next::Close(code, reason) => break Some((code, reason)),
                }
            }
            Some(frame) = own.recv() => {
                if let Err(close) = write(&mut sink, frame, &connection.too_slow, &state).await {
                    break close;
                }
            }
            Some(frame) = broadcasts.recv() => {
                if let Err(close) = write(&mut sink, frame, &connection.too_slow, &state).await {
                    break close;
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > interval * 2 {
                    break Some((4408, "no answer to pings"));
                }
                if !context.still_active().await {
                    break Some((4403, "account deactivated"));
                }
                if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                    break None;
                }
            }
            () = &mut expiry => break Some((4401, "access token expired; reconnect or send an auth frame in time")),
            () = connection.too_slow.cancelled() => break Some(TOO_SLOW),
            () = state.shutdown.cancelled() => break Some(GOING_AWAY),
        }
    };
    // No more broadcasts for this socket, then the close frame behind what is queued.
    state.hub.unregister(user_id, context.connection_id);
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
    }
    // The client is gone: its generations stop, keeping their partial answers.
    for (_, cancel) in context.in_flight.lock().expect("in-flight lock").drain() {
        cancel.cancel();
    }
}

/// Sends one frame. A peer that stops reading blocks the write, and must not block
/// closing: `Err` says how the socket ends (`None`: the peer is gone).
async fn write(
    sink: &mut SplitSink<WebSocket, Message>,
    frame: Utf8Bytes,
    too_slow: &CancellationToken,
    state: &AppState,
) -> std::result::Result<(), Option<(u16, &'static str)>> {
    tokio::select! {
        sent = sink.send(Message::Text(frame)) => sent.map_err(|_| None),
        () = too_slow.cancelled() => Err(Some(TOO_SLOW)),
        () = tokio::time::sleep(state.config.ws.ping_interval * 2) => Err(Some(TOO_SLOW)),
        () = state.shutdown.cancelled() => Err(Some(GOING_AWAY)),
    }
}

impl Context {
    /// Queues a frame for this socket without waiting; a full queue means it is too slow.
    fn reply(&self, frame: serde_json::Value) {
        if self
            .frames
            .try_send(Utf8Bytes::from(frame.to_string()))
            .is_err()
        {
            tracing::debug!(socket = self.connection_id, "reply dropped: queue full");
        }
    }

    async fn still_active(&self) -> bool {
        match users::store::find_by_id(&self.state.db, self.user_id).await {
            Ok(user) => user.is_some_and(|user| user.is_active),
            // A database hiccup is not the user's fault: keep the socket.
            Err(_) => true,
        }
    }

    async fn on_text(&self, text: &str) -> Next {
        if text.len() > self.state.config.http.body_limit_bytes {
            self.reply(error_frame("payload_too_large", "Frame is too large", None));
            return Next::Continue;
        }
        match protocol::parse(text) {
            Err(Refusal {
                code,
                reason,
                request_id,
            }) => {
                self.reply(error_frame(code, &reason, request_id.as_deref()));
                Next::Continue
            }
            Ok(ClientFrame::Ping) => {
                self.reply(json!({"type": "pong"}));
                Next::Continue
            }
            Ok(ClientFrame::Cancel { request_id }) => {
                self.cancel(&request_id);
                Next::Continue
            }
            Ok(ClientFrame::Auth { token }) => match authenticate(&self.state, &token).await {
                Ok((user, expires_at)) if user.id == self.user_id => {
                    self.reply(json!({"type": "auth", "content": "ok", "expires_at": expires_at}));
                    Next::Reauthenticated(expires_at)
                }
                Ok(_) => Next::Close(4403, "token belongs to another user"),
                Err(err) => {
                    self.reply(error_frame(
                        code_for(err.status()),
                        &err.client_message(),
                        None,
                    ));
                    Next::Continue
                }
            },
            Ok(ClientFrame::Chat { request_id, input }) => {
                self.start_chat(request_id, input.into());
                Next::Continue
            }
        }
    }

    fn cancel(&self, request_id: &str) {
        match self
            .in_flight
            .lock()
            .expect("in-flight lock")
            .get(request_id)
        {
            Some(cancel) => cancel.cancel(),
            None => self.reply(error_frame(
                "not_found",
                "No request with that id is in flight",
                Some(request_id),
            )),
        }
    }

    /// Starts a chat on its own task, unless the socket has too many in flight or one with
    /// the same id.
    fn start_chat(&self, request_id: String, input: ChatInput) {
        {
            let mut in_flight = self.in_flight.lock().expect("in-flight lock");
            if in_flight.len() >= MAX_IN_FLIGHT {
                self.reply(error_frame(
                    "rate_limited",
                    "Too many requests in flight on this socket",
                    Some(&request_id),
                ));
                return;
            }
            if in_flight.contains_key(&request_id) {
                self.reply(error_frame(
                    "conflict",
                    "A request with this id is already in flight",
                    Some(&request_id),
                ));
                return;
            }
            in_flight.insert(request_id.clone(), CancellationToken::new());
        }
        tokio::spawn(self.clone().chat(request_id, input));
    }

    /// Runs one chat, streaming its frames to this socket, then tells the user's others.
    async fn chat(self, request_id: String, input: ChatInput) {
        let session_id = input.session_id.clone();
        let outcome = self.run_chat(&request_id, input).await;
        self.in_flight
            .lock()
            .expect("in-flight lock")
            .remove(&request_id);
        if let Err(err) = outcome {
            let mut frame = error_frame(
                code_for(err.status()),
                &err.client_message(),
                Some(&request_id),
            );
            if let Some(session_id) = session_id {
                frame["session_id"] = json!(session_id);
            }
            let _ = self.frames.send(Utf8Bytes::from(frame.to_string())).await;
        }
    }

    async fn run_chat(&self, request_id: &str, input: ChatInput) -> Result<()> {
        let exchange = orchestrator::admit(&self.state, self.user_id, input).await?;
        let session_id = exchange.session_id().to_owned();
        let cancel = self
            .in_flight
            .lock()
            .expect("in-flight lock")
            .get(request_id)
            .cloned()
            .unwrap_or_default();
        let (events, mut received) = mpsc::channel(64);
        let delivery = Delivery {
            events: Some(events),
            cancel,
            socket: Some(self.connection_id),
        };
        let forward = async {
            while let Some(event) = received.recv().await {
                let mut frame = serde_json::to_value(&event).unwrap_or_default();
                frame["request_id"] = json!(request_id);
                frame["session_id"] = json!(session_id);
                // Waiting here slows the generation to the client's pace.
                let _ = self.frames.send(Utf8Bytes::from(frame.to_string())).await;
            }
        };
        let (result, ()) = tokio::join!(exchange.run(delivery), forward);
        let chat = result?;
        let frame = json!({
            "type": "response",
            "content": chat.final_content(),
            "chat": chat,
            "request_id": request_id,
            "session_id": chat.session_id,
        });
        let _ = self.frames.send(Utf8Bytes::from(frame.to_string())).await;
        Ok(())
    }
}
