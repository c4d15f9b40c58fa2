//! Several instances behind a load balancer: broadcasts and rate limits shared through
//! Redis, and an instance that keeps serving when Redis goes away. These are ignored
//! unless `TEST_REDIS_URL` names a Redis server.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::{connect_async, tungstenite::Message};

use crate::helpers::{redis_url, spawn_with, Backend, TestApp};

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn socket(app: &TestApp, token: &str) -> Socket {
    let mut socket = connect_async(app.ws_url(token)).await.expect("upgrade").0;
    // A round trip proves the socket is registered before anything is broadcast.
    socket
        .send(Message::Text(json!({"type": "ping"}).to_string().into()))
        .await
        .unwrap();
    assert_eq!(
        next_frame(&mut socket, Duration::from_secs(5))
            .await
            .unwrap()["type"],
        "pong"
    );
    socket
}

async fn next_frame(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(serde_json::from_str(&text).unwrap()),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

/// Two instances sharing one database and one Redis namespace.
async fn pair(backend: Backend, redis: String, ai_limit: u32) -> (TestApp, TestApp) {
    let prefix = format!("cs-test-{}", uuid::Uuid::new_v4().simple());
    let (redis_b, prefix_b) = (redis.clone(), prefix.clone());
    let a = spawn_with(backend, move |config| {
        config.redis.url = Some(redis);
        config.redis.prefix = prefix;
        config.http.rate_limit_ai_per_minute = ai_limit;
    })
    .await;
    let b = a
        .sibling(move |config| {
            config.redis.url = Some(redis_b);
            config.redis.prefix = prefix_b;
            config.http.rate_limit_ai_per_minute = ai_limit;
        })
        .await;
    (a, b)
}

/// Posts chats through `a` until one reaches `socket` (on another instance), or gives up.
pub async fn reaches(a: &TestApp, token: &str, socket: &mut Socket, attempts: usize) -> bool {
    for _ in 0..attempts {
        let chat = a
            .post("/api/v1/chat", token, json!({"message": "hello"}))
            .await
            .expect(201);
        while let Some(frame) = next_frame(socket, Duration::from_millis(500)).await {
            if frame["type"] == "message" && frame["chat"]["id"] == chat.data()["id"] {
                return true;
            }
        }
    }
    false
}

db_test!(needs_redis async fn chats_reach_sockets_on_other_instances(backend) {
    let redis = redis_url();
    let (a, b) = pair(backend, redis, 0).await;
    let (token, _) = a.user().await;
    let (other, _) = a.user().await;
    let mut on_b = socket(&b, &token).await;
    let mut others_on_b = socket(&b, &other).await;
    // Until B's subscription is live, nothing can arrive; give it a few tries.
    assert!(reaches(&a, &token, &mut on_b, 20).await, "a REST chat on A reached the socket on B");

    let mut on_a = socket(&a, &token).await;
    on_a.send(Message::Text(json!({"type": "chat", "message": "from A's socket", "request_id": "x"}).to_string().into()))
        .await
        .unwrap();
    let mut found = false;
    while let Some(frame) = next_frame(&mut on_b, Duration::from_secs(5)).await {
        if frame["type"] == "message" && frame["chat"]["message"] == "from A's socket" {
            found = true;
            break;
        }
    }
    assert!(found, "a WebSocket chat on A reached B");
    // The other user on B heard nothing.
    others_on_b.send(Message::Text(json!({"type": "ping"}).to_string().into())).await.unwrap();
    assert_eq!(next_frame(&mut others_on_b, Duration::from_secs(5)).await.unwrap()["type"], "pong");
    drop(b);
});

db_test!(needs_redis async fn the_ai_rate_limit_is_shared_across_instances(backend) {
    let redis = redis_url();
    let (a, b) = pair(backend, redis, 2).await;
    let (token, _) = a.user().await;
    a.post("/api/v1/chat", &token, json!({"message": "one"})).await.expect(201);
    b.post("/api/v1/chat", &token, json!({"message": "two"})).await.expect(201);
    let limited = a.post("/api/v1/chat", &token, json!({"message": "three"})).await.expect(429);
    assert!(limited.headers.contains_key("retry-after"));
    b.post("/api/v1/chat", &token, json!({"message": "four"})).await.expect(429);
    let ready = b.send(b.client.get(b.url("/health/ready"))).await.expect(200);
    assert_eq!(ready.data()["redis"], "ok");
    drop(b);
});

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct RedisServer(std::process::Child);

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

db_test!(needs_redis async fn losing_redis_degrades_to_one_instance_and_recovers(backend) {
    // This test runs its own Redis on a free port; it needs `redis-server` installed.
    let port = free_port();
    let (a, b) = pair(backend, format!("redis://127.0.0.1:{port}"), 2).await;
    let (token, _) = a.user().await;

    // No Redis: ready says so, but the instance serves, delivers locally and limits locally.
    let ready = a.send(a.client.get(a.url("/health/ready"))).await.expect(503);
    assert!(ready.body["message"].as_str().unwrap().contains("Redis"));
    let mut on_a = socket(&a, &token).await;
    let chat = a.post("/api/v1/chat", &token, json!({"message": "still here"})).await.expect(201);
    let frame = next_frame(&mut on_a, Duration::from_secs(5)).await.expect("local delivery");
    assert_eq!(frame["chat"]["id"], chat.data()["id"]);
    a.post("/api/v1/chat", &token, json!({"message": "again"})).await.expect(201);
    a.post("/api/v1/chat", &token, json!({"message": "over"})).await.expect(429);
    // Each instance counts alone meanwhile.
    b.post("/api/v1/chat", &token, json!({"message": "on b"})).await.expect(201);

    // Redis comes back: both instances reconnect by themselves.
    let server = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .map(RedisServer)
        .expect("redis-server must be installed where TEST_REDIS_URL is set");
    for app in [&a, &b] {
        let mut recovered = false;
        for _ in 0..100 {
            if app.send(app.client.get(app.url("/health/ready"))).await.status == 200 {
                recovered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(recovered, "ready again once Redis is back");
    }
    // The first user spent their chats for this minute; a new user checks delivery.
    let (fresh, _) = a.user().await;
    let mut on_b = socket(&b, &fresh).await;
    assert!(reaches(&a, &fresh, &mut on_b, 2).await, "cross-instance delivery resumed");
    drop(server);
    drop(b);
});
