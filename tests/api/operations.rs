//! Health, readiness, metrics and the offline API documentation.

use crate::helpers::spawn;

db_test!(async fn health_and_readiness(backend) {
    let app = spawn(backend).await;
    let live = app.send(app.client.get(app.url("/health"))).await.expect(200);
    assert_eq!(live.data()["status"], "ok");
    let ready = app.send(app.client.get(app.url("/health/ready"))).await.expect(200);
    assert_eq!(ready.data()["database"], "ok");
    let expected = match backend {
        crate::helpers::Backend::Sqlite => "sqlite",
        crate::helpers::Backend::Postgres => "postgres",
    };
    assert_eq!(ready.data()["database_backend"], expected);
});

db_test!(async fn metrics_count_requests_by_route_and_status(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    app.get("/api/v1/agents", &token).await.expect(200);
    app.get("/api/v1/agents/12345", &token).await.expect(404);
    let text = app.metrics().await;
    assert!(text.contains(r#"codesherpa_http_requests_total{method="GET",route="/api/v1/agents",status="200"} 1"#), "{text}");
    assert!(text.contains(r#"route="/api/v1/agents/{id}",status="404""#), "{text}");
    assert!(text.contains("codesherpa_http_request_duration_seconds_bucket"), "{text}");
});

db_test!(async fn openapi_documents_every_route(backend) {
    let app = spawn(backend).await;
    let spec: serde_json::Value = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = spec["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/v1/auth/register", &["post"][..]),
        ("/api/v1/auth/login", &["post"]),
        ("/api/v1/auth/refresh", &["post"]),
        ("/api/v1/auth/logout", &["post"]),
        ("/api/v1/user/me", &["get", "put"]),
        ("/api/v1/agents", &["get", "post"]),
        ("/api/v1/agents/{id}", &["get", "put", "delete"]),
        ("/api/v1/projects", &["get", "post"]),
        ("/api/v1/projects/{id}", &["get", "put", "delete"]),
        ("/api/v1/chat", &["get", "post"]),
        ("/api/v1/chat/stream", &["post"]),
        ("/api/v1/chat/sessions", &["get"]),
        ("/api/v1/chat/{id}", &["get"]),
        ("/ws", &["get"]),
        ("/health", &["get"]),
        ("/health/ready", &["get"]),
        ("/metrics", &["get"]),
    ] {
        for method in methods {
            assert!(paths[path][method].is_object(), "{method} {path} is documented");
        }
    }
    assert_eq!(spec["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(spec["paths"]["/api/v1/agents"]["get"]["responses"]["401"].is_object());
    assert!(spec["components"]["schemas"]["ErrorBody"].is_object());
});

db_test!(async fn docs_pages_work_offline(backend) {
    let app = spawn(backend).await;
    let swagger = app.client.get(app.url("/api/v1/docs/")).send().await.unwrap();
    assert_eq!(swagger.status(), 200);
    let html = swagger.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    let initializer = app.client.get(app.url("/api/v1/docs/swagger-initializer.js")).send().await.unwrap();
    assert_eq!(initializer.status(), 200);
    assert!(initializer.text().await.unwrap().contains("/api/v1/openapi.json"));

    let redoc = app.client.get(app.url("/api/v1/redoc")).send().await.unwrap().text().await.unwrap();
    assert!(redoc.contains("/api/v1/openapi.json"));
    for page in [&html, &redoc] {
        assert!(!page.contains("https://") && !page.contains("http://"), "no external assets: {page}");
    }
    let script = app.client.get(app.url("/api/v1/redoc/redoc.standalone.js")).send().await.unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.bytes().await.unwrap().len() > 500_000);
});
