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

const INSERT: &str = "INSERT INTO refresh_tokens (jti, user_id, family_id, expires_at, \
                      created_at) VALUES ($1, $2, $3, $4, $5)";

const REVOKE_FAMILY: &str =
    "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL";

/// Stores a login's first refresh token, unless the password it was checked against has
/// changed meanwhile (then `false`): a login racing a password change never outlives it.
/// On PostgreSQL the user row is share-locked, so a password change either commits first
/// (and this inserts nothing) or waits for this insert and then revokes it.
pub async fn insert_for_password(
    db: &Db,
    token: NewToken<'_>,
    verified_hash: &str,
) -> Result<bool> {
    let sql = format!(
        "INSERT INTO refresh_tokens (jti, user_id, family_id, expires_at, created_at) \
         SELECT $1, id, $3, $4, $5 FROM users WHERE id = $2 AND hashed_password = $6{}",
        db.for_share()
    );
    let inserted = with_pool!(db, |pool| sqlx::query(&sql)
        .bind(token.jti)
        .bind(token.user_id)
        .bind(token.family_id)
        .bind(token.expires_at)
        .bind(now())
        .bind(verified_hash)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(inserted == 1)
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
///
/// The user row is read (share-locked on PostgreSQL) first: a password change holds that
/// row while it revokes the user's tokens, so it either commits before this rotation
/// (which then finds its token revoked) or waits for it and revokes the new token too.
/// Under READ COMMITTED, without the lock, the revocation could miss a token inserted
/// by a rotation that committed while it ran.
pub async fn rotate(db: &Db, old_jti: &str, next: NewToken<'_>) -> Result<Rotation> {
    let now = now();
    let lock_user = format!("SELECT id FROM users WHERE id = $1{}", db.for_share());
    in_transaction!(db, |tx| {
        let user: Option<(i64,)> = sqlx::query_as(&lock_user)
            .bind(next.user_id)
            .fetch_optional(&mut *tx)
            .await?;
        if user.is_none() {
            return Ok(Rotation::Unknown);
        }
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
