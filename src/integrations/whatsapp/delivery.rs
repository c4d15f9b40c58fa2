//! Delivery (SPEC §6.3): Meta's `statuses[]` receipts recorded on the parts and
//! notifications they name, and the running totals `/metrics` shows — receipts by status,
//! notifications by outcome — kept in the database, so every instance reports the same
//! numbers and a Meta retry counts once.

use super::payload::Delivery;
use crate::{
    db::{now, Db},
    error::Result,
    http::metrics::Metrics,
    jobs::{Keep, Prune},
    with_pool,
};

/// Receipts past Meta's retry window: a repeat of one is then no longer expected.
pub const PRUNE_STATUSES: Prune = Prune {
    table: "whatsapp_statuses",
    keep: Keep::Dedupe,
    sql: "DELETE FROM whatsapp_statuses WHERE received_at < $1 AND (wamid, status) IN \
          (SELECT wamid, status FROM whatsapp_statuses WHERE received_at < $1 \
          ORDER BY received_at LIMIT $2)",
};

/// Adds one to a counter.
pub(crate) const BUMP: &str = "INSERT INTO whatsapp_counters (name, count) VALUES ($1, 1) \
     ON CONFLICT (name) DO UPDATE SET count = whatsapp_counters.count + 1";

/// `bump!(tx, "notify:text")`: one more of the counter, in the caller's transaction.
macro_rules! bump {
    ($tx:ident, $name:expr) => {
        sqlx::query($crate::integrations::whatsapp::delivery::BUMP)
            .bind($name)
            .execute(&mut *$tx)
            .await?
    };
}
pub(crate) use bump;

/// The order statuses come in: a late `delivered` never replaces `read`.
const RANK: &str = "CASE status WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 \
                    WHEN 'read' THEN 3 WHEN 'failed' THEN 4 ELSE 0 END";

fn rank(status: &str) -> i32 {
    match status {
        "sent" => 1,
        "delivered" => 2,
        "read" => 3,
        "failed" => 4,
        _ => 0,
    }
}

/// Records the receipts not seen before, each on the sent part or notification it names
/// (receipts of messages sent otherwise are counted too); answers how many were new.
pub async fn record(db: &Db, statuses: &[Delivery]) -> Result<usize> {
    let received = now();
    let advance = |table: &str| {
        format!(
            "UPDATE {table} SET status = $1, status_at = $2, \
             error_code = COALESCE($3, error_code) WHERE sent_id = $4 \
             AND (status IS NULL OR {RANK} < $5)"
        )
    };
    let (parts, notifications) = (
        advance("whatsapp_reply_parts"),
        advance("whatsapp_notifications"),
    );
    crate::in_transaction!(db, |tx| {
        let mut new = 0;
        for delivery in statuses {
            let first = sqlx::query(
                "INSERT INTO whatsapp_statuses (wamid, status, error_code, received_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (wamid, status) DO NOTHING",
            )
            .bind(&delivery.wamid)
            .bind(delivery.status)
            .bind(delivery.error_code)
            .bind(received)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !first {
                continue;
            }
            new += 1;
            bump!(tx, format!("status:{}", delivery.status));
            for sql in [&parts, &notifications] {
                sqlx::query(sql)
                    .bind(delivery.status)
                    .bind(delivery.at.unwrap_or(received))
                    .bind(delivery.error_code)
                    .bind(&delivery.wamid)
                    .bind(rank(delivery.status))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        new
    })
}

/// Copies the totals into `/metrics`.
pub async fn refresh_metrics(db: &Db, metrics: &Metrics) -> Result<()> {
    let rows: Vec<(String, i64)> = with_pool!(db, |pool| sqlx::query_as(
        "SELECT name, count FROM whatsapp_counters"
    )
    .fetch_all(pool)
    .await)?;
    for (name, count) in rows {
        let count = u64::try_from(count).unwrap_or_default();
        match name.split_once(':') {
            Some(("status", status)) => metrics.set_whatsapp_statuses(status, count),
            Some(("notify", outcome)) => metrics.set_whatsapp_notifications(outcome, count),
            _ => {}
        }
    }
    Ok(())
}
