//! Redis, optional: the channel that carries per-user broadcasts between instances and
//! the store of shared rate-limit counters. Every call has a short timeout; when Redis is
//! away the instance carries on alone and reconnects by itself.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use futures_util::StreamExt;
use redis::{aio::ConnectionManager, aio::ConnectionManagerConfig, AsyncCommands};

const CALL_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct RedisBus {
    client: redis::Client,
    connection: ConnectionManager,
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

impl RedisBus {
    /// Connects lazily: a Redis that is down at start-up is not an error.
    pub fn new(url: &str, prefix: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(RedisBus {
            client,
            connection,
            prefix: prefix.to_owned(),
            subscribed: Arc::new(AtomicBool::new(false)),
        })
    }

    fn channel(&self) -> String {
        format!("{}:broadcast", self.prefix)
    }

    pub async fn ping(&self) -> bool {
        let mut connection = self.connection.clone();
        let pong = tokio::time::timeout(CALL_TIMEOUT, async move {
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
        })
        .await;
        matches!(pong, Ok(Ok(_)))
    }

    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }

    pub async fn publish(&self, envelope: &Envelope) -> redis::RedisResult<()> {
        let payload = serde_json::to_string(envelope).map_err(|e| {
            redis::RedisError::from((redis::ErrorKind::Client, "serialise", e.to_string()))
        })?;
        let mut connection = self.connection.clone();
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
        let mut connection = self.connection.clone();
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

    /// Receives other instances' broadcasts for as long as the process lives,
    /// resubscribing with backoff after any failure.
    pub fn spawn_subscriber(&self, deliver: impl Fn(Envelope) + Send + Sync + 'static) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                match this.client.get_async_pubsub().await {
                    Ok(mut pubsub) => match pubsub.subscribe(this.channel()).await {
                        Ok(()) => {
                            this.subscribed.store(true, Ordering::Relaxed);
                            tracing::info!("subscribed to Redis broadcasts");
                            backoff = Duration::from_millis(200);
                            let mut messages = pubsub.into_on_message();
                            while let Some(message) = messages.next().await {
                                let Ok(payload) = message.get_payload::<String>() else {
                                    continue;
                                };
                                match serde_json::from_str::<Envelope>(&payload) {
                                    Ok(envelope) => deliver(envelope),
                                    Err(err) => {
                                        tracing::warn!(error = %err, "ignoring a malformed broadcast")
                                    }
                                }
                            }
                            this.subscribed.store(false, Ordering::Relaxed);
                            tracing::warn!("lost the Redis subscription; reconnecting");
                        }
                        Err(err) => tracing::warn!(error = %err, "Redis subscribe failed"),
                    },
                    Err(err) => tracing::debug!(error = %err, "Redis unreachable"),
                }
                this.subscribed.store(false, Ordering::Relaxed);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        });
    }
}
