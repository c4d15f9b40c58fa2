//! What pruning costs the requests served meanwhile (SPEC §6.1, retention).
//!
//! `cargo run --release --example retention_bench -- URL DATABASE_URL ROWS CONCURRENCY SECONDS`
//! writes ROWS finished jobs 30 days old into the server's database, measures `GET
//! /api/v1/user/me` at CONCURRENCY for SECONDS (the baseline), then queues a retention
//! run — the server's own worker prunes — and measures the same load until the run is
//! done. Prints p50 / p99 / max of both windows and how long the prune took.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use codesherpa::{
    db::{now, Db},
    jobs::{NewJob, Queue, Settings, RETENTION_JOB},
    with_pool,
};
use serde_json::json;
use sqlx::types::Json;

mod common;
use common::token_for;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, database_url, rows, concurrency, seconds] = &args[..] else {
        panic!("usage: retention_bench URL DATABASE_URL ROWS CONCURRENCY SECONDS");
    };
    let rows: i64 = rows.parse().expect("ROWS");
    let concurrency: usize = concurrency.parse().expect("CONCURRENCY");
    let baseline = Duration::from_secs(seconds.parse().expect("SECONDS"));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let token = token_for(&client, base).await;
    let db = Db::connect(database_url, 2).await.expect("connect");

    let started = Instant::now();
    fill(&db, rows).await;
    println!(
        "filled {rows} old finished jobs in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let load = Load {
        client,
        url: format!("{base}/api/v1/user/me"),
        token,
        concurrency,
    };
    load.run(Stop::After(Duration::from_secs(1))).await;
    let (quiet, quiet_time) = load.run(Stop::After(baseline)).await;
    report("baseline", &quiet, quiet_time);
    let left = count(&db, OLD_JOBS).await;
    if left < rows {
        println!(
            "warning: the hourly run pruned {} rows during the baseline; run again",
            rows - left
        );
    }

    let key = format!("bench:{}", uuid::Uuid::new_v4());
    let queue = Queue::new(db.clone(), Settings::for_tests(), Arc::default());
    let run = NewJob::new(RETENTION_JOB, json!({})).dedupe_key(key.clone());
    queue.enqueue(&run).await.expect("queue the retention run");
    let watch = tokio::spawn(watch_run(db.clone(), key));
    let (during, during_time) = load.run(Stop::WhenDone(watch)).await;
    report("during the prune", &during, during_time);
    println!("old jobs left: {}", count(&db, OLD_JOBS).await);
}

const OLD_JOBS: &str = "SELECT COUNT(*) FROM jobs WHERE kind = 'bench.done'";

/// `rows` finished jobs, 30 days old, in one statement.
async fn fill(db: &Db, rows: i64) {
    let old = now() - chrono::TimeDelta::days(30);
    with_pool!(db, |pool| sqlx::query(
        "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO jobs (kind, payload, status, attempts, run_at, created_at, updated_at) \
         SELECT 'bench.done', $2, 'done', 1, $3, $3, $3 FROM n"
    )
    .bind(rows)
    .bind(Json(json!({"project_id": 1})))
    .bind(old)
    .execute(pool)
    .await
    .map(drop))
    .expect("fill");
}

async fn count(db: &Db, sql: &str) -> i64 {
    with_pool!(db, |pool| sqlx::query_scalar(sql).fetch_one(pool).await).expect(sql)
}

/// Polls the run until it is done; prints how long it ran.
async fn watch_run(db: Db, key: String) {
    let sql = format!("SELECT status FROM jobs WHERE dedupe_key = '{key}'");
    let mut running_since = None;
    loop {
        let status: String =
            with_pool!(&db, |pool| sqlx::query_scalar(&sql).fetch_one(pool).await).expect(&sql);
        match status.as_str() {
            "running" if running_since.is_none() => running_since = Some(Instant::now()),
            "done" | "failed" => break,
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = running_since.map_or(0.0, |since| since.elapsed().as_secs_f64());
    println!("prune run ended after {took:.1} s running (polled every 100 ms)");
}

/// When a load window ends.
enum Stop {
    After(Duration),
    WhenDone(tokio::task::JoinHandle<()>),
}

impl Stop {
    async fn wait(self) {
        match self {
            Stop::After(duration) => tokio::time::sleep(duration).await,
            Stop::WhenDone(watch) => watch.await.expect("watch"),
        }
    }
}

struct Load {
    client: reqwest::Client,
    url: String,
    token: String,
    concurrency: usize,
}

/// Latencies in milliseconds and the errors of one window.
#[derive(Default)]
struct Sample {
    millis: Vec<f64>,
    errors: usize,
}

impl Load {
    /// `concurrency` clients, each one request after another, until `stop`.
    async fn run(&self, stop: Stop) -> (Sample, Duration) {
        let done = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let clients: Vec<_> = (0..self.concurrency)
            .map(|_| tokio::spawn(self.client_loop(done.clone())))
            .collect();
        stop.wait().await;
        done.store(true, Ordering::Relaxed);
        let mut all = Sample::default();
        for client in clients {
            let sample = client.await.expect("client");
            all.millis.extend(sample.millis);
            all.errors += sample.errors;
        }
        (all, started.elapsed())
    }

    fn client_loop(&self, done: Arc<AtomicBool>) -> impl std::future::Future<Output = Sample> {
        let request = self.client.get(&self.url).bearer_auth(&self.token);
        async move {
            let mut sample = Sample::default();
            while !done.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let ok = match request.try_clone().unwrap().send().await {
                    Ok(response) => {
                        response.status().is_success() && response.bytes().await.is_ok()
                    }
                    Err(_) => false,
                };
                sample.millis.push(sent.elapsed().as_secs_f64() * 1000.0);
                sample.errors += usize::from(!ok);
            }
            sample
        }
    }
}

fn report(window: &str, sample: &Sample, took: Duration) {
    let mut sorted = sample.millis.clone();
    sorted.sort_by(f64::total_cmp);
    let at = |p: f64| {
        let last = sorted.len().saturating_sub(1) as f64;
        sorted
            .get((last * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "{window}: {} requests in {:.1} s ({:.0}/s), {} errors; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        sorted.len(),
        took.as_secs_f64(),
        sorted.len() as f64 / took.as_secs_f64(),
        sample.errors,
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
