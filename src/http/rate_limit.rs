//! Rate limiting (GCRA via governor): per client IP on `/auth/*`, per user on AI routes,
//! per number and in total on WhatsApp link codes.

use std::{
    hash::Hash,
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::{Arc, Mutex, PoisonError, Weak},
    time::{Duration, Instant},
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
    /// WhatsApp link codes tried by one phone number, with the auth budget: a code must
    /// not be found by guessing from one phone.
    link_codes: Option<Arc<KeyedLimiter<String>>>,
    /// Link codes checked across every number, when Redis does not keep the count: the
    /// per-number budget times the numbers an attacker controls must not add up.
    link_checks: Mutex<Window>,
    redis: Option<RedisBus>,
}

/// One of the link-code checks a minute across every number, taken before a code is
/// compared. Dropped, it stays spent (the attempt failed, or its outcome is unknown);
/// [`Limits::return_link_check`] gives it back when the code was right.
pub struct LinkCheck(Slot);

enum Slot {
    Unlimited,
    Local { window: u64 },
    Shared { window: String },
}

const LINK_CHECKS: (&str, &str) = ("link-checks", "all");

/// A one-minute window that opens with its first attempt (as Redis' counters do), and
/// whose slots can be given back while it lasts.
#[derive(Default)]
struct Window {
    opened: Option<Instant>,
    /// Which window this is: a slot from an earlier one is not given back to this one.
    id: u64,
    used: u32,
}

impl Window {
    const LENGTH: Duration = Duration::from_secs(60);

    /// `Ok(window id)`, or `Err(seconds to wait)` when `limit` slots are taken.
    fn take(&mut self, limit: u32, now: Instant) -> Result<u64, u64> {
        let opened = match self.opened {
            Some(opened) if now.duration_since(opened) < Self::LENGTH => opened,
            _ => {
                self.opened = Some(now);
                self.id += 1;
                self.used = 0;
                now
            }
        };
        if self.used >= limit {
            let left = Self::LENGTH.saturating_sub(now.duration_since(opened));
            return Err(left.as_secs_f64().ceil().max(1.0) as u64);
        }
        self.used += 1;
        Ok(self.id)
    }

    fn give_back(&mut self, window: u64) {
        if window == self.id {
            self.used = self.used.saturating_sub(1);
        }
    }
}

impl Limits {
    pub fn new(auth_per_minute: u32, ai_per_minute: u32, redis: Option<RedisBus>) -> Self {
        let auth = IpLimiter::per_minute(auth_per_minute).map(Arc::new);
        let ai = UserLimiter::per_minute(ai_per_minute).map(Arc::new);
        let password = UserLimiter::per_minute(auth_per_minute).map(Arc::new);
        let link_codes = KeyedLimiter::per_minute(auth_per_minute).map(Arc::new);
        if let Some(limiter) = &auth {
            limiter.spawn_housekeeping();
        }
        if let Some(limiter) = &password {
            limiter.spawn_housekeeping();
        }
        if let Some(limiter) = &link_codes {
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
            link_codes,
            link_checks: Mutex::default(),
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

    /// `Err(seconds to wait)` when the phone `number` tried too many link codes. Every
    /// attempt counts as it arrives, right or wrong: counted after the check, concurrent
    /// guesses from one number would all be checked before the first failure was counted
    /// (and a phone links once, so a right code's slot costs nobody anything).
    pub async fn check_link_code(&self, number: &str) -> Result<(), u64> {
        match &self.link_codes {
            None => Ok(()),
            Some(local) => {
                self.check("link", number, self.auth_per_minute, || {
                    local.check(number.to_owned())
                })
                .await
            }
        }
    }

    /// Takes one of `limit` link-code checks a minute across every number (0: no such
    /// budget), before any code is compared, so concurrent guesses cannot overrun it;
    /// `Err(seconds to wait)` when all are taken.
    pub async fn reserve_link_check(&self, limit: u32) -> Result<LinkCheck, u64> {
        if limit == 0 {
            return Ok(LinkCheck(Slot::Unlimited));
        }
        if let Some(redis) = &self.redis {
            let (scope, key) = LINK_CHECKS;
            match redis.reserve(scope, key, limit).await {
                Ok(verdict) => return verdict.map(|window| LinkCheck(Slot::Shared { window })),
                Err(err) => {
                    tracing::warn!(error = %err, "Redis rate limit unavailable; limiting locally")
                }
            }
        }
        self.local_link_checks()
            .take(limit, Instant::now())
            .map(|window| LinkCheck(Slot::Local { window }))
    }

    /// Gives back a check whose code was right: only failed attempts spend the budget.
    pub async fn return_link_check(&self, check: LinkCheck) {
        match check.0 {
            Slot::Unlimited => {}
            Slot::Local { window } => self.local_link_checks().give_back(window),
            Slot::Shared { window } => {
                let Some(redis) = &self.redis else { return };
                let (scope, key) = LINK_CHECKS;
                if let Err(err) = redis.release(scope, key, &window).await {
                    tracing::warn!(error = %err, "could not give a link check back to Redis");
                }
            }
        }
    }

    fn local_link_checks(&self) -> std::sync::MutexGuard<'_, Window> {
        self.link_checks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
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
        // Only the last entry is our proxy's; when it does not parse, an earlier
        // (client-written) one must not take its place.
        let last = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit(',').next());
        if let Some(ip) = last.and_then(forwarded_ip) {
            return Some(ip);
        }
    }
    peer.map(|addr| addr.ip())
}

/// One `X-Forwarded-For` entry: `ip`, `ip:port`, `[ipv6]` or `[ipv6]:port`.
fn forwarded_ip(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse().ok())
        })
}

pub async fn limit_auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    if let Some(ip) = client_ip(req.headers(), peer, state.config.http.trust_proxy_headers) {
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
    fn a_window_refuses_past_its_limit_and_takes_back_only_its_own_slots() {
        let start = Instant::now();
        let mut window = Window::default();
        let first = window.take(2, start).unwrap();
        window.take(2, start).unwrap();
        let wait = window.take(2, start + Duration::from_secs(20)).unwrap_err();
        assert_eq!(wait, 40);
        window.give_back(first);
        window.take(2, start + Duration::from_secs(20)).unwrap();
        assert!(window.take(2, start + Duration::from_secs(59)).is_err());
        // A new window: a slot from the old one does not free one here.
        let later = start + Duration::from_secs(60);
        window.take(2, later).unwrap();
        window.take(2, later).unwrap();
        window.give_back(first);
        assert!(window.take(2, later).is_err());
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

    #[test]
    fn forwarded_entries_with_ports_and_brackets() {
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let cases = [
            ("6.6.6.6, 2.2.2.2:4711", Some("2.2.2.2")),
            ("6.6.6.6, [2001:db8::1]:4711", Some("2001:db8::1")),
            ("6.6.6.6, [2001:db8::1]", Some("2001:db8::1")),
            ("6.6.6.6,2001:db8::2", Some("2001:db8::2")),
            // The last entry is garbage: the peer, never the client-written 6.6.6.6.
            ("6.6.6.6, not-an-ip", None),
            ("6.6.6.6, ", None),
        ];
        for (value, expected) in cases {
            let mut headers = HeaderMap::new();
            headers.insert("x-forwarded-for", value.parse().unwrap());
            let expected = expected.map_or(peer.ip(), |ip| ip.parse().unwrap());
            assert_eq!(
                client_ip(&headers, Some(peer), true),
                Some(expected),
                "{value}"
            );
        }
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", "6.6.6.6".parse().unwrap());
        headers.append("x-forwarded-for", "junk".parse().unwrap());
        assert_eq!(client_ip(&headers, Some(peer), true), Some(peer.ip()));
    }
}
