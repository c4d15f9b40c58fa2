//! Retention (SPEC §6.1): the hourly `jobs.retention` job deletes finished jobs, webhook
//! deliveries, WhatsApp messages and expired records, and nothing else; dedupe records
//! outlive Meta's 7-day retry window whatever `RETENTION_DAYS` says; each hour has one
//! run however many instances start, and each run queues the next.
//! Old rows are written behind the API with their timestamps in the past.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use codesherpa::{
    db::{now, Db},
    jobs::{
        retention::{period_of, run_of, BATCH},
        NewJob, Queue, Settings, RETENTION_JOB,
    },
    with_pool,
};
use serde_json::json;
use sqlx::types::Json;
use uuid::Uuid;

use crate::helpers::{spawn, spawn_with, TestApp};

fn days_ago(days: i64) -> DateTime<Utc> {
    now() - TimeDelta::days(days)
}

async fn insert_job(db: &Db, kind: &str, status: &str, at: DateTime<Utc>) {
    with_pool!(db, |pool| sqlx::query(
        "INSERT INTO jobs (kind, payload, status, attempts, run_at, created_at, updated_at) \
         VALUES ($1, $2, $3, 1, $4, $4, $4)"
    )
    .bind(kind)
    .bind(Json(json!({})))
    .bind(status)
    .bind(at)
    .execute(pool)
    .await
    .map(drop))
    .expect("insert job");
}

/// `count` finished jobs of `kind` in one statement.
async fn insert_jobs(db: &Db, kind: &str, count: i64, at: DateTime<Utc>) {
    with_pool!(db, |pool| sqlx::query(
        "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO jobs (kind, payload, status, attempts, run_at, created_at, updated_at) \
         SELECT $2, $3, 'done', 1, $4, $4, $4 FROM n"
    )
    .bind(count)
    .bind(kind)
    .bind(Json(json!({})))
    .bind(at)
    .execute(pool)
    .await
    .map(drop))
    .expect("insert jobs");
}

async fn insert_delivery(db: &Db, id: &str, at: DateTime<Utc>) {
    with_pool!(db, |pool| sqlx::query(
        "INSERT INTO github_deliveries (delivery_id, event, received_at) VALUES ($1, 'ping', $2)"
    )
    .bind(id)
    .bind(at)
    .execute(pool)
    .await
    .map(drop))
    .expect("insert delivery");
}

/// A message from `wamid` with one reply part.
async fn insert_message(db: &Db, wamid: &str, status: &str, at: DateTime<Utc>) {
    with_pool!(db, |pool| {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO whatsapp_messages (wamid, phone_number_id, sender_number, kind, body, \
             status, created_at, updated_at) VALUES ($1, 'PN', '15550001', 'text', 'hi', $2, $3, $3) \
             RETURNING id",
        )
        .bind(wamid)
        .bind(status)
        .bind(at)
        .fetch_one(pool)
        .await
        .expect("insert message");
        sqlx::query(
            "INSERT INTO whatsapp_reply_parts (message_id, seq, body) VALUES ($1, 0, 'hello')",
        )
        .bind(id)
        .execute(pool)
        .await
        .expect("insert reply part");
    });
}

async fn insert_notice(db: &Db, sender: &str, at: DateTime<Utc>) {
    with_pool!(db, |pool| sqlx::query(
        "INSERT INTO whatsapp_notices (sender, kind, last_sent_at) VALUES ($1, 'link', $2)"
    )
    .bind(sender)
    .bind(at)
    .execute(pool)
    .await
    .map(drop))
    .expect("insert notice");
}

async fn insert_code(db: &Db, user_id: i64, code: &str, expires_at: DateTime<Utc>) {
    with_pool!(db, |pool| sqlx::query(
        "INSERT INTO whatsapp_link_codes (user_id, code, expires_at, created_at) \
         VALUES ($1, $2, $3, $3)"
    )
    .bind(user_id)
    .bind(code)
    .bind(expires_at)
    .execute(pool)
    .await
    .map(drop))
    .expect("insert link code");
}

async fn insert_state(db: &Db, user_id: i64, hash: &str, expires_at: DateTime<Utc>) {
    with_pool!(db, |pool| sqlx::query(
        "INSERT INTO github_oauth_states (state_hash, user_id, expires_at) VALUES ($1, $2, $3)"
    )
    .bind(hash)
    .bind(user_id)
    .bind(expires_at)
    .execute(pool)
    .await
    .map(drop))
    .expect("insert OAuth state");
}

/// The first column of `sql`'s rows, as text.
async fn column(db: &Db, sql: &str) -> Vec<String> {
    with_pool!(db, |pool| sqlx::query_scalar(sql).fetch_all(pool).await).expect(sql)
}

async fn count(db: &Db, sql: &str) -> i64 {
    with_pool!(db, |pool| sqlx::query_scalar(sql).fetch_one(pool).await).expect(sql)
}

async fn execute(db: &Db, sql: &str) {
    with_pool!(db, |pool| sqlx::query(sql).execute(pool).await.map(drop)).expect(sql);
}

/// Waits until the server's own start-up run of this hour is done, so that it does not
/// prune the rows a test writes next; call it away from the hour.
async fn after_the_start_up_run(app: &TestApp) {
    let this_hour = run_of(period_of(now())).dedupe_key.unwrap();
    let done =
        format!("SELECT COUNT(*) FROM jobs WHERE dedupe_key = '{this_hour}' AND status = 'done'");
    for _ in 0..300 {
        if count(&app.db, &done).await == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the start-up retention run never finished");
}

/// Queues a retention run beside the hourly ones and waits until the server ran it.
async fn run_retention(app: &TestApp) {
    let queue = Queue::new(app.db.clone(), Settings::for_tests(), Arc::default());
    let key = format!("test:{}", Uuid::new_v4());
    let run = NewJob::new(RETENTION_JOB, json!({})).dedupe_key(key.clone());
    queue.enqueue(&run).await.expect("queue a retention run");
    let status = format!("SELECT status FROM jobs WHERE dedupe_key = '{key}'");
    for _ in 0..300 {
        if column(&app.db, &status).await == ["done"] {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the retention run never finished: {:?}",
        column(&app.db, &status).await
    );
}

/// A user, a project with an old review, and an old chat: none of them is ever pruned.
async fn old_records(app: &TestApp) -> (i64, i64) {
    let (token, login) = app.user().await;
    let user_id = login["user"]["id"].as_i64().unwrap();
    let project = app
        .post("/api/v1/projects", &token, json!({"name": "Kept"}))
        .await
        .expect(201);
    let project_id = project.data()["id"].as_i64().unwrap();
    app.post("/api/v1/chat", &token, json!({"message": "hello there"}))
        .await
        .expect(201);
    with_pool!(&app.db, |pool| sqlx::query(
        "INSERT INTO reviews (project_id, delivery_id, repository, pull_number, head_sha, \
         status, attempts, created_at, updated_at) VALUES ($1, 'd-old', 'acme/app', 1, 'abc', \
         'done', 1, $2, $2)"
    )
    .bind(project_id)
    .bind(days_ago(400))
    .execute(pool)
    .await
    .map(drop))
    .expect("insert review");
    for table in ["users", "projects", "chats"] {
        with_pool!(&app.db, |pool| sqlx::query(&format!(
            "UPDATE {table} SET created_at = $1"
        ))
        .bind(days_ago(400))
        .execute(pool)
        .await
        .map(drop))
        .expect("age the records");
    }
    (user_id, project_id)
}

db_test!(
    async fn prunes_only_what_has_served_its_purpose(backend) {
        away_from_the_hour(Duration::from_secs(20)).await;
        let app = spawn(backend).await;
        after_the_start_up_run(&app).await;
        let db = &app.db;
        let (user_id, _) = old_records(&app).await;
        let (_, other) = app.user().await;
        let other_id = other["user"]["id"].as_i64().unwrap();

        let bulk = 2 * BATCH + 7;
        insert_jobs(db, "test.bulk", bulk, days_ago(30)).await;
        insert_job(db, "test.old-done", "done", days_ago(15)).await;
        insert_job(db, "test.old-failed", "failed", days_ago(15)).await;
        insert_job(db, "test.old-queued", "queued", days_ago(15)).await;
        insert_job(db, "test.old-running", "running", days_ago(15)).await;
        insert_job(db, "test.new-done", "done", days_ago(13)).await;
        insert_delivery(db, "d-15", days_ago(15)).await;
        insert_delivery(db, "d-13", days_ago(13)).await;
        insert_message(db, "wamid.old-done", "done", days_ago(15)).await;
        insert_message(db, "wamid.old-failed", "failed", days_ago(15)).await;
        insert_message(db, "wamid.old-queued", "queued", days_ago(15)).await;
        insert_message(db, "wamid.new-done", "done", days_ago(13)).await;
        insert_notice(db, "15550002", now() - TimeDelta::minutes(61)).await;
        insert_notice(db, "15550003", now() - TimeDelta::minutes(59)).await;
        insert_code(db, user_id, "11111111", now() - TimeDelta::seconds(1)).await;
        insert_code(db, other_id, "22222222", now() + TimeDelta::minutes(5)).await;
        insert_state(db, user_id, "expired", now() - TimeDelta::seconds(1)).await;
        insert_state(db, other_id, "live", now() + TimeDelta::minutes(5)).await;

        run_retention(&app).await;

        let kinds = "SELECT DISTINCT kind FROM jobs WHERE kind LIKE 'test.%' ORDER BY kind";
        assert_eq!(
            column(db, kinds).await,
            ["test.new-done", "test.old-queued", "test.old-running"]
        );
        let deliveries = "SELECT delivery_id FROM github_deliveries ORDER BY delivery_id";
        assert_eq!(column(db, deliveries).await, ["d-13"]);
        let messages = "SELECT wamid FROM whatsapp_messages ORDER BY wamid";
        assert_eq!(
            column(db, messages).await,
            ["wamid.new-done", "wamid.old-queued"]
        );
        let parts = "SELECT COUNT(*) FROM whatsapp_reply_parts";
        assert_eq!(count(db, parts).await, 2, "parts go with their message");
        let notices = "SELECT sender FROM whatsapp_notices";
        assert_eq!(column(db, notices).await, ["15550003"]);
        assert_eq!(
            column(db, "SELECT code FROM whatsapp_link_codes").await,
            ["22222222"]
        );
        let states = "SELECT state_hash FROM github_oauth_states";
        assert_eq!(column(db, states).await, ["live"]);
        for kept in ["users", "projects", "chats", "reviews"] {
            let rows = count(db, &format!("SELECT COUNT(*) FROM {kept}")).await;
            assert!(rows > 0, "{kept} are never pruned");
        }
        assert_eq!(count(db, "SELECT COUNT(*) FROM users").await, 2);

        let text = app.metrics().await;
        for (table, rows) in [
            ("jobs", bulk + 2),
            ("github_deliveries", 1),
            ("whatsapp_messages", 2),
            ("whatsapp_notices", 1),
            ("whatsapp_link_codes", 1),
            ("github_oauth_states", 1),
        ] {
            let line = format!(r#"codesherpa_pruned_rows_total{{table="{table}"}} {rows}"#);
            assert!(text.contains(&line), "{line} in\n{text}");
        }
    }
);

db_test!(
    async fn dedupe_records_outlive_a_short_retention(backend) {
        away_from_the_hour(Duration::from_secs(20)).await;
        let app = spawn_with(backend, |config| config.jobs.retention_days = 1).await;
        after_the_start_up_run(&app).await;
        let db = &app.db;
        insert_job(db, "test.two-days", "done", days_ago(2)).await;
        insert_job(db, "test.hours", "done", now() - TimeDelta::hours(20)).await;
        insert_delivery(db, "d-8", days_ago(8)).await;
        insert_delivery(db, "d-6", days_ago(6)).await;
        insert_message(db, "wamid.8", "done", days_ago(8)).await;
        insert_message(db, "wamid.6", "done", days_ago(6)).await;

        run_retention(&app).await;

        let kinds = "SELECT kind FROM jobs WHERE kind LIKE 'test.%'";
        assert_eq!(column(db, kinds).await, ["test.hours"]);
        let deliveries = "SELECT delivery_id FROM github_deliveries";
        assert_eq!(column(db, deliveries).await, ["d-6"]);
        let messages = "SELECT wamid FROM whatsapp_messages";
        assert_eq!(column(db, messages).await, ["wamid.6"]);
    }
);

/// Waits until the hour has at least `margin` left, so a test sees one period throughout.
async fn away_from_the_hour(margin: Duration) {
    let into_hour = u64::from(now().minute() * 60 + now().second());
    let left = Duration::from_secs(3600 - into_hour);
    if left < margin {
        tokio::time::sleep(left + Duration::from_secs(1)).await;
    }
}

db_test!(
    async fn each_hour_has_one_run_that_queues_the_next(backend) {
        away_from_the_hour(Duration::from_secs(20)).await;
        let app = spawn(backend).await;
        let sibling = app.sibling(|_| {}).await;
        let this_hour = period_of(now());
        let next_hour = this_hour + TimeDelta::hours(1);
        let key = |period| run_of(period).dedupe_key.unwrap();
        let runs = format!(
            "SELECT dedupe_key || ' ' || status || ' ' || CAST(attempts AS TEXT) FROM jobs \
             WHERE kind = '{RETENTION_JOB}' ORDER BY run_at"
        );
        let expected = [
            format!("{} done 1", key(this_hour)),
            format!("{} queued 0", key(next_hour)),
        ];
        for _ in 0..100 {
            if column(&app.db, &runs).await == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The later instance's start-up found this hour's run already done.
        let third = app.sibling(|_| {}).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(column(&app.db, &runs).await, expected);
        let due: DateTime<Utc> = with_pool!(&app.db, |pool| sqlx::query_scalar(
            "SELECT run_at FROM jobs WHERE kind = $1 AND status = 'queued'"
        )
        .bind(RETENTION_JOB)
        .fetch_one(pool)
        .await)
        .unwrap();
        assert_eq!(due, next_hour);
        drop(third);
        drop(sibling);
    }
);

db_test!(
    async fn a_lost_run_is_queued_again_at_start_up(backend) {
        away_from_the_hour(Duration::from_secs(20)).await;
        let app = spawn(backend).await;
        let this_hour = run_of(period_of(now())).dedupe_key.unwrap();
        let find = format!("SELECT COUNT(*) FROM jobs WHERE dedupe_key = '{this_hour}'");
        for _ in 0..100 {
            if count(&app.db, &find).await == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        execute(&app.db, &format!("DELETE FROM jobs WHERE kind = '{RETENTION_JOB}'")).await;
        let restarted = app.sibling(|_| {}).await;
        let done = format!("{find} AND status = 'done'");
        for _ in 0..100 {
            if count(&app.db, &done).await == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(count(&app.db, &done).await, 1);
        drop(restarted);
    }
);
