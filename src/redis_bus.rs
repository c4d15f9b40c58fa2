//! Redis, optional: the channel that carries per-user broadcasts between instances and
//! the store of shared rate-limit counters. Every call has a short timeout; when Redis is
//! away the instance carries on alone and reconnects by itself. Both connections are
//! pinged: a connection that silently stopped answering (a partition, a dropped NAT
//! entry) is replaced, not trusted until the operating system notices.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, RwLock,
    },
    time::Duration,
};

use futures_util::StreamExt;
use redis::{aio::ConnectionManager, aio::ConnectionManagerConfig, AsyncCommands};

use crate::{db::settings::redact_url, env::Env};

const CALL_TIMEOUT: Duration = Duration::from_secs(1);
/// How often each connection is pinged; a ping unanswered within `CALL_TIMEOUT` means
/// the connection is dead.
const KEEPALIVE: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct RedisBus {
    client: redis::Client,
    /// Replaced by the keep-alive task when it stops answering.
    connection: Arc<RwLock<ConnectionManager>>,
    prefix: String,
    /// Whether the broadcast subscription is live (kept by the subscriber task).
    subscribed: Arc<AtomicBool>,
}

/// What one instance tells the others.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Envelope {
    pub instance: String,
    pub user_id: i64,
    pub frame: String,
}

/// `REDIS_URL` (unset: this instance works alone) and `REDIS_PREFIX`.
#[derive(Clone)]
pub struct Settings {
    pub url: Option<String>,
    /// Prefix of every Redis key and channel (several deployments may share one Redis).
    pub prefix: String,
}

// Hand-written so that a password in the URL never reaches a log line through `{:?}`.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Settings {
    pub fn from_env(env: &Env) -> Self {
        Settings {
            url: env.non_empty("REDIS_URL"),
            prefix: env
                .non_empty("REDIS_PREFIX")
                .unwrap_or_else(|| "codesherpa".into()),
        }
    }

    pub fn for_tests() -> Self {
        Settings {
            url: None,
            prefix: "codesherpa-test".into(),
        }
    }
}

impl RedisBus {
    /// Connects lazily: a Redis that is down at start-up is not an error.
    pub fn new(url: &str, prefix: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let connection = Arc::new(RwLock::new(lazy_manager(&client)?));
        spawn_keepalive(client.clone(), Arc::downgrade(&connection));
        Ok(RedisBus {
            client,
            connection,
            prefix: prefix.to_owned(),
            subscribed: Arc::new(AtomicBool::new(false)),
        })
    }

    fn manager(&self) -> ConnectionManager {
        self.connection.read().expect("redis lock").clone()
    }

    fn channel(&self) -> String {
        format!("{}:broadcast", self.prefix)
    }

    pub async fn ping(&self) -> bool {
        answers_ping(self.manager()).await
    }

    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }

    pub async fn publish(&self, envelope: &Envelope) -> redis::RedisResult<()> {
        let payload = serde_json::to_string(envelope).map_err(|e| {
            redis::RedisError::from((redis::ErrorKind::Client, "serialise", e.to_string()))
        })?;
        let mut connection = self.manager();
        let channel = self.channel();
        match tokio::time::timeout(
            CALL_TIMEOUT,
            connection.publish::<_, _, i64>(channel, payload),
        )
        .await
        {
            Ok(result) => result.map(drop),
            Err(_) => Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "publish timed out",
            ))),
        }
    }

    /// Counts a hit in a fixed one-minute window shared by every instance:
    /// `Ok(Err(seconds))` when over `limit`, `Err` when Redis cannot answer.
    pub async fn hit(
        &self,
        scope: &str,
        key: &str,
        limit: u32,
    ) -> redis::RedisResult<Result<(), u64>> {
        let key = format!("{}:ratelimit:{scope}:{key}", self.prefix);
        let mut connection = self.manager();
        let call = async move {
            redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(&key)
                .arg(0)
                .arg("EX")
                .arg(60)
                .arg("NX")
                .ignore()
                .cmd("INCR")
                .arg(&key)
                .cmd("TTL")
                .arg(&key)
                .query_async::<(u64, i64)>(&mut connection)
                .await
        };
        let (count, ttl) = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "rate limit timed out",
                )))
            }
        };
        Ok(if count > u64::from(limit) {
            Err(ttl.max(1) as u64)
        } else {
            Ok(())
        })
    }

    /// Takes one of `limit` slots of a one-minute window shared by every instance, for an
    /// attempt that may turn out not to count (`release` gives the slot back):
    /// `Ok(Ok(window))` names the window the slot came from, `Ok(Err(seconds))` when every
    /// slot is taken (nothing is taken then), `Err` when Redis cannot answer.
    pub async fn reserve(
        &self,
        scope: &str,
        key: &str,
        limit: u32,
    ) -> redis::RedisResult<Result<String, u64>> {
        // One hash per window: its id (drawn by whoever opens it) and the slots taken, so
        // a slot given back after the window closed cannot free one in the next window.
        const RESERVE: &str = r"
            if redis.call('EXISTS', KEYS[1]) == 0 then
                redis.call('HSET', KEYS[1], 'window', ARGV[2], 'used', 0)
                redis.call('EXPIRE', KEYS[1], 60)
            end
            if tonumber(redis.call('HGET', KEYS[1], 'used')) >= tonumber(ARGV[1]) then
                return {'', redis.call('TTL', KEYS[1])}
            end
            redis.call('HINCRBY', KEYS[1], 'used', 1)
            return {redis.call('HGET', KEYS[1], 'window'), 0}";
        let key = format!("{}:ratelimit:{scope}:{key}", self.prefix);
        let opened = format!("{:016x}", rand::random::<u64>());
        let mut connection = self.manager();
        let call = async move {
            redis::cmd("EVAL")
                .arg(RESERVE)
                .arg(1)
                .arg(&key)
                .arg(limit)
                .arg(opened)
                .query_async::<(String, i64)>(&mut connection)
                .await
        };
        let (window, ttl) = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "rate limit timed out",
                )))
            }
        };
        Ok(if window.is_empty() {
            Err(ttl.max(1) as u64)
        } else {
            Ok(window)
        })
    }

    /// Gives back a slot `reserve` took from `window`; nothing when that window is over.
    pub async fn release(&self, scope: &str, key: &str, window: &str) -> redis::RedisResult<()> {
        const RELEASE: &str = r"
            if redis.call('HGET', KEYS[1], 'window') == ARGV[1]
                and tonumber(redis.call('HGET', KEYS[1], 'used')) > 0 then
                redis.call('HINCRBY', KEYS[1], 'used', -1)
            end
            return 0";
        let key = format!("{}:ratelimit:{scope}:{key}", self.prefix);
        let mut connection = self.manager();
        let call = async move {
            redis::cmd("EVAL")
                .arg(RELEASE)
                .arg(1)
                .arg(&key)
                .arg(window)
                .query_async::<i64>(&mut connection)
                .await
        };
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(result) => result.map(drop),
            Err(_) => Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "rate limit timed out",
            ))),
        }
    }

    /// Receives other instances' broadcasts for as long as the process lives,
    /// resubscribing with backoff after any failure, or when the subscription stops
    /// answering pings.
    pub fn spawn_subscriber(&self, deliver: impl Fn(Envelope) + Send + Sync + 'static) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                match tokio::time::timeout(CALL_TIMEOUT, this.subscribe()).await {
                    Ok(Ok(pubsub)) => {
                        this.subscribed.store(true, Ordering::Relaxed);
                        tracing::info!("subscribed to Redis broadcasts");
                        backoff = Duration::from_millis(200);
                        this.receive(pubsub, &deliver).await;
                        this.subscribed.store(false, Ordering::Relaxed);
                    }
                    Ok(Err(err)) => tracing::warn!(error = %err, "Redis subscribe failed"),
                    Err(_) => tracing::warn!("Redis subscribe timed out"),
                }
                this.subscribed.store(false, Ordering::Relaxed);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        });
    }

    async fn subscribe(&self) -> redis::RedisResult<redis::aio::PubSub> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(self.channel()).await?;
        Ok(pubsub)
    }

    /// Delivers broadcasts until the subscription ends or stops answering pings.
    async fn receive(&self, pubsub: redis::aio::PubSub, deliver: &impl Fn(Envelope)) {
        let (mut sink, mut messages) = pubsub.split();
        let mut keepalive =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else {
                        tracing::warn!("lost the Redis subscription; reconnecting");
                        return;
                    };
                    let Ok(payload) = message.get_payload::<String>() else {
                        continue;
                    };
                    match serde_json::from_str::<Envelope>(&payload) {
                        Ok(envelope) => deliver(envelope),
                        Err(err) => tracing::warn!(error = %err, "ignoring a malformed broadcast"),
                    }
                }
                _ = keepalive.tick() => {
                    let pong = tokio::time::timeout(CALL_TIMEOUT, sink.ping::<redis::Value>()).await;
                    if !matches!(pong, Ok(Ok(_))) {
                        tracing::warn!("the Redis subscription stopped answering pings; reconnecting");
                        return;
                    }
                }
            }
        }
    }
}

fn lazy_manager(client: &redis::Client) -> redis::RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CALL_TIMEOUT))
        .set_response_timeout(Some(CALL_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(2));
    ConnectionManager::new_lazy_with_config(client.clone(), config)
}

async fn answers_ping(mut connection: ConnectionManager) -> bool {
    let pong = tokio::time::timeout(CALL_TIMEOUT, async move {
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
    })
    .await;
    matches!(pong, Ok(Ok(_)))
}

/// Pings the command connection; one that stopped answering is replaced by a fresh one
/// (the manager reconnects after errors, but a silent connection only times out).
fn spawn_keepalive(client: redis::Client, connection: std::sync::Weak<RwLock<ConnectionManager>>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(KEEPALIVE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(connection) = connection.upgrade() else {
                return;
            };
            let current = connection.read().expect("redis lock").clone();
            if answers_ping(current).await {
                continue;
            }
            tracing::warn!("the Redis connection stopped answering pings; reconnecting");
            match lazy_manager(&client) {
                Ok(fresh) => *connection.write().expect("redis lock") = fresh,
                Err(err) => tracing::warn!(error = %err, "cannot reconnect to Redis"),
            }
        }
    });
}
