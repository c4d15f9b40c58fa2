//! Repository sync against a wiremock GitHub: the tarball behind a 302 redirect, the
//! default branch looked up, credentials sent, failures recorded, owner-only.

use std::time::Duration;

use serde_json::{json, Value};
use wiremock::{
    matchers::{header, method, path},
    Mock, MockServer, ResponseTemplate,
};

use crate::{
    codebase::{github_tarball, SHA},
    github_accounts::{configure_oauth, verified_project, GithubAccounts},
    helpers::{spawn_with, Backend, TestApp},
};

const CART: &str = "pub fn checkout_total(cart: &Cart) -> u64 {\n    0\n}\n";

async fn github_app(backend: Backend, github: &MockServer) -> (TestApp, GithubAccounts) {
    let accounts = GithubAccounts::mount(github, "ghp_sync_test").await;
    let app = spawn_with(backend, move |config| {
        configure_oauth(config, github);
        config.github.token = Some("ghp_sync_test".into());
        config.github.webhook_secret = Some("push-secret".into());
    })
    .await;
    (app, accounts)
}

/// The project's `sync` once it is no longer queued or running (bounded wait).
pub async fn settled(app: &TestApp, token: &str, id: i64) -> Value {
    for _ in 0..200 {
        let project = app
            .get(&format!("/api/v1/projects/{id}"), token)
            .await
            .expect(200);
        let sync = project.data()["sync"].clone();
        if sync["status"] == "done" || sync["status"] == "failed" {
            return sync;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the sync did not finish");
}

db_test!(async fn a_sync_follows_githubs_redirect_and_indexes_the_tarball(backend) {
    let github = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"default_branch": "trunk"})))
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/tarball/trunk"))
        .and(header("authorization", "Bearer ghp_sync_test"))
        .and(header("x-github-api-version", "2022-11-28"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", format!("{}/codeload/acme/shop/legacy.tar.gz/refs/heads/trunk", github.uri())))
        .expect(1)
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path("/codeload/acme/shop/legacy.tar.gz/refs/heads/trunk"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(github_tarball(&[("src/cart.rs", CART)])))
        .expect(1)
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/tarball/v9"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&github)
        .await;
    let (app, accounts) = github_app(backend, &github).await;
    // Verified access: the server's credentials fetch the tarball.
    let (token, id) = verified_project(&app, &accounts, "ada", "acme/shop").await;

    let queued = app.call(reqwest::Method::POST, &format!("/api/v1/projects/{id}/sync"), Some(&token), None).await.expect(202);
    assert!(["queued", "running", "done"].contains(&queued.data()["status"].as_str().unwrap()), "{}", queued.body);
    let sync = settled(&app, &token, id).await;
    assert_eq!(sync["status"], "done", "{sync}");
    assert_eq!(sync["commit"], SHA);
    assert_eq!(sync["files"], 1);
    let found = app.get(&format!("/api/v1/projects/{id}/search?q=checkout_total"), &token).await.expect(200);
    assert_eq!(found.data()["items"][0]["path"], "src/cart.rs");

    // A missing ref fails the sync with a reason; the indexed files stay.
    app.post(&format!("/api/v1/projects/{id}/sync"), &token, json!({"ref": "v9"})).await.expect(202);
    let sync = settled(&app, &token, id).await;
    assert_eq!(sync["status"], "failed", "{sync}");
    assert!(sync["reason"].as_str().unwrap().contains("not found"), "{sync}");
    let files = app.get(&format!("/api/v1/projects/{id}/files"), &token).await.expect(200);
    assert_eq!(files.data()["total"], 1);
});

db_test!(async fn sync_requests_are_checked(backend) {
    let github = MockServer::start().await;
    let (app, _) = github_app(backend, &github).await;
    let (token, _) = app.user().await;
    let (mallory, _) = app.user().await;
    let linked = app.post("/api/v1/projects", &token, json!({"name": "shop", "repo_url": "https://github.com/acme/shop"})).await.expect(201);
    let id = linked.data()["id"].as_i64().unwrap();
    let unlinked = app.post("/api/v1/projects", &token, json!({"name": "local"})).await.expect(201);
    let sync = |id: &Value| format!("/api/v1/projects/{id}/sync");

    let conflict = app.post(&sync(&unlinked.data()["id"]), &token, json!({})).await.expect(409);
    assert!(conflict.body["message"].as_str().unwrap().contains("links no GitHub repository"), "{}", conflict.body);
    assert_eq!(app.post(&sync(&json!(id)), &token, json!({"ref": "bad ref"})).await.expect(422).error_fields(), ["ref"]);
    assert_eq!(app.post(&sync(&json!(id)), &token, json!({"ref": "../../etc"})).await.expect(422).error_fields(), ["ref"]);
    app.post(&sync(&json!(id)), &mallory, json!({})).await.expect(404);
    let project = app.get(&format!("/api/v1/projects/{id}"), &token).await.expect(200);
    assert_eq!(project.data()["sync"]["status"], "never", "nothing queued by refused requests");
    // A JSON `null` is the optional body left out.
    app.post(&sync(&json!(id)), &token, Value::Null).await.expect(202);
});

async fn push(app: &TestApp, delivery: &str, payload: &Value) -> crate::helpers::Reply {
    let body = serde_json::to_vec(payload).unwrap();
    let request = app
        .client
        .post(app.url("/api/v1/integrations/github/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", delivery)
        .header(
            "x-hub-signature-256",
            codesherpa::integrations::signature::sign_sha256(b"push-secret", &body),
        )
        .body(body);
    app.send(request).await
}

db_test!(async fn a_push_to_the_default_branch_resyncs_linked_projects(backend) {
    let github = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/repos/acme/shop/tarball/{SHA}")))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(github_tarball(&[("src/cart.rs", CART)])))
        .expect(1)
        .mount(&github)
        .await;
    let (app, accounts) = github_app(backend, &github).await;
    let (token, id) = verified_project(&app, &accounts, "ada", "acme/shop").await;
    // A project that only names the repository is not re-synced (it proves nothing).
    let (squatter, _) = app.user().await;
    let named = app.post("/api/v1/projects", &squatter, json!({"name": "shop", "repo_url": "https://github.com/acme/shop"})).await.expect(201);
    assert_eq!(named.data()["repo_access"]["status"], "unverified");
    let named = named.data()["id"].as_i64().unwrap();
    let payload = |git_ref: &str| json!({
        "ref": git_ref, "after": SHA, "deleted": false,
        "repository": {"full_name": "acme/shop", "default_branch": "main"},
        "sender": {"login": "ada", "type": "User"},
    });

    let other = push(&app, "d-0", &payload("refs/heads/feature")).await.expect(200);
    assert_eq!(other.data()["status"], "ignored");
    let queued = push(&app, "d-1", &payload("refs/heads/main")).await.expect(202);
    assert_eq!(queued.data()["status"], "queued");
    let sync = settled(&app, &token, id).await;
    assert_eq!(sync["status"], "done", "{sync}");
    assert_eq!(sync["commit"], SHA);
    let again = push(&app, "d-1", &payload("refs/heads/main")).await.expect(200);
    assert_eq!(again.data()["status"], "duplicate", "a redelivery syncs nothing more");
    let untouched = app.get(&format!("/api/v1/projects/{named}"), &squatter).await.expect(200);
    assert_eq!(untouched.data()["sync"]["status"], "never", "{}", untouched.body);
});

db_test!(async fn a_sync_waiting_for_a_retry_shows_queued_with_its_reason(backend) {
    let github = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/tarball/main"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&github)
        .await;
    let (app, _) = github_app(backend, &github).await;
    let (token, _) = app.user().await;
    let project = app.post("/api/v1/projects", &token, json!({"name": "shop", "repo_url": "https://github.com/acme/shop"})).await.expect(201);
    let id = project.data()["id"].as_i64().unwrap();
    app.post(&format!("/api/v1/projects/{id}/sync"), &token, json!({"ref": "main"})).await.expect(202);
    // The first try fails with a retryable 502; the next one is seconds away.
    let mut seen = Value::Null;
    for _ in 0..200 {
        seen = app.get(&format!("/api/v1/projects/{id}"), &token).await.expect(200).data()["sync"].clone();
        if seen["reason"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(seen["status"], "queued", "{seen}");
    assert_eq!(seen["reason"], "GitHub answered 502", "{seen}");
});
