//! Load generator for `/chat/stream` against a local mock OpenAI-compatible provider that
//! streams a fixed reply with a fixed delay per token.
//!
//! `cargo run --release --example sse_bench -- mock 127.0.0.1:9901 20 20` serves the mock
//! (20 tokens, 20 ms each); `… -- load http://127.0.0.1:8099 50 200` runs 200 streams, 50
//! at a time, and reports time to first delta minus the mock's first-token delay.
//!
//! `mock … 20 20 40` spreads each stream's first token over 20–60 ms (a uniform extra of up
//! to 40 ms), so the streams of a wave do not all get their first token at the same
//! instant; the mock names the delay in that token and `load` subtracts that one.
//!
//! The mock also names how long it really held the request before its first token (its
//! timer wakes up to a millisecond late, more on a busy machine); `load` reports the
//! overhead a second time with that subtracted instead: the time that is not the
//! provider's.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{body::Body, routing::post, serve::ListenerExt, Router};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

mod common;
use common::token_for;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("mock") => mock(&args[1], args[2].parse().unwrap(), args[3].parse().unwrap(), args.get(4).and_then(|j| j.parse().ok()).unwrap_or(0)).await,
        Some("load") => load(&args[1], args[2].parse().unwrap(), args[3].parse().unwrap(), args.get(4).and_then(|d| d.parse().ok()).unwrap_or(20)).await,
        _ => eprintln!("usage: sse_bench mock ADDR TOKENS DELAY_MS [FIRST_JITTER_MS] | load BASE CONCURRENCY TOTAL [MOCK_DELAY_MS]"),
    }
}

async fn mock(address: &str, tokens: usize, delay_ms: u64, first_jitter_ms: u64) {
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move || async move {
            let arrived = Instant::now();
            let first_ms = delay_ms + rand::random_range(0..=first_jitter_ms);
            let pieces = futures_util::stream::iter(0..=tokens).then(move |i| async move {
                if i < tokens {
                    let wait = if i == 0 { first_ms } else { delay_ms };
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    let text = if i == 0 {
                        format!("waited{first_ms}ms held{}us ", arrived.elapsed().as_micros())
                    } else {
                        format!("token{i} ")
                    };
                    let chunk = json!({"choices": [{"index": 0, "delta": {"content": text}}]});
                    Ok::<_, std::io::Error>(format!("data: {chunk}\n\n"))
                } else {
                    let usage = json!({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": tokens}});
                    Ok(format!("data: {usage}\n\ndata: [DONE]\n\n"))
                }
            });
            ([("content-type", "text/event-stream")], Body::from_stream(pieces))
        }),
    );
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .unwrap()
        .tap_io(|tcp| tcp.set_nodelay(true).unwrap());
    axum::serve(listener, app).await.unwrap();
}

async fn load(base: &str, concurrency: usize, total: usize, mock_delay_ms: u64) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let token = token_for(&client, base).await;
    let agent: Value = client
        .post(format!("{base}/api/v1/agents"))
        .bearer_auth(&token)
        .json(&json!({"name": "Streamer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let agent_id = agent["data"]["id"].as_i64().unwrap();

    let permits = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..total {
        let permit = permits.clone().acquire_owned().await.unwrap();
        let (client, token, base) = (client.clone(), token.clone(), base.to_owned());
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let sent = Instant::now();
            let response = client
                .post(format!("{base}/api/v1/chat/stream"))
                .bearer_auth(&token)
                .json(&json!({"message": "stream please", "agent_id": agent_id}))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let mut body = response.bytes_stream();
            let mut text = String::new();
            let mut first_delta = None;
            let mut first_wait = None;
            let mut held = None;
            while let Some(chunk) = body.next().await {
                text.push_str(&String::from_utf8_lossy(&chunk.map_err(|e| e.to_string())?));
                if first_delta.is_none() && text.contains("event: delta") {
                    first_delta = Some(sent.elapsed());
                }
                if first_wait.is_none() {
                    first_wait = named(&text, "waited", "ms").map(Duration::from_millis);
                    held = named(&text, "held", "us").map(Duration::from_micros);
                }
            }
            if !text.contains("event: response") {
                return Err("no response event".to_owned());
            }
            let first = first_delta.ok_or_else(|| "no delta".to_owned())?;
            let nominal = first_wait.unwrap_or(Duration::from_millis(mock_delay_ms));
            Ok((
                first.saturating_sub(nominal),
                first.saturating_sub(held.unwrap_or(nominal)),
            ))
        }));
    }
    let mut firsts = Vec::new();
    let mut exacts = Vec::new();
    let mut errors = 0;
    for (index, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok((first, exact)) => {
                firsts.push((index, first.as_secs_f64() * 1e3));
                exacts.push(exact.as_secs_f64() * 1e3);
            }
            Err(err) => {
                errors += 1;
                if errors <= 3 {
                    eprintln!("error: {err}");
                }
            }
        }
    }
    let elapsed = started.elapsed();
    // The first wave opens every connection and meets every cache cold; the streams after
    // it are the steady state.
    let all = Percentiles::of(firsts.iter().map(|(_, ms)| *ms));
    let warm = Percentiles::of(
        firsts
            .iter()
            .filter(|(i, _)| *i >= concurrency)
            .map(|(_, ms)| *ms),
    );
    let exact = Percentiles::of(exacts.into_iter());
    println!(
        "streams {total} (concurrency {concurrency}): ok {}, errors {errors}, {:.1} s; first-delta overhead {all}; after the first wave {warm}; less the mock's actual hold {exact}",
        firsts.len(),
        elapsed.as_secs_f64(),
    );
}

/// p50, p99 and max of a sample in milliseconds.
struct Percentiles(Vec<f64>);

impl Percentiles {
    fn of(sample: impl Iterator<Item = f64>) -> Self {
        let mut sorted: Vec<f64> = sample.collect();
        sorted.sort_by(f64::total_cmp);
        Percentiles(sorted)
    }

    fn at(&self, p: f64) -> f64 {
        let last = self.0.len().saturating_sub(1) as f64;
        self.0
            .get((last * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    }
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.at(0.5),
            self.at(0.99),
            self.at(1.0)
        )
    }
}

/// A number the mock names in its first token between `label` and `unit`: the first-token
/// delay it chose (`waited37ms`), the time it really held the request (`held37012us`).
fn named(text: &str, label: &str, unit: &str) -> Option<u64> {
    let rest = &text[text.find(label)? + label.len()..];
    rest[..rest.find(unit)?].parse().ok()
}
