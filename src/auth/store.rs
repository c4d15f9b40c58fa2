//! Refresh tokens: single use, rotated, grouped in families (one per login) so that a
//! replayed token revokes every token descended from the same login.

use chrono::{DateTime, Utc};

use crate::{
    db::{now, Db},
    error::Result,
    in_transaction, with_pool,
};

pub struct NewToken<'a> {
    pub jti: &'a str,
    pub user_id: i64,
    pub family_id: &'a str,
    pub expires_at: DateTime<Utc>,
}

const INSERT: &str =
    "INSERT INTO refresh_tokens (jti, user_id, family_id, expires_at, created_at) \
                      VALUES ($1, $2, $3, $4, $5)";

const REVOKE_FAMILY: &str =
    "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL";

pub async fn insert(db: &Db, token: NewToken<'_>) -> Result<()> {
    with_pool!(db, |pool| sqlx::query(INSERT)
        .bind(token.jti)
        .bind(token.user_id)
        .bind(token.family_id)
        .bind(token.expires_at)
        .bind(now())
        .execute(pool)
        .await
        .map(drop))?;
    Ok(())
}

pub enum Rotation {
    /// The old token was live and is now spent; the new one is stored.
    Rotated,
    /// The token was already used or revoked: its family is now revoked.
    Reused,
    /// No such token, or it has expired.
    Unknown,
}

/// Spends `old_jti` and stores `next` in the same transaction. The conditional UPDATE
/// makes two concurrent refreshes with one token yield one winner.
pub async fn rotate(db: &Db, old_jti: &str, next: NewToken<'_>) -> Result<Rotation> {
    let now = now();
    in_transaction!(db, |tx| {
        let spent = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE jti = $2 AND family_id = $3 \
             AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(old_jti)
        .bind(next.family_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if spent == 1 {
            sqlx::query(INSERT)
                .bind(next.jti)
                .bind(next.user_id)
                .bind(next.family_id)
                .bind(next.expires_at)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            Rotation::Rotated
        } else {
            let family: Option<(String,)> = sqlx::query_as(
                "SELECT family_id FROM refresh_tokens WHERE jti = $1 AND expires_at > $2",
            )
            .bind(old_jti)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            match family {
                Some((family,)) => {
                    sqlx::query(REVOKE_FAMILY)
                        .bind(now)
                        .bind(family)
                        .execute(&mut *tx)
                        .await?;
                    Rotation::Reused
                }
                None => Rotation::Unknown,
            }
        }
    })
}

/// Revokes the family of `jti` (logout). Returns whether the token was known.
pub async fn revoke_family_of(db: &Db, jti: &str) -> Result<bool> {
    let now = now();
    in_transaction!(db, |tx| {
        let family: Option<(String,)> =
            sqlx::query_as("SELECT family_id FROM refresh_tokens WHERE jti = $1")
                .bind(jti)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((family,)) = &family {
            sqlx::query(REVOKE_FAMILY)
                .bind(now)
                .bind(family)
                .execute(&mut *tx)
                .await?;
        }
        family.is_some()
    })
}
