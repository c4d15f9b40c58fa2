//! The OpenAI-compatible and Bedrock providers against local servers speaking their real
//! wire formats: server-sent events, and AWS event-stream framing with SigV4 signing.

use std::time::Duration;

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use codesherpa::llm::{settings::AwsCredentials, ProviderKind};
use futures_util::StreamExt;
use serde_json::{json, Value};
use wiremock::{
    matchers::{header, method, path, path_regex},
    Mock, MockServer, ResponseTemplate,
};

use crate::helpers::{agent_status, spawn_on_slow_openai, spawn_with, Backend, TestApp};

/// An OpenAI `chat.completion.chunk` stream: one chunk per piece, usage, then `[DONE]`.
fn openai_sse(pieces: &[&str], usage: (u64, u64)) -> String {
    let mut body = String::new();
    for piece in pieces {
        let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": piece}}]});
        body.push_str(&format!("data: {chunk}\n\n"));
    }
    let usage = json!({"id": "c1", "object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1, "total_tokens": usage.0 + usage.1}});
    body.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
    body
}

fn sse_response(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")
}

async fn openai_app(backend: Backend, server: &MockServer) -> TestApp {
    openai_app_waiting(backend, server, Duration::from_secs(1)).await
}

/// A server whose provider is the OpenAI-compatible `server`, waiting `timeout` for it.
pub async fn openai_app_waiting(
    backend: Backend,
    server: &MockServer,
    timeout: Duration,
) -> TestApp {
    let base = format!("{}/v1", server.uri());
    spawn_with(backend, move |config| {
        config.llm.provider = ProviderKind::OpenAi;
        config.llm.openai_base_url = base;
        config.llm.openai_api_key = Some("sk-test-key".into());
        config.llm.timeout = timeout;
    })
    .await
}

/// A user with a custom agent (so one chat makes exactly one provider call).
async fn user_with_agent(app: &TestApp) -> (String, i64) {
    let (token, _) = app.user().await;
    let agent = app
        .post(
            "/api/v1/agents",
            &token,
            json!({"name": "Pair", "system_prompt": "You pair-program."}),
        )
        .await
        .expect(201);
    (token, agent.data()["id"].as_i64().unwrap())
}

fn request_messages(request: &wiremock::Request) -> Vec<(String, String)> {
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

db_test!(async fn openai_streams_deltas_and_records_usage(backend) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-test-key"))
        .respond_with(sse_response(openai_sse(&["Hel", "lo, ", "world"], (21, 3))))
        .expect(1)
        .mount(&server)
        .await;
    let app = openai_app(backend, &server).await;
    let (token, agent) = user_with_agent(&app).await;
    let reply = app.post("/api/v1/chat", &token, json!({"message": "hi", "agent_id": agent})).await.expect(201);
    let chat = reply.data();
    assert_eq!(chat["response"], "Hello, world");
    assert_eq!((chat["prompt_tokens"].as_i64(), chat["completion_tokens"].as_i64()), (Some(21), Some(3)));
    assert_eq!((chat["provider"].as_str(), chat["model"].as_str()), (Some("openai"), Some("test-model")));
    assert_eq!(chat["agent"], "Pair");

    let requests = server.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["stream"], true);
    assert_eq!(body["model"], "test-model");
    assert_eq!(request_messages(&requests[0]), [("system".into(), "You pair-program.".into()), ("user".into(), "hi".into())]);
});

db_test!(async fn the_second_turn_sends_the_first_as_history(backend) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(sse_response(openai_sse(&["First answer"], (5, 2))))
        .expect(2)
        .mount(&server)
        .await;
    let app = openai_app(backend, &server).await;
    let (token, agent) = user_with_agent(&app).await;
    let first = app.post("/api/v1/chat", &token, json!({"message": "first question", "agent_id": agent})).await.expect(201);
    let session = first.data()["session_id"].clone();
    app.post("/api/v1/chat", &token, json!({"message": "follow-up", "agent_id": agent, "session_id": session}))
        .await
        .expect(201);
    let requests = server.received_requests().await.unwrap();
    let messages = request_messages(&requests[1]);
    let turns: Vec<(&str, &str)> = messages.iter().skip(1).map(|(r, c)| (r.as_str(), c.as_str())).collect();
    assert_eq!(turns, [("user", "first question"), ("assistant", "First answer"), ("user", "follow-up")]);
});

db_test!(async fn provider_failures_are_clean_errors_and_restore_the_agent(backend) {
    let server = MockServer::start().await;
    let app = openai_app(backend, &server).await;
    let (token, agent) = user_with_agent(&app).await;
    let cases: [(ResponseTemplate, u16, &str, u64); 4] = [
        (ResponseTemplate::new(401).set_body_json(json!({"error": {"message": "Incorrect API key provided: sk-test-key"}})), 502, "provider_error", 1),
        (ResponseTemplate::new(429).set_body_json(json!({"error": {"message": "slow down"}})), 503, "service_unavailable", 3),
        (ResponseTemplate::new(500).set_body_json(json!({"error": {"message": "boom"}})), 502, "provider_error", 3),
        (sse_response("data: this is not json\n\n".into()), 502, "provider_error", 1),
    ];
    for (response, status, code, attempts) in cases {
        server.reset().await;
        Mock::given(method("POST")).respond_with(response).expect(attempts).mount(&server).await;
        let reply = app.post("/api/v1/chat", &token, json!({"message": "hi", "agent_id": agent})).await.expect(status);
        assert_eq!(reply.code(), code);
        assert!(!reply.body.to_string().contains("sk-test-key"));
        assert_eq!(agent_status(&app, &token, agent).await, "active", "{code}");
        server.verify().await;
    }
    assert_eq!(app.get("/api/v1/chat", &token).await.expect(200).data()["total"], 0, "failed chats are not stored");
});

db_test!(async fn a_silent_provider_times_out(backend) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(sse_response(openai_sse(&["late"], (1, 1))).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let app = openai_app(backend, &server).await;
    let (token, agent) = user_with_agent(&app).await;
    let reply = app.post("/api/v1/chat", &token, json!({"message": "hi", "agent_id": agent})).await.expect(504);
    assert_eq!(reply.code(), "timeout");
    assert_eq!(agent_status(&app, &token, agent).await, "active");
});

db_test!(async fn prose_instead_of_json_degrades_gracefully(backend) {
    let server = MockServer::start().await;
    // Both the routing call and Review Monk answer prose, not the JSON they were asked for.
    Mock::given(method("POST"))
        .respond_with(sse_response(openai_sse(&["Looks ", "fine to me."], (4, 4))))
        .expect(2)
        .mount(&server)
        .await;
    let app = openai_app(backend, &server).await;
    let (token, _) = app.user().await;
    let reply = app
        .post("/api/v1/chat", &token, json!({"message": "please review this", "code_context": "x = 1"}))
        .await
        .expect(201);
    assert_eq!(reply.data()["agent"], "Review Monk", "keyword routing took over");
    assert_eq!(reply.data()["response"], "Looks fine to me.");
    assert!(reply.data()["result"].is_null());
});

db_test!(async fn structured_replies_are_validated_and_kept(backend) {
    let server = MockServer::start().await;
    let review = json!({"summary": "One issue", "findings": [{"severity": "HIGH", "file": "a.py", "line": 3, "issue": "eval", "suggestion": "parse", "code_fix": "json.loads(x)"}], "quality_score": 6, "security_risk": "High"}).to_string();
    Mock::given(method("POST"))
        .respond_with(sse_response(openai_sse(&[&review[..10], &review[10..]], (9, 9))))
        .mount(&server)
        .await;
    let app = openai_app(backend, &server).await;
    let (token, _) = app.user().await;
    let agents = app.get("/api/v1/agents", &token).await.expect(200);
    let monk = agents.data()["items"].as_array().unwrap().iter().find(|a| a["role"] == "code_review").unwrap()["id"].clone();
    let reply = app.post("/api/v1/chat", &token, json!({"message": "review", "agent_id": monk})).await.expect(201);
    assert_eq!(reply.data()["result"]["quality_score"], 6);
    assert_eq!(reply.data()["result"]["findings"][0]["line"], 3);
    assert!(reply.data()["response"].as_str().unwrap().contains("`a.py:3`"));
});

db_test!(async fn disconnecting_cancels_and_keeps_the_partial_answer(backend) {
    let app = spawn_on_slow_openai(backend).await;
    let (token, agent) = user_with_agent(&app).await;
    let response = app
        .chat_stream(&token, json!({"message": "write a long story", "agent_id": agent, "session_id": "cancel-me"}))
        .await;
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    while seen.matches("event: delta").count() < 3 {
        seen.push_str(&String::from_utf8_lossy(&body.next().await.unwrap().unwrap()));
    }
    assert_eq!(agent_status(&app, &token, agent).await, "processing");
    // The slow generation does not hold up anyone else.
    let started = std::time::Instant::now();
    app.get("/api/v1/user/me", &token).await.expect(200);
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(body);

    let mut stored = Value::Null;
    for _ in 0..100 {
        let list = app.get("/api/v1/chat?session_id=cancel-me", &token).await.expect(200);
        // The partial answer is stored once the server notices the hang-up.
        if let Some(chat) = list.data()["items"].get(0) {
            stored = chat.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored["complete"], false, "{stored}");
    let partial = stored["response"].as_str().unwrap();
    assert!(partial.starts_with("piece0 piece1 piece2"), "{partial}");
    assert!(!partial.contains("piece599"));
    assert_eq!(agent_status(&app, &token, agent).await, "active");
});

fn event_frame(event_type: &str, payload: Value) -> Vec<u8> {
    let message = Message::new(payload.to_string().into_bytes())
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("event".into()),
        ))
        .add_header(Header::new(
            ":event-type",
            HeaderValue::String(event_type.to_owned().into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ));
    let mut frame = Vec::new();
    write_message_to(&message, &mut frame).unwrap();
    frame
}

async fn bedrock_app(backend: Backend, server: &MockServer) -> TestApp {
    let endpoint = server.uri();
    spawn_with(backend, move |config| {
        config.llm.provider = ProviderKind::Bedrock;
        config.llm.bedrock_endpoint_url = Some(endpoint);
        config.llm.bedrock_model_id = "anthropic.claude-test-v1:0".into();
        config.llm.aws_region = "eu-west-1".into();
        config.llm.aws_credentials = Some(AwsCredentials {
            access_key_id: "AKIDTESTKEY".into(),
            secret_access_key: "test-secret".into(),
            session_token: None,
        });
    })
    .await
}

db_test!(async fn bedrock_converse_stream_is_signed_and_decoded(backend) {
    let server = MockServer::start().await;
    let mut body = Vec::new();
    body.extend(event_frame("messageStart", json!({"role": "assistant"})));
    for piece in ["Bed", "rock ", "says hi"] {
        body.extend(event_frame("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": piece}})));
    }
    body.extend(event_frame("contentBlockStop", json!({"contentBlockIndex": 0})));
    body.extend(event_frame("messageStop", json!({"stopReason": "end_turn"})));
    body.extend(event_frame("metadata", json!({"usage": {"inputTokens": 17, "outputTokens": 4, "totalTokens": 21}, "metrics": {"latencyMs": 12}})));
    Mock::given(method("POST"))
        .and(path_regex(r"^/model/anthropic\.claude-test-v1(:|%3A)0/converse-stream$"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/vnd.amazon.eventstream"))
        .expect(1)
        .mount(&server)
        .await;
    let app = bedrock_app(backend, &server).await;
    let (token, agent) = user_with_agent(&app).await;
    let reply = app.post("/api/v1/chat", &token, json!({"message": "hello", "agent_id": agent})).await.expect(201);
    let chat = reply.data();
    assert_eq!(chat["response"], "Bedrock says hi");
    assert_eq!((chat["prompt_tokens"].as_i64(), chat["completion_tokens"].as_i64()), (Some(17), Some(4)));
    assert_eq!((chat["provider"].as_str(), chat["model"].as_str()), (Some("bedrock"), Some("anthropic.claude-test-v1:0")));

    let requests = server.received_requests().await.unwrap();
    let authorization = requests[0].headers["authorization"].to_str().unwrap();
    assert!(authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTESTKEY/"), "{authorization}");
    assert!(authorization.contains("/eu-west-1/bedrock/aws4_request"), "{authorization}");
    let sent: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(sent["system"][0]["text"], "You pair-program.");
    assert_eq!(sent["messages"][0]["role"], "user");
    assert_eq!(sent["messages"][0]["content"][0]["text"], "hello");
});

db_test!(async fn bedrock_throttling_is_retried_then_reported(backend) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("x-amzn-errortype", "ThrottlingException")
                .set_body_json(json!({"message": "Too many requests"})),
        )
        .expect(3)
        .mount(&server)
        .await;
    let app = bedrock_app(backend, &server).await;
    let (token, agent) = user_with_agent(&app).await;
    let reply = app.post("/api/v1/chat", &token, json!({"message": "hello", "agent_id": agent})).await.expect(503);
    assert_eq!(reply.code(), "service_unavailable");
    assert_eq!(agent_status(&app, &token, agent).await, "active");
});

db_test!(async fn bedrock_validation_errors_are_reported_without_retry(backend) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("x-amzn-errortype", "ValidationException")
                .set_body_json(json!({"message": "The model id is invalid"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let app = bedrock_app(backend, &server).await;
    let (token, agent) = user_with_agent(&app).await;
    let reply = app.post("/api/v1/chat", &token, json!({"message": "hello", "agent_id": agent})).await.expect(502);
    // Bedrock's own words (which may name the account) stay in the logs.
    assert!(!reply.body.to_string().contains("model id is invalid"), "{}", reply.body);
    let request_id = reply.headers["x-request-id"].to_str().unwrap();
    assert!(reply.body["message"].as_str().unwrap().contains(request_id), "{}", reply.body);
});

db_test!(async fn bedrock_routes_with_converse_and_answers_with_converse_stream(backend) {
    let server = MockServer::start().await;
    let routing = json!({
        "output": {"message": {"role": "assistant", "content": [{"text": "{\"agents\": [\"docs\"], \"reason\": \"asks for docs\"}"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 30, "outputTokens": 9, "totalTokens": 39},
        "metrics": {"latencyMs": 5}
    });
    Mock::given(method("POST"))
        .and(path_regex(r"/converse$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(routing))
        .expect(1)
        .mount(&server)
        .await;
    let mut body = Vec::new();
    body.extend(event_frame("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "# Docs"}})));
    body.extend(event_frame("metadata", json!({"usage": {"inputTokens": 40, "outputTokens": 2, "totalTokens": 42}, "metrics": {"latencyMs": 3}})));
    Mock::given(method("POST"))
        .and(path_regex(r"/converse-stream$"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/vnd.amazon.eventstream"))
        .expect(1)
        .mount(&server)
        .await;
    let app = bedrock_app(backend, &server).await;
    let (token, _) = app.user().await;
    let reply = app.post("/api/v1/chat", &token, json!({"message": "please handle this"})).await.expect(201);
    assert_eq!(reply.data()["agent"], "Doc Sync", "the model's routing JSON was followed");
    assert_eq!(reply.data()["response"], "# Docs");
    // Routing and answer tokens are both counted.
    assert_eq!((reply.data()["prompt_tokens"].as_i64(), reply.data()["completion_tokens"].as_i64()), (Some(70), Some(11)));
});

db_test!(async fn provider_error_bodies_never_reach_clients(backend) {
    let server = MockServer::start().await;
    let app = openai_app(backend, &server).await;
    let (token, agent) = user_with_agent(&app).await;
    let traceback = "Traceback (most recent call last): File \"/srv/vllm/secret_model.py\", line 42";
    let cases = [
        ResponseTemplate::new(500).set_body_json(json!({"error": {"message": traceback}})),
        ResponseTemplate::new(400).set_body_json(json!({"error": {"message": traceback}})),
        ResponseTemplate::new(422).set_body_string(traceback),
        sse_response(format!("data: {}\n\n", json!({"error": {"message": traceback}}))),
    ];
    for response in cases {
        server.reset().await;
        Mock::given(method("POST")).respond_with(response).mount(&server).await;
        let reply = app.post("/api/v1/chat", &token, json!({"message": "hi", "agent_id": agent})).await.expect(502);
        assert!(!reply.body.to_string().contains("secret_model"), "{}", reply.body);
        let request_id = reply.headers["x-request-id"].to_str().unwrap();
        assert!(reply.body["message"].as_str().unwrap().contains(request_id), "{}", reply.body);

        // The streamed route and the WebSocket say no more.
        let streamed = app
            .chat_stream(&token, json!({"message": "hi", "agent_id": agent}))
            .await
            .text()
            .await
            .unwrap();
        assert!(streamed.contains("event: error"), "{streamed}");
        assert!(!streamed.contains("secret_model"), "{streamed}");
    }
    let chats = app.get("/api/v1/chat", &token).await.expect(200);
    assert!(!chats.body.to_string().contains("secret_model"));
});

/// An OpenAI-compatible server that never starts answering "never answered", stops after
/// one piece of "half answered", and answers anything else whole; it keeps every request.
async fn interrupting_openai() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use axum::{body::Body, extract::State, routing::post, Json, Router};
    use std::sync::{Arc, Mutex};
    type Seen = Arc<Mutex<Vec<Value>>>;
    async fn answer(
        State(seen): State<Seen>,
        Json(body): Json<Value>,
    ) -> impl axum::response::IntoResponse {
        let last = body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .map(|m| m["content"].clone());
        seen.lock().unwrap().push(body);
        let chunk = |text: &str| {
            format!(
                "data: {}\n\n",
                json!({"choices": [{"index": 0, "delta": {"content": text}}]})
            )
        };
        let (head, hang): (Vec<Result<String, std::io::Error>>, bool) =
            match last.as_ref().and_then(Value::as_str) {
                Some("never answered") => (vec![], true),
                Some("half answered") => (vec![Ok(chunk("Half an ans"))], true),
                _ => (
                    vec![Ok(chunk("Whole answer")), Ok("data: [DONE]\n\n".into())],
                    false,
                ),
            };
        let body = futures_util::stream::iter(head).chain(futures_util::stream::once(async move {
            if hang {
                futures_util::future::pending::<()>().await;
            }
            Ok(String::new())
        }));
        (
            [("content-type", "text/event-stream")],
            Body::from_stream(body),
        )
    }
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route("/v1/chat/completions", post(answer))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/v1"), seen)
}

/// Streams a chat and hangs up once `until` has been seen.
async fn stream_then_hang_up(app: &TestApp, token: &str, agent: i64, message: &str, until: &str) {
    let response = app
        .chat_stream(
            token,
            json!({"message": message, "agent_id": agent, "session_id": "interrupted"}),
        )
        .await;
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    while !seen.contains(until) {
        seen.push_str(&String::from_utf8_lossy(
            &body.next().await.unwrap().unwrap(),
        ));
    }
}

async fn wait_for_chats(app: &TestApp, token: &str, count: usize) -> Value {
    for _ in 0..200 {
        let list = app
            .get("/api/v1/chat?session_id=interrupted", token)
            .await
            .expect(200);
        if list.data()["items"].as_array().unwrap().len() == count {
            return list.data()["items"].clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the cancelled chats were not stored");
}

db_test!(async fn blank_answers_are_left_out_of_history_and_partial_ones_marked(backend) {
    let (base, seen) = interrupting_openai().await;
    let app = spawn_with(backend, move |config| {
        config.llm.provider = ProviderKind::OpenAi;
        config.llm.openai_base_url = base;
    })
    .await;
    let (token, agent) = user_with_agent(&app).await;
    // Cancelled before the first piece, then cancelled after one.
    stream_then_hang_up(&app, &token, agent, "never answered", "event: status").await;
    let stored = wait_for_chats(&app, &token, 1).await;
    assert_eq!(stored[0]["response"], "", "{stored}");
    stream_then_hang_up(&app, &token, agent, "half answered", "event: delta").await;
    let stored = wait_for_chats(&app, &token, 2).await;
    assert_eq!((stored[1]["response"].as_str(), stored[1]["complete"].as_bool()), (Some("Half an ans"), Some(false)));

    app.post("/api/v1/chat", &token, json!({"message": "third", "agent_id": agent, "session_id": "interrupted"}))
        .await
        .expect(201);
    let sent = seen.lock().unwrap().last().cloned().unwrap();
    let turns: Vec<(&str, &str)> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .map(|m| (m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    assert_eq!(turns.len(), 3, "{turns:?}");
    assert_eq!(turns[0], ("user", "half answered"));
    assert_eq!(turns[1].0, "assistant");
    assert!(turns[1].1.starts_with("Half an ans"), "{turns:?}");
    assert!(turns[1].1.contains("interrupted"), "a partial answer is marked: {turns:?}");
    assert_eq!(turns[2], ("user", "third"));
    assert!(turns.iter().all(|(_, content)| !content.trim().is_empty()));
});
