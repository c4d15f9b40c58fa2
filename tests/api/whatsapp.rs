//! WhatsApp (SPEC §6.3) against a local Graph API that checks the real request shape,
//! with notifications shaped and signed (`X-Hub-Signature-256`) as Meta sends them.

use std::time::Duration;

use codesherpa::{integrations::signature::sign_sha256, with_pool};
use futures_util::{future::join_all, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::{connect_async, tungstenite::Message as Frame};
use wiremock::{
    matchers::{body_partial_json, header, method, path},
    Mock, MockServer, Request, ResponseTemplate,
};

use crate::helpers::{spawn_with, Backend, Reply, ServerProcess, TestApp};

pub(crate) const APP_SECRET: &str = "meta-app-secret";
pub(crate) const VERIFY_TOKEN: &str = "verify-me-please";
pub(crate) const GRAPH_TOKEN: &str = "EAAG-graph-token";
pub(crate) const PHONE_NUMBER_ID: &str = "106540352242922";
pub(crate) const MESSAGES_PATH: &str = "/v21.0/106540352242922/messages";
pub(crate) const WEBHOOK: &str = "/api/v1/integrations/whatsapp/webhook";

/// A Graph API that accepts read receipts and text messages (answering a fresh wamid).
pub(crate) async fn graph() -> MockServer {
    let server = MockServer::start().await;
    mount_receipts(&server).await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(header(
            "authorization",
            format!("Bearer {GRAPH_TOKEN}").as_str(),
        ))
        .and(body_partial_json(
            json!({"messaging_product": "whatsapp", "type": "text"}),
        ))
        .respond_with(sent())
        .mount(&server)
        .await;
    server
}

pub(crate) async fn mount_receipts(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(header(
            "authorization",
            format!("Bearer {GRAPH_TOKEN}").as_str(),
        ))
        .and(body_partial_json(
            json!({"messaging_product": "whatsapp", "status": "read"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .mount(server)
        .await;
}

pub(crate) fn sent() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": "15551230001", "wa_id": "15551230001"}],
        "messages": [{"id": format!("wamid.OUT{}", uuid::Uuid::new_v4().simple())}]
    }))
}

pub(crate) async fn app_with(
    backend: Backend,
    graph: &MockServer,
    configure: impl FnOnce(&mut codesherpa::config::Config),
) -> TestApp {
    let url = graph.uri();
    spawn_with(backend, move |config| {
        config.whatsapp.verify_token = Some(VERIFY_TOKEN.into());
        config.whatsapp.app_secret = Some(APP_SECRET.into());
        config.whatsapp.access_token = Some(GRAPH_TOKEN.into());
        config.whatsapp.api_url = url;
        config.whatsapp.api_version = "v21.0".into();
        configure(config);
    })
    .await
}

pub(crate) async fn app(backend: Backend, graph: &MockServer) -> TestApp {
    app_with(backend, graph, |_| {}).await
}

pub(crate) fn text(from: &str, wamid: &str, body: &str) -> Value {
    json!({"from": from, "id": wamid, "timestamp": "1750857384", "type": "text", "text": {"body": body}})
}

/// Meta's notification: one entry, one change, these messages.
pub(crate) fn notification(messages: Vec<Value>) -> Value {
    let from = messages
        .first()
        .and_then(|m| m["from"].as_str())
        .unwrap_or("15551230001");
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Kerry Fisher"}, "wa_id": from}],
            "messages": messages
        }}]}]
    })
}

/// Posts `body` signed with `secret` as Meta does.
pub(crate) async fn deliver_signed(app: &TestApp, body: &Value, secret: &str) -> Reply {
    let raw = serde_json::to_vec(body).unwrap();
    app.send(
        app.client
            .post(app.url(WEBHOOK))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sign_sha256(secret.as_bytes(), &raw))
            .body(raw),
    )
    .await
}

pub(crate) async fn deliver(app: &TestApp, body: &Value) -> Reply {
    deliver_signed(app, body, APP_SECRET).await.expect(200)
}

pub(crate) async fn scalar(app: &TestApp, sql: &str) -> i64 {
    with_pool!(&app.db, |pool| sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await)
    .unwrap()
}

/// Waits until `expected` messages are stored and none is waiting or running.
pub(crate) async fn settled(app: &TestApp, expected: i64) {
    for _ in 0..600 {
        let stored = scalar(app, "SELECT COUNT(*) FROM whatsapp_messages").await;
        let open = scalar(
            app,
            "SELECT COUNT(*) FROM whatsapp_messages WHERE status IN ('queued', 'running')",
        )
        .await;
        if stored >= expected && open == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("WhatsApp replies did not settle");
}

pub(crate) async fn status_of(app: &TestApp, wamid: &str) -> (String, Option<String>) {
    with_pool!(&app.db, |pool| {
        sqlx::query_as::<_, (String, Option<String>)>(
            "SELECT status, reason FROM whatsapp_messages WHERE wamid = $1",
        )
        .bind(wamid)
        .fetch_one(pool)
        .await
    })
    .unwrap()
}

/// A request's JSON body (`null` for the bodiless GETs of media).
pub(crate) fn body_of(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap_or(Value::Null)
}

/// The text messages the Graph API received, in order: (to, body).
pub(crate) async fn texts(graph: &MockServer) -> Vec<(String, String)> {
    graph
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(body_of)
        .filter(|b| b["type"] == "text")
        .map(|b| {
            let to = b["to"]
                .as_str()
                .or(b["recipient"].as_str())
                .unwrap_or_default()
                .to_owned();
            (to, b["text"]["body"].as_str().unwrap().to_owned())
        })
        .collect()
}

pub(crate) async fn receipts(graph: &MockServer) -> Vec<String> {
    graph
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(body_of)
        .filter(|b| b["status"] == "read")
        .map(|b| b["message_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Links `number` to the user behind `token` the way a phone does.
pub(crate) async fn link(app: &TestApp, graph: &MockServer, token: &str, number: &str) {
    let code = app
        .post("/api/v1/user/whatsapp/link", token, json!({}))
        .await
        .expect(201);
    let code = code.data()["code"].as_str().unwrap().to_owned();
    let wamid = format!("wamid.link{}", uuid::Uuid::new_v4().simple());
    let before = scalar(app, "SELECT COUNT(*) FROM whatsapp_messages").await;
    deliver(
        app,
        &notification(vec![text(number, &wamid, &format!("link {code}"))]),
    )
    .await;
    settled(app, before + 1).await;
    let me = app.get("/api/v1/user/me", token).await.expect(200);
    assert_eq!(me.data()["whatsapp_number"], number, "linked by the phone");
    graph.reset().await;
    mount_receipts(graph).await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(body_partial_json(json!({"type": "text"})))
        .respond_with(sent())
        .mount(graph)
        .await;
}

/// A fresh link code for the user behind `token`.
async fn new_code(app: &TestApp, token: &str) -> String {
    let code = app
        .post("/api/v1/user/whatsapp/link", token, json!({}))
        .await
        .expect(201);
    code.data()["code"].as_str().unwrap().to_owned()
}

/// A well-formed code that is not `code`.
fn wrong_for(code: &str) -> &'static str {
    if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    }
}

/// Sends `link <code>` from `number` and returns the reply it got.
async fn try_code(app: &TestApp, graph: &MockServer, number: &str, code: &str) -> String {
    let before = scalar(app, "SELECT COUNT(*) FROM whatsapp_messages").await;
    let wamid = format!("wamid.try{}", uuid::Uuid::new_v4().simple());
    deliver(
        app,
        &notification(vec![text(number, &wamid, &format!("link {code}"))]),
    )
    .await;
    settled(app, before + 1).await;
    let (to, reply) = texts(graph).await.last().unwrap().clone();
    assert_eq!(to, number);
    reply
}

async fn linked_number(app: &TestApp, token: &str) -> Value {
    app.get("/api/v1/user/me", token).await.expect(200).data()["whatsapp_number"].clone()
}

pub(crate) async fn chats_of(app: &TestApp, token: &str, number: &str) -> Vec<Value> {
    let reply = app
        .get(&format!("/api/v1/chat?session_id=whatsapp:{number}"), token)
        .await
        .expect(200);
    reply.data()["items"].as_array().unwrap().clone()
}

db_test!(async fn the_handshake_echoes_the_bare_challenge_only_for_the_right_token(backend) {
    let graph = graph().await;
    let app = app(backend, &graph).await;
    let ok = app
        .client
        .get(app.url(&format!("{WEBHOOK}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444")))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    for query in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        "hub.mode=unsubscribe&hub.verify_token=verify-me-please&hub.challenge=1",
        "hub.verify_token=verify-me-please&hub.challenge=1",
        "",
    ] {
        let refused = app.send(app.client.get(app.url(&format!("{WEBHOOK}?{query}")))).await.expect(403);
        assert_eq!(refused.code(), "forbidden");
    }
    let unconfigured = spawn_with(backend, |_| {}).await;
    unconfigured
        .send(unconfigured.client.get(unconfigured.url(&format!("{WEBHOOK}?hub.mode=subscribe&hub.verify_token=&hub.challenge=1"))))
        .await
        .expect(403);
});

db_test!(async fn notifications_need_the_app_secrets_signature(backend) {
    let graph = graph().await;
    let app = app(backend, &graph).await;
    let body = notification(vec![text("15551230001", "wamid.SIG1", "hello")]);
    let missing = app
        .send(app.client.post(app.url(WEBHOOK)).json(&body))
        .await
        .expect(401);
    assert_eq!(missing.code(), "unauthorized");
    deliver_signed(&app, &body, "another-secret").await.expect(401);
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM whatsapp_messages").await, 0, "nothing stored");
    let raw = serde_json::to_vec(&body).unwrap();
    let not_json = app
        .send(
            app.client
                .post(app.url(WEBHOOK))
                .header("content-type", "text/plain")
                .header("x-hub-signature-256", sign_sha256(APP_SECRET.as_bytes(), &raw))
                .body(raw),
        )
        .await
        .expect(415);
    assert_eq!(not_json.code(), "unsupported_media_type");
    let accepted = deliver(&app, &body).await;
    assert_eq!(accepted.data()["queued"], 1);

    let unconfigured = spawn_with(backend, |_| {}).await;
    let refused = deliver_signed(&unconfigured, &body, APP_SECRET).await.expect(503);
    assert_eq!(refused.code(), "not_configured");
});

db_test!(async fn unknown_numbers_get_one_link_notice_an_hour_and_no_chat(backend) {
    let graph = graph().await;
    let app = app(backend, &graph).await;
    deliver(&app, &notification(vec![text("15551230001", "wamid.U1", "hi there")])).await;
    settled(&app, 1).await;
    deliver(&app, &notification(vec![text("15551230001", "wamid.U2", "hello??")])).await;
    settled(&app, 2).await;
    let sent = texts(&graph).await;
    assert_eq!(sent.len(), 1, "one notice within the hour: {sent:?}");
    assert_eq!(sent[0].0, "15551230001");
    assert!(sent[0].1.contains("link"), "{}", sent[0].1);
    assert_eq!(receipts(&graph).await, ["wamid.U1", "wamid.U2"], "both marked read");
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM chats").await, 0, "no chat stored for anyone");
    assert_eq!(status_of(&app, "wamid.U2").await.0, "done");
});

db_test!(async fn a_phone_links_with_a_single_use_code_and_moves_between_owners(backend) {
    let graph = graph().await;
    let app = app(backend, &graph).await;
    let (ada, _) = app.user().await;
    let (bob, _) = app.user().await;

    let first = app.post("/api/v1/user/whatsapp/link", &ada, json!({})).await.expect(201);
    let code = first.data()["code"].as_str().unwrap().to_owned();
    assert!(code.len() == 8 && code.bytes().all(|b| b.is_ascii_digit()), "{code}");
    assert!(first.data()["instructions"].as_str().unwrap().contains(&format!("link {code}")));
    let expires: chrono::DateTime<chrono::Utc> = first.data()["expires_at"].as_str().unwrap().parse().unwrap();
    let minutes = (expires - chrono::Utc::now()).num_seconds();
    assert!((590..=600).contains(&minutes), "ten minutes: {minutes} s");
    // One live code per user: a new code replaces the first.
    let second = app.post("/api/v1/user/whatsapp/link", &ada, json!({})).await.expect(201);
    let code2 = second.data()["code"].as_str().unwrap().to_owned();
    if code2 != code {
        deliver(&app, &notification(vec![text("15551230001", "wamid.L0", &format!("link {code}"))])).await;
        settled(&app, 1).await;
        assert!(texts(&graph).await.last().unwrap().1.contains("not valid"));
    }
    let before = scalar(&app, "SELECT COUNT(*) FROM whatsapp_messages").await;
    deliver(&app, &notification(vec![text("15551230001", "wamid.L1", &format!("LINK {code2}"))])).await;
    settled(&app, before + 1).await;
    assert!(texts(&graph).await.last().unwrap().1.contains("linked"));
    assert_eq!(app.get("/api/v1/user/me", &ada).await.expect(200).data()["whatsapp_number"], "15551230001");

    // Reused by another phone: refused, nothing changes.
    deliver(&app, &notification(vec![text("15559990000", "wamid.L2", &format!("link {code2}"))])).await;
    settled(&app, before + 2).await;
    let last = texts(&graph).await.last().unwrap().clone();
    assert_eq!(last.0, "15559990000");
    assert!(last.1.contains("not valid"), "{}", last.1);

    // Expired: refused.
    let bobs = app.post("/api/v1/user/whatsapp/link", &bob, json!({})).await.expect(201);
    let bob_code = bobs.data()["code"].as_str().unwrap().to_owned();
    with_pool!(&app.db, |pool| sqlx::query("UPDATE whatsapp_link_codes SET expires_at = $1 WHERE code = $2")
        .bind(chrono::Utc::now() - chrono::Duration::minutes(1))
        .bind(&bob_code)
        .execute(pool)
        .await
        .map(drop))
    .unwrap();
    deliver(&app, &notification(vec![text("15551230001", "wamid.L3", &format!("link {bob_code}"))])).await;
    settled(&app, before + 3).await;
    assert!(texts(&graph).await.last().unwrap().1.contains("not valid"));
    assert_eq!(app.get("/api/v1/user/me", &ada).await.expect(200).data()["whatsapp_number"], "15551230001");

    // A fresh code moves the number from Ada to Bob.
    let fresh = app.post("/api/v1/user/whatsapp/link", &bob, json!({})).await.expect(201);
    let fresh = fresh.data()["code"].as_str().unwrap().to_owned();
    deliver(&app, &notification(vec![text("15551230001", "wamid.L4", &format!("link {fresh}"))])).await;
    settled(&app, before + 4).await;
    assert_eq!(app.get("/api/v1/user/me", &bob).await.expect(200).data()["whatsapp_number"], "15551230001");
    assert!(app.get("/api/v1/user/me", &ada).await.expect(200).data()["whatsapp_number"].is_null());

    // Unlinking.
    let unlinked = app.delete("/api/v1/user/whatsapp", &bob).await.expect(200);
    assert!(unlinked.data()["whatsapp_number"].is_null());
    assert!(app.get("/api/v1/user/me", &bob).await.expect(200).data()["whatsapp_number"].is_null());
    app.call(reqwest::Method::POST, "/api/v1/user/whatsapp/link", None, None).await.expect(401);
    app.call(reqwest::Method::DELETE, "/api/v1/user/whatsapp", None, None).await.expect(401);
});

db_test!(async fn link_codes_cannot_be_guessed_from_one_number(backend) {
    let graph = graph().await;
    // Registering and logging in spend two of the auth budget's three, on the test's IP.
    let app = app_with(backend, &graph, |config| config.http.rate_limit_auth_per_minute = 3).await;
    let (token, _) = app.user().await;
    let code = app.post("/api/v1/user/whatsapp/link", &token, json!({})).await.expect(201);
    let code = code.data()["code"].as_str().unwrap().to_owned();
    let wrong = wrong_for(&code);
    for n in 0..3 {
        deliver(&app, &notification(vec![text("15551230001", &format!("wamid.G{n}"), &format!("link {wrong}"))])).await;
        settled(&app, n + 1).await;
        assert!(texts(&graph).await.last().unwrap().1.contains("not valid"));
    }
    // The right code from the guessing number is refused while it is over the budget…
    deliver(&app, &notification(vec![text("15551230001", "wamid.G3", &format!("link {code}"))])).await;
    settled(&app, 4).await;
    let last = texts(&graph).await.last().unwrap().1.clone();
    assert!(last.contains("Too many link attempts"), "{last}");
    assert!(app.get("/api/v1/user/me", &token).await.expect(200).data()["whatsapp_number"].is_null());
    // …and works from a phone that did not guess.
    deliver(&app, &notification(vec![text("15559990000", "wamid.G4", &format!("link {code}"))])).await;
    settled(&app, 5).await;
    assert_eq!(app.get("/api/v1/user/me", &token).await.expect(200).data()["whatsapp_number"], "15559990000");
});

db_test!(async fn guesses_spread_over_many_numbers_stop_at_the_budget_of_all_numbers(backend) {
    let graph = graph().await;
    let app = app_with(backend, &graph, |config| config.whatsapp.link_attempts_per_minute = 3).await;
    let (token, _) = app.user().await;
    let code = new_code(&app, &token).await;
    let wrong = wrong_for(&code);
    for n in 1..=3 {
        let reply = try_code(&app, &graph, &format!("1555000000{n}"), wrong).await;
        assert!(reply.contains("not valid"), "{reply}");
    }
    let reply = try_code(&app, &graph, "15550000004", wrong).await;
    assert!(reply.contains("Too many link attempts right now"), "{reply}");
    // The right code, from a number that never guessed, is not checked in the same minute:
    // it links nothing and stays usable.
    let reply = try_code(&app, &graph, "15550000005", &code).await;
    assert!(reply.contains("Too many link attempts right now"), "{reply}");
    assert!(linked_number(&app, &token).await.is_null());
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM whatsapp_link_codes").await, 1, "the code is still live");
});

db_test!(async fn only_wrong_codes_that_were_checked_spend_the_budget_of_all_numbers(backend) {
    let graph = graph().await;
    // Registering and logging in spend two of the auth budget's three, on the test's IP;
    // each number's own link budget is three too.
    let app = app_with(backend, &graph, |config| {
        config.http.rate_limit_auth_per_minute = 3;
        config.whatsapp.link_attempts_per_minute = 4;
    })
    .await;
    let (token, _) = app.user().await;
    let code = new_code(&app, &token).await;
    let wrong = wrong_for(&code);
    // One number: three wrong codes are checked, then its own budget refuses it without
    // spending the shared one.
    for n in 0..5 {
        let reply = try_code(&app, &graph, "15551230001", wrong).await;
        let expected = if n < 3 { "not valid" } else { "Too many link attempts from this number" };
        assert!(reply.contains(expected), "attempt {n}: {reply}");
    }
    // Three of four spent: a right code is checked, and gives its check back.
    let reply = try_code(&app, &graph, "15551230002", &code).await;
    assert!(reply.contains("now linked"), "{reply}");
    assert_eq!(linked_number(&app, &token).await, "15551230002");
    let reply = try_code(&app, &graph, "15551230003", wrong).await;
    assert!(reply.contains("not valid"), "the fourth failed check: {reply}");
    let reply = try_code(&app, &graph, "15551230004", wrong).await;
    assert!(reply.contains("Too many link attempts right now"), "{reply}");
    // A code of another length cannot match any code: refused, without a check to wait for.
    let reply = try_code(&app, &graph, "15551230005", "123456").await;
    assert!(reply.contains("not valid"), "{reply}");
});

/// Settings for an instance that shares the link budget of all numbers through Redis.
fn sharing_link_budget(
    redis: String,
    prefix: String,
    budget: u32,
) -> impl FnOnce(&mut codesherpa::config::Config) {
    move |config| {
        config.redis.url = Some(redis);
        config.redis.prefix = prefix;
        config.whatsapp.link_attempts_per_minute = budget;
    }
}

db_test!(needs_redis async fn the_budget_of_all_numbers_is_shared_by_instances_through_redis(backend) {
    let redis = crate::helpers::redis_url();
    let prefix = format!("cs-test-{}", uuid::Uuid::new_v4().simple());
    // Two instances (each with its own database and queue, so each answers what it got)
    // sharing one Redis namespace.
    let (graph_a, graph_b) = (graph().await, graph().await);
    let a = app_with(backend, &graph_a, sharing_link_budget(redis.clone(), prefix.clone(), 2)).await;
    let b = app_with(backend, &graph_b, sharing_link_budget(redis, prefix, 2)).await;
    let (token, _) = b.user().await;
    let code = new_code(&b, &token).await;
    let wrong = wrong_for(&code);
    let reply = try_code(&a, &graph_a, "15552220001", wrong).await;
    assert!(reply.contains("not valid"), "{reply}");
    // A right code on B gives its check back to the shared budget…
    let reply = try_code(&b, &graph_b, "15552220002", &code).await;
    assert!(reply.contains("now linked"), "{reply}");
    let reply = try_code(&a, &graph_a, "15552220003", wrong).await;
    assert!(reply.contains("not valid"), "the second failed check: {reply}");
    // …and B sees the two checks A made.
    let reply = try_code(&b, &graph_b, "15552220004", wrong).await;
    assert!(reply.contains("Too many link attempts right now"), "{reply}");
});

db_test!(async fn a_linked_number_chats_with_the_users_agents_and_their_sockets_see_it(backend) {
    let graph = graph().await;
    let app = app(backend, &graph).await;
    let (token, _) = app.user().await;
    link(&app, &graph, &token, "15551230001").await;
    let (mut socket, _) = connect_async(app.ws_url(&token)).await.expect("upgrade");

    deliver(&app, &notification(vec![text("15551230001", "wamid.C1", "Explain this code: fn add(a: i32, b: i32) -> i32 { a + b }")])).await;
    settled(&app, 2).await;
    let chats = chats_of(&app, &token, "15551230001").await;
    assert_eq!(chats.len(), 1);
    let chat = &chats[0];
    assert_eq!(chat["session_id"], "whatsapp:15551230001");
    let sent = texts(&graph).await;
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|(to, body)| to == "15551230001" && body.chars().count() <= 4096));
    let joined: String = sent.iter().map(|(_, body)| body.as_str()).collect();
    let response = chat["response"].as_str().unwrap();
    let first_line = response.lines().find(|l| !l.trim().is_empty() && !l.starts_with('#')).unwrap();
    assert!(joined.contains(first_line.trim_matches('*')), "reply carries the answer: {joined}");
    assert!(!joined.contains("**"), "Markdown bold became WhatsApp bold: {joined}");
    assert_eq!(receipts(&graph).await, ["wamid.C1"]);

    let frame = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(Ok(Frame::Text(text))) = socket.next().await {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "message" {
                    return value;
                }
            }
        }
    })
    .await
    .expect("broadcast");
    assert_eq!(frame["chat"]["id"], chat["id"]);
});

db_test!(async fn at_agent_name_addresses_one_of_the_users_agents(backend) {
    let graph = graph().await;
    let app = app(backend, &graph).await;
    let (token, _) = app.user().await;
    link(&app, &graph, &token, "15551230001").await;
    deliver(&app, &notification(vec![text("15551230001", "wamid.A1", "@review monk: let password = \"hunter2\"; x.unwrap();")])).await;
    settled(&app, 2).await;
    let chats = chats_of(&app, &token, "15551230001").await;
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0]["agent"], "Review Monk");
    let agents = app.get("/api/v1/agents?limit=100", &token).await.expect(200);
    let monk = agents.data()["items"].as_array().unwrap().iter().find(|a| a["name"] == "Review Monk").unwrap().clone();
    assert_eq!(chats[0]["agent_id"], monk["id"]);
    assert_eq!(chats[0]["message"], "let password = \"hunter2\"; x.unwrap();");
});

db_test!(async fn every_message_of_a_batch_is_answered_and_statuses_are_acknowledged(backend) {
    let graph = graph().await;
    let app = app(backend, &graph).await;
    let (token, _) = app.user().await;
    link(&app, &graph, &token, "15551230001").await;
    let value = |messages: Vec<Value>| json!({"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
        "messages": messages});
    let batch = json!({"object": "whatsapp_business_account", "entry": [
        {"id": "1", "changes": [{"field": "messages", "value": value(vec![
            text("15551230001", "wamid.B1", "hello one"), text("15551230001", "wamid.B2", "hello two")])}]},
        {"id": "2", "changes": [{"field": "messages", "value": value(vec![text("15551230001", "wamid.B3", "hello three")])}]}
    ]});
    let reply = deliver(&app, &batch).await;
    assert_eq!(reply.data()["messages"], 3);
    assert_eq!(reply.data()["queued"], 3);
    settled(&app, 4).await;
    assert_eq!(chats_of(&app, &token, "15551230001").await.len(), 3);
    let mut read = receipts(&graph).await;
    read.sort();
    assert_eq!(read, ["wamid.B1", "wamid.B2", "wamid.B3"]);

    graph.reset().await;
    let statuses = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
        "statuses": [{"id": "wamid.OUT1", "status": "delivered", "timestamp": "1750857384", "recipient_id": "15551230001"}]}}]}]});
    let acknowledged = deliver(&app, &statuses).await;
    assert_eq!(acknowledged.data()["messages"], 0);
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM whatsapp_messages").await, 4);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(graph.received_requests().await.unwrap().is_empty(), "statuses cause no call");
});

db_test!(async fn duplicate_deliveries_sequential_or_concurrent_give_one_chat_and_one_reply(backend) {
    let graph = graph().await;
    let app = app(backend, &graph).await;
    let (token, _) = app.user().await;
    link(&app, &graph, &token, "15551230001").await;
    let body = notification(vec![text("15551230001", "wamid.D1", "what is a closure?")]);
    assert_eq!(deliver(&app, &body).await.data()["queued"], 1);
    assert_eq!(deliver(&app, &body).await.data()["queued"], 0, "a retry is a no-op");
    let concurrent = notification(vec![text("15551230001", "wamid.D2", "what is a trait?")]);
    let replies = join_all((0..8).map(|_| deliver_signed(&app, &concurrent, APP_SECRET))).await;
    let queued: i64 = replies.into_iter().map(|r| r.expect(200).data()["queued"].as_i64().unwrap()).sum();
    assert_eq!(queued, 1, "eight concurrent copies queue one reply");
    settled(&app, 3).await;
    assert_eq!(chats_of(&app, &token, "15551230001").await.len(), 2);
    let parts = scalar(&app, "SELECT COUNT(*) FROM whatsapp_reply_parts p JOIN whatsapp_messages m ON m.id = p.message_id \
         WHERE m.wamid IN ('wamid.D1', 'wamid.D2') AND p.sent_id IS NOT NULL").await;
    assert!(parts >= 2);
    assert_eq!(texts(&graph).await.len() as i64, parts, "each part of the two replies sent once");
    assert_eq!(receipts(&graph).await.len(), 2);
});

db_test!(async fn non_text_messages_get_a_text_only_reply(backend) {
    let graph = graph().await;
    let app = app(backend, &graph).await;
    let (token, _) = app.user().await;
    link(&app, &graph, &token, "15551230001").await;
    let image = json!({"from": "15551230001", "id": "wamid.I1", "timestamp": "1", "type": "image",
        "image": {"caption": "look", "mime_type": "image/jpeg", "sha256": "abc", "id": "2754859441498128"}});
    deliver(&app, &notification(vec![image])).await;
    settled(&app, 2).await;
    let sent = texts(&graph).await;
    assert_eq!(sent.len(), 1);
    assert!(sent[0].1.contains("text messages only"), "{}", sent[0].1);
    assert!(chats_of(&app, &token, "15551230001").await.is_empty());
});

db_test!(async fn senders_without_a_phone_number_are_handled_like_unknown_numbers(backend) {
    let graph = graph().await;
    let app = app(backend, &graph).await;
    let message = json!({"from_user_id": "US.13491208655302741918", "id": "wamid.Z1", "timestamp": "1", "type": "text", "text": {"body": "hi"}});
    let mut body = notification(vec![message.clone()]);
    body["entry"][0]["changes"][0]["value"]["contacts"] = json!([{"profile": {"name": "Z"}, "user_id": "US.13491208655302741918"}]);
    deliver(&app, &body).await;
    let mut again = message;
    again["id"] = json!("wamid.Z2");
    deliver(&app, &notification(vec![again])).await;
    settled(&app, 2).await;
    let sent = texts(&graph).await;
    assert_eq!(sent.len(), 1, "one notice an hour");
    assert_eq!(sent[0].0, "US.13491208655302741918");
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM chats").await, 0);
});

/// An OpenAI-compatible provider streaming `text` as the answer.
pub(crate) async fn provider_answering(text: &str) -> MockServer {
    let server = MockServer::start().await;
    let mut body = String::new();
    let chars: Vec<char> = text.chars().collect();
    for piece in chars.chunks(500) {
        let piece: String = piece.iter().collect();
        let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": piece}}]});
        body.push_str(&format!("data: {chunk}\n\n"));
    }
    body.push_str("data: [DONE]\n\n");
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .mount(&server)
        .await;
    server
}

db_test!(async fn a_long_answer_arrives_in_order_in_parts_of_at_most_4096_characters(backend) {
    let graph = graph().await;
    let line = |i: usize| format!("{i:04} नमस्ते दुनिया — résumé 👋🏽 the quick brown fox jumps over the lazy dog\n");
    let answer: String = (0..150).map(line).collect();
    let provider = provider_answering(&answer).await;
    let base = format!("{}/v1", provider.uri());
    let app = app_with(backend, &graph, move |config| {
        config.llm.provider = codesherpa::llm::ProviderKind::OpenAi;
        config.llm.openai_base_url = base;
        config.llm.openai_api_key = Some("sk-test".into());
    })
    .await;
    let (token, _) = app.user().await;
    link(&app, &graph, &token, "15551230001").await;
    deliver(&app, &notification(vec![text("15551230001", "wamid.LONG", "@Doc Sync document everything")])).await;
    settled(&app, 2).await;
    let sent = texts(&graph).await;
    assert!(sent.len() >= 3, "{} parts", sent.len());
    assert!(sent.iter().all(|(_, body)| body.chars().count() <= 4096));
    let joined: String = sent.iter().map(|(_, body)| body.as_str()).collect();
    assert_eq!(joined, answer.trim_end(), "in order, nothing lost");
    assert_eq!(chats_of(&app, &token, "15551230001").await[0]["response"], answer.trim_end());
});

db_test!(async fn outside_the_24_hour_window_is_permanent_and_not_retried(backend) {
    let graph = MockServer::start().await;
    mount_receipts(&graph).await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(body_partial_json(json!({"type": "text"})))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "(#131047) Re-engagement message", "type": "OAuthException", "code": 131047,
            "error_data": {"messaging_product": "whatsapp", "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
            "fbtrace_id": "AbCdEf"}})))
        .expect(1)
        .mount(&graph)
        .await;
    let app = app(backend, &graph).await;
    deliver(&app, &notification(vec![text("15551230001", "wamid.W1", "hello")])).await;
    settled(&app, 1).await;
    let (status, reason) = status_of(&app, "wamid.W1").await;
    assert_eq!(status, "failed");
    assert!(reason.unwrap().contains("131047"));
    graph.verify().await;
});

db_test!(async fn graph_server_errors_are_retried_until_the_reply_goes_out(backend) {
    let graph = MockServer::start().await;
    mount_receipts(&graph).await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(body_partial_json(json!({"type": "text"})))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"error": {"message": "Service temporarily unavailable", "code": 2}})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&graph)
        .await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(body_partial_json(json!({"type": "text"})))
        .respond_with(sent())
        .expect(1)
        .mount(&graph)
        .await;
    let app = app(backend, &graph).await;
    deliver(&app, &notification(vec![text("15551230001", "wamid.R1", "hello")])).await;
    settled(&app, 1).await;
    assert_eq!(status_of(&app, "wamid.R1").await.0, "done");
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM jobs WHERE dedupe_key = 'wamid.R1' AND attempts = 2").await, 1);
    assert_eq!(receipts(&graph).await, ["wamid.R1"], "the read receipt is not repeated");
    graph.verify().await;
});

db_test!(async fn a_crashed_run_is_resumed_without_resending_sent_parts(backend) {
    // As a kill -9 leaves things: one message stored and never started, one whose
    // reply was half sent when the instance died (its lease long expired).
    let graph = graph().await;
    let app = app(backend, &graph).await;
    let past = chrono::Utc::now() - chrono::Duration::minutes(5);
    with_pool!(&app.db, |pool| async {
        // One transaction, so the workers never see half of the picture.
        let mut tx = pool.begin().await?;
        for (wamid, number, body, started) in [("wamid.K1", "15551230001", "hi", true), ("wamid.K2", "15551230002", "hello", false)] {
            let id: i64 = sqlx::query_scalar("INSERT INTO whatsapp_messages (wamid, phone_number_id, sender_number, kind, body, read_marked, answered, created_at, updated_at) \
                VALUES ($1, $2, $3, 'text', $4, $5, $5, $6, $6) RETURNING id")
                .bind(wamid).bind(PHONE_NUMBER_ID).bind(number).bind(body).bind(started).bind(past)
                .fetch_one(&mut *tx).await?;
            // The job as a dead worker's claim leaves it: running, its lease long expired.
            sqlx::query("INSERT INTO jobs (kind, payload, dedupe_key, status, attempts, run_at, locked_by, locked_until, created_at, updated_at) \
                VALUES ('whatsapp.reply', $1, $2, $3, $4, $5, $6, $5, $5, $5)")
                .bind(sqlx::types::Json(json!({"message_id": id})))
                .bind(wamid)
                .bind(if started { "running" } else { "queued" })
                .bind(if started { 1 } else { 0 })
                .bind(past)
                .bind(started.then_some("a-dead-instance"))
                .execute(&mut *tx).await?;
            if started {
                sqlx::query("INSERT INTO whatsapp_reply_parts (message_id, seq, body, sent_id, sent_at) VALUES ($1, 0, 'part one', 'wamid.OUT0', $2)")
                    .bind(id).bind(past).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO whatsapp_reply_parts (message_id, seq, body) VALUES ($1, 1, 'part two')")
                    .bind(id).execute(&mut *tx).await?;
            }
        }
        tx.commit().await
    }
    .await)
    .unwrap();
    // Nothing wakes the worker: it finds both by polling, as after a restart.
    settled(&app, 2).await;
    let sent = texts(&graph).await;
    let to_first: Vec<_> = sent.iter().filter(|(to, _)| to == "15551230001").map(|(_, b)| b.as_str()).collect();
    assert_eq!(to_first, ["part two"], "the part sent before the crash is not sent again");
    assert_eq!(sent.iter().filter(|(to, _)| to == "15551230002").count(), 1, "exactly one reply");
    assert_eq!(receipts(&graph).await, ["wamid.K2"]);
});

db_test!(async fn the_users_ai_rate_limit_applies(backend) {
    let graph = graph().await;
    let app = app_with(backend, &graph, |config| config.http.rate_limit_ai_per_minute = 1).await;
    let (token, _) = app.user().await;
    link(&app, &graph, &token, "15551230001").await;
    deliver(&app, &notification(vec![text("15551230001", "wamid.RL1", "what is a closure?")])).await;
    settled(&app, 2).await;
    deliver(&app, &notification(vec![text("15551230001", "wamid.RL2", "and a trait?")])).await;
    settled(&app, 3).await;
    assert_eq!(chats_of(&app, &token, "15551230001").await.len(), 1);
    let last = texts(&graph).await.last().unwrap().1.clone();
    assert!(last.contains("limit"), "{last}");
});

db_test!(async fn the_whatsapp_routes_are_documented(backend) {
    let graph = graph().await;
    let app = app(backend, &graph).await;
    let spec: Value = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let hook = &spec["paths"][WEBHOOK];
    assert!(hook["get"]["responses"]["200"]["content"]["text/plain"].is_object());
    assert!(hook["post"]["responses"]["401"].is_object());
    assert!(hook["post"]["responses"]["503"].is_object());
    assert!(spec["paths"]["/api/v1/user/whatsapp/link"]["post"]["responses"]["201"].is_object());
    assert_eq!(spec["components"]["schemas"]["LinkCode"]["properties"]["code"]["pattern"], "^[0-9]{8}$");
    assert!(spec["paths"]["/api/v1/user/whatsapp"]["delete"]["responses"]["200"].is_object());
});

/// The server binary with WhatsApp configured and `provider` as its OpenAI-compatible model.
async fn binary(
    database_url: &str,
    workdir: &std::path::Path,
    graph: &MockServer,
    provider: &str,
) -> ServerProcess {
    let graph_url = graph.uri();
    ServerProcess::start(
        database_url,
        workdir,
        &[
            ("LLM_PROVIDER", "openai"),
            ("OPENAI_BASE_URL", provider),
            ("OPENAI_API_KEY", "sk-test"),
            ("WHATSAPP_APP_SECRET", APP_SECRET),
            ("WHATSAPP_ACCESS_TOKEN", GRAPH_TOKEN),
            ("WHATSAPP_API_URL", &graph_url),
            ("WHATSAPP_API_VERSION", "v21.0"),
            ("JOB_LEASE_SECONDS", "2"),
        ],
    )
    .await
}

db_test!(async fn kill_9_between_receipt_and_reply_gives_exactly_one_reply_after_restart(backend) {
    let graph = graph().await;
    // `spawn` provides (and finally drops) a migrated database the binary serves.
    let app = app(backend, &graph).await;
    let (token, _) = app.user().await;
    link(&app, &graph, &token, "15551230001").await;
    // From here on only the binaries serve (and work on) the database.
    let mut app = app;
    app.begin_shutdown();
    let workdir = tempfile::tempdir().unwrap();
    // The first instance dies while its provider is still streaming the answer.
    let mut first = binary(&app.database_url, workdir.path(), &graph, &crate::helpers::slow_openai().await).await;
    let raw = serde_json::to_vec(&notification(vec![text("15551230001", "wamid.KILL", "@Doc Sync explain closures")])).unwrap();
    let accepted = app
        .client
        .post(format!("{}{WEBHOOK}", first.address))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sign_sha256(APP_SECRET.as_bytes(), &raw))
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    let running = "SELECT COUNT(*) FROM jobs WHERE dedupe_key = 'wamid.KILL' AND status = 'running'";
    for _ in 0..200 {
        if scalar(&app, running).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(scalar(&app, running).await, 1, "claimed before the crash");
    first.kill();
    assert!(texts(&graph).await.is_empty(), "nothing was sent before the crash");

    let provider = provider_answering("Closures capture their environment.").await;
    let restarted = binary(&app.database_url, workdir.path(), &graph, &format!("{}/v1", provider.uri())).await;
    settled(&app, 2).await;
    assert_eq!(status_of(&app, "wamid.KILL").await.0, "done");
    let sent = texts(&graph).await;
    assert_eq!(sent, [("15551230001".to_owned(), "Closures capture their environment.".to_owned())], "exactly one reply");
    let chats: Value = app
        .client
        .get(format!("{}/api/v1/chat?session_id=whatsapp:15551230001", restarted.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(chats["data"]["total"], 1, "one chat: {chats}");
    drop(restarted);
    drop(app);
});
