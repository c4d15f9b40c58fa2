//! The `whatsapp_notifications` table: one row per finished review whose owner is told,
//! holding what was decided (text, template or skipped) and what Meta made of it. The
//! row makes a re-run of the job resume instead of deciding, counting or sending twice.

use super::delivery::bump;
use crate::{
    db::{now, Db},
    error::Result,
    jobs::{Keep, Prune},
    with_pool,
};

/// Notifications older than `RETENTION_DAYS`: their review's job is long finished (the
/// totals in `whatsapp_counters` stay).
pub const PRUNE_NOTIFICATIONS: Prune = Prune {
    table: "whatsapp_notifications",
    keep: Keep::Retention,
    sql: "DELETE FROM whatsapp_notifications WHERE created_at < $1 AND id IN \
          (SELECT id FROM whatsapp_notifications WHERE created_at < $1 \
          ORDER BY created_at LIMIT $2)",
};

/// How a notification goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Free text: the user wrote within the last 24 hours.
    Text,
    /// The approved template: outside the 24-hour window.
    Template,
    /// Not sent, and counted.
    Skipped,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Template => "template",
            Kind::Skipped => "skipped",
        }
    }

    fn parse(kind: &str) -> Kind {
        match kind {
            "text" => Kind::Text,
            "template" => Kind::Template,
            _ => Kind::Skipped,
        }
    }
}

/// A stored notification.
#[derive(Clone, Debug)]
pub struct Notification {
    pub id: i64,
    pub kind: Kind,
    pub recipient: Option<String>,
    pub sent_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    kind: String,
    recipient: Option<String>,
    sent_id: Option<String>,
}

impl From<Row> for Notification {
    fn from(row: Row) -> Self {
        Notification {
            id: row.id,
            kind: Kind::parse(&row.kind),
            recipient: row.recipient,
            sent_id: row.sent_id,
        }
    }
}

pub async fn find(db: &Db, review_id: i64) -> Result<Option<Notification>> {
    let row: Option<Row> = with_pool!(db, |pool| sqlx::query_as(
        "SELECT id, kind, recipient, sent_id FROM whatsapp_notifications WHERE review_id = $1"
    )
    .bind(review_id)
    .fetch_optional(pool)
    .await)?;
    Ok(row.map(Notification::from))
}

/// Records the decision once (a skip is counted with it); answers the stored row, the
/// first decision if two runs raced.
pub async fn decide(
    db: &Db,
    review_id: i64,
    user_id: i64,
    kind: Kind,
    recipient: &str,
    reason: Option<&str>,
) -> Result<Notification> {
    let inserted = crate::in_transaction!(db, |tx| {
        let inserted = sqlx::query(
            "INSERT INTO whatsapp_notifications (review_id, user_id, kind, recipient, reason, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (review_id) DO NOTHING",
        )
        .bind(review_id)
        .bind(user_id)
        .bind(kind.as_str())
        .bind(recipient)
        .bind(reason)
        .bind(now())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted && kind == Kind::Skipped {
            bump!(tx, "notify:skipped");
        }
        inserted
    })?;
    if inserted && kind == Kind::Skipped {
        tracing::info!(review_id, reason, "WhatsApp review notification skipped");
    }
    find(db, review_id)
        .await?
        .ok_or_else(|| crate::error::Error::internal("a WhatsApp notification vanished"))
}

/// Meta accepted the message: remembered (so it is never sent again) and counted once.
pub async fn sent(db: &Db, id: i64, kind: Kind, sent_id: &str) -> Result<()> {
    let counter = format!("notify:{}", kind.as_str());
    crate::in_transaction!(db, |tx| {
        let first = sqlx::query(
            "UPDATE whatsapp_notifications SET kind = $1, sent_id = $2, sent_at = $3 \
             WHERE id = $4 AND sent_id IS NULL",
        )
        .bind(kind.as_str())
        .bind(sent_id)
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if first {
            bump!(tx, &counter);
        }
    })
}

/// A text refused as outside the 24-hour window: it becomes the template, or is skipped
/// (and counted) when none is configured.
pub async fn outside_window(db: &Db, id: i64, next: Kind, reason: &str) -> Result<()> {
    crate::in_transaction!(db, |tx| {
        let changed = sqlx::query(
            "UPDATE whatsapp_notifications SET kind = $1, reason = $2 \
             WHERE id = $3 AND kind = 'text' AND sent_id IS NULL",
        )
        .bind(next.as_str())
        .bind(reason)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if changed && next == Kind::Skipped {
            bump!(tx, "notify:skipped");
        }
    })
}

/// The job gave up: the reason is kept and the failure counted (once: the queue calls
/// this once per job).
pub async fn failed(db: &Db, review_id: i64, reason: &str) -> Result<()> {
    crate::in_transaction!(db, |tx| {
        sqlx::query("UPDATE whatsapp_notifications SET reason = $1 WHERE review_id = $2")
            .bind(reason)
            .bind(review_id)
            .execute(&mut *tx)
            .await?;
        bump!(tx, "notify:failed");
    })
}
