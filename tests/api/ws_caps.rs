//! WebSocket caps (per user and in total, refused before the upgrade) and a socket that
//! streams its own chat while broadcasts arrive.

use std::time::Duration;

use codesherpa::llm::ProviderKind;
use serde_json::{json, Value};
use tokio_tungstenite::{connect_async, tungstenite::Error as WsError, MaybeTlsStream};
use wiremock::{matchers::method, Mock, MockServer, ResponseTemplate};

use crate::{
    helpers::{spawn_with, TestApp},
    ws::{connect, next, open_sockets, refusal_status, send, Socket},
};

/// The refused upgrade's status, `Retry-After` and envelope.
async fn refused(app: &TestApp, token: &str) -> (u16, Option<String>, Value) {
    match connect_async(app.ws_url(token)).await {
        Err(WsError::Http(response)) => {
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = response
                .body()
                .as_deref()
                .map(|b| serde_json::from_slice(b).expect("a JSON envelope"))
                .unwrap_or_default();
            (response.status().as_u16(), retry_after, body)
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("the upgrade should have been refused"),
    }
}

fn assert_rate_limited((status, retry_after, body): (u16, Option<String>, Value)) {
    assert_eq!(status, 429, "{body}");
    let retry_after: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!(retry_after >= 1);
    assert_eq!(
        (body["success"].as_bool(), body["code"].as_str()),
        (Some(false), Some("rate_limited")),
        "{body}"
    );
    assert!(
        body["data"].is_null() && body["message"].is_string(),
        "{body}"
    );
}

db_test!(async fn sockets_are_capped_per_user_and_in_total(backend) {
    let app = spawn_with(backend, |config| {
        config.ws.max_per_user = 3;
        config.ws.max_connections = 5;
    })
    .await;
    let (alice, _) = app.user().await;
    let (bob, _) = app.user().await;
    let (carol, _) = app.user().await;
    let mut alices = Vec::new();
    for _ in 0..3 {
        alices.push(connect(&app, &alice).await);
    }
    assert_rate_limited(refused(&app, &alice).await);
    // Other users still get in, up to the server's cap.
    let _bobs = [connect(&app, &bob).await, connect(&app, &bob).await];
    assert_rate_limited(refused(&app, &carol).await);
    assert_eq!(open_sockets(&app).await, 5);

    // A closed socket gives its slot back.
    let mut gone = alices.pop().unwrap();
    gone.close(None).await.unwrap();
    drop(gone);
    let mut again = None;
    for _ in 0..200 {
        if let Ok((socket, _)) = connect_async(app.ws_url(&carol)).await {
            again = Some(socket);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut carols = again.expect("the freed slot was reused");
    send(&mut carols, json!({"type": "ping"})).await;
    assert_eq!(next(&mut carols).await["type"], "pong");
    // Refusals are not upgrades: a plain request still gets 400 before any slot counts.
    let plain = app.client.get(app.url(&format!("/ws?token={alice}"))).send().await.unwrap();
    assert_eq!(plain.status(), 400);
});

db_test!(async fn concurrent_upgrades_never_overshoot_the_cap(backend) {
    let app = spawn_with(backend, |config| config.ws.max_per_user = 4).await;
    let (token, _) = app.user().await;
    let attempts = (0..40).map(|_| connect_async(app.ws_url(&token)));
    let results = futures_util::future::join_all(attempts).await;
    let mut open = Vec::new();
    let mut refusals = 0;
    for result in results {
        match result {
            Ok((socket, _)) => open.push(socket),
            refusal => {
                assert_eq!(refusal_status(refusal), 429);
                refusals += 1;
            }
        }
    }
    assert_eq!((open.len(), refusals), (4, 36));
    assert_eq!(open_sockets(&app).await, 4);
});

db_test!(async fn a_socket_streaming_its_own_chat_is_not_closed_by_a_broadcast(backend) {
    // One long answer in big pieces: more than the kernel buffers hold, so the server's
    // writes wait for this client while it pauses.
    let server = MockServer::start().await;
    let piece = "z".repeat(16 * 1024);
    let mut body = String::new();
    for _ in 0..400 {
        let chunk = json!({"choices": [{"index": 0, "delta": {"content": piece}}]});
        body.push_str(&format!("data: {chunk}\n\n"));
    }
    body.push_str("data: [DONE]\n\n");
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .mount(&server)
        .await;
    let base = format!("{}/v1", server.uri());
    let app = spawn_with(backend, move |config| {
        config.llm.provider = ProviderKind::OpenAi;
        config.llm.openai_base_url = base;
        config.ws.queue_capacity = 4;
    })
    .await;
    let (token, _) = app.user().await;
    let streamer = app.post("/api/v1/agents", &token, json!({"name": "Streamer"})).await.expect(201);
    let local = app.post("/api/v1/agents", &token, json!({"name": "Quick", "model": "local"})).await.expect(201);

    let address: std::net::SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(4096).unwrap();
    let stream = tcp.connect(address).await.unwrap();
    let (mut socket, _): (Socket, _) =
        tokio_tungstenite::client_async(app.ws_url(&token), MaybeTlsStream::Plain(stream)).await.expect("upgrade");
    send(&mut socket, json!({"type": "chat", "message": "tell me everything", "agent_id": streamer.data()["id"], "request_id": "long"})).await;
    // The client pauses (well within the ping bound) while its own stream piles up...
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // ...and a chat made elsewhere is broadcast to it meanwhile.
    app.post("/api/v1/chat", &token, json!({"message": "quick one", "agent_id": local.data()["id"]}))
        .await
        .expect(201);

    // Then it reads everything: its own answer whole, the broadcast, and no close.
    let (mut deltas, mut response, mut broadcast) = (0, false, false);
    while !(response && broadcast) {
        let frame = next(&mut socket).await;
        match frame["type"].as_str() {
            Some("delta") => deltas += 1,
            Some("response") => response = true,
            Some("message") => broadcast = true,
            _ => {}
        }
    }
    assert_eq!(deltas, 400);
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next(&mut socket).await["type"], "pong");
});
