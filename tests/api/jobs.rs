//! The job queue on both backends: retries and backoff, permanent failures, exhausted
//! attempts, lease expiry, dedupe under concurrency, two workers never running one job at
//! once, hand-back at shutdown, enqueueing inside a caller's transaction, metrics.
//! Each test runs its own queue (kinds the server does not know) on the server's database.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use codesherpa::{
    config::Config,
    db::Db,
    jobs::{self, Enqueued, Handler, Job, NewJob, Outcome, Queue, Workers},
    with_pool,
};
use futures_util::future::BoxFuture;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::helpers::{spawn, TestApp};

type RunFn = dyn Fn(Job) -> BoxFuture<'static, Outcome> + Send + Sync;

/// A handler from a closure that records every run and every failure hook call.
#[derive(Clone)]
struct Recorder {
    run: Arc<RunFn>,
    runs: Arc<Mutex<Vec<(i64, u32)>>>,
    failures: Arc<Mutex<Vec<(i64, String)>>>,
}

impl Recorder {
    fn new(run: impl Fn(Job) -> BoxFuture<'static, Outcome> + Send + Sync + 'static) -> Self {
        Recorder {
            run: Arc::new(run),
            runs: Arc::default(),
            failures: Arc::default(),
        }
    }

    fn runs(&self) -> Vec<(i64, u32)> {
        self.runs.lock().unwrap().clone()
    }

    fn failures(&self) -> Vec<(i64, String)> {
        self.failures.lock().unwrap().clone()
    }
}

impl Handler for Recorder {
    fn run(&self, job: Job) -> BoxFuture<'static, Outcome> {
        self.runs.lock().unwrap().push((job.id, job.attempt));
        (self.run)(job)
    }

    fn failed(&self, job: Job, reason: String) -> BoxFuture<'static, ()> {
        self.failures.lock().unwrap().push((job.id, reason));
        Box::pin(async {})
    }
}

async fn queue_on(app: &TestApp, configure: impl FnOnce(&mut codesherpa::jobs::Settings)) -> Queue {
    let db = Db::connect(&app.database_url, 5).await.expect("connect");
    let mut config = Config::for_tests(app.database_url.clone()).jobs;
    configure(&mut config);
    Queue::new(db, config, Arc::default())
}

#[derive(Debug, PartialEq)]
struct Row {
    status: String,
    attempts: i32,
    last_error: Option<String>,
}

async fn job_row(db: &Db, id: i64) -> Row {
    let (status, attempts, last_error): (String, i32, Option<String>) = with_pool!(db, |pool| {
        sqlx::query_as("SELECT status, attempts, last_error FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await
            .expect("job row")
    });
    Row {
        status,
        attempts,
        last_error,
    }
}

/// Waits (bounded) until the job reaches `status`.
async fn wait_for_status(db: &Db, id: i64, status: &str) -> Row {
    for _ in 0..300 {
        let row = job_row(db, id).await;
        if row.status == status {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "job {id} never reached {status}: {:?}",
        job_row(db, id).await
    );
}

fn kind() -> String {
    format!("test.{}", uuid::Uuid::new_v4().simple())
}

db_test!(
    async fn retries_with_backoff_until_done(backend) {
        let app = spawn(backend).await;
        let queue = queue_on(&app, |_| {}).await;
        let kind = kind();
        let handler = Recorder::new(|job| {
            Box::pin(async move {
                if job.attempt < 3 {
                    Outcome::retry(format!("flaky {}", job.attempt))
                } else {
                    Outcome::Done
                }
            })
        });
        let mut workers = Workers::new(queue.clone());
        workers.register(&kind, 2, handler.clone());
        let running = workers.start(CancellationToken::new());

        let id = queue
            .enqueue(&NewJob::new(&kind, json!({"n": 1})))
            .await
            .unwrap()
            .id();
        let row = wait_for_status(queue.db(), id, "done").await;
        assert_eq!(row.attempts, 3);
        assert_eq!(row.last_error, None);
        assert_eq!(handler.runs(), vec![(id, 1), (id, 2), (id, 3)]);
        assert!(handler.failures().is_empty());
        running.shutdown().await;
    }
);

db_test!(
    async fn a_retry_waits_for_the_delay_it_names(backend) {
        let app = spawn(backend).await;
        let queue = queue_on(&app, |_| {}).await;
        let kind = kind();
        let handler = Recorder::new(|_| {
            Box::pin(async { Outcome::retry_after("rate limited", Duration::from_secs(3600)) })
        });
        let mut workers = Workers::new(queue.clone());
        workers.register(&kind, 1, handler.clone());
        let running = workers.start(CancellationToken::new());

        let before = codesherpa::db::now();
        let id = queue
            .enqueue(&NewJob::new(&kind, json!({})))
            .await
            .unwrap()
            .id();
        for _ in 0..300 {
            if job_row(queue.db(), id).await.last_error.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let row = job_row(queue.db(), id).await;
        assert_eq!(row.status, "queued");
        assert_eq!(row.last_error.as_deref(), Some("rate limited"));
        let run_at: chrono::DateTime<chrono::Utc> = with_pool!(queue.db(), |pool| {
            sqlx::query_scalar("SELECT run_at FROM jobs WHERE id = $1")
                .bind(id)
                .fetch_one(pool)
                .await
                .unwrap()
        });
        assert!(run_at >= before + chrono::TimeDelta::seconds(3599), "{run_at}");
        assert_eq!(handler.runs().len(), 1);
        running.shutdown().await;
    }
);

db_test!(
    async fn a_permanent_failure_is_not_retried(backend) {
        let app = spawn(backend).await;
        let queue = queue_on(&app, |_| {}).await;
        let kind = kind();
        let handler = Recorder::new(|_| Box::pin(async { Outcome::failed("404 from upstream") }));
        let mut workers = Workers::new(queue.clone());
        workers.register(&kind, 1, handler.clone());
        let running = workers.start(CancellationToken::new());

        let id = queue
            .enqueue(&NewJob::new(&kind, json!({})))
            .await
            .unwrap()
            .id();
        let row = wait_for_status(queue.db(), id, "failed").await;
        assert_eq!(row.attempts, 1);
        assert_eq!(row.last_error.as_deref(), Some("404 from upstream"));
        assert_eq!(handler.failures(), vec![(id, "404 from upstream".to_owned())]);
        assert_eq!(handler.runs().len(), 1);
        running.shutdown().await;
    }
);

db_test!(
    async fn exhausted_attempts_end_as_failed(backend) {
        let app = spawn(backend).await;
        let queue = queue_on(&app, |config| config.max_attempts = 3).await;
        let kind = kind();
        let handler = Recorder::new(|_| Box::pin(async { Outcome::retry("still down") }));
        let mut workers = Workers::new(queue.clone());
        workers.register(&kind, 1, handler.clone());
        let running = workers.start(CancellationToken::new());

        let id = queue
            .enqueue(&NewJob::new(&kind, json!({})))
            .await
            .unwrap()
            .id();
        let row = wait_for_status(queue.db(), id, "failed").await;
        assert_eq!(row.attempts, 3);
        assert_eq!(row.last_error.as_deref(), Some("still down"));
        assert_eq!(handler.runs(), vec![(id, 1), (id, 2), (id, 3)]);
        assert_eq!(handler.failures().len(), 1);
        running.shutdown().await;
    }
);

db_test!(
    async fn an_expired_lease_is_claimed_again(backend) {
        let app = spawn(backend).await;
        let queue = queue_on(&app, |_| {}).await;
        let kind = kind();
        let id = queue
            .enqueue(&NewJob::new(&kind, json!({"survives": true})))
            .await
            .unwrap()
            .id();
        // What a worker killed with -9 leaves behind: running, its lease run out.
        let expired = codesherpa::db::now() - chrono::TimeDelta::seconds(5);
        with_pool!(queue.db(), |pool| {
            sqlx::query(
                "UPDATE jobs SET status = 'running', attempts = 1, locked_by = 'dead', \
                 locked_until = $1 WHERE id = $2",
            )
            .bind(expired)
            .bind(id)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected()
        });
        let handler = Recorder::new(|job| {
            Box::pin(async move {
                assert_eq!(job.payload, json!({"survives": true}));
                Outcome::Done
            })
        });
        let mut workers = Workers::new(queue.clone());
        workers.register(&kind, 1, handler.clone());
        let running = workers.start(CancellationToken::new());

        let row = wait_for_status(queue.db(), id, "done").await;
        assert_eq!(row.attempts, 2);
        assert_eq!(handler.runs(), vec![(id, 2)]);
        running.shutdown().await;
    }
);

db_test!(
    async fn a_live_lease_is_not_taken_over(backend) {
        let app = spawn(backend).await;
        let queue = queue_on(&app, |config| config.lease = Duration::from_millis(600)).await;
        let kind = kind();
        // The run outlasts several leases: renewal must keep the other worker away.
        let handler = Recorder::new(|_| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(2000)).await;
                Outcome::Done
            })
        });
        let other = queue_on(&app, |config| config.lease = Duration::from_millis(600)).await;
        let mut workers = Workers::new(queue.clone());
        workers.register(&kind, 1, handler.clone());
        let mut rivals = Workers::new(other);
        rivals.register(&kind, 1, handler.clone());
        let running = workers.start(CancellationToken::new());
        let rival = rivals.start(CancellationToken::new());

        let id = queue
            .enqueue(&NewJob::new(&kind, json!({})))
            .await
            .unwrap()
            .id();
        let row = wait_for_status(queue.db(), id, "done").await;
        assert_eq!(row.attempts, 1);
        assert_eq!(handler.runs(), vec![(id, 1)]);
        running.shutdown().await;
        rival.shutdown().await;
    }
);

db_test!(
    async fn concurrent_enqueues_of_one_key_make_one_job(backend) {
        let app = spawn(backend).await;
        let queue = queue_on(&app, |_| {}).await;
        let kind = kind();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let queue = queue.clone();
                let job = NewJob::new(&kind, json!({})).dedupe_key("delivery-1");
                tokio::spawn(async move { queue.enqueue(&job).await.expect("enqueue") })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        let new: Vec<_> = results.iter().filter(|e| e.is_new()).collect();
        assert_eq!(new.len(), 1, "{results:?}");
        let id = new[0].id();
        assert!(results.iter().all(|e| e.id() == id));
        let count: i64 = with_pool!(queue.db(), |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = $1")
                .bind(&kind)
                .fetch_one(pool)
                .await
                .unwrap()
        });
        assert_eq!(count, 1);
        // Another key, or none, is another job.
        let other = queue
            .enqueue(&NewJob::new(&kind, json!({})).dedupe_key("delivery-2"))
            .await
            .unwrap();
        assert!(other.is_new());
        assert_ne!(other.id(), id);
    }
);

db_test!(
    async fn two_workers_never_run_one_job_at_once(backend) {
        let app = spawn(backend).await;
        let kind = kind();
        let running_now: Arc<Mutex<HashMap<i64, ()>>> = Arc::default();
        let overlaps = Arc::new(Mutex::new(0));
        let make = || {
            let running_now = running_now.clone();
            let overlaps = overlaps.clone();
            Recorder::new(move |job| {
                let running_now = running_now.clone();
                let overlaps = overlaps.clone();
                Box::pin(async move {
                    if running_now.lock().unwrap().insert(job.id, ()).is_some() {
                        *overlaps.lock().unwrap() += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    running_now.lock().unwrap().remove(&job.id);
                    Outcome::Done
                })
            })
        };
        let (first, second) = (make(), make());
        let mut instances = Vec::new();
        for handler in [first.clone(), second.clone()] {
            let queue = queue_on(&app, |_| {}).await;
            let mut workers = Workers::new(queue);
            workers.register(&kind, 4, handler);
            instances.push(workers.start(CancellationToken::new()));
        }
        let queue = queue_on(&app, |_| {}).await;
        let mut ids = Vec::new();
        for n in 0..60 {
            ids.push(
                queue
                    .enqueue(&NewJob::new(&kind, json!({ "n": n })))
                    .await
                    .unwrap()
                    .id(),
            );
        }
        for id in &ids {
            wait_for_status(queue.db(), *id, "done").await;
        }
        let mut runs: Vec<i64> = first.runs().into_iter().chain(second.runs()).map(|r| r.0).collect();
        runs.sort_unstable();
        assert_eq!(runs, ids, "every job ran exactly once");
        assert_eq!(*overlaps.lock().unwrap(), 0);
        for instance in instances {
            instance.shutdown().await;
        }
    }
);

db_test!(
    async fn shutdown_hands_back_a_job_that_does_not_finish(backend) {
        let app = spawn(backend).await;
        let queue = queue_on(&app, |config| config.shutdown_grace = Duration::from_millis(100)).await;
        let kind = kind();
        let started = Arc::new(tokio::sync::Notify::new());
        let signal = started.clone();
        let handler = Recorder::new(move |_| {
            let signal = signal.clone();
            Box::pin(async move {
                signal.notify_one();
                std::future::pending::<()>().await;
                Outcome::Done
            })
        });
        let mut workers = Workers::new(queue.clone());
        workers.register(&kind, 1, handler.clone());
        let running = workers.start(CancellationToken::new());
        let id = queue
            .enqueue(&NewJob::new(&kind, json!({})))
            .await
            .unwrap()
            .id();
        started.notified().await;
        running.shutdown().await;
        let row = job_row(queue.db(), id).await;
        assert_eq!(
            row,
            Row {
                status: "queued".into(),
                attempts: 0,
                last_error: None
            }
        );
    }
);

db_test!(
    async fn a_job_lives_and_dies_with_its_transaction(backend) {
        let app = spawn(backend).await;
        let queue = queue_on(&app, |_| {}).await;
        let kind = kind();
        let job = NewJob::new(&kind, json!({})).dedupe_key("k");
        let rolled_back: Enqueued = with_pool!(queue.db(), |pool| {
            let mut tx = pool.begin().await.unwrap();
            let enqueued = jobs::enqueue(&mut *tx, &job).await.unwrap();
            tx.rollback().await.unwrap();
            enqueued
        });
        assert!(rolled_back.is_new());
        let committed: Enqueued = with_pool!(queue.db(), |pool| {
            let mut tx = pool.begin().await.unwrap();
            let enqueued = jobs::enqueue(&mut *tx, &job).await.unwrap();
            tx.commit().await.unwrap();
            enqueued
        });
        assert!(committed.is_new(), "the rolled-back job left nothing behind");
        let again = queue.enqueue(&job).await.unwrap();
        assert_eq!(again, Enqueued::Duplicate { id: committed.id() });
    }
);

db_test!(
    async fn metrics_count_jobs_by_kind_and_state(backend) {
        let app = spawn(backend).await;
        let queue = queue_on(&app, |_| {}).await;
        let kind = kind();
        for _ in 0..2 {
            queue.enqueue(&NewJob::new(&kind, json!({}))).await.unwrap();
        }
        let failed = queue.enqueue(&NewJob::new(&kind, json!({}))).await.unwrap();
        with_pool!(queue.db(), |pool| {
            sqlx::query("UPDATE jobs SET status = 'failed' WHERE id = $1")
                .bind(failed.id())
                .execute(pool)
                .await
                .unwrap()
                .rows_affected()
        });
        let text = app.metrics().await;
        assert!(
            text.contains(&format!(r#"codesherpa_jobs{{kind="{kind}",state="queued"}} 2"#)),
            "{text}"
        );
        assert!(text.contains(&format!(r#"codesherpa_jobs{{kind="{kind}",state="failed"}} 1"#)));
    }
);

db_test!(
    async fn metrics_keep_every_known_kind_and_state_at_zero(backend) {
        let app = spawn(backend).await;
        let queue = queue_on(&app, |_| {}).await;
        let kind = kind();
        let failed = queue.enqueue(&NewJob::new(&kind, json!({}))).await.unwrap();
        with_pool!(queue.db(), |pool| {
            sqlx::query("UPDATE jobs SET status = 'failed' WHERE id = $1")
                .bind(failed.id())
                .execute(pool)
                .await
                .unwrap()
                .rows_affected()
        });
        let text = app.metrics().await;
        for (state, count) in [("queued", 0), ("running", 0), ("failed", 1)] {
            let series = format!(r#"codesherpa_jobs{{kind="{kind}",state="{state}"}} {count}"#);
            assert!(text.contains(&series), "{series} missing from\n{text}");
        }
        // The server's own kinds are there with no job of them in the database.
        for kind in ["github.review", "whatsapp.reply", "codebase.sync"] {
            for state in ["queued", "running", "failed"] {
                let series = format!(r#"codesherpa_jobs{{kind="{kind}",state="{state}"}} 0"#);
                assert!(text.contains(&series), "{series} missing from\n{text}");
            }
        }
    }
);

/// Watches a serial key's jobs: counts any two of one key running at once and records the
/// order in which each key's jobs end.
#[derive(Clone, Default)]
struct SerialWatch {
    running: Arc<Mutex<HashMap<String, i64>>>,
    overlaps: Arc<Mutex<Vec<(String, i64, i64)>>>,
    ended: Arc<Mutex<Vec<(String, i64)>>>,
}

impl SerialWatch {
    async fn run(&self, job: &Job, work: Duration) {
        let key = job.serial_key.clone().expect("a serial key");
        let n = job.payload["n"].as_i64().unwrap();
        if let Some(other) = self.running.lock().unwrap().insert(key.clone(), n) {
            self.overlaps.lock().unwrap().push((key.clone(), other, n));
        }
        tokio::time::sleep(work).await;
        self.running.lock().unwrap().remove(&key);
    }

    fn end(&self, job: &Job) {
        let key = job.serial_key.clone().unwrap();
        self.ended
            .lock()
            .unwrap()
            .push((key, job.payload["n"].as_i64().unwrap()));
    }

    fn order_of(&self, key: &str) -> Vec<i64> {
        let ended = self.ended.lock().unwrap();
        ended
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, n)| *n)
            .collect()
    }
}

db_test!(
    async fn jobs_of_one_serial_key_never_overlap_and_run_in_queue_order(backend) {
        let app = spawn(backend).await;
        let kind = kind();
        let watch = SerialWatch::default();
        let handler = {
            let watch = watch.clone();
            Recorder::new(move |job| {
                let watch = watch.clone();
                Box::pin(async move {
                    watch.run(&job, Duration::from_millis(15)).await;
                    // A retry keeps its key's place: the next job waits through it.
                    if job.payload["n"] == 4 && job.attempt == 1 {
                        return Outcome::retry_after("once more", Duration::from_millis(300));
                    }
                    watch.end(&job);
                    Outcome::Done
                })
            })
        };
        // Two instances, each running up to four jobs of the kind at once.
        let mut instances = Vec::new();
        for _ in 0..2 {
            let mut workers = Workers::new(queue_on(&app, |_| {}).await);
            workers.register(&kind, 4, handler.clone());
            instances.push(workers.start(CancellationToken::new()));
        }
        let queue = queue_on(&app, |_| {}).await;
        let keys = ["github:o/r#1", "github:o/r#2", "whatsapp:15550001"];
        let mut ids = Vec::new();
        for n in 0..24_i64 {
            let key = keys[n as usize % keys.len()];
            let job = NewJob::new(&kind, json!({ "n": n })).serial_key(key);
            ids.push(queue.enqueue(&job).await.unwrap().id());
        }
        for id in &ids {
            wait_for_status(queue.db(), *id, "done").await;
        }
        assert_eq!(*watch.overlaps.lock().unwrap(), vec![], "two jobs of one key ran at once");
        for (k, key) in keys.iter().enumerate() {
            let queued: Vec<i64> = (0..24).filter(|n| *n as usize % keys.len() == k).collect();
            assert_eq!(watch.order_of(key), queued, "{key} ran out of queue order");
        }
        assert_eq!(handler.runs().len(), 25, "24 jobs, one of them run twice");
        for instance in instances {
            instance.shutdown().await;
        }
    }
);

db_test!(
    async fn a_crashed_holders_lease_ends_and_the_next_job_of_its_key_runs(backend) {
        let app = spawn(backend).await;
        let kind = kind();
        let queue = queue_on(&app, |_| {}).await;
        let key = "github:o/r#9";
        let job = |n: i64| NewJob::new(&kind, json!({ "n": n })).serial_key(key);
        let first = queue.enqueue(&job(0)).await.unwrap().id();
        let second = queue.enqueue(&job(1)).await.unwrap().id();

        // What a holder killed with -9 leaves: the first job running under its lease, which
        // has run out; the second still held behind it. (The renewed lease of a live holder
        // and a real kill -9 are covered by the GitHub test of two reviews of one PR.)
        let expired = codesherpa::db::now() - chrono::TimeDelta::seconds(1);
        with_pool!(queue.db(), |pool| {
            sqlx::query(
                "UPDATE jobs SET status = 'running', attempts = 1, locked_by = 'dead', \
                 locked_until = $1 WHERE id = $2",
            )
            .bind(expired)
            .bind(first)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected()
        });
        let held: bool = with_pool!(queue.db(), |pool| {
            sqlx::query_scalar("SELECT held FROM jobs WHERE id = $1")
                .bind(second)
                .fetch_one(pool)
                .await
                .unwrap()
        });
        assert!(held, "the second job waits behind the first");

        let watch = SerialWatch::default();
        let handler = {
            let watch = watch.clone();
            Recorder::new(move |job| {
                let watch = watch.clone();
                Box::pin(async move {
                    watch.run(&job, Duration::from_millis(50)).await;
                    watch.end(&job);
                    Outcome::Done
                })
            })
        };
        let mut workers = Workers::new(queue_on(&app, |_| {}).await);
        workers.register(&kind, 4, handler.clone());
        let running = workers.start(CancellationToken::new());
        assert_eq!(wait_for_status(queue.db(), second, "done").await.attempts, 1);
        assert_eq!(job_row(queue.db(), first).await, Row {
            status: "done".into(),
            attempts: 2,
            last_error: None,
        });
        assert_eq!(handler.runs(), vec![(first, 2), (second, 1)]);
        assert_eq!(watch.order_of(key), vec![0, 1]);
        assert!(watch.overlaps.lock().unwrap().is_empty());
        running.shutdown().await;
    }
);

db_test!(
    async fn a_failed_or_cancelled_job_frees_its_key(backend) {
        let app = spawn(backend).await;
        let kind = kind();
        let queue = queue_on(&app, |_| {}).await;
        let key = "sync:project:1";
        let job = |n: i64| NewJob::new(&kind, json!({ "n": n })).serial_key(key);
        let failing = queue.enqueue(&job(0)).await.unwrap().id();
        let cancelled = queue.enqueue(&job(1)).await.unwrap().id();
        let last = queue.enqueue(&job(2)).await.unwrap().id();
        let held: Vec<bool> = with_pool!(queue.db(), |pool| {
            sqlx::query_scalar("SELECT held FROM jobs WHERE serial_key = $1 ORDER BY id")
                .bind(key)
                .fetch_all(pool)
                .await
                .unwrap()
        });
        assert_eq!(held, vec![false, true, true], "only the first of a key is free to run");

        let (db, workers) = operator_for(&app).await;
        let cancel = codesherpa::jobs::admin::JobsCommand::Cancel { id: cancelled };
        codesherpa::jobs::admin::run(cancel, &db, &workers).await.unwrap();
        let handler = Recorder::new(|job| {
            Box::pin(async move {
                if job.payload["n"] == 0 {
                    Outcome::failed("broken")
                } else {
                    Outcome::Done
                }
            })
        });
        let mut workers = Workers::new(queue.clone());
        workers.register(&kind, 4, handler.clone());
        let running = workers.start(CancellationToken::new());
        wait_for_status(queue.db(), last, "done").await;
        assert_eq!(job_row(queue.db(), failing).await.status, "failed");
        let row = job_row(queue.db(), cancelled).await;
        assert_eq!((row.status.as_str(), row.last_error.as_deref()), ("failed", Some("cancelled by an operator")));
        assert_eq!(handler.runs(), vec![(failing, 1), (last, 1)]);
        running.shutdown().await;
    }
);

async fn operator_for(app: &TestApp) -> (Db, Workers) {
    let db = Db::connect(&app.database_url, 2).await.unwrap();
    let config = Config::for_tests(app.database_url.clone()).jobs;
    let workers = Workers::new(Queue::new(db.clone(), config, Arc::default()));
    (db, workers)
}
