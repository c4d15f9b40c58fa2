//! GitHub (SPEC §6.2): the signed webhook, the REST client, connected accounts and proven
//! repository access, the review job (diff → Review Monk → one comment per PR, kept up to
//! date) with the `GET /projects/{id}/reviews` list, and the repository sync job that
//! feeds codebase's index.

pub mod access;
mod ask;
pub mod client;
mod comment;
pub mod connect;
mod context;
mod diff;
pub mod identity;
mod inline;
mod payload;
mod repo_settings;
mod review;
pub mod routes;
pub mod sealed;
pub mod settings;
mod store;
pub mod sync;
pub mod webhook;

pub use client::{Credential, GithubClient, GithubError};
pub use settings::Settings;

use crate::{jobs::Workers, state::AppState};

/// The job kind of a pull-request review.
pub const REVIEW_JOB: &str = "github.review";

/// Registers the handlers of the review and sync jobs, and the retention of deliveries
/// and expired OAuth states.
pub fn register_jobs(workers: &mut Workers, state: &AppState) {
    workers
        .prune(store::PRUNE_DELIVERIES)
        .prune(identity::PRUNE_EXPIRED_STATES);
    workers.register(
        REVIEW_JOB,
        state.config.github.review_concurrency,
        review::ReviewJob::new(state.clone()),
    );
    workers.register(
        ask::ASK_JOB,
        state.config.github.review_concurrency,
        ask::AskJob::new(state.clone()),
    );
    workers.register(
        sync::SYNC_JOB,
        sync::SYNC_CONCURRENCY,
        sync::SyncJob::new(state.clone()),
    );
}
