//! `codesherpa jobs list|retry|cancel` (SPEC §6.1), run as the binary beside a running
//! server on both backends: what it prints, what it changes, and its exit status.

use codesherpa::{db::Db, with_pool};
use serde_json::json;

use crate::helpers::{codesherpa_cli, spawn, CliRun};

async fn cli(app: &crate::helpers::TestApp, args: &[&str]) -> CliRun {
    codesherpa_cli(&app.database_url, args).await
}

/// (status, attempts, last_error) of job `id`.
async fn row(db: &Db, id: i64) -> (String, i32, Option<String>) {
    with_pool!(db, |pool| sqlx::query_as(
        "SELECT status, attempts, last_error FROM jobs WHERE id = $1"
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap())
}

/// Inserts a job of `kind` in `status` (with its attempts and reason) and returns its id.
async fn job(db: &Db, kind: &str, status: &str, attempts: i32, reason: Option<&str>) -> i64 {
    let now = codesherpa::db::now();
    with_pool!(db, |pool| sqlx::query_scalar(
        "INSERT INTO jobs (kind, payload, status, attempts, run_at, last_error, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $5, $5) RETURNING id"
    )
    .bind(kind)
    .bind(sqlx::types::Json(json!({})))
    .bind(status)
    .bind(attempts)
    .bind(now)
    .bind(reason)
    .fetch_one(pool)
    .await
    .unwrap())
}

/// The first four fields of each listed job, leaving out the server's own retention runs.
fn first_fields(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .filter(|line| !line.contains(" jobs.retention "))
        .map(|line| line.split_whitespace().take(4).map(str::to_owned).collect())
        .collect()
}

db_test!(
    async fn jobs_list_shows_id_kind_state_attempts_run_at_and_reason(backend) {
        let app = spawn(backend).await;
        let db = Db::connect(&app.database_url, 2).await.unwrap();
        let done = job(&db, "test.alpha", "done", 1, None).await;
        let failed = job(&db, "test.alpha", "failed", 8, Some("GitHub answered 404 Not Found")).await;
        let queued = job(&db, "test.beta", "queued", 0, None).await;

        let all = cli(&app, &["jobs", "list", "--kind", "test.alpha"]).await;
        assert!(!all.stdout.contains("test.beta"), "{}", all.stdout);
        let all = cli(&app, &["jobs", "list"]).await;
        assert!(all.success, "{}", all.stderr);
        assert_eq!(
            first_fields(&all.stdout),
            vec![
                vec![queued.to_string(), "test.beta".into(), "queued".into(), "0".into()],
                vec![failed.to_string(), "test.alpha".into(), "failed".into(), "8".into()],
                vec![done.to_string(), "test.alpha".into(), "done".into(), "1".into()],
            ],
            "{}",
            all.stdout
        );
        let failed_line = all.stdout.lines().find(|l| l.contains(" failed ")).unwrap();
        assert!(failed_line.ends_with("GitHub answered 404 Not Found"), "{failed_line}");
        let run_at = failed_line.split_whitespace().nth(4).unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(run_at).is_ok(), "{failed_line}");

        let only_failed = cli(&app, &["jobs", "list", "--state", "failed"]).await;
        assert_eq!(first_fields(&only_failed.stdout)[..], [vec![
            failed.to_string(),
            "test.alpha".into(),
            "failed".into(),
            "8".into()
        ]]);
        let alpha = cli(&app, &["jobs", "list", "--kind", "test.alpha", "--limit", "1"]).await;
        assert_eq!(alpha.stdout.lines().count(), 1, "{}", alpha.stdout);
        assert!(alpha.stdout.starts_with(&failed.to_string()));

        let bad_state = cli(&app, &["jobs", "list", "--state", "lost"]).await;
        assert!(!bad_state.success);
        assert!(bad_state.stderr.contains("lost"), "{}", bad_state.stderr);
    }
);

db_test!(
    async fn jobs_retry_requeues_a_failed_job_and_cancel_ends_a_queued_one(backend) {
        let app = spawn(backend).await;
        let db = Db::connect(&app.database_url, 2).await.unwrap();
        let failed = job(&db, "test.alpha", "failed", 8, Some("gave up")).await;
        let queued = job(&db, "test.alpha", "queued", 0, None).await;
        let done = job(&db, "test.alpha", "done", 1, None).await;

        let retried = cli(&app, &["jobs", "retry", &failed.to_string()]).await;
        assert!(retried.success, "{}", retried.stderr);
        assert!(retried.stdout.contains(&format!("job {failed}")), "{}", retried.stdout);
        let (status, attempts, _) = row(&db, failed).await;
        assert_eq!((status.as_str(), attempts), ("queued", 0));

        let cancelled = cli(&app, &["jobs", "cancel", &queued.to_string()]).await;
        assert!(cancelled.success, "{}", cancelled.stderr);
        assert_eq!(
            row(&db, queued).await,
            ("failed".into(), 0, Some("cancelled by an operator".into()))
        );

        for (args, message) in [
            (vec!["retry", &*done.to_string()], format!("job {done} is done: only a failed job can be retried")),
            (vec!["cancel", &*done.to_string()], format!("job {done} is done: only a queued job can be cancelled")),
            (vec!["cancel", &*queued.to_string()], format!("job {queued} is failed: only a queued job can be cancelled")),
            (vec!["retry", "987654"], "no job has id 987654".to_owned()),
            (vec!["cancel", "987654"], "no job has id 987654".to_owned()),
        ] {
            let run = cli(&app, &[&["jobs"][..], &args].concat()).await;
            assert!(!run.success, "{args:?} succeeded");
            assert!(run.stderr.contains(&message), "{args:?}: {}", run.stderr);
            assert!(run.stdout.is_empty());
        }
        assert_eq!(row(&db, done).await.0, "done", "a refused command changes nothing");
        for malformed in ["abc", "12x", ""] {
            let run = cli(&app, &["jobs", "retry", malformed]).await;
            assert!(!run.success, "{malformed:?} was taken for an id");
            assert!(run.stderr.contains("invalid value"), "{malformed:?}: {}", run.stderr);
        }
    }
);

/// No server has ever opened this database: the command brings its schema up and works.
#[tokio::test]
async fn jobs_list_works_on_a_database_no_server_has_opened() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/fresh.db?mode=rwc", dir.path().display());
    let listed = codesherpa_cli(&url, &["jobs", "list"]).await;
    assert!(listed.success, "{}", listed.stderr);
    assert_eq!(listed.stdout, "");
    let retried = codesherpa_cli(&url, &["jobs", "retry", "1"]).await;
    assert!(!retried.success);
    assert!(
        retried.stderr.contains("no job has id 1"),
        "{}",
        retried.stderr
    );
}
