//! Who is connected, per user, and delivery of broadcasts to them: locally, and through
//! Redis to the other instances when it is configured.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
};

use axum::extract::ws::Utf8Bytes;
use serde_json::json;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_util::sync::CancellationToken;

use super::slots::Slots;
use crate::{
    chat::Chat,
    redis_bus::{Envelope, RedisBus},
};

struct Socket {
    frames: mpsc::Sender<Utf8Bytes>,
    /// Fired when the socket falls too far behind: it is closed, not silently starved.
    too_slow: CancellationToken,
}

/// A registered socket's end of the hub: broadcasts only. The socket's own replies and
/// streams go through a queue of its own, so they never count against this one.
pub struct Connection {
    pub id: u64,
    pub frames: mpsc::Receiver<Utf8Bytes>,
    pub too_slow: CancellationToken,
}

pub struct Hub {
    instance: String,
    next_id: AtomicU64,
    capacity: usize,
    sockets: RwLock<HashMap<i64, HashMap<u64, Socket>>>,
    redis: Option<RedisBus>,
    /// Caps on open sockets, taken before each upgrade.
    pub slots: Arc<Slots>,
}

impl Hub {
    pub fn new(capacity: usize, slots: Arc<Slots>, redis: Option<RedisBus>) -> Arc<Self> {
        let hub = Arc::new(Hub {
            instance: uuid::Uuid::new_v4().to_string(),
            next_id: AtomicU64::new(1),
            capacity,
            sockets: RwLock::default(),
            redis,
            slots,
        });
        if let Some(redis) = &hub.redis {
            let weak = Arc::downgrade(&hub);
            redis.spawn_subscriber(move |envelope| {
                if let Some(hub) = weak.upgrade() {
                    if envelope.instance != hub.instance {
                        hub.deliver_local(envelope.user_id, &Utf8Bytes::from(envelope.frame), None);
                    }
                }
            });
        }
        hub
    }

    pub fn register(&self, user_id: i64) -> Connection {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, frames) = mpsc::channel(self.capacity);
        let too_slow = CancellationToken::new();
        let socket = Socket {
            frames: sender,
            too_slow: too_slow.clone(),
        };
        self.sockets
            .write()
            .expect("hub lock")
            .entry(user_id)
            .or_default()
            .insert(id, socket);
        Connection {
            id,
            frames,
            too_slow,
        }
    }

    pub fn unregister(&self, user_id: i64, id: u64) {
        let mut sockets = self.sockets.write().expect("hub lock");
        if let Some(mine) = sockets.get_mut(&user_id) {
            mine.remove(&id);
            if mine.is_empty() {
                sockets.remove(&user_id);
            }
        }
    }

    pub fn connections(&self) -> usize {
        self.sockets
            .read()
            .expect("hub lock")
            .values()
            .map(HashMap::len)
            .sum()
    }

    /// Sends `frame` to every socket of `user_id` on this instance but `except`.
    /// Never waits: a socket whose queue is full is told to close.
    pub fn deliver_local(&self, user_id: i64, frame: &Utf8Bytes, except: Option<u64>) {
        let sockets = self.sockets.read().expect("hub lock");
        let Some(mine) = sockets.get(&user_id) else {
            return;
        };
        for (id, socket) in mine {
            if Some(*id) == except {
                continue;
            }
            if let Err(TrySendError::Full(_)) = socket.frames.try_send(frame.clone()) {
                tracing::warn!(user_id, socket = id, "WebSocket too slow; closing it");
                socket.too_slow.cancel();
            }
        }
    }

    /// Tells all of the user's other connections, on every instance, about a new chat.
    pub async fn broadcast_chat(&self, chat: &Chat, except: Option<u64>) {
        let frame = json!({"type": "message", "chat": chat}).to_string();
        self.deliver_local(chat.user_id, &Utf8Bytes::from(frame.clone()), except);
        if let Some(redis) = &self.redis {
            let envelope = Envelope {
                instance: self.instance.clone(),
                user_id: chat.user_id,
                frame,
            };
            if let Err(err) = redis.publish(&envelope).await {
                tracing::warn!(error = %err, "Redis publish failed; delivered on this instance only");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_marks_the_socket_too_slow_and_others_still_receive() {
        let hub = Hub::new(2, Slots::new(10, 10), None);
        let slow = hub.register(7);
        let mut fast = hub.register(7);
        let frame = Utf8Bytes::from_static("{}");
        for _ in 0..2 {
            hub.deliver_local(7, &frame, None);
            assert!(fast.frames.try_recv().is_ok());
        }
        assert!(!slow.too_slow.is_cancelled());
        hub.deliver_local(7, &frame, None);
        assert!(
            slow.too_slow.is_cancelled(),
            "the third frame overflows a queue of two"
        );
        assert!(!fast.too_slow.is_cancelled());
        assert!(fast.frames.try_recv().is_ok());
        hub.deliver_local(8, &frame, None);
        assert!(
            fast.frames.try_recv().is_err(),
            "another user's frames never arrive"
        );
        hub.unregister(7, slow.id);
        hub.unregister(7, fast.id);
        assert_eq!(hub.connections(), 0);
    }
}
