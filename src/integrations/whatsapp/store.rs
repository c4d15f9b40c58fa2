//! Queries of the WhatsApp slice: incoming messages (deduplicated by wamid, each with
//! its reply job), their reply parts and the hourly notices, and how long each is kept.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use super::payload::Incoming;
use crate::{
    db::now,
    db::Db,
    error::Result,
    jobs::{self, Enqueued, Keep, NewJob, Prune},
    users::store as users,
    with_pool,
};

/// The kind of the job that replies to a stored message.
pub const KIND: &str = "whatsapp.reply";

/// At most one notice of a kind to a sender within this long.
const NOTICE_WINDOW: TimeDelta = TimeDelta::hours(1);

/// Messages past Meta's retry window, with their reply parts (`ON DELETE CASCADE`);
/// one still queued is kept until its reply job ends it.
pub const PRUNE_MESSAGES: Prune = Prune {
    table: "whatsapp_messages",
    keep: Keep::Dedupe,
    sql: "DELETE FROM whatsapp_messages WHERE created_at < $1 AND status <> 'queued' \
          AND id IN (SELECT id FROM whatsapp_messages WHERE created_at < $1 \
          AND status <> 'queued' ORDER BY created_at LIMIT $2)",
};

/// Notices past their window: the next one is sent all the same without the row.
pub const PRUNE_NOTICES: Prune = Prune {
    table: "whatsapp_notices",
    keep: Keep::For(NOTICE_WINDOW),
    sql: "DELETE FROM whatsapp_notices WHERE last_sent_at <= $1 AND (sender, kind) IN \
          (SELECT sender, kind FROM whatsapp_notices WHERE last_sent_at <= $1 LIMIT $2)",
};

const COLUMNS: &str = "id, wamid, phone_number_id, sender_number, sender_user_id, kind, body, \
                       media_id, mime_type, filename, paced_at, read_marked, answered";

/// A stored incoming message, as its reply job reads it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Stored {
    pub id: i64,
    pub wamid: String,
    pub phone_number_id: String,
    pub sender_number: Option<String>,
    pub sender_user_id: Option<String>,
    pub kind: String,
    /// The text, or a document's caption.
    pub body: Option<String>,
    /// A shared document's media id, MIME type and file name.
    pub media_id: Option<String>,
    pub mime_type: Option<String>,
    pub filename: Option<String>,
    /// When Meta last refused a part of the reply for the pair rate.
    pub paced_at: Option<DateTime<Utc>>,
    pub read_marked: bool,
    pub answered: bool,
}

/// Stores every message not seen before with its reply job, in one transaction; answers
/// the jobs queued. A repeat — Meta's retry, or the same delivery arriving twice at
/// once — hits the unique wamid and is skipped.
pub async fn insert_new(db: &Db, messages: &[Incoming]) -> Result<Vec<Enqueued>> {
    let now = now();
    crate::in_transaction!(db, |tx| {
        let mut queued = Vec::new();
        for m in messages {
            let media = m.media.as_ref();
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO whatsapp_messages (wamid, phone_number_id, sender_number, \
                 sender_user_id, kind, body, media_id, mime_type, filename, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
                 ON CONFLICT (wamid) DO NOTHING RETURNING id",
            )
            .bind(&m.wamid)
            .bind(&m.phone_number_id)
            .bind(&m.sender_number)
            .bind(&m.sender_user_id)
            .bind(&m.kind)
            .bind(&m.body)
            .bind(media.map(|f| &f.id))
            .bind(media.and_then(|f| f.mime_type.as_ref()))
            .bind(media.and_then(|f| f.filename.as_ref()))
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(id) = id {
                // One number's replies one at a time, in the order its messages came.
                let sender = m.sender_number.as_ref().or(m.sender_user_id.as_ref());
                let mut job =
                    NewJob::new(KIND, json!({"message_id": id})).dedupe_key(m.wamid.clone());
                if let Some(sender) = sender {
                    job = job.serial_key(format!("whatsapp:{}:{sender}", m.phone_number_id));
                }
                queued.push(jobs::enqueue(&mut *tx, &job).await?);
            }
        }
        queued
    })
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Stored>> {
    let sql = format!("SELECT {COLUMNS} FROM whatsapp_messages WHERE id = $1");
    Ok(with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

/// Records how the message's work ended: `done`, or `failed` with the reason.
pub async fn finish(db: &Db, id: i64, failure: Option<&str>) -> Result<()> {
    let status = if failure.is_some() { "failed" } else { "done" };
    with_pool!(db, |pool| sqlx::query(
        "UPDATE whatsapp_messages SET status = $1, reason = $2, updated_at = $3 WHERE id = $4"
    )
    .bind(status)
    .bind(failure)
    .bind(now())
    .bind(id)
    .execute(pool)
    .await
    .map(drop))?;
    Ok(())
}

/// Waiting again for its reply: an operator queued the failed job again.
pub async fn requeue(db: &Db, id: i64) -> Result<()> {
    with_pool!(db, |pool| sqlx::query(
        "UPDATE whatsapp_messages SET status = 'queued', reason = NULL, updated_at = $1 \
         WHERE id = $2"
    )
    .bind(now())
    .bind(id)
    .execute(pool)
    .await
    .map(drop))?;
    Ok(())
}

pub async fn mark_read(db: &Db, id: i64) -> Result<()> {
    with_pool!(db, |pool| sqlx::query(
        "UPDATE whatsapp_messages SET read_marked = $1 WHERE id = $2"
    )
    .bind(true)
    .bind(id)
    .execute(pool)
    .await
    .map(drop))?;
    Ok(())
}

/// Remembers that Meta refused a part for the pair rate: the rest keep the gap, also in a
/// later run.
pub async fn paced(db: &Db, id: i64) -> Result<()> {
    with_pool!(db, |pool| sqlx::query(
        "UPDATE whatsapp_messages SET paced_at = $1 WHERE id = $2"
    )
    .bind(now())
    .bind(id)
    .execute(pool)
    .await
    .map(drop))?;
    Ok(())
}

/// When the last part of the reply went out.
pub async fn last_sent_at(db: &Db, message_id: i64) -> Result<Option<DateTime<Utc>>> {
    Ok(with_pool!(db, |pool| sqlx::query_scalar(
        "SELECT MAX(sent_at) FROM whatsapp_reply_parts WHERE message_id = $1"
    )
    .bind(message_id)
    .fetch_one(pool)
    .await)?)
}

/// When `number` last wrote (to any business number): Meta's 24-hour window runs from it.
pub async fn last_message_from(db: &Db, number: &str) -> Result<Option<DateTime<Utc>>> {
    Ok(with_pool!(db, |pool| sqlx::query_scalar(
        "SELECT MAX(created_at) FROM whatsapp_messages WHERE sender_number = $1"
    )
    .bind(number)
    .fetch_one(pool)
    .await)?)
}

/// The reply's parts still to send, in order: `(seq, body)`.
pub async fn unsent_parts(db: &Db, message_id: i64) -> Result<Vec<(i32, String)>> {
    Ok(with_pool!(db, |pool| sqlx::query_as(
        "SELECT seq, body FROM whatsapp_reply_parts WHERE message_id = $1 AND sent_id IS NULL \
         ORDER BY seq"
    )
    .bind(message_id)
    .fetch_all(pool)
    .await)?)
}

/// Remembers that Meta accepted a part, so no later run sends it again.
pub async fn part_sent(db: &Db, message_id: i64, seq: i32, sent_id: &str) -> Result<()> {
    with_pool!(db, |pool| sqlx::query(
        "UPDATE whatsapp_reply_parts SET sent_id = $1, sent_at = $2 \
         WHERE message_id = $3 AND seq = $4"
    )
    .bind(sent_id)
    .bind(now())
    .bind(message_id)
    .bind(seq)
    .execute(pool)
    .await
    .map(drop))?;
    Ok(())
}

/// Inside a transaction: stores the reply's parts, the chat it came from, and that the
/// message is answered — together with what decided the reply, so a re-run never
/// decides (or links, or notifies) twice.
macro_rules! save_reply {
    ($tx:ident, $message_id:expr, $chat_id:expr, $parts:expr) => {{
        for (seq, body) in $parts.iter().enumerate() {
            sqlx::query(
                "INSERT INTO whatsapp_reply_parts (message_id, seq, body) VALUES ($1, $2, $3)",
            )
            .bind($message_id)
            .bind(i32::try_from(seq).unwrap_or(i32::MAX))
            .bind(body.as_str())
            .execute(&mut *$tx)
            .await?;
        }
        sqlx::query("UPDATE whatsapp_messages SET answered = $1, chat_id = $2 WHERE id = $3")
            .bind(true)
            .bind($chat_id)
            .bind($message_id)
            .execute(&mut *$tx)
            .await?;
    }};
}

/// Records the reply to a message.
pub async fn reply(db: &Db, message_id: i64, chat_id: Option<i64>, parts: &[String]) -> Result<()> {
    crate::in_transaction!(db, |tx| save_reply!(tx, message_id, chat_id, parts))
}

/// A notice of `kind` to `sender`, unless one went out within the hour; answers
/// whether it is sent. Either way the message counts as answered.
pub async fn notice(
    db: &Db,
    message_id: i64,
    sender: &str,
    kind: &str,
    text: &str,
) -> Result<bool> {
    let now = now();
    crate::in_transaction!(db, |tx| {
        let claimed = sqlx::query(
            "INSERT INTO whatsapp_notices (sender, kind, last_sent_at) VALUES ($1, $2, $3) \
             ON CONFLICT (sender, kind) DO UPDATE SET last_sent_at = excluded.last_sent_at \
             WHERE whatsapp_notices.last_sent_at <= $4",
        )
        .bind(sender)
        .bind(kind)
        .bind(now)
        .bind(now - NOTICE_WINDOW)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        let parts: Vec<String> = if claimed {
            vec![text.to_owned()]
        } else {
            Vec::new()
        };
        save_reply!(tx, message_id, None::<i64>, parts);
        claimed
    })
}

/// `link <code>` from `number`: consumes the code (single use, unexpired), moves the
/// number to its user from any earlier owner, and stores the reply — all at once.
/// Answers `(user, earlier owner)` when the code was good.
pub async fn link(
    db: &Db,
    message_id: i64,
    code: &str,
    number: &str,
    linked_text: &str,
    refused_text: &str,
) -> Result<Option<(i64, Option<i64>)>> {
    let now = now();
    crate::in_transaction!(db, |tx| {
        let user: Option<(i64,)> = sqlx::query_as(
            "DELETE FROM whatsapp_link_codes WHERE code = $1 AND expires_at > $2 RETURNING user_id",
        )
        .bind(code)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match user {
            None => None,
            Some((user_id,)) => {
                let earlier = users::set_whatsapp_number(&mut *tx, user_id, number).await?;
                Some((user_id, earlier))
            }
        };
        let text = if outcome.is_some() {
            linked_text
        } else {
            refused_text
        };
        save_reply!(tx, message_id, None::<i64>, [text.to_owned()]);
        outcome
    })
}
