//! Access to a repository is proven, never assumed (SPEC §6.2): connecting GitHub through
//! the OAuth web flow, a project's `repo_access`, anonymous syncs for what is not proven,
//! and `repo_url` rules that keep typed text out of credentialed requests.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use wiremock::{
    matchers::{header, method, path},
    Mock, MockServer, ResponseTemplate,
};

use crate::{
    codebase::github_tarball,
    codebase_sync::settled,
    github_accounts::{
        come_back, configure_oauth, connect, state_of, verified_project, GithubAccounts, CLIENT_ID,
    },
    helpers::{spawn_with, Backend, TestApp},
};

const SERVER_TOKEN: &str = "ghp_server_token";

async fn github_app(backend: Backend, github: &MockServer) -> (TestApp, GithubAccounts) {
    let accounts = GithubAccounts::mount(github, SERVER_TOKEN).await;
    let app = spawn_with(backend, |config| {
        configure_oauth(config, github);
        config.github.token = Some(SERVER_TOKEN.into());
        config.github.public_url = "https://codesherpa.example".into();
        config.jobs.poll_interval = Duration::from_millis(100);
    })
    .await;
    (app, accounts)
}

async fn identities(app: &TestApp) -> Vec<(i64, String, String)> {
    codesherpa::with_pool!(&app.db, |pool| sqlx::query_as(
        "SELECT user_id, login, token FROM github_identities ORDER BY user_id"
    )
    .fetch_all(pool)
    .await
    .unwrap())
}

db_test!(async fn connecting_github_is_proven_by_a_single_use_state(backend) {
    let unconfigured = spawn_with(backend, |_| {}).await;
    let (token, _) = unconfigured.user().await;
    let refused = unconfigured.post("/api/v1/user/github/connect", &token, json!({})).await.expect(503);
    assert_eq!(refused.code(), "not_configured");
    drop(unconfigured);

    let github = MockServer::start().await;
    let (app, accounts) = github_app(backend, &github).await;
    let (token, _) = app.user().await;
    app.get("/api/v1/user/github", &token).await.expect(404);
    let started = app.post("/api/v1/user/github/connect", &token, json!({})).await.expect(201);
    let url = started.data()["authorize_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("{}/login/oauth/authorize?", github.uri())), "{url}");
    assert!(url.contains(&format!("client_id={CLIENT_ID}")), "{url}");
    assert!(
        url.contains("redirect_uri=https%3A%2F%2Fcodesherpa.example%2Fapi%2Fv1%2Fintegrations%2Fgithub%2Fcallback"),
        "{url}"
    );
    let expires: chrono::DateTime<chrono::Utc> =
        started.data()["expires_at"].as_str().unwrap().parse().unwrap();
    let minutes = (expires - chrono::Utc::now()).num_minutes();
    assert!((9..=10).contains(&minutes), "{minutes}");
    let state = state_of(&url);
    assert_eq!(state.len(), 64);
    let code = accounts.user("octocat", 583231);

    // A wrong state stores nothing, and does not use up the real one.
    let wrong = come_back(&app, &code, &"0".repeat(64)).await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert!(identities(&app).await.is_empty());

    let back = come_back(&app, &code, &state).await;
    assert_eq!(back.status(), StatusCode::FOUND);
    assert_eq!(back.headers()["location"], "/#/account?github=connected");
    let me = app.get("/api/v1/user/github", &token).await.expect(200);
    assert_eq!(me.data()["login"], "octocat");
    assert!(me.data()["connected_at"].is_string());
    // The token is sealed at rest.
    let stored = identities(&app).await;
    assert_eq!(stored.len(), 1);
    assert!(stored[0].2.starts_with("v1:") && !stored[0].2.contains("gho_octocat"), "{:?}", stored[0]);

    // The same state again (a replay) → 400, even with a fresh code.
    let again = come_back(&app, &accounts.user("mallory", 6), &state).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/api/v1/user/github", &token).await.expect(200).data()["login"], "octocat");

    // A user has at most five flows in flight: a sixth retires the oldest.
    let (tabs, _) = app.user().await;
    let mut states = Vec::new();
    for _ in 0..6 {
        let started = app.post("/api/v1/user/github/connect", &tabs, json!({})).await.expect(201);
        states.push(state_of(started.data()["authorize_url"].as_str().unwrap()));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let live: i64 = codesherpa::with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT COUNT(*) FROM github_oauth_states")
        .fetch_one(pool)
        .await
        .unwrap());
    assert_eq!(live, 5);
    assert_eq!(come_back(&app, &accounts.user("tab0", 8), &states[0]).await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(come_back(&app, &accounts.user("tab5", 9), &states[5]).await.status(), StatusCode::FOUND);
    codesherpa::with_pool!(&app.db, |pool| sqlx::query("DELETE FROM github_oauth_states")
        .execute(pool)
        .await
        .map(drop)
        .unwrap());

    // An expired state → 400; a code GitHub refuses → 400; nothing stored for that user.
    let (other, _) = app.user().await;
    let late = state_of(app.post("/api/v1/user/github/connect", &other, json!({})).await.expect(201).data()["authorize_url"].as_str().unwrap());
    codesherpa::with_pool!(&app.db, |pool| sqlx::query("UPDATE github_oauth_states SET expires_at = $1")
        .bind(chrono::Utc::now() - chrono::TimeDelta::seconds(1))
        .execute(pool)
        .await
        .map(drop)
        .unwrap());
    assert_eq!(come_back(&app, &accounts.user("late", 7), &late).await.status(), StatusCode::BAD_REQUEST);
    let fresh = state_of(app.post("/api/v1/user/github/connect", &other, json!({})).await.expect(201).data()["authorize_url"].as_str().unwrap());
    assert_eq!(come_back(&app, "not-a-code", &fresh).await.status(), StatusCode::BAD_REQUEST);
    app.get("/api/v1/user/github", &other).await.expect(404);
    assert_eq!(identities(&app).await.len(), 2, "octocat's and tab5's");

    // Disconnecting forgets the identity and its token, and withdraws verified access.
    accounts.grant("octocat", "acme/shop", "admin");
    let project = app
        .post("/api/v1/projects", &token, json!({"name": "shop", "repo_url": "https://github.com/acme/shop"}))
        .await
        .expect(201);
    assert_eq!(project.data()["repo_access"]["status"], "verified", "{}", project.body);
    assert_eq!(project.data()["repo_access"]["login"], "octocat");
    let id = project.data()["id"].as_i64().unwrap();
    assert!(accounts.accepts("octocat"));
    app.delete("/api/v1/user/github", &token).await.expect(200);
    app.get("/api/v1/user/github", &token).await.expect(404);
    assert_eq!(identities(&app).await.len(), 1, "only tab5's is left");
    assert!(!accounts.accepts("octocat"), "the grant was revoked on GitHub too");
    app.delete("/api/v1/user/github", &token).await.expect(200);
    let after = app.get(&format!("/api/v1/projects/{id}"), &token).await.expect(200);
    assert_eq!(after.data()["repo_access"]["status"], "unverified", "{}", after.body);
    let listed = app.get("/api/v1/projects", &token).await.expect(200);
    assert_eq!(listed.data()["items"][0]["repo_access"], after.data()["repo_access"]);
    let plain = app.post("/api/v1/projects", &token, json!({"name": "plain"})).await.expect(201);
    assert_eq!(plain.data()["repo_access"], Value::Null);
});

db_test!(async fn repo_access_needs_push_maintain_or_admin(backend) {
    let github = MockServer::start().await;
    let (app, accounts) = github_app(backend, &github).await;
    let (token, _) = app.user().await;
    let create = |repo: &str| {
        app.post("/api/v1/projects", &token, json!({"name": repo, "repo_url": format!("https://github.com/{repo}")}))
    };
    let lonely = create("acme/one").await.expect(201);
    assert_eq!(lonely.data()["repo_access"]["status"], "unverified");
    assert!(lonely.data()["repo_access"]["reason"].as_str().unwrap().contains("connect GitHub"));
    connect(&app, &token, &accounts, "ada").await;
    for (role, status) in [("pull", "denied"), ("triage", "denied"), ("push", "verified"), ("maintain", "verified"), ("admin", "verified")] {
        let repo = format!("acme/{role}");
        accounts.grant("ada", &repo, role);
        let project = create(&repo).await.expect(201);
        assert_eq!(project.data()["repo_access"]["status"], status, "{role}: {}", project.body);
    }
    let unseen = create("victim-org/private-app").await.expect(201);
    assert_eq!(unseen.data()["repo_access"]["status"], "denied");
    // The first project is checked again on request, now with the connected identity.
    let one = lonely.data()["id"].as_i64().unwrap();
    accounts.grant("ada", "acme/one", "push");
    let checked = app.call(reqwest::Method::POST, &format!("/api/v1/projects/{one}/repo-access"), Some(&token), None).await.expect(200);
    assert_eq!(checked.data()["repo_access"]["status"], "verified");
    assert!(checked.data()["repo_access"]["checked_at"].is_string());
    // A project from before access was proven (status unset) is checked on request too.
    codesherpa::with_pool!(&app.db, |pool| sqlx::query(
        "UPDATE projects SET repo_access_status = NULL, repo_access_checked_at = NULL WHERE id = $1"
    )
    .bind(one)
    .execute(pool)
    .await
    .map(drop)
    .unwrap());
    let legacy = app.get(&format!("/api/v1/projects/{one}"), &token).await.expect(200);
    assert_eq!(legacy.data()["repo_access"], Value::Null);
    let checked = app.call(reqwest::Method::POST, &format!("/api/v1/projects/{one}/repo-access"), Some(&token), None).await.expect(200);
    assert_eq!(checked.data()["repo_access"]["status"], "verified", "{}", checked.body);
    // A changed repo_url starts over.
    let moved = app.put(&format!("/api/v1/projects/{one}"), &token, json!({"repo_url": "https://github.com/acme/elsewhere"})).await.expect(200);
    assert_eq!(moved.data()["repo_access"]["status"], "denied", "{}", moved.body);
    // A revoked token stops proving anything.
    accounts.revoke("ada");
    let revoked = app.call(reqwest::Method::POST, &format!("/api/v1/projects/{one}/repo-access"), Some(&token), None).await.expect(200);
    assert_eq!(revoked.data()["repo_access"]["status"], "unverified", "{}", revoked.body);
    // Owner only; a project with no GitHub repository has nothing to check.
    let (mallory, _) = app.user().await;
    app.call(reqwest::Method::POST, &format!("/api/v1/projects/{one}/repo-access"), Some(&mallory), None).await.expect(404);
    let plain = app.post("/api/v1/projects", &token, json!({"name": "plain", "repo_url": "https://gitlab.com/a/b"})).await.expect(201);
    assert_eq!(plain.data()["repo_access"], Value::Null);
    let plain = plain.data()["id"].as_i64().unwrap();
    app.call(reqwest::Method::POST, &format!("/api/v1/projects/{plain}/repo-access"), Some(&token), None).await.expect(409);
});

db_test!(async fn a_private_repository_is_never_read_for_someone_who_cannot_push(backend) {
    let github = MockServer::start().await;
    let secret = github_tarball(&[("config.py", "API_KEY = 'sk_live_victim'\n")]);
    // GitHub serves the private repository to the server's own token only.
    Mock::given(method("GET"))
        .and(path("/repos/victim-org/private-app/tarball/main"))
        .and(header("authorization", format!("Bearer {SERVER_TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(secret))
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/victim-org/private-app/tarball/main"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&github)
        .await;
    let (app, accounts) = github_app(backend, &github).await;
    let (mallory, _) = app.user().await;
    connect(&app, &mallory, &accounts, "mallory").await;
    let project = app
        .post("/api/v1/projects", &mallory, json!({"name": "loot", "repo_url": "https://github.com/victim-org/private-app"}))
        .await
        .expect(201);
    assert_eq!(project.data()["repo_access"]["status"], "denied");
    let id = project.data()["id"].as_i64().unwrap();
    app.post(&format!("/api/v1/projects/{id}/sync"), &mallory, json!({"ref": "main"})).await.expect(202);
    let sync = settled(&app, &mallory, id).await;
    assert_eq!(sync["status"], "failed", "{sync}");
    assert!(sync["reason"].as_str().unwrap().contains("verified"), "{sync}");
    let found = app.get(&format!("/api/v1/projects/{id}/search?q=API_KEY"), &mallory).await.expect(200);
    assert_eq!(found.data()["total"], 0, "{}", found.body);
    for request in github.received_requests().await.unwrap() {
        if request.url.path().contains("/tarball/") {
            assert!(request.headers.get("authorization").is_none(), "the server's token was used for {}", request.url);
        }
    }

    // The owner who can push syncs it with the server's credentials.
    let (owner, id) = verified_project(&app, &accounts, "victim", "victim-org/private-app").await;
    app.post(&format!("/api/v1/projects/{id}/sync"), &owner, json!({"ref": "main"})).await.expect(202);
    assert_eq!(settled(&app, &owner, id).await["status"], "done");
    let found = app.get(&format!("/api/v1/projects/{id}/search?q=API_KEY"), &owner).await.expect(200);
    assert_eq!(found.data()["total"], 1);
});

db_test!(async fn repo_urls_on_github_follow_githubs_name_rules(backend) {
    let github = MockServer::start().await;
    let (app, _) = github_app(backend, &github).await;
    let (token, _) = app.user().await;
    for url in [
        "https://github.com/../user",
        "https://github.com/%2e%2e/user",
        "https://github.com\\..\\..\\admin",
        "https://github.com/acme/widgets?x=1",
        "https://github.com/acme/widgets#x",
        "https://github.com/acme/widgets/issues",
        "https://github.com/acme/..",
        "https://www.github.com/acme",
    ] {
        let refused = app.post("/api/v1/projects", &token, json!({"name": "x", "repo_url": url})).await.expect(422);
        assert_eq!(refused.error_fields(), ["repo_url"], "{url}");
    }
    let project = app
        .post("/api/v1/projects", &token, json!({"name": "x", "repo_url": "https://github.com/Acme/widgets.git"}))
        .await
        .expect(201);
    let id = project.data()["id"].as_i64().unwrap();
    let refused = app.put(&format!("/api/v1/projects/{id}"), &token, json!({"repo_url": "https://github.com/../user"})).await.expect(422);
    assert_eq!(refused.error_fields(), ["repo_url"]);
    let elsewhere = app.put(&format!("/api/v1/projects/{id}"), &token, json!({"repo_url": "https://git.example.org/../x?y=1"})).await.expect(200);
    assert_eq!(elsewhere.data()["repo_url"], "https://git.example.org/../x?y=1", "other hosts are kept as given");
    assert_eq!(elsewhere.data()["repo_access"], Value::Null);

    // A row written before these rules (or by hand) still steers nothing.
    codesherpa::with_pool!(&app.db, |pool| sqlx::query(
        "UPDATE projects SET repo_url = 'https://github.com/../user', repo_access_status = 'verified' WHERE id = $1"
    )
    .bind(id)
    .execute(pool)
    .await
    .map(drop)
    .unwrap());
    app.post(&format!("/api/v1/projects/{id}/sync"), &token, json!({})).await.expect(409);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reached: Vec<String> = github.received_requests().await.unwrap().iter().map(|r| r.url.path().to_owned()).collect();
    assert!(reached.iter().all(|p| p != "/user"), "{reached:?}");
});

db_test!(async fn a_github_app_syncs_a_verified_project_through_its_installation(backend) {
    let github = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/private/installation"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 77, "app_id": 12345})))
        .expect(1)
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path("/app/installations/77/access_tokens"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "token": "ghs_installation_77",
            "expires_at": (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339(),
        })))
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/private/tarball/main"))
        .and(header("authorization", "Bearer ghs_installation_77"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(github_tarball(&[("src/lib.rs", "pub fn hidden() {}\n")])))
        .expect(1)
        .mount(&github)
        .await;
    let accounts = GithubAccounts::mount(&github, SERVER_TOKEN).await;
    let app = spawn_with(backend, |config| {
        configure_oauth(config, &github);
        config.github.app = Some(codesherpa::integrations::github::settings::GithubApp {
            id: "12345".into(),
            private_key_pem: include_str!("../fixtures/github-app-test-key.pem").into(),
        });
        config.jobs.poll_interval = Duration::from_millis(100);
    })
    .await;
    let (token, id) = verified_project(&app, &accounts, "ada", "acme/private").await;
    app.post(&format!("/api/v1/projects/{id}/sync"), &token, json!({"ref": "main"})).await.expect(202);
    let sync = settled(&app, &token, id).await;
    assert_eq!(sync["status"], "done", "{sync}");
    let found = app.get(&format!("/api/v1/projects/{id}/search?q=hidden"), &token).await.expect(200);
    assert_eq!(found.data()["total"], 1);
});
