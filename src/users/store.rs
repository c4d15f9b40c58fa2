//! User queries.

use crate::{
    db::{now, Db},
    error::{Error, Result},
    with_pool,
};

use super::User;
use crate::agents::builtin::BUILTIN_AGENTS;

const COLUMNS: &str =
    "id, name, email, hashed_password, is_active, whatsapp_number, created_at, updated_at";

pub async fn find_by_id(db: &Db, id: i64) -> Result<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    Ok(with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE email = $1");
    Ok(with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(email)
        .fetch_optional(pool)
        .await)?)
}

/// The fields a user may change about themselves, already validated.
pub struct Changes {
    pub name: String,
    pub email: String,
    pub hashed_password: String,
    pub whatsapp_number: Option<String>,
    /// A new password ends every open session (refresh-token family).
    pub password_changed: bool,
}

pub async fn update(db: &Db, id: i64, changes: Changes) -> Result<User> {
    let sql = format!(
        "UPDATE users SET name = $1, email = $2, hashed_password = $3, whatsapp_number = $4, \
         updated_at = $5 WHERE id = $6 RETURNING {COLUMNS}"
    );
    let now = now();
    crate::in_transaction!(db, |tx| {
        let user: User = sqlx::query_as(&sql)
            .bind(&changes.name)
            .bind(&changes.email)
            .bind(&changes.hashed_password)
            .bind(&changes.whatsapp_number)
            .bind(now)
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(unique_violation)?;
        if changes.password_changed {
            sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        user
    })
}

/// Maps a unique-constraint violation on `users` to a 409 naming the field.
pub fn unique_violation(err: sqlx::Error) -> Error {
    match err.as_database_error() {
        Some(db_err) if db_err.is_unique_violation() => {
            if db_err.message().contains("whatsapp") {
                Error::Conflict("This WhatsApp number is linked to another account".into())
            } else {
                Error::Conflict("Email already registered".into())
            }
        }
        _ => err.into(),
    }
}

/// Creates the user and seeds the built-in specialist agents, all or nothing.
pub async fn register(db: &Db, name: &str, email: &str, hashed_password: &str) -> Result<User> {
    let sql = format!(
        "INSERT INTO users (name, email, hashed_password, is_active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING {COLUMNS}"
    );
    let now = now();
    crate::in_transaction!(db, |tx| {
        let user: User = sqlx::query_as(&sql)
            .bind(name)
            .bind(email)
            .bind(hashed_password)
            .bind(true)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(unique_violation)?;
        for agent in BUILTIN_AGENTS {
            sqlx::query(
                "INSERT INTO agents (user_id, name, description, status, role, system_prompt, \
                 created_at, updated_at) VALUES ($1, $2, $3, 'active', $4, $5, $6, $6)",
            )
            .bind(user.id)
            .bind(agent.name)
            .bind(agent.description)
            .bind(agent.role)
            .bind(agent.system_prompt)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        user
    })
}
