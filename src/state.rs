//! Shared application state, handed to handlers through `State<AppState>`.

use std::sync::Arc;

use crate::{
    auth::{password::Passwords, tokens::TokenKeys},
    config::Config,
    db::Db,
    http::{metrics::Metrics, rate_limit::IpLimiter},
};

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub tokens: Arc<TokenKeys>,
    pub passwords: Passwords,
    pub metrics: Arc<Metrics>,
    /// `None` when `RATE_LIMIT_AUTH_PER_MINUTE=0`.
    pub auth_limiter: Option<Arc<IpLimiter>>,
}

impl AppState {
    pub fn new(config: Config, db: Db) -> Self {
        AppState {
            tokens: Arc::new(TokenKeys::new(
                &config.secret_key,
                config.access_token_expire_minutes,
                config.refresh_token_expire_days,
            )),
            passwords: Passwords::new(config.bcrypt_rounds),
            metrics: Arc::new(Metrics::new()),
            auth_limiter: IpLimiter::per_minute(config.rate_limit_auth_per_minute).map(Arc::new),
            config: Arc::new(config),
            db,
        }
    }
}
