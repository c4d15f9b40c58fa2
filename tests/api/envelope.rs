//! Framework-level failures answer in the envelope too.

use reqwest::Method;
use serde_json::json;

use crate::helpers::spawn;

db_test!(async fn unknown_routes_and_wrong_methods(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let reply = app.get("/api/v1/does-not-exist", &token).await.expect(404);
    assert_eq!(reply.code(), "not_found");
    app.call(Method::GET, "/nothing/here", None, None).await.expect(404);

    let reply = app.call(Method::DELETE, "/api/v1/user/me", Some(&token), None).await.expect(405);
    assert_eq!(reply.code(), "method_not_allowed");
    let allow = reply.headers["allow"].to_str().unwrap();
    assert!(allow.contains("GET") && allow.contains("PUT"), "{allow}");
});

db_test!(async fn bad_bodies(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let malformed = app.client.post(app.url("/api/v1/agents")).bearer_auth(&token)
        .header("content-type", "application/json").body("{\"name\": ");
    assert_eq!(app.send(malformed).await.expect(400).code(), "bad_request");

    let empty = app.client.post(app.url("/api/v1/agents")).bearer_auth(&token)
        .header("content-type", "application/json");
    app.send(empty).await.expect(400);

    let wrong_type = app.client.post(app.url("/api/v1/agents")).bearer_auth(&token)
        .header("content-type", "text/plain").body(r#"{"name":"x"}"#);
    assert_eq!(app.send(wrong_type).await.expect(415).code(), "unsupported_media_type");

    let array = app.post("/api/v1/agents", &token, json!([1, 2])).await.expect(422);
    assert_eq!(array.code(), "validation_error");

    let huge = json!({"name": "big", "description": "x".repeat(2 * 1024 * 1024)});
    let reply = app.post("/api/v1/agents", &token, huge).await.expect(413);
    assert_eq!(reply.code(), "payload_too_large");
    let list = app.get("/api/v1/agents", &token).await.expect(200);
    assert_eq!(list.data()["total"], 4, "refused bodies write nothing");
});

db_test!(async fn request_ids_are_made_or_propagated(backend) {
    let app = spawn(backend).await;
    let generated = app.send(app.client.get(app.url("/health"))).await;
    let id = generated.headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "{id}");

    let propagated = app.send(app.client.get(app.url("/health")).header("x-request-id", "trace-abc-123")).await;
    assert_eq!(propagated.headers["x-request-id"], "trace-abc-123");
    let insane = app.send(app.client.get(app.url("/health")).header("x-request-id", "bad id with spaces")).await;
    assert_ne!(insane.headers["x-request-id"], "bad id with spaces");
    // Errors carry it too.
    let missing = app.send(app.client.get(app.url("/nope")).header("x-request-id", "err-1")).await;
    assert_eq!(missing.headers["x-request-id"], "err-1");
});

db_test!(async fn security_headers_and_cors(backend) {
    let app = spawn(backend).await;
    let reply = app.send(app.client.get(app.url("/health"))).await;
    assert_eq!(reply.headers["x-content-type-options"], "nosniff");
    assert_eq!(reply.headers["x-frame-options"], "DENY");
    assert!(reply.headers.contains_key("content-security-policy"));

    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, app.url("/api/v1/agents"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .send()
    };
    let allowed = preflight("http://localhost:5173").await.unwrap();
    assert!(allowed.status().is_success());
    assert_eq!(allowed.headers()["access-control-allow-origin"], "http://localhost:5173");
    assert_eq!(allowed.headers()["access-control-allow-credentials"], "true");

    let foreign = preflight("https://evil.example").await.unwrap();
    assert!(foreign.headers().get("access-control-allow-origin").is_none());
});

// Answers made by the framework (unknown route, wrong method) carry the same headers as a
// handler's: security headers, CORS for a listed origin, the request id.
db_test!(async fn framework_answers_carry_security_and_cors_headers(backend) {
    let app = spawn(backend).await;
    let origin = "http://localhost:5173";
    let requests = [
        (app.client.get(app.url("/nothing/here")), 404),
        (app.client.delete(app.url("/health")), 405),
    ];
    for (request, status) in requests {
        let reply = app.send(request.header("origin", origin).header("x-request-id", "edge-1")).await;
        let reply = reply.expect(status);
        assert_eq!(reply.body["success"], false, "{status}: {}", reply.body);
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
            ("access-control-allow-origin", origin),
            ("x-request-id", "edge-1"),
            ("content-type", "application/json"),
        ] {
            assert_eq!(reply.headers.get(name).map(|v| v.to_str().unwrap()), Some(value), "{status}: {name}");
        }
        assert!(reply.headers.contains_key("content-security-policy"), "{status}");
        assert!(reply.headers.contains_key("strict-transport-security"), "{status}");
    }
});
