//! WebSocket load: hold many authenticated connections, then time broadcasts to the
//! sockets of one user.
//!
//! `cargo run --release --example ws_bench -- http://127.0.0.1:8099 10000 1000 20 PID`
//! opens 10,000 sockets (1,000 of them one user's), reads the server's RSS (PID) before
//! and after, then sends 20 chats from one of that user's sockets and measures how long
//! after the sender's own `response` each of the other 999 sockets gets the broadcast.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::{connect_async, tungstenite::Message};

mod common;
use common::token_for;

fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let base = args[0].clone();
    let total: usize = args[1].parse().unwrap();
    let fan_out: usize = args[2].parse().unwrap();
    let rounds: usize = args[3].parse().unwrap();
    let pid = args[4].clone();
    let ws_base = base.replacen("http", "ws", 1);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let star = token_for(&client, &base).await;
    let mut others = Vec::new();
    for _ in 0..10 {
        others.push(token_for(&client, &base).await);
    }
    let before = rss_kib(&pid);
    let connect_started = Instant::now();

    // The star user's sockets report broadcast arrival times; the rest just stay open.
    let (arrivals_tx, mut arrivals) = mpsc::unbounded_channel::<Instant>();
    let mut sender = None;
    let mut holders = Vec::new();
    for i in 0..total {
        let token = if i < fan_out {
            star.clone()
        } else {
            others[i % others.len()].clone()
        };
        let url = format!("{ws_base}/ws?token={token}");
        let (socket, _) = loop {
            match connect_async(url.as_str()).await {
                Ok(ok) => break ok,
                Err(err) => {
                    eprintln!("connect {i}: {err}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        if i == 0 {
            sender = Some(socket);
            continue;
        }
        let arrivals_tx = (i < fan_out).then(|| arrivals_tx.clone());
        holders.push(tokio::spawn(async move {
            let (_, mut read) = socket.split();
            while let Some(Ok(message)) = read.next().await {
                if let (Message::Text(_), Some(tx)) = (&message, &arrivals_tx) {
                    let _ = tx.send(Instant::now());
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(&pid);
    println!(
        "connections {total} in {:.1} s; server RSS {before} KiB -> {after} KiB: {:.1} KiB per connection",
        connect_started.elapsed().as_secs_f64(),
        (after.saturating_sub(before)) as f64 / total as f64
    );

    let mut sender = sender.unwrap();
    let mut latencies = Vec::new();
    for round in 0..rounds {
        let request_id = format!("r{round}");
        sender
            .send(Message::Text(
                json!({"type": "chat", "message": "hello", "request_id": request_id})
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
        // The sender's own `response` is written just before the fan-out starts.
        let origin = loop {
            if let Some(Ok(Message::Text(text))) = sender.next().await {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["type"] == "response" && frame["request_id"] == request_id.as_str() {
                    break Instant::now();
                }
            }
        };
        for _ in 1..fan_out {
            let arrived = tokio::time::timeout(Duration::from_secs(10), arrivals.recv())
                .await
                .expect("broadcast in time")
                .unwrap();
            latencies.push(arrived.saturating_duration_since(origin).as_secs_f64() * 1e3);
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "broadcast to {} sockets x {rounds}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        fan_out - 1,
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    for holder in holders {
        holder.abort();
    }
}
