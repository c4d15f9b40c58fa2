//! User queries.

use futures_util::future::BoxFuture;
use sqlx::{PgConnection, SqliteConnection};

use crate::{
    db::{now, Db},
    error::{Error, Result},
    with_pool,
};

use super::User;
use crate::agents::builtin::BUILTIN_AGENTS;

const COLUMNS: &str = "id, name, email, hashed_password, is_active, whatsapp_number, \
                       whatsapp_notify, created_at, updated_at";

pub async fn find_by_id(db: &Db, id: i64) -> Result<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    Ok(with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<User>> {
    find_by(db, "email", email).await
}

/// The active user a WhatsApp number is linked to.
pub async fn find_by_whatsapp_number(db: &Db, number: &str) -> Result<Option<User>> {
    Ok(find_by(db, "whatsapp_number", number)
        .await?
        .filter(|user| user.is_active))
}

/// The user whose `column`, a unique one, holds `value`.
async fn find_by(db: &Db, column: &str, value: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE {column} = $1");
    Ok(with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(value)
        .fetch_optional(pool)
        .await)?)
}

/// A connection that writes users' WhatsApp numbers: `&mut *tx` of either backend's
/// transaction, so that a number changes together with the caller's own rows (a link code
/// spent, a reply stored).
pub trait WhatsappNumbers: Send {
    fn set_whatsapp_number<'c>(
        &'c mut self,
        user_id: i64,
        number: &'c str,
    ) -> BoxFuture<'c, Result<Option<i64>, sqlx::Error>>;

    fn clear_whatsapp_number(&mut self, user_id: i64) -> BoxFuture<'_, Result<(), sqlx::Error>>;
}

/// Links `number` to the user, taking it from any other user first (a number belongs to
/// one account); answers that earlier owner.
pub async fn set_whatsapp_number<C: WhatsappNumbers + ?Sized>(
    conn: &mut C,
    user_id: i64,
    number: &str,
) -> Result<Option<i64>, sqlx::Error> {
    conn.set_whatsapp_number(user_id, number).await
}

/// Unlinks the user's WhatsApp number.
pub async fn clear_whatsapp_number<C: WhatsappNumbers + ?Sized>(
    conn: &mut C,
    user_id: i64,
) -> Result<(), sqlx::Error> {
    conn.clear_whatsapp_number(user_id).await
}

macro_rules! impl_whatsapp_numbers {
    ($connection:ty) => {
        impl WhatsappNumbers for $connection {
            fn set_whatsapp_number<'c>(
                &'c mut self,
                user_id: i64,
                number: &'c str,
            ) -> BoxFuture<'c, Result<Option<i64>, sqlx::Error>> {
                Box::pin(async move {
                    let now = now();
                    let earlier: Option<(i64,)> = sqlx::query_as(
                        "UPDATE users SET whatsapp_number = NULL, updated_at = $1 \
                         WHERE whatsapp_number = $2 AND id <> $3 RETURNING id",
                    )
                    .bind(now)
                    .bind(number)
                    .bind(user_id)
                    .fetch_optional(&mut *self)
                    .await?;
                    sqlx::query(
                        "UPDATE users SET whatsapp_number = $1, updated_at = $2 WHERE id = $3",
                    )
                    .bind(number)
                    .bind(now)
                    .bind(user_id)
                    .execute(&mut *self)
                    .await?;
                    Ok(earlier.map(|(id,)| id))
                })
            }

            fn clear_whatsapp_number(
                &mut self,
                user_id: i64,
            ) -> BoxFuture<'_, Result<(), sqlx::Error>> {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE users SET whatsapp_number = NULL, updated_at = $1 WHERE id = $2",
                    )
                    .bind(now())
                    .bind(user_id)
                    .execute(&mut *self)
                    .await?;
                    Ok(())
                })
            }
        }
    };
}

impl_whatsapp_numbers!(SqliteConnection);
impl_whatsapp_numbers!(PgConnection);

/// The fields a user asked to change, already validated; `None` leaves a column alone.
#[derive(Default)]
pub struct Changes {
    pub name: Option<String>,
    pub email: Option<String>,
    pub unlink_whatsapp: bool,
    pub whatsapp_notify: Option<bool>,
    pub password: Option<PasswordChange>,
}

pub struct PasswordChange {
    pub new_hash: String,
    /// The stored hash `current_password` was checked against.
    pub verified_hash: String,
}

pub enum Updated {
    Done(User),
    /// The password changed after `current_password` was checked: nothing was written.
    PasswordMoved,
    /// No such user (deleted meanwhile).
    Missing,
}

/// Writes only the columns in `changes`, in one statement, so concurrent updates of other
/// columns are never undone. A password change is a compare-and-set on the hash that was
/// verified, and revokes every refresh token of the user in the same transaction; on
/// PostgreSQL the UPDATE's row lock makes concurrent refreshes and logins wait for it
/// (see `auth::store::rotate`).
pub async fn update(db: &Db, id: i64, changes: Changes) -> Result<Updated> {
    let mut sets = vec!["updated_at = $1".to_owned()];
    let mut next = 2;
    let mut column = |name: &str| {
        sets.push(format!("{name} = ${next}"));
        next += 1;
    };
    if changes.name.is_some() {
        column("name");
    }
    if changes.email.is_some() {
        column("email");
    }
    if changes.password.is_some() {
        column("hashed_password");
    }
    if changes.whatsapp_notify.is_some() {
        column("whatsapp_notify");
    }
    if changes.unlink_whatsapp {
        sets.push("whatsapp_number = NULL".to_owned());
    }
    let mut sql = format!("UPDATE users SET {} WHERE id = ${next}", sets.join(", "));
    if changes.password.is_some() {
        sql.push_str(&format!(" AND hashed_password = ${}", next + 1));
    }
    sql.push_str(&format!(" RETURNING {COLUMNS}"));

    let now = now();
    crate::in_transaction!(db, |tx| {
        let mut query = sqlx::query_as::<_, User>(&sql).bind(now);
        if let Some(name) = &changes.name {
            query = query.bind(name);
        }
        if let Some(email) = &changes.email {
            query = query.bind(email);
        }
        if let Some(password) = &changes.password {
            query = query.bind(&password.new_hash);
        }
        if let Some(notify) = changes.whatsapp_notify {
            query = query.bind(notify);
        }
        query = query.bind(id);
        if let Some(password) = &changes.password {
            query = query.bind(&password.verified_hash);
        }
        let updated = query
            .fetch_optional(&mut *tx)
            .await
            .map_err(unique_violation)?;
        match updated {
            None if changes.password.is_some() => Updated::PasswordMoved,
            None => Updated::Missing,
            Some(user) => {
                if changes.password.is_some() {
                    sqlx::query(
                        "UPDATE refresh_tokens SET revoked_at = $1 \
                         WHERE user_id = $2 AND revoked_at IS NULL",
                    )
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                Updated::Done(user)
            }
        }
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
