//! Shared application state, handed to handlers through `State<AppState>`.

use std::sync::Arc;

use crate::{
    auth::{password::Passwords, tokens::TokenKeys},
    config::Config,
    db::Db,
    http::{
        metrics::Metrics,
        rate_limit::{IpLimiter, UserLimiter},
    },
    llm::Providers,
    orchestrator::activity::AgentActivity,
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
    /// `None` when `RATE_LIMIT_AI_PER_MINUTE=0`.
    pub ai_limiter: Option<Arc<UserLimiter>>,
    pub providers: Providers,
    pub activity: Arc<AgentActivity>,
}

impl AppState {
    pub fn new(config: Config, db: Db, providers: Providers) -> Self {
        AppState {
            tokens: Arc::new(TokenKeys::new(
                &config.secret_key,
                config.access_token_expire_minutes,
                config.refresh_token_expire_days,
            )),
            passwords: Passwords::new(config.bcrypt_rounds),
            metrics: Arc::new(Metrics::new()),
            auth_limiter: IpLimiter::per_minute(config.rate_limit_auth_per_minute).map(Arc::new),
            ai_limiter: UserLimiter::per_minute(config.rate_limit_ai_per_minute).map(Arc::new),
            providers,
            activity: Arc::default(),
            config: Arc::new(config),
            db,
        }
    }
}
