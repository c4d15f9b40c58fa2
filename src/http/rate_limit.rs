//! Rate limiting (GCRA via governor): per client IP on `/auth/*`, per user on AI routes.

use std::{
    hash::Hash,
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::{Arc, Weak},
    time::Duration,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::HeaderMap,
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota};

use crate::{error::Error, redis_bus::RedisBus, state::AppState};

pub struct KeyedLimiter<K: Hash + Eq + Clone>(DefaultKeyedRateLimiter<K>);

pub type IpLimiter = KeyedLimiter<IpAddr>;
pub type UserLimiter = KeyedLimiter<i64>;

impl<K: Hash + Eq + Clone + Send + Sync + 'static> KeyedLimiter<K> {
    /// `None` for 0, which disables the limit.
    pub fn per_minute(limit: u32) -> Option<Self> {
        NonZeroU32::new(limit)
            .map(|n| KeyedLimiter(DefaultKeyedRateLimiter::keyed(Quota::per_minute(n))))
    }

    /// `Err(seconds to wait)` when the key is over its quota.
    pub fn check(&self, key: K) -> Result<(), u64> {
        self.0.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            wait.as_secs_f64().ceil().max(1.0) as u64
        })
    }

    /// Forgets idle keys every minute so the key store stays bounded.
    pub fn spawn_housekeeping(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(limiter) = weak.upgrade() else { break };
                limiter.0.retain_recent();
                limiter.0.shrink_to_fit();
            }
        });
    }
}

/// Both limits. With Redis the counters are shared by every instance; when Redis cannot
/// answer, each instance falls back to its own in-memory limiter.
pub struct Limits {
    auth_per_minute: u32,
    ai_per_minute: u32,
    auth: Option<Arc<IpLimiter>>,
    ai: Option<Arc<UserLimiter>>,
    /// Password checks outside `/auth/*` (`current_password`), per user, with the auth budget.
    password: Option<Arc<UserLimiter>>,
    redis: Option<RedisBus>,
}

impl Limits {
    pub fn new(auth_per_minute: u32, ai_per_minute: u32, redis: Option<RedisBus>) -> Self {
        let auth = IpLimiter::per_minute(auth_per_minute).map(Arc::new);
        let ai = UserLimiter::per_minute(ai_per_minute).map(Arc::new);
        let password = UserLimiter::per_minute(auth_per_minute).map(Arc::new);
        if let Some(limiter) = &auth {
            limiter.spawn_housekeeping();
        }
        if let Some(limiter) = &password {
            limiter.spawn_housekeeping();
        }
        if let Some(limiter) = &ai {
            limiter.spawn_housekeeping();
        }
        Limits {
            auth_per_minute,
            ai_per_minute,
            auth,
            ai,
            password,
            redis,
        }
    }

    /// `Err(seconds to wait)` when the client IP is over the auth quota.
    pub async fn check_auth(&self, ip: IpAddr) -> Result<(), u64> {
        match &self.auth {
            None => Ok(()),
            Some(local) => {
                self.check("auth", &ip.to_string(), self.auth_per_minute, || {
                    local.check(ip)
                })
                .await
            }
        }
    }

    /// `Err(seconds to wait)` when the user is over the AI quota.
    pub async fn check_ai(&self, user_id: i64) -> Result<(), u64> {
        match &self.ai {
            None => Ok(()),
            Some(local) => {
                self.check("ai", &user_id.to_string(), self.ai_per_minute, || {
                    local.check(user_id)
                })
                .await
            }
        }
    }

    /// `Err(seconds to wait)` when a password check for `user_id` from `ip` is over budget:
    /// the user's own password budget, then the IP's auth budget (shared with logins), so
    /// guesses can be spread over neither many IPs nor many accounts.
    pub async fn check_password(&self, user_id: i64, ip: Option<IpAddr>) -> Result<(), u64> {
        if let Some(local) = &self.password {
            self.check(
                "password",
                &user_id.to_string(),
                self.auth_per_minute,
                || local.check(user_id),
            )
            .await?;
        }
        match ip {
            Some(ip) => self.check_auth(ip).await,
            None => Ok(()),
        }
    }

    async fn check(
        &self,
        scope: &str,
        key: &str,
        limit: u32,
        local: impl FnOnce() -> Result<(), u64>,
    ) -> Result<(), u64> {
        if let Some(redis) = &self.redis {
            match redis.hit(scope, key, limit).await {
                Ok(verdict) => return verdict,
                Err(err) => {
                    tracing::warn!(error = %err, "Redis rate limit unavailable; limiting locally")
                }
            }
        }
        local()
    }
}

/// The client's address: the socket peer, or with `TRUST_PROXY_HEADERS` the address our
/// own proxy appended last to `X-Forwarded-For` (earlier entries are client-controlled).
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trust_proxy: bool,
) -> Option<IpAddr> {
    if trust_proxy {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|entry| entry.trim().parse().ok())
            .next_back();
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|addr| addr.ip())
}

pub async fn limit_auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    if let Some(ip) = client_ip(req.headers(), peer, state.config.trust_proxy_headers) {
        if let Err(retry_after_secs) = state.limits.check_auth(ip).await {
            tracing::warn!(%ip, "auth rate limit exceeded");
            return Error::RateLimited { retry_after_secs }.into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_then_refusal_per_ip() {
        let limiter = IpLimiter::per_minute(2).unwrap();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limiter.check(a).is_ok());
        assert!(limiter.check(a).is_ok());
        let wait = limiter.check(a).unwrap_err();
        assert!((1..=30).contains(&wait), "{wait}");
        assert!(limiter.check(b).is_ok());
        assert!(IpLimiter::per_minute(0).is_none());
    }

    #[test]
    fn forwarded_for_only_when_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "1.1.1.1, 2.2.2.2".parse().unwrap());
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(client_ip(&headers, Some(peer), false), Some(peer.ip()));
        assert_eq!(
            client_ip(&headers, Some(peer), true),
            "2.2.2.2".parse().ok()
        );
    }
}
