//! A silent partition between one instance and Redis: the connections stay open but no
//! byte gets through. The instance must notice (pings), say so on `/health/ready`, and
//! reconnect by itself; then broadcasts flow again.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::{
    cluster::{reaches, socket},
    helpers::{redis_url, spawn_with, TestApp},
};

/// A TCP proxy to Redis that can freeze every connection opened so far: they stay open
/// and silently swallow what is sent, as after a partition. Later connections pass.
struct FreezingProxy {
    address: String,
    next_id: Arc<AtomicU64>,
    frozen_below: Arc<AtomicU64>,
}

impl FreezingProxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let next_id = Arc::new(AtomicU64::new(0));
        let frozen_below = Arc::new(AtomicU64::new(0));
        let (ids, frozen) = (next_id.clone(), frozen_below.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let id = ids.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(&target).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pipe(id, client_read, server_write, frozen.clone()));
                tokio::spawn(pipe(id, server_read, client_write, frozen.clone()));
            }
        });
        FreezingProxy {
            address,
            next_id,
            frozen_below,
        }
    }

    fn url(&self) -> String {
        format!("redis://{}", self.address)
    }

    fn freeze_open_connections(&self) {
        self.frozen_below
            .store(self.next_id.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

async fn pipe(
    id: u64,
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen_below: Arc<AtomicU64>,
) {
    let mut buffer = [0u8; 8192];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if id < frozen_below.load(Ordering::SeqCst) {
            // Partitioned: hold both sockets open and forward nothing, ever.
            let _held = (from, to);
            std::future::pending::<()>().await;
            return;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

async fn readiness(app: &TestApp) -> (u16, serde_json::Value) {
    let response = app
        .client
        .get(app.url("/health/ready"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// Polls readiness until `want`; the bound only keeps a broken server from hanging.
async fn wait_for_readiness(app: &TestApp, want: u16) -> serde_json::Value {
    for _ in 0..300 {
        let (status, body) = readiness(app).await;
        if status == want {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/health/ready never answered {want}");
}

db_test!(needs_redis async fn a_silent_redis_partition_is_detected_reported_and_healed(backend) {
    let redis = redis_url();
    let target = redis.trim_start_matches("redis://").split('/').next().unwrap().to_owned();
    let proxy = FreezingProxy::start(target).await;
    let prefix = format!("cs-test-{}", uuid::Uuid::new_v4().simple());
    let (prefix_b, proxied) = (prefix.clone(), proxy.url());
    let a = spawn_with(backend, move |config| {
        config.redis.url = Some(redis);
        config.redis.prefix = prefix;
    })
    .await;
    let b = a
        .sibling(move |config| {
            config.redis.url = Some(proxied);
            config.redis.prefix = prefix_b;
        })
        .await;
    wait_for_readiness(&b, 200).await;
    let (token, _) = a.user().await;
    let mut on_b = socket(&b, &token).await;
    assert!(reaches(&a, &token, &mut on_b, 10).await, "broadcasts flow before the partition");

    proxy.freeze_open_connections();
    let reported = wait_for_readiness(&b, 503).await;
    assert!(reported["message"].as_str().unwrap_or_default().contains("Redis"), "{reported}");
    // Meanwhile the instance still serves its own sockets and requests.
    let (local_token, _) = b.user().await;
    b.get("/api/v1/user/me", &local_token).await.expect(200);

    // New connections get through: the instance heals without a restart.
    wait_for_readiness(&b, 200).await;
    assert!(reaches(&a, &token, &mut on_b, 20).await, "broadcasts flow again after reconnecting");
});
