//! `/ws` through tokio-tungstenite against the real server.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    connect_async,
    tungstenite::{
        client::IntoClientRequest, protocol::frame::coding::CloseCode, Error as WsError, Message,
    },
    MaybeTlsStream, WebSocketStream,
};

use crate::helpers::{spawn, spawn_on_slow_openai, spawn_with, TestApp, TEST_SECRET};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);

pub async fn connect(app: &TestApp, token: &str) -> Socket {
    connect_async(app.ws_url(token)).await.expect("upgrade").0
}

pub async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON frame (pings are answered by the library and skipped here).
pub async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a frame in time")
            .expect("socket open")
            .expect("frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON frame"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Frames up to and including the `response` (or `error`) for `request_id`.
async fn until_done(socket: &mut Socket, request_id: &str) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let frame = next(socket).await;
        let done = frame["request_id"] == request_id
            && (frame["type"] == "response" || frame["type"] == "error");
        frames.push(frame);
        if done {
            return frames;
        }
    }
}

/// The close code the server ends with.
async fn close_code(socket: &mut Socket) -> (CloseCode, String) {
    loop {
        match tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => return (frame.code, frame.reason.to_string()),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

pub fn refusal_status(result: Result<(Socket, impl Sized), WsError>) -> u16 {
    match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("the upgrade should have been refused"),
    }
}

db_test!(async fn upgrades_need_a_valid_token_and_origin(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let base = app.address.replacen("http", "ws", 1);
    assert_eq!(refusal_status(connect_async(format!("{base}/ws")).await), 401);
    assert_eq!(refusal_status(connect_async(app.ws_url("not-a-token")).await), 401);

    let mut foreign = app.ws_url(&token).into_client_request().unwrap();
    foreign.headers_mut().insert("origin", "https://evil.example".parse().unwrap());
    assert_eq!(refusal_status(connect_async(foreign).await), 403);

    let mut with_header = format!("{base}/ws").into_client_request().unwrap();
    with_header.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    with_header.headers_mut().insert("origin", "http://localhost:5173".parse().unwrap());
    let (mut socket, _) = connect_async(with_header).await.expect("header auth and a listed origin");
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next(&mut socket).await, json!({"type": "pong"}));
});

db_test!(async fn bad_frames_get_errors_and_the_socket_stays_open(backend) {
    let app = spawn_with(backend, |config| config.http.body_limit_bytes = 4096).await;
    let (token, _) = app.user().await;
    let mut socket = connect(&app, &token).await;
    let cases = [
        ("{not json".to_owned(), "bad_request"),
        ("[1, 2, 3]".to_owned(), "bad_request"),
        ("\"hello\"".to_owned(), "bad_request"),
        (json!({"type": "dance"}).to_string(), "unknown_type"),
        (json!({"type": "chat", "request_id": "r1"}).to_string(), "validation_error"),
        (json!({"type": "cancel"}).to_string(), "validation_error"),
        (json!({"type": "chat", "message": "x".repeat(5000)}).to_string(), "payload_too_large"),
        (json!({"type": "chat", "message": "   ", "request_id": "empty"}).to_string(), "validation_error"),
        (json!({"type": "cancel", "request_id": "nothing"}).to_string(), "not_found"),
    ];
    for (frame, code) in cases {
        socket.send(Message::Text(frame.clone().into())).await.unwrap();
        let reply = next(&mut socket).await;
        assert_eq!((reply["type"].as_str(), reply["code"].as_str()), (Some("error"), Some(code)), "{frame}");
        assert!(reply["content"].is_string());
    }
    send(&mut socket, json!({"type": "chat", "message": "hi", "agent_id": 424242, "request_id": "q", "session_id": "s-9"})).await;
    let refused = next(&mut socket).await;
    assert_eq!((refused["code"].as_str(), refused["request_id"].as_str(), refused["session_id"].as_str()), (Some("not_found"), Some("q"), Some("s-9")));
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next(&mut socket).await["type"], "pong", "still open");
});

db_test!(async fn chats_stream_in_order_with_their_request_id(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let mut socket = connect(&app, &token).await;
    send(&mut socket, json!({"type": "chat", "message": "explain this", "code_context": "fn double(x: u32) -> u32 { x * 2 }", "request_id": "r1"})).await;
    let frames = until_done(&mut socket, "r1").await;
    assert!(frames.iter().all(|f| f["request_id"] == "r1"));
    assert_eq!((frames[0]["type"].as_str(), frames[0]["content"].as_str()), (Some("status"), Some("thinking")));
    assert!(frames.iter().any(|f| f["type"] == "status" && f["content"] == "thinking" && f["agent"] == "Codebase Sherpa"));
    let deltas: Vec<&Value> = frames.iter().filter(|f| f["type"] == "delta").collect();
    assert!(!deltas.is_empty());
    for (i, delta) in deltas.iter().enumerate() {
        assert_eq!(delta["seq"], i as u64);
    }
    let response = frames.last().unwrap();
    assert_eq!(response["type"], "response");
    assert_eq!(response["content"], response["chat"]["result"], "structured answer as content");
    let session = response["session_id"].as_str().unwrap();
    assert_eq!(response["chat"]["session_id"], session);
    assert!(deltas.iter().all(|d| d["session_id"] == session));

    // The seed's clients send no type; it is a chat all the same, and history is shared with REST.
    send(&mut socket, json!({"message": "hello again", "session_id": session})).await;
    let reply = loop {
        let frame = next(&mut socket).await;
        if frame["type"] == "response" {
            break frame;
        }
    };
    assert!(reply["request_id"].is_string(), "a request id is made up when none is given");
    let history = app.get(&format!("/api/v1/chat?session_id={session}"), &token).await.expect(200);
    assert_eq!(history.data()["total"], 2);

    // Small talk is answered by the orchestrator that routed it: one status, not two.
    send(&mut socket, json!({"type": "chat", "message": "hello", "request_id": "h1"})).await;
    let frames = until_done(&mut socket, "h1").await;
    let statuses: Vec<&Value> = frames.iter().filter(|f| f["type"] == "status").collect();
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0]["agent"], frames.last().unwrap()["chat"]["agent"]);
});

db_test!(async fn several_chats_share_one_socket(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let mut socket = connect(&app, &token).await;
    send(&mut socket, json!({"type": "chat", "message": "review this", "code_context": "x = eval(y)", "request_id": "a"})).await;
    send(&mut socket, json!({"type": "chat", "message": "hello", "request_id": 2})).await;
    let mut done = std::collections::BTreeMap::new();
    while done.len() < 2 {
        let frame = next(&mut socket).await;
        if frame["type"] == "response" {
            done.insert(frame["request_id"].as_str().unwrap().to_owned(), frame["chat"]["agent"].clone());
        }
    }
    assert_eq!(done["a"], "Review Monk");
    assert_eq!(done["2"], "Orchestrator");
});

db_test!(async fn cancel_keeps_the_partial_answer(backend) {
    let app = spawn_on_slow_openai(backend).await;
    let (token, _) = app.user().await;
    let agent = app.post("/api/v1/agents", &token, json!({"name": "Writer"})).await.expect(201);
    let agent_id = agent.data()["id"].as_i64().unwrap();
    let mut socket = connect(&app, &token).await;
    send(&mut socket, json!({"type": "chat", "message": "a long story", "agent_id": agent_id, "request_id": "long"})).await;
    let mut deltas = 0;
    while deltas < 2 {
        if next(&mut socket).await["type"] == "delta" {
            deltas += 1;
        }
    }
    send(&mut socket, json!({"type": "cancel", "request_id": "long"})).await;
    let frames = until_done(&mut socket, "long").await;
    let response = frames.last().unwrap();
    assert_eq!(response["type"], "response");
    assert_eq!(response["chat"]["complete"], false);
    assert!(response["chat"]["response"].as_str().unwrap().starts_with("piece0 piece1"));
    let status = app.get(&format!("/api/v1/agents/{agent_id}"), &token).await.expect(200);
    assert_eq!(status.data()["status"], "active");
});

db_test!(async fn chats_reach_the_users_other_sockets_only(backend) {
    let app = spawn(backend).await;
    let (alice, _) = app.user().await;
    let (bob, _) = app.user().await;
    let mut phone = connect(&app, &alice).await;
    let mut laptop = connect(&app, &alice).await;
    let mut bobs = connect(&app, &bob).await;

    send(&mut phone, json!({"type": "chat", "message": "hello from the phone", "request_id": "p1"})).await;
    let response = until_done(&mut phone, "p1").await.pop().unwrap();
    let broadcast = next(&mut laptop).await;
    assert_eq!(broadcast["type"], "message");
    assert_eq!(broadcast["chat"], response["chat"]);

    let rest = app.post("/api/v1/chat", &alice, json!({"message": "hello from REST"})).await.expect(201);
    for socket in [&mut phone, &mut laptop] {
        let frame = next(socket).await;
        assert_eq!((frame["type"].as_str(), &frame["chat"]), (Some("message"), rest.data()));
    }
    // Bob saw none of it: his next frame is the answer to his own ping.
    send(&mut bobs, json!({"type": "ping"})).await;
    assert_eq!(next(&mut bobs).await["type"], "pong");
    // And the phone did not get its own chat back as a broadcast.
    send(&mut phone, json!({"type": "ping"})).await;
    assert_eq!(next(&mut phone).await["type"], "pong");
});

pub async fn open_sockets(app: &TestApp) -> u64 {
    let text = app.metrics().await;
    text.lines()
        .find_map(|line| line.strip_prefix("codesherpa_websocket_connections "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the gauge is exported")
}

db_test!(async fn a_socket_that_stops_reading_is_closed_not_starved(backend) {
    let app = spawn_with(backend, |config| config.ws.queue_capacity = 2).await;
    let (token, _) = app.user().await;
    // A client that never reads, with a small fixed receive buffer.
    let address: std::net::SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(4096).unwrap();
    let stream = tcp.connect(address).await.unwrap();
    let (mut slow, _) = tokio_tungstenite::client_async(app.ws_url(&token), MaybeTlsStream::Plain(stream))
        .await
        .expect("upgrade");
    let mut reader = connect(&app, &token).await;
    assert_eq!(open_sockets(&app).await, 2);
    // Large chats fill the slow socket's TCP buffers, then its queue.
    let message = "y".repeat(30_000);
    let mut closed = false;
    for _ in 0..600 {
        app.post("/api/v1/chat", &token, json!({"message": message})).await.expect(201);
        // The reader keeps up and is never cut off.
        assert_eq!(next(&mut reader).await["type"], "message");
        if open_sockets(&app).await == 1 {
            closed = true;
            break;
        }
    }
    assert!(closed, "the slow socket was never closed");
    // What it had buffered ends with the reason it was closed.
    loop {
        match tokio::time::timeout(WAIT, slow.next()).await.expect("frames in time") {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 4008, "{}", frame.reason);
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("unexpected end {other:?}"),
        }
    }
    send(&mut reader, json!({"type": "ping"})).await;
    assert_eq!(next(&mut reader).await["type"], "pong");
});

db_test!(async fn shutdown_closes_sockets_with_1001(backend) {
    let mut app = spawn(backend).await;
    let (token, _) = app.user().await;
    let mut socket = connect(&app, &token).await;
    send(&mut socket, json!({"type": "ping"})).await;
    next(&mut socket).await;
    app.begin_shutdown();
    let (code, _) = close_code(&mut socket).await;
    assert_eq!(code, CloseCode::Away);
});

fn short_lived_token(user_id: i64, seconds: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": user_id.to_string(), "iat": now, "exp": now + seconds, "jti": "short", "type": "access"});
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .unwrap()
}

db_test!(async fn expired_tokens_close_the_socket_unless_renewed(backend) {
    let app = spawn(backend).await;
    let (token, login) = app.user().await;
    let user_id = login["user"]["id"].as_i64().unwrap();

    let mut expiring = connect(&app, &short_lived_token(user_id, 2)).await;
    let (code, reason) = close_code(&mut expiring).await;
    assert_eq!((u16::from(code), reason.contains("expired")), (4401, true));

    let mut renewed = connect(&app, &short_lived_token(user_id, 2)).await;
    send(&mut renewed, json!({"type": "auth", "token": token})).await;
    assert_eq!(next(&mut renewed).await["type"], "auth");
    tokio::time::sleep(Duration::from_secs(3)).await;
    send(&mut renewed, json!({"type": "ping"})).await;
    assert_eq!(next(&mut renewed).await["type"], "pong", "still open after the first token expired");
});

db_test!(async fn deactivated_users_are_dropped(backend) {
    let app = spawn_with(backend, |config| config.ws.ping_interval = Duration::from_millis(300)).await;
    let (token, login) = app.user().await;
    let mut socket = connect(&app, &token).await;
    app.deactivate(login["user"]["id"].as_i64().unwrap()).await;
    let (code, _) = close_code(&mut socket).await;
    assert_eq!(u16::from(code), 4403);
});
