//! GitHub's side of connecting an account, as a wiremock GitHub speaks it: the OAuth code
//! exchange on the web host (`POST /login/oauth/access_token`, answered 200 with `error` for
//! a bad code, as GitHub does), `GET /user` for each token (users' and the server's own),
//! and `GET /repos/{o}/{r}` with per-user `permissions` (404 for a repository the user
//! cannot see). Users' tokens start with `gho_`; other requests fall through to the test's
//! own mocks.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use codesherpa::{config::Config, integrations::github::settings::GithubOAuth};
use reqwest::StatusCode;
use serde_json::{json, Value};
use wiremock::{
    matchers::{method, path},
    Match, Mock, MockServer, Request, Respond, ResponseTemplate,
};

use crate::helpers::TestApp;

pub const CLIENT_ID: &str = "Iv1.codesherpa-test";
pub const CLIENT_SECRET: &str = "test-client-secret";
/// The login of the server's own token, as GitHub shows it on the comments it writes.
pub const SERVER_LOGIN: &str = "codesherpa[bot]";

#[derive(Default)]
struct Accounts {
    /// OAuth code → (token, login, id).
    codes: HashMap<String, (String, String, i64)>,
    /// Token → (login, id).
    tokens: HashMap<String, (String, i64)>,
    /// (token, `owner/repo` lower-case) → the `permissions` object.
    permissions: HashMap<(String, String), Value>,
}

#[derive(Clone, Default)]
pub struct GithubAccounts(Arc<Mutex<Accounts>>);

fn bearer(request: &Request) -> Option<String> {
    let value = request.headers.get("authorization")?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::to_owned)
}

/// Requests carrying a user's token.
struct UserToken;
impl Match for UserToken {
    fn matches(&self, request: &Request) -> bool {
        bearer(request).is_some_and(|token| token.starts_with("gho_"))
    }
}

struct Exchange(GithubAccounts);
impl Respond for Exchange {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let form: HashMap<String, String> =
            form_urlencoded::parse(&request.body).into_owned().collect();
        let json_asked = request
            .headers
            .get("accept")
            .is_some_and(|v| v.to_str().unwrap_or_default().contains("application/json"));
        assert!(json_asked, "the exchange asks for JSON");
        if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
            || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
        {
            return ResponseTemplate::new(200).set_body_json(json!({
                "error": "incorrect_client_credentials",
                "error_description": "The client_id and/or client_secret passed are incorrect.",
            }));
        }
        let mut accounts = self.0 .0.lock().unwrap();
        // A code works once.
        match form
            .get("code")
            .and_then(|code| accounts.codes.remove(code))
        {
            Some((token, _, _)) => ResponseTemplate::new(200).set_body_json(json!({
                "access_token": token, "token_type": "bearer", "scope": "",
            })),
            None => ResponseTemplate::new(200).set_body_json(json!({
                "error": "bad_verification_code",
                "error_description": "The code passed is incorrect or expired.",
            })),
        }
    }
}

struct Me(GithubAccounts);
impl Respond for Me {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let accounts = self.0 .0.lock().unwrap();
        match bearer(request).and_then(|token| accounts.tokens.get(&token).cloned()) {
            Some((login, id)) => ResponseTemplate::new(200)
                .set_body_json(json!({"login": login, "id": id, "type": "User"})),
            None => ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"})),
        }
    }
}

struct Repository(GithubAccounts);
impl Respond for Repository {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let accounts = self.0 .0.lock().unwrap();
        let token = bearer(request).unwrap_or_default();
        if !accounts.tokens.contains_key(&token) {
            return ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"}));
        }
        let repository = request
            .url
            .path()
            .trim_start_matches("/repos/")
            .to_ascii_lowercase();
        match accounts.permissions.get(&(token, repository.clone())) {
            Some(permissions) => ResponseTemplate::new(200).set_body_json(json!({
                "full_name": repository, "private": true, "default_branch": "main",
                "permissions": permissions,
            })),
            None => ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})),
        }
    }
}

/// `DELETE /applications/{client_id}/grant`: basic authentication with the client
/// credentials, the user's token in the body; the grant and its tokens are gone.
struct RevokeGrant(GithubAccounts);
impl Respond for RevokeGrant {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        use base64::Engine;
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
        );
        let authorized = request
            .headers
            .get("authorization")
            .is_some_and(|v| v.to_str().unwrap_or_default() == expected);
        if !authorized {
            return ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"}));
        }
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let token = body["access_token"].as_str().unwrap_or_default();
        match self.0 .0.lock().unwrap().tokens.remove(token) {
            Some(_) => ResponseTemplate::new(204),
            None => {
                ResponseTemplate::new(422).set_body_json(json!({"message": "Validation Failed"}))
            }
        }
    }
}

/// GitHub's permissions object for one role.
pub fn role(name: &str) -> Value {
    let level = ["pull", "triage", "push", "maintain", "admin"]
        .iter()
        .position(|r| *r == name)
        .expect("a GitHub role");
    json!({
        "pull": true, "triage": level >= 1, "push": level >= 2,
        "maintain": level >= 3, "admin": level >= 4,
    })
}

impl GithubAccounts {
    /// Mounts GitHub's account endpoints on `server`; `server_token` is the server's own
    /// `GITHUB_TOKEN`, known to GitHub as [`SERVER_LOGIN`].
    pub async fn mount(server: &MockServer, server_token: &str) -> Self {
        let accounts = GithubAccounts::default();
        accounts
            .0
            .lock()
            .unwrap()
            .tokens
            .insert(server_token.to_owned(), (SERVER_LOGIN.to_owned(), 1));
        Mock::given(method("POST"))
            .and(path("/login/oauth/access_token"))
            .respond_with(Exchange(accounts.clone()))
            .mount(server)
            .await;
        Mock::given(method("DELETE"))
            .and(path(format!("/applications/{CLIENT_ID}/grant")))
            .respond_with(RevokeGrant(accounts.clone()))
            .mount(server)
            .await;
        Mock::given(method("GET"))
            .and(path("/user"))
            .respond_with(Me(accounts.clone()))
            .mount(server)
            .await;
        Mock::given(method("GET"))
            .and(wiremock::matchers::path_regex(r"^/repos/[^/]+/[^/]+$"))
            .and(UserToken)
            .respond_with(Repository(accounts.clone()))
            // Before any mock of the same path a test mounts for the server's own token.
            .with_priority(1)
            .mount(server)
            .await;
        accounts
    }

    /// A GitHub user who will authorize with `code` (their token is `gho_{login}`).
    pub fn user(&self, login: &str, id: i64) -> String {
        let code = format!("code-{login}-{}", uuid::Uuid::new_v4().simple());
        let token = format!("gho_{login}");
        let mut accounts = self.0.lock().unwrap();
        accounts
            .codes
            .insert(code.clone(), (token.clone(), login.to_owned(), id));
        accounts.tokens.insert(token, (login.to_owned(), id));
        code
    }

    /// Gives `login` a role on `repository` (`owner/repo`).
    pub fn grant(&self, login: &str, repository: &str, role_name: &str) {
        self.0.lock().unwrap().permissions.insert(
            (format!("gho_{login}"), repository.to_ascii_lowercase()),
            role(role_name),
        );
    }

    /// GitHub forgets the user's token (revoked).
    pub fn revoke(&self, login: &str) {
        self.0
            .lock()
            .unwrap()
            .tokens
            .remove(&format!("gho_{login}"));
    }

    /// Whether GitHub still accepts the user's token.
    pub fn accepts(&self, login: &str) -> bool {
        self.0
            .lock()
            .unwrap()
            .tokens
            .contains_key(&format!("gho_{login}"))
    }
}

/// The settings that make `server` the GitHub web host and API for OAuth.
pub fn configure_oauth(config: &mut Config, server: &MockServer) {
    config.github.web_url = server.uri();
    config.github.api_url = server.uri();
    config.github.oauth = Some(GithubOAuth {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
    });
}

/// A client that shows redirects instead of following them, as a test of the callback needs.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `state` of an `authorize_url`.
pub fn state_of(authorize_url: &str) -> String {
    let query = authorize_url.split_once('?').unwrap().1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "state")
        .map(|(_, value)| value.into_owned())
        .expect("a state in the authorize URL")
}

/// GitHub sending the browser back: `GET /callback?code=&state=`; the raw response.
pub async fn come_back(app: &TestApp, code: &str, state: &str) -> reqwest::Response {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("code", code)
        .append_pair("state", state)
        .finish();
    no_redirects()
        .get(app.url(&format!("/api/v1/integrations/github/callback?{query}")))
        .send()
        .await
        .unwrap()
}

/// The user connects GitHub as `login` through the whole web flow.
pub async fn connect(app: &TestApp, token: &str, accounts: &GithubAccounts, login: &str) {
    let code = accounts.user(login, 1000 + login.len() as i64);
    let started = app
        .post("/api/v1/user/github/connect", token, json!({}))
        .await
        .expect(201);
    let state = state_of(started.data()["authorize_url"].as_str().unwrap());
    let back = come_back(app, &code, &state).await;
    assert_eq!(back.status(), StatusCode::FOUND, "connected");
}

/// A user who connected GitHub as `login` with `role` on `repository`, and a project of
/// theirs linking it; returns (access token, project id).
pub async fn verified_project(
    app: &TestApp,
    accounts: &GithubAccounts,
    login: &str,
    repository: &str,
) -> (String, i64) {
    let (token, _) = app.user().await;
    accounts.grant(login, repository, "push");
    connect(app, &token, accounts, login).await;
    let project = app
        .post(
            "/api/v1/projects",
            &token,
            json!({"name": repository, "repo_url": format!("https://github.com/{repository}")}),
        )
        .await
        .expect(201);
    assert_eq!(
        project.data()["repo_access"]["status"],
        "verified",
        "{}",
        project.body
    );
    (token, project.data()["id"].as_i64().unwrap())
}
