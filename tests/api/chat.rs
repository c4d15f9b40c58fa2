//! Chat over REST and server-sent events with the offline local engine.

use serde_json::{json, Value};

use crate::helpers::{spawn, spawn_with, sse_events, TestApp};

const LEAKY_DIFF: &str = "diff --git a/app/settings.py b/app/settings.py
--- a/app/settings.py
+++ b/app/settings.py
@@ -1,2 +1,4 @@
 import os
+DB_PASSWORD = \"hunter2-production\"
+# TODO: remove before release
 DEBUG = False
";

async fn agent_id(app: &TestApp, token: &str, role: &str) -> i64 {
    let agents = app.get("/api/v1/agents", token).await.expect(200);
    agents.data()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["role"] == role)
        .and_then(|a| a["id"].as_i64())
        .unwrap()
}

db_test!(async fn review_requests_reach_review_monk(backend) {
    let app = spawn(backend).await;
    let (token, login) = app.user().await;
    let reply = app
        .post("/api/v1/chat", &token, json!({"message": "Please review this diff", "code_context": LEAKY_DIFF}))
        .await
        .expect(201);
    let chat = reply.data();
    assert_eq!(chat["agent"], "Review Monk");
    assert_eq!(chat["provider"], "local");
    assert_eq!(chat["user_id"], login["user"]["id"]);
    assert_eq!(chat["complete"], true);
    assert!(chat["session_id"].as_str().is_some_and(|s| !s.is_empty()));
    let findings = chat["result"]["findings"].as_array().expect("structured review");
    let secret = findings.iter().find(|f| f["severity"] == "CRITICAL").expect("secret found");
    assert_eq!((secret["file"].as_str(), secret["line"].as_i64()), (Some("app/settings.py"), Some(2)));
    assert!(findings.iter().any(|f| f["severity"] == "LOW" && f["line"] == 3));
    assert_eq!(chat["result"]["security_risk"], "High");
    assert!(chat["response"].as_str().unwrap().contains("app/settings.py:2"), "readable text");
    assert!(chat["prompt_tokens"].as_i64().unwrap() > 0);
    assert!(chat["completion_tokens"].as_i64().unwrap() > 0);

    let path = format!("/api/v1/chat/{}", chat["id"]);
    assert_eq!(app.get(&path, &token).await.expect(200).data(), chat);
    let review_monk = agent_id(&app, &token, "code_review").await;
    let agent = app.get(&format!("/api/v1/agents/{review_monk}"), &token).await.expect(200);
    assert_eq!(agent.data()["status"], "active", "status restored after the work");
});

db_test!(async fn explanations_follow_the_users_language(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let code = "fn total(items: &[u32]) -> u32 {\n    items.iter().sum()\n}";
    let reply = app
        .post("/api/v1/chat", &token, json!({"message": "yeh function kya karta hai? samjhao", "code_context": code}))
        .await
        .expect(201);
    let chat = reply.data();
    assert_eq!(chat["agent"], "Codebase Sherpa");
    let explanation = chat["result"]["explanation"].as_str().unwrap();
    assert!(explanation.starts_with("Yeh Rust code"), "{explanation}");
    assert!(explanation.contains("`total`"));
    assert!(chat["result"]["key_concepts"].as_array().unwrap().iter().any(|c| c["term"] == "total"));
    assert!(!chat["result"]["learning_steps"].as_array().unwrap().is_empty());
});

db_test!(async fn small_talk_is_answered_by_the_orchestrator(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let reply = app.post("/api/v1/chat", &token, json!({"message": "hello there"})).await.expect(201);
    assert_eq!(reply.data()["agent"], "Orchestrator");
    assert!(reply.data()["result"].is_null());
    assert!(reply.data()["response"].as_str().unwrap().contains("local engine"));
});

db_test!(async fn two_asks_run_two_specialists(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let code = "def add(a, b):\n    print(a)\n    return a + b\n";
    let reply = app
        .post("/api/v1/chat", &token, json!({"message": "Review this and write docs for it", "code_context": code}))
        .await
        .expect(201);
    let chat = reply.data();
    assert_eq!(chat["agent"], "Review Monk, Doc Sync");
    let response = chat["response"].as_str().unwrap();
    assert!(response.contains("## Review Monk") && response.contains("## Doc Sync"), "{response}");
    assert!(chat["result"]["Review Monk"]["findings"].is_array());
});

db_test!(async fn a_named_agent_answers_directly(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let doc_sync = agent_id(&app, &token, "documentation").await;
    let reply = app
        .post("/api/v1/chat", &token, json!({"message": "hi", "agent_id": doc_sync, "code_context": "def area(w, h):\n    return w * h\n"}))
        .await
        .expect(201);
    assert_eq!(reply.data()["agent"], "Doc Sync");
    assert_eq!(reply.data()["agent_id"], doc_sync);
    assert!(reply.data()["response"].as_str().unwrap().contains("### `area(w, h)`"));
    assert_eq!(app.get(&format!("/api/v1/chat?agent_id={doc_sync}"), &token).await.expect(200).data()["total"], 1);
});

db_test!(async fn sessions_keep_history_in_order(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let first = app.post("/api/v1/chat", &token, json!({"message": "hello, first question"})).await.expect(201);
    let session = first.data()["session_id"].as_str().unwrap().to_owned();
    app.post("/api/v1/chat", &token, json!({"message": "second", "session_id": session})).await.expect(201);
    app.post("/api/v1/chat", &token, json!({"message": "other conversation"})).await.expect(201);

    let history = app.get(&format!("/api/v1/chat?session_id={session}"), &token).await.expect(200);
    let messages: Vec<&str> = history.data()["items"].as_array().unwrap().iter().map(|c| c["message"].as_str().unwrap()).collect();
    assert_eq!(messages, ["hello, first question", "second"], "oldest first within a session");

    let all = app.get("/api/v1/chat", &token).await.expect(200);
    assert_eq!(all.data()["total"], 3);
    assert_eq!(all.data()["items"][0]["message"], "other conversation", "newest first overall");

    let sessions = app.get("/api/v1/chat/sessions", &token).await.expect(200);
    assert_eq!(sessions.data()["total"], 2);
    let ours = sessions.data()["items"].as_array().unwrap().iter().find(|s| s["id"] == session.as_str()).unwrap();
    assert_eq!(ours["message_count"], 2);
    assert_eq!(ours["title"], "hello, first question");
    assert!(ours["last_activity"].is_string());
});

db_test!(async fn chat_input_is_validated_and_isolated(backend) {
    let app = spawn(backend).await;
    let (alice, _) = app.user().await;
    let (mallory, _) = app.user().await;
    let reply = app.post("/api/v1/chat", &alice, json!({"message": "   "})).await.expect(422);
    assert_eq!(reply.error_fields(), ["message"]);
    let reply = app.post("/api/v1/chat", &alice, json!({"message": "hi", "session_id": "bad session id!"})).await.expect(422);
    assert_eq!(reply.error_fields(), ["session_id"]);
    let too_long = format!("github:{}/r#1", "o".repeat(200));
    let reply = app.post("/api/v1/chat", &alice, json!({"message": "hi", "session_id": too_long})).await.expect(422);
    assert_eq!(reply.error_fields(), ["session_id"]);
    // A pull request's review session (the server names it so) can be continued.
    let review = "github:acme-corp/widget.rs#7";
    app.post("/api/v1/chat", &alice, json!({"message": "and the tests?", "session_id": review})).await.expect(201);
    let listed = app.get("/api/v1/chat?session_id=github%3Aacme-corp%2Fwidget.rs%237", &alice).await.expect(200);
    assert_eq!(listed.data()["items"][0]["session_id"], review);

    let alices_agent = agent_id(&app, &alice, "code_review").await;
    let project = app.post("/api/v1/projects", &alice, json!({"name": "p"})).await.expect(201);
    app.post("/api/v1/chat", &mallory, json!({"message": "hi", "agent_id": alices_agent})).await.expect(404);
    app.post("/api/v1/chat", &mallory, json!({"message": "hi", "project_id": project.data()["id"]})).await.expect(404);

    let chat = app.post("/api/v1/chat", &alice, json!({"message": "hello"})).await.expect(201);
    let path = format!("/api/v1/chat/{}", chat.data()["id"]);
    app.get(&path, &mallory).await.expect(404);
    assert_eq!(app.get("/api/v1/chat", &mallory).await.expect(200).data()["total"], 0);
    assert_eq!(app.get("/api/v1/chat/sessions", &mallory).await.expect(200).data()["total"], 0);
    // The same session id names a different conversation for each user.
    let session = chat.data()["session_id"].as_str().unwrap();
    let theirs = app.get(&format!("/api/v1/chat?session_id={session}"), &mallory).await.expect(200);
    assert_eq!(theirs.data()["total"], 0);
});

db_test!(async fn codebase_questions_search_the_projects_files(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let project_id = crate::codebase::project(&app, &token).await;
    let archive = crate::codebase::github_tarball(&[
        ("src/cart.rs", "pub struct Cart { items: Vec<u32> }\n\npub fn checkout_total(cart: &Cart) -> u32 {\n    cart.items.iter().sum()\n}\n"),
        ("README.md", "# Shop\nA small shop.\n"),
    ]);
    crate::codebase::upload(&app, &token, project_id, archive).await.expect(200);
    let reply = app
        .post("/api/v1/chat", &token, json!({"message": "Explain how checkout_total works", "project_id": project_id}))
        .await
        .expect(201);
    let explanation = reply.data()["result"]["explanation"].as_str().unwrap();
    assert!(explanation.contains("`checkout_total`"), "{explanation}");
    assert!(explanation.contains("src/cart.rs"), "{explanation}");
    assert_eq!(reply.data()["project_id"], project_id);
});

db_test!(async fn ai_routes_are_rate_limited_per_user(backend) {
    let app = spawn_with(backend, |config| config.http.rate_limit_ai_per_minute = 2).await;
    let (token, _) = app.user().await;
    let (other, _) = app.user().await;
    for _ in 0..2 {
        app.post("/api/v1/chat", &token, json!({"message": "hello"})).await.expect(201);
    }
    let limited = app.post("/api/v1/chat", &token, json!({"message": "hello"})).await.expect(429);
    assert!(limited.headers.contains_key("retry-after"));
    app.post("/api/v1/chat/stream", &token, json!({"message": "hello"})).await.expect(429);
    app.post("/api/v1/chat", &other, json!({"message": "hello"})).await.expect(201);
    app.get("/api/v1/chat", &token).await.expect(200);
});

db_test!(async fn stream_sends_status_deltas_then_the_stored_chat(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let response = app
        .chat_stream(&token, json!({"message": "hello there", "session_id": "s-1"}))
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let events = sse_events(&response.text().await.unwrap());
    let kinds: Vec<&str> = events.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"status"));
    assert_eq!(kinds.last(), Some(&"response"));
    let deltas: Vec<&Value> = events.iter().filter(|(k, _)| k == "delta").map(|(_, d)| d).collect();
    assert!(deltas.len() > 3);
    for (i, delta) in deltas.iter().enumerate() {
        assert_eq!(delta["seq"], i as u64, "deltas are numbered in order");
        assert_eq!(delta["session_id"], "s-1");
    }
    let streamed: String = deltas.iter().map(|d| d["content"].as_str().unwrap()).collect();
    let (_, last) = events.last().unwrap();
    assert_eq!(last["chat"]["response"], streamed.trim_end());
    assert_eq!(last["content"], last["chat"]["response"]);
    let stored = app.get(&format!("/api/v1/chat/{}", last["chat"]["id"]), &token).await.expect(200);
    assert_eq!(stored.data(), &last["chat"]);
});

db_test!(async fn stream_refuses_bad_input_before_streaming(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let reply = app.post("/api/v1/chat/stream", &token, json!({"message": ""})).await.expect(422);
    assert_eq!(reply.code(), "validation_error");
    app.post("/api/v1/chat/stream", &token, json!({"message": "x", "agent_id": 999999})).await.expect(404);
    // Agent, project and history are read at once; the answer still names the agent first.
    for _ in 0..5 {
        let both = json!({"message": "x", "agent_id": 999999, "project_id": 999999});
        let reply = app.post("/api/v1/chat/stream", &token, both).await.expect(404);
        assert!(reply.body["message"].as_str().unwrap().starts_with("Agent"), "{}", reply.body);
    }
    let project = app.post("/api/v1/chat", &token, json!({"message": "x", "project_id": 999999})).await.expect(404);
    assert!(project.body["message"].as_str().unwrap().starts_with("Project"), "{}", project.body);
});
