//! Shared application state, handed to handlers through `State<AppState>`.

use std::{ops::Deref, sync::Arc};

use crate::{
    auth::{password::Passwords, tokens::TokenKeys},
    config::Config,
    db::{pages::Pages, Db},
    http::{metrics::Metrics, rate_limit::Limits},
    integrations::github::client::GithubClient,
    jobs::Queue,
    llm::Providers,
    orchestrator::activity::AgentActivity,
    projects::AccessChecker,
    redis_bus::RedisBus,
    users::cache::UserCache,
    ws::{hub::Hub, slots::Slots},
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The state behind one `Arc`: handlers, extractors and layers clone it for every request,
/// one atomic count instead of one per shared part (a clone and a drop of every part
/// measured ~2.6 % of a list page's CPU; bench/README.md, "One count per request").
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] shares; its fields are read through the state (`state.db`).
pub struct Shared {
    pub db: Db,
    pub config: Arc<Config>,
    pub tokens: Arc<TokenKeys>,
    pub passwords: Passwords,
    pub metrics: Arc<Metrics>,
    pub limits: Arc<Limits>,
    pub user_cache: Arc<UserCache>,
    /// List pages kept while current.
    pub pages: Pages,
    pub providers: Providers,
    pub activity: Arc<AgentActivity>,
    pub hub: Arc<Hub>,
    pub redis: Option<RedisBus>,
    pub whatsapp: Arc<crate::integrations::whatsapp::client::Whatsapp>,
    pub jobs: Queue,
    pub github: GithubClient,
    /// Proves a project's repository access for `projects` (GitHub's check).
    pub repo_access: &'static dyn AccessChecker<AppState>,
    /// Seals users' GitHub tokens at rest.
    pub github_tokens: crate::integrations::github::sealed::Sealer,
    /// One per archive extraction and indexing allowed at once (`INDEX_CONCURRENCY`):
    /// each holds an archive and up to 200 MiB of its files in memory.
    pub index_permits: Arc<Semaphore>,
    /// Fired when the server begins to shut down (WebSockets close with 1001).
    pub shutdown: CancellationToken,
}

impl AppState {
    /// `repo_access` is GitHub's check of a project's repository access (the state holds
    /// it for `projects`).
    pub fn new(
        config: Config,
        db: Db,
        providers: Providers,
        redis: Option<RedisBus>,
        repo_access: &'static dyn AccessChecker<AppState>,
    ) -> Self {
        let metrics = Arc::new(Metrics::new());
        let budget = config.codebase.cache_bytes;
        db.kept(|| crate::codebase::snapshot::Kept::new(budget));
        AppState(Arc::new(Shared {
            tokens: Arc::new(TokenKeys::new(
                &config.auth.secret_key,
                config.auth.secret_key_previous.as_deref(),
                config.auth.access_token_expire_minutes,
                config.auth.refresh_token_expire_days,
            )),
            passwords: Passwords::new(config.auth.bcrypt_rounds),
            jobs: Queue::new(db.clone(), config.jobs.clone(), metrics.clone()),
            metrics,
            limits: Arc::new(Limits::new(
                config.http.rate_limit_auth_per_minute,
                config.http.rate_limit_ai_per_minute,
                redis.clone(),
            )),
            user_cache: Arc::new(UserCache::new(config.auth.cache_ttl)),
            pages: Pages::new(config.db.list_cache_bytes),
            providers,
            whatsapp: Arc::new(crate::integrations::whatsapp::client::Whatsapp::new(
                &config.whatsapp,
            )),
            activity: Arc::default(),
            hub: Hub::new(
                config.ws.queue_capacity,
                Slots::new(config.ws.max_per_user, config.ws.max_connections),
                redis.clone(),
            ),
            redis,
            github: GithubClient::new(&config.github),
            repo_access,
            github_tokens: crate::integrations::github::sealed::Sealer::new(
                &config.auth.secret_key,
                config.auth.secret_key_previous.as_deref(),
            ),
            index_permits: Arc::new(Semaphore::new(config.codebase.index_concurrency)),
            shutdown: CancellationToken::new(),
            config: Arc::new(config),
            db,
        }))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
