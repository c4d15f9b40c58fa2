//! Users' connected GitHub identities and the OAuth `state` values in flight: the tables
//! `github_identities` and `github_oauth_states`. Tokens are stored sealed ([`super::sealed`]).

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::{
    db::{now, Db},
    error::Result,
    in_transaction,
    jobs::{Keep, Prune},
    with_pool,
};

/// How long a user has to come back from GitHub.
pub const STATE_LIFETIME_MINUTES: i64 = 10;
/// Flows a user may have in flight (tabs); a newer one retires the oldest, so no one can
/// fill the table.
const STATES_PER_USER: i64 = 5;

/// A user's GitHub account, as they see it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct GithubIdentity {
    #[schema(example = "octocat")]
    pub login: String,
    pub connected_at: DateTime<Utc>,
}

/// The identity with its sealed token, for calls made with it.
#[derive(sqlx::FromRow)]
pub struct Connected {
    pub login: String,
    pub token: String,
}

/// Expired states, which [`take_state`] refuses anyway (each new state also drops them).
pub const PRUNE_EXPIRED_STATES: Prune = Prune {
    table: "github_oauth_states",
    keep: Keep::For(TimeDelta::zero()),
    sql: "DELETE FROM github_oauth_states WHERE expires_at <= $1 AND state_hash IN \
          (SELECT state_hash FROM github_oauth_states WHERE expires_at <= $1 LIMIT $2)",
};

fn state_hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// Stores a fresh `state` for the user (by its hash), drops every expired one and keeps
/// the user's newest [`STATES_PER_USER`].
pub async fn create_state(db: &Db, user_id: i64, state: &str) -> Result<DateTime<Utc>> {
    let now = now();
    let expires_at = now + chrono::Duration::minutes(STATE_LIFETIME_MINUTES);
    in_transaction!(db, |tx| {
        sqlx::query("DELETE FROM github_oauth_states WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM github_oauth_states WHERE user_id = $1 AND state_hash NOT IN \
             (SELECT state_hash FROM github_oauth_states WHERE user_id = $1 \
             ORDER BY expires_at DESC LIMIT $2)",
        )
        .bind(user_id)
        .bind(STATES_PER_USER - 1)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO github_oauth_states (state_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(state_hash(state))
        .bind(user_id)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
    })?;
    Ok(expires_at)
}

/// Uses up `state`: the user it was made for, if it exists and has not expired. A second
/// use (even a concurrent one) finds nothing.
pub async fn take_state(db: &Db, state: &str) -> Result<Option<i64>> {
    let row: Option<(i64, DateTime<Utc>)> = with_pool!(db, |pool| sqlx::query_as(
        "DELETE FROM github_oauth_states WHERE state_hash = $1 RETURNING user_id, expires_at"
    )
    .bind(state_hash(state))
    .fetch_optional(pool)
    .await)?;
    Ok(row.and_then(|(user_id, expires_at)| (expires_at > now()).then_some(user_id)))
}

/// Connects (or reconnects) the user's GitHub identity.
pub async fn save(
    db: &Db,
    user_id: i64,
    github_id: i64,
    login: &str,
    sealed_token: &str,
) -> Result<()> {
    with_pool!(db, |pool| sqlx::query(
        "INSERT INTO github_identities (user_id, github_id, login, token, connected_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO UPDATE SET \
         github_id = excluded.github_id, login = excluded.login, token = excluded.token, \
         connected_at = excluded.connected_at"
    )
    .bind(user_id)
    .bind(github_id)
    .bind(login)
    .bind(sealed_token)
    .bind(now())
    .execute(pool)
    .await
    .map(drop))?;
    Ok(())
}

pub async fn get(db: &Db, user_id: i64) -> Result<Option<GithubIdentity>> {
    Ok(with_pool!(db, |pool| sqlx::query_as(
        "SELECT login, connected_at FROM github_identities WHERE user_id = $1"
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await)?)
}

pub async fn connected(db: &Db, user_id: i64) -> Result<Option<Connected>> {
    Ok(with_pool!(db, |pool| sqlx::query_as(
        "SELECT login, token FROM github_identities WHERE user_id = $1"
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await)?)
}

/// Swaps the sealed token for the same token sealed anew, unless it changed meanwhile.
pub async fn replace_token(db: &Db, user_id: i64, old: &str, new: &str) -> Result<()> {
    with_pool!(db, |pool| sqlx::query(
        "UPDATE github_identities SET token = $3 WHERE user_id = $1 AND token = $2"
    )
    .bind(user_id)
    .bind(old)
    .bind(new)
    .execute(pool)
    .await
    .map(drop))?;
    Ok(())
}

/// Forgets the identity and its token; true when there was one.
pub async fn delete(db: &Db, user_id: i64) -> Result<bool> {
    let affected = with_pool!(db, |pool| sqlx::query(
        "DELETE FROM github_identities WHERE user_id = $1"
    )
    .bind(user_id)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(affected > 0)
}
