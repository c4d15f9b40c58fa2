//! GitHub pull-request reviews against a wiremock GitHub speaking its real JSON, headers
//! and signatures: the webhook's checks and answers, the review job end to end (one
//! comment per PR, edited later), the 406 fallback, stale heads, retries, App tokens, and
//! a server killed with -9 mid-review. The App key in `tests/fixtures/` is a test-only key.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use codesherpa::{
    config::Config,
    integrations::{
        github::{settings::GithubApp, Credential},
        signature::sign_sha256,
    },
};
use serde_json::{json, Value};
use wiremock::{
    matchers::{header, method, path},
    Mock, MockServer, Request, Respond, ResponseTemplate,
};

use crate::{
    github_accounts::{self, GithubAccounts, SERVER_LOGIN},
    helpers::{codesherpa_cli, spawn_with, Backend, Reply, ServerProcess, TestApp},
};

pub(crate) const SECRET: &str = "webhook-test-secret";
pub(crate) const REPO: &str = "acme/widgets";
pub(crate) const HEAD: &str = "1111111111111111111111111111111111111111";
pub(crate) const NEWER: &str = "2222222222222222222222222222222222222222";
/// The pull request's base commit.
const BASE: &str = "0000000000000000000000000000000000000b05";
const DIFF: &str = "application/vnd.github.diff";
const SAMPLE_DIFF: &str = "diff --git a/src/pay.py b/src/pay.py\n--- a/src/pay.py\n+++ b/src/pay.py\n@@ -1,2 +1,4 @@\n def pay(amount):\n+    api_key = \"sk_live_1234567890abcdef\"\n+    print(amount)\n     return amount\n";

/// GitHub's comments on the pull request, as the mock keeps them.
#[derive(Clone, Default)]
struct Comments(Arc<Mutex<Vec<(i64, String)>>>);

/// The first id of a comment the server posts; lower ones are strangers'.
const OURS_FROM: i64 = 900;

impl Comments {
    fn all(&self) -> Vec<(i64, String)> {
        self.0.lock().unwrap().clone()
    }

    /// Ids below [`OURS_FROM`] are comments strangers wrote.
    fn json(id: i64, body: &str) -> Value {
        let user = if id < OURS_FROM {
            json!({"login": "mallory", "type": "User"})
        } else {
            json!({"login": SERVER_LOGIN, "type": "Bot"})
        };
        json!({
            "id": id,
            "body": body,
            "html_url": format!("https://github.com/{REPO}/pull/7#issuecomment-{id}"),
            "user": user,
        })
    }
}

struct ListComments(Comments);
impl Respond for ListComments {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let list: Vec<Value> = self
            .0
            .all()
            .iter()
            .map(|(id, body)| Comments::json(*id, body))
            .collect();
        ResponseTemplate::new(200).set_body_json(list)
    }
}

struct CreateComment(Comments);
impl Respond for CreateComment {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let text = body["body"].as_str().unwrap().to_owned();
        let mut all = self.0 .0.lock().unwrap();
        let id = OURS_FROM + all.len() as i64;
        all.push((id, text.clone()));
        ResponseTemplate::new(201).set_body_json(Comments::json(id, &text))
    }
}

struct EditComment(Comments);
impl Respond for EditComment {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id: i64 = request
            .url
            .path()
            .rsplit('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let text = body["body"].as_str().unwrap().to_owned();
        if id < OURS_FROM {
            // GitHub lets no one edit another account's comment.
            return ResponseTemplate::new(403)
                .set_body_json(json!({"message": "Must have admin rights to Repository."}));
        }
        let mut all = self.0 .0.lock().unwrap();
        match all.iter_mut().find(|(existing, _)| *existing == id) {
            Some(comment) => {
                comment.1 = text.clone();
                ResponseTemplate::new(200).set_body_json(Comments::json(id, &text))
            }
            None => ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})),
        }
    }
}

/// The pull request's JSON with whatever the head is now.
struct PullJson(Arc<Mutex<String>>);
impl Respond for PullJson {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let sha = self.0.lock().unwrap().clone();
        ResponseTemplate::new(200).set_body_json(json!({
            "number": 7, "state": "open", "draft": false,
            "head": {"sha": sha, "ref": "feature"}, "base": {"sha": BASE, "ref": "main"},
        }))
    }
}

/// The pull-request reviews GitHub keeps (`POST`/`GET /repos/{o}/{r}/pulls/{n}/reviews`),
/// the right-side lines it accepts comments on, and whether the next answer to a created
/// review is lost (a 502 after GitHub stored it).
#[derive(Clone, Default)]
struct PullReviews {
    all: Arc<Mutex<Vec<Value>>>,
    /// (path, line) on the right side of the pull request's diff.
    lines: Arc<Mutex<Vec<(String, u64)>>>,
    lose_next_answer: Arc<std::sync::atomic::AtomicBool>,
    /// The next created review is stored at once but answered only after a minute.
    slow_next_answer: Arc<std::sync::atomic::AtomicBool>,
}

impl PullReviews {
    fn all(&self) -> Vec<Value> {
        self.all.lock().unwrap().clone()
    }

    fn accept_lines(&self, lines: &[(&str, u64)]) {
        *self.lines.lock().unwrap() = lines.iter().map(|(p, l)| (p.to_string(), *l)).collect();
    }
}

/// `POST /repos/{o}/{r}/pulls/{n}/reviews` as GitHub answers it: 200 and the review
/// (`id`, `user`, `body`, `state: COMMENTED`, `commit_id`, `html_url`), or 422
/// "Unprocessable Entity" when a comment's line is not in the diff.
struct CreatePullReview(PullReviews);
impl Respond for CreatePullReview {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["event"], "COMMENT", "{body}");
        assert!(
            body["commit_id"].as_str().is_some_and(|c| c.len() == 40),
            "{body}"
        );
        let lines = self.0.lines.lock().unwrap().clone();
        for comment in body["comments"].as_array().unwrap() {
            assert_eq!(comment["side"], "RIGHT", "{comment}");
            assert!(comment["body"].as_str().is_some(), "{comment}");
            let at = (
                comment["path"].as_str().unwrap().to_owned(),
                comment["line"].as_u64().unwrap(),
            );
            if !lines.contains(&at) {
                return ResponseTemplate::new(422).set_body_json(json!({
                    "message": "Unprocessable Entity",
                    "errors": ["Line could not be resolved"],
                    "documentation_url": "https://docs.github.com/rest/pulls/reviews#create-a-review-for-a-pull-request",
                    "status": "422"
                }));
            }
        }
        let mut all = self.0.all.lock().unwrap();
        let id = 5000 + all.len() as i64;
        let review = json!({
            "id": id,
            "node_id": "PRR_x",
            "user": {"login": SERVER_LOGIN, "type": "Bot"},
            "body": body["body"],
            "state": "COMMENTED",
            "html_url": format!("https://github.com/{REPO}/pull/7#pullrequestreview-{id}"),
            "pull_request_url": format!("https://api.github.com/repos/{REPO}/pulls/7"),
            "commit_id": body["commit_id"],
            "author_association": "NONE",
            "comments": body["comments"],
        });
        all.push(review.clone());
        if self.0.lose_next_answer.swap(false, Ordering::SeqCst) {
            return ResponseTemplate::new(502).set_body_string("Bad Gateway");
        }
        let mut answer = review;
        answer.as_object_mut().unwrap().remove("comments");
        let template = ResponseTemplate::new(200).set_body_json(answer);
        if self.0.slow_next_answer.swap(false, Ordering::SeqCst) {
            return template.set_delay(Duration::from_secs(60));
        }
        template
    }
}

struct ListPullReviews(PullReviews);
impl Respond for ListPullReviews {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let listed: Vec<Value> = self
            .0
            .all()
            .into_iter()
            .map(|mut r| {
                r.as_object_mut().unwrap().remove("comments");
                r
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(listed)
    }
}

/// `GET /repos/{o}/{r}/contents/.codesherpa.yml?ref=…` with `Accept:
/// application/vnd.github.raw+json`: the file's raw text at that commit, or GitHub's 404.
#[derive(Clone, Default)]
struct SettingsFiles(Arc<Mutex<Vec<(String, String)>>>);

impl SettingsFiles {
    fn put(&self, commit: &str, text: &str) {
        self.0
            .lock()
            .unwrap()
            .push((commit.to_owned(), text.to_owned()));
    }
}

impl Respond for SettingsFiles {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        assert_eq!(
            request.headers.get("accept").and_then(|v| v.to_str().ok()),
            Some("application/vnd.github.raw+json")
        );
        let commit = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "ref")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let files = self.0.lock().unwrap();
        match files.iter().find(|(at, _)| *at == commit) {
            Some((_, text)) => ResponseTemplate::new(200)
                .set_body_raw(text.clone(), "application/vnd.github.raw+json"),
            None => ResponseTemplate::new(404).set_body_json(json!({
                "message": "Not Found",
                "documentation_url": "https://docs.github.com/rest/repos/contents#get-repository-content",
                "status": "404"
            })),
        }
    }
}

/// `GET /repos/{o}/{r}/compare/{base}...{head}`: GitHub's comparison (`status` ahead,
/// behind, diverged or identical, `ahead_by`, `behind_by`, `files[]` with `filename`,
/// `status` and `patch`) for the ranges a test set, else 404.
#[derive(Clone, Default)]
struct Comparisons(Arc<Mutex<Vec<(String, Value)>>>);

impl Comparisons {
    fn put(&self, base: &str, head: &str, status: &str, files: Value) {
        let (ahead, behind) = match status {
            "ahead" => (1, 0),
            "behind" => (0, 1),
            "diverged" => (1, 1),
            _ => (0, 0),
        };
        let body = json!({
            "url": format!("https://api.github.com/repos/{REPO}/compare/{base}...{head}"),
            "html_url": format!("https://github.com/{REPO}/compare/{base}...{head}"),
            "status": status, "ahead_by": ahead, "behind_by": behind, "total_commits": ahead,
            "commits": [], "files": files,
        });
        self.0
            .lock()
            .unwrap()
            .push((format!("{base}...{head}"), body));
    }
}

impl Respond for Comparisons {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let range = request
            .url
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        match self.0.lock().unwrap().iter().find(|(r, _)| *r == range) {
            Some((_, body)) => ResponseTemplate::new(200).set_body_json(body),
            None => ResponseTemplate::new(404).set_body_json(json!({
                "message": "Not Found",
                "documentation_url": "https://docs.github.com/rest/commits/commits#compare-two-commits",
                "status": "404"
            })),
        }
    }
}

pub(crate) struct GithubMock {
    pub(crate) server: MockServer,
    compare: Comparisons,
    comments: Comments,
    reviews: PullReviews,
    settings: SettingsFiles,
    head: Arc<Mutex<String>>,
    accounts: GithubAccounts,
}

impl GithubMock {
    /// A pull request `acme/widgets#7` at `HEAD` with `SAMPLE_DIFF` and no comments.
    pub(crate) async fn start() -> Self {
        let server = MockServer::start().await;
        let accounts = GithubAccounts::mount(&server, "ghp_test_token").await;
        let comments = Comments::default();
        let head = Arc::new(Mutex::new(HEAD.to_owned()));
        Mock::given(method("GET"))
            .and(path(format!("/repos/{REPO}/pulls/7")))
            .and(header("accept", "application/vnd.github+json"))
            .respond_with(PullJson(head.clone()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/repos/{REPO}/issues/7/comments")))
            .respond_with(ListComments(comments.clone()))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/repos/{REPO}/issues/7/comments")))
            .respond_with(CreateComment(comments.clone()))
            .mount(&server)
            .await;
        Mock::given(method("PATCH"))
            .and(wiremock::matchers::path_regex(format!(
                "^/repos/{REPO}/issues/comments/[0-9]+$"
            )))
            .respond_with(EditComment(comments.clone()))
            .mount(&server)
            .await;
        let reviews = PullReviews::default();
        reviews.accept_lines(&[
            ("src/pay.py", 1),
            ("src/pay.py", 2),
            ("src/pay.py", 3),
            ("src/pay.py", 4),
        ]);
        Mock::given(method("POST"))
            .and(path(format!("/repos/{REPO}/pulls/7/reviews")))
            .respond_with(CreatePullReview(reviews.clone()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/repos/{REPO}/pulls/7/reviews")))
            .respond_with(ListPullReviews(reviews.clone()))
            .mount(&server)
            .await;
        let settings = SettingsFiles::default();
        Mock::given(method("GET"))
            .and(path(format!("/repos/{REPO}/contents/.codesherpa.yml")))
            .respond_with(settings.clone())
            .mount(&server)
            .await;
        let compare = Comparisons::default();
        Mock::given(method("GET"))
            .and(wiremock::matchers::path_regex(format!(
                "^/repos/{REPO}/compare/[^/]+$"
            )))
            .respond_with(compare.clone())
            .mount(&server)
            .await;
        GithubMock {
            server,
            compare,
            comments,
            reviews,
            settings,
            head,
            accounts,
        }
    }

    pub(crate) async fn serve_diff(&self, template: impl Respond + 'static) {
        Mock::given(method("GET"))
            .and(path(format!("/repos/{REPO}/pulls/7")))
            .and(header("accept", DIFF))
            .respond_with(template)
            .mount(&self.server)
            .await;
    }

    pub(crate) fn diff_ok() -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_raw(SAMPLE_DIFF, DIFF)
    }

    /// How many times the diff was asked for.
    async fn diff_requests(&self) -> usize {
        let requests = self.requests().await;
        requests
            .iter()
            .filter(|r| r.headers.get("accept").is_some_and(|a| a == DIFF))
            .count()
    }

    /// Waits (bounded) until a review job is fetching the diff.
    async fn until_diff_asked(&self) {
        for _ in 0..400 {
            if self.diff_requests().await > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no review fetched the diff");
    }

    /// The bodies of the comments on the pull request, oldest first.
    pub(crate) fn comment_bodies(&self) -> Vec<String> {
        self.comments
            .all()
            .into_iter()
            .map(|(_, body)| body)
            .collect()
    }

    pub(crate) fn move_head(&self, sha: &str) {
        *self.head.lock().unwrap() = sha.to_owned();
    }

    async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap_or_default()
    }
}

pub(crate) fn configure(config: &mut Config, server: &MockServer) {
    github_accounts::configure_oauth(config, server);
    config.github.webhook_secret = Some(SECRET.into());
    config.github.token = Some("ghp_test_token".into());
    config.jobs.poll_interval = Duration::from_millis(100);
}

async fn github_app(backend: Backend, github: &GithubMock) -> TestApp {
    let server = &github.server;
    spawn_with(backend, |config| configure(config, server)).await
}

pub(crate) fn pull_request_event(action: &str, sha: &str) -> Value {
    json!({
        "action": action,
        "number": 7,
        "pull_request": {
            "number": 7, "draft": false, "state": "open",
            "head": {"sha": sha, "ref": "feature"}, "base": {"sha": BASE, "ref": "main"},
            "user": {"login": "octocat", "type": "User"},
        },
        "repository": {"full_name": REPO, "name": "widgets", "owner": {"login": "acme"},
                        "html_url": format!("https://github.com/{REPO}")},
        "sender": {"login": "octocat", "type": "User"},
    })
}

pub(crate) async fn deliver(app: &TestApp, event: &str, delivery: &str, payload: &Value) -> Reply {
    let body = serde_json::to_vec(payload).unwrap();
    let request = app
        .client
        .post(app.url("/api/v1/integrations/github/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", sign_sha256(SECRET.as_bytes(), &body))
        .body(body);
    app.send(request).await
}

/// A user who connected GitHub as `octocat` (push on `acme/widgets`) with a project
/// linking it (`https://github.com/Acme/Widgets.git`): verified.
pub(crate) async fn linked_project(
    app: &TestApp,
    github: &GithubMock,
    auto_review: bool,
) -> (String, i64) {
    let (token, _) = app.user().await;
    github.accounts.grant("octocat", REPO, "push");
    github_accounts::connect(app, &token, &github.accounts, "octocat").await;
    let project = app
        .post(
            "/api/v1/projects",
            &token,
            json!({"name": "widgets", "repo_url": "https://github.com/Acme/Widgets.git",
                   "auto_review": auto_review}),
        )
        .await
        .expect(201);
    assert_eq!(project.data()["repo_access"]["status"], "verified");
    let id = project.data()["id"].as_i64().unwrap();
    (token, id)
}

/// Waits (bounded) until the project's newest review has finished; returns it.
pub(crate) async fn finished_review(app: &TestApp, token: &str, project: i64) -> Value {
    for _ in 0..400 {
        let reviews = app
            .get(&format!("/api/v1/projects/{project}/reviews"), token)
            .await
            .expect(200);
        if let Some(review) = reviews.data()["items"].get(0) {
            if matches!(
                review["status"].as_str(),
                Some("done" | "skipped" | "failed")
            ) {
                return review.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the review never finished");
}

db_test!(
    async fn the_webhook_needs_the_right_signature(backend) {
        let github = GithubMock::start().await;
        let app = github_app(backend, &github).await;
        let body = serde_json::to_vec(&json!({"zen": "Design for failure."})).unwrap();
        let url = app.url("/api/v1/integrations/github/webhook");
        let send = |signature: Option<String>| {
            let mut request = app
                .client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-github-event", "ping")
                .header("x-github-delivery", "d-sig")
                .body(body.clone());
            if let Some(signature) = signature {
                request = request.header("x-hub-signature-256", signature);
            }
            app.send(request)
        };
        let missing = send(None).await.expect(401);
        assert_eq!(missing.code(), "unauthorized");
        send(Some(sign_sha256(b"wrong-secret", &body))).await.expect(401);
        send(Some("sha1=0123456789abcdef0123456789abcdef01234567".into()))
            .await
            .expect(401);
        let tampered = sign_sha256(SECRET.as_bytes(), b"{\"zen\":\"other\"}");
        send(Some(tampered)).await.expect(401);
        let stored: i64 = codesherpa::with_pool!(&app.db, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM github_deliveries"
        )
        .fetch_one(pool)
        .await
        .unwrap());
        assert_eq!(stored, 0, "nothing stored for a bad signature");
        let pong = send(Some(sign_sha256(SECRET.as_bytes(), &body))).await.expect(200);
        assert_eq!(pong.data()["status"], "pong");
        assert_eq!(pong.data()["delivery_id"], "d-sig");
        let again = send(Some(sign_sha256(SECRET.as_bytes(), &body))).await.expect(200);
        assert_eq!(again.data()["status"], "duplicate");
        // GitHub's form encoding carries the same JSON in `payload`; other types are refused.
        let form = format!("payload={}", form_urlencoded::byte_serialize(&body).collect::<String>());
        let sent = |content_type: &'static str, delivery: &'static str| {
            app.send(
                app.client
                    .post(&url)
                    .header("content-type", content_type)
                    .header("x-github-event", "ping")
                    .header("x-github-delivery", delivery)
                    .header("x-hub-signature-256", sign_sha256(SECRET.as_bytes(), form.as_bytes()))
                    .body(form.clone()),
            )
        };
        let pong = sent("application/x-www-form-urlencoded", "d-form").await.expect(200);
        assert_eq!(pong.data()["status"], "pong");
        assert_eq!(sent("text/plain", "d-text").await.expect(415).code(), "unsupported_media_type");
    }
);

db_test!(
    async fn without_a_secret_the_webhook_is_not_configured(backend) {
        let app = spawn_with(backend, |_| {}).await;
        let reply = deliver(&app, "ping", "d-1", &json!({"zen": "x"})).await.expect(503);
        assert_eq!(reply.code(), "not_configured");
    }
);

db_test!(
    async fn a_pull_request_gets_one_comment_kept_up_to_date(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, true).await;

        let queued = deliver(&app, "pull_request", "d-open", &pull_request_event("opened", HEAD))
            .await
            .expect(202);
        assert_eq!(queued.data()["status"], "queued");
        assert_eq!(queued.data()["delivery_id"], "d-open");
        let review_id = queued.data()["review_id"].as_i64().unwrap();
        let review = finished_review(&app, &token, project).await;
        assert_eq!(review["id"], review_id);
        assert_eq!(review["status"], "done", "{review}");
        assert_eq!(review["repository"], REPO);
        assert_eq!(review["pull_number"], 7);
        assert_eq!(review["head_sha"], HEAD);
        assert_eq!(review["attempts"], 1);
        let comments = github.comments.all();
        assert_eq!(comments.len(), 1);
        let (comment_id, body) = &comments[0];
        assert!(body.contains("<!-- codesherpa-review -->"));
        assert!(body.contains(HEAD));
        assert!(body.contains("src/pay.py:"), "findings name path:line: {body}");
        assert!(body.contains("Quality score"));
        assert_eq!(
            review["comment_url"],
            format!("https://github.com/{REPO}/pull/7#issuecomment-{comment_id}")
        );

        // Every call of the review carried GitHub's standard headers and the server's token
        // (the user's connection went to the web host, then to the API with their token).
        for request in github.requests().await {
            let h = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
            if request.url.path() == "/login/oauth/access_token" {
                continue;
            }
            if h("authorization").is_some_and(|a| a.starts_with("Bearer gho_")) {
                assert!(matches!(request.url.path(), "/user" | "/repos/acme/widgets"), "{}", request.url);
                continue;
            }
            assert_eq!(h("x-github-api-version").as_deref(), Some("2022-11-28"));
            assert_eq!(h("authorization").as_deref(), Some("Bearer ghp_test_token"));
            assert!(h("user-agent").is_some_and(|ua| ua.starts_with("CodeSherpa/")));
            assert!(h("accept").is_some());
        }

        // The review is a chat of the owner.
        let chat_id = review["chat_id"].as_i64().unwrap();
        let chat = app.get(&format!("/api/v1/chat/{chat_id}"), &token).await.expect(200);
        assert_eq!(chat.data()["session_id"], format!("github:{REPO}#7"));
        assert_eq!(chat.data()["project_id"], project);
        assert!(chat.data()["result"]["findings"].is_array(), "{}", chat.data());

        // A push: the same comment is edited, never a second one.
        github.move_head(NEWER);
        deliver(&app, "pull_request", "d-sync", &pull_request_event("synchronize", NEWER))
            .await
            .expect(202);
        for _ in 0..400 {
            if github.comments.all()[0].1.contains(NEWER) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let comments = github.comments.all();
        assert_eq!(comments.len(), 1);
        assert_eq!(comments[0].0, *comment_id);
        assert!(comments[0].1.contains(NEWER));
        let reviews = app
            .get(&format!("/api/v1/projects/{project}/reviews"), &token)
            .await
            .expect(200);
        assert_eq!(reviews.data()["total"], 2);
    }
);

db_test!(
    async fn deliveries_that_need_no_review_are_ignored_with_a_reason(backend) {
        let github = GithubMock::start().await;
        let app = github_app(backend, &github).await;
        linked_project(&app, &github, true).await;
        let before = github.requests().await.len();
        let mut draft = pull_request_event("opened", HEAD);
        draft["pull_request"]["draft"] = json!(true);
        let mut bot = pull_request_event("opened", HEAD);
        bot["sender"] = json!({"login": "dependabot[bot]", "type": "Bot"});
        let mut unlinked = pull_request_event("opened", HEAD);
        unlinked["repository"]["full_name"] = json!("acme/other");
        let cases = [
            ("pull_request", pull_request_event("closed", HEAD), "closed"),
            ("pull_request", draft, "draft"),
            ("pull_request", bot, "bot"),
            ("pull_request", unlinked, "no project with verified access links acme/other"),
            ("push", json!({"ref": "refs/heads/main"}), "push"),
            (
                "issue_comment",
                json!({"action": "created", "issue": {"number": 7, "pull_request": {}},
                       "comment": {"body": "LGTM", "user": {"login": "a", "type": "User"}},
                       "repository": {"full_name": REPO}, "sender": {"login": "a", "type": "User"}}),
                "/codesherpa review",
            ),
        ];
        for (n, (event, payload, reason)) in cases.into_iter().enumerate() {
            let reply = deliver(&app, event, &format!("d-ignored-{n}"), &payload).await.expect(200);
            assert_eq!(reply.data()["status"], "ignored", "{event} {payload}");
            let said = reply.data()["reason"].as_str().unwrap();
            assert!(said.contains(reason), "{said} should mention {reason}");
        }
        assert_eq!(github.requests().await.len(), before, "nothing reached GitHub");
    }
);

db_test!(
    async fn auto_review_off_skips_and_is_a_project_field(backend) {
        let github = GithubMock::start().await;
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, false).await;
        let read = app.get(&format!("/api/v1/projects/{project}"), &token).await.expect(200);
        assert_eq!(read.data()["auto_review"], false);
        let reply = deliver(&app, "pull_request", "d-off", &pull_request_event("opened", HEAD))
            .await
            .expect(200);
        assert_eq!(reply.data()["status"], "ignored");
        assert!(reply.data()["reason"].as_str().unwrap().contains("auto_review"));
        let updated = app
            .put(&format!("/api/v1/projects/{project}"), &token, json!({"auto_review": true}))
            .await
            .expect(200);
        assert_eq!(updated.data()["auto_review"], true);
        let other = app
            .post("/api/v1/projects", &token, json!({"name": "plain"}))
            .await
            .expect(201);
        assert_eq!(other.data()["auto_review"], true, "on by default");
        app.put(&format!("/api/v1/projects/{project}"), &token, json!({"auto_review": "yes"}))
            .await
            .expect(422);
    }
);

db_test!(
    async fn concurrent_duplicate_deliveries_make_one_review(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        let app = Arc::new(github_app(backend, &github).await);
        let (token, project) = linked_project(&app, &github, true).await;
        let sends: Vec<_> = (0..8)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move {
                    deliver(&app, "pull_request", "d-dup", &pull_request_event("opened", HEAD)).await
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for send in sends {
            let reply = send.await.unwrap();
            statuses.push((reply.status.as_u16(), reply.data()["status"].as_str().unwrap().to_owned()));
        }
        let queued = statuses.iter().filter(|s| **s == (202, "queued".to_owned())).count();
        let duplicate = statuses.iter().filter(|s| **s == (200, "duplicate".to_owned())).count();
        assert_eq!((queued, duplicate), (1, 7), "{statuses:?}");
        finished_review(&app, &token, project).await;
        let reviews = app
            .get(&format!("/api/v1/projects/{project}/reviews"), &token)
            .await
            .expect(200);
        assert_eq!(reviews.data()["total"], 1);
        assert_eq!(github.comments.all().len(), 1);
    }
);

db_test!(
    async fn a_burst_of_deliveries_gets_one_review_each_and_repeats_none(backend) {
        // Deliveries arriving together are written together (one transaction per round):
        // each still gets its own review and job, and a repeated one is still a duplicate.
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        let app = Arc::new(github_app(backend, &github).await);
        let (token, project) = linked_project(&app, &github, true).await;
        let sends: Vec<_> = (0..32)
            .map(|i| {
                let app = app.clone();
                let delivery = if i < 8 { "d-again".to_owned() } else { format!("d-burst-{i}") };
                tokio::spawn(async move {
                    deliver(&app, "pull_request", &delivery, &pull_request_event("synchronize", HEAD)).await
                })
            })
            .collect();
        let mut queued = Vec::new();
        let mut duplicates = 0;
        for send in sends {
            let reply = send.await.unwrap();
            match (reply.status.as_u16(), reply.data()["status"].as_str().unwrap()) {
                (202, "queued") => queued.push(reply.data()["review_id"].as_i64().unwrap()),
                (200, "duplicate") => duplicates += 1,
                other => panic!("unexpected answer {other:?}: {}", reply.data()),
            }
        }
        assert_eq!((queued.len(), duplicates), (25, 7));
        queued.sort_unstable();
        queued.dedup();
        assert_eq!(queued.len(), 25, "one review per delivery");
        let reviews = app
            .get(&format!("/api/v1/projects/{project}/reviews?limit=100"), &token)
            .await
            .expect(200);
        assert_eq!(reviews.data()["total"], 25);
        let jobs: i64 = codesherpa::with_pool!(&app.db, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE kind = 'github.review'"
        )
        .fetch_one(pool)
        .await)
        .unwrap();
        assert_eq!(jobs, 25, "one job per review");
    }
);

db_test!(
    async fn a_diff_too_large_falls_back_to_the_files_list(backend) {
        let github = GithubMock::start().await;
        github
            .serve_diff(ResponseTemplate::new(406).set_body_json(json!({
                "message": "Sorry, the diff exceeded the maximum number of lines (20000)",
                "errors": [{"resource": "PullRequest", "field": "diff", "code": "too_large"}],
            })))
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/repos/{REPO}/pulls/7/files")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([
                {"filename": "src/pay.py", "status": "modified", "additions": 2, "deletions": 0,
                 "patch": "@@ -1,2 +1,3 @@\n def pay(amount):\n+    print(amount)\n     return amount"},
                {"filename": "logo.png", "status": "added", "additions": 0, "deletions": 0},
            ])))
            .expect(1)
            .mount(&github.server)
            .await;
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, true).await;
        deliver(&app, "pull_request", "d-406", &pull_request_event("opened", HEAD))
            .await
            .expect(202);
        let review = finished_review(&app, &token, project).await;
        assert_eq!(review["status"], "done", "{review}");
        let body = &github.comments.all()[0].1;
        assert!(body.contains("`logo.png`"), "the skipped file is named: {body}");
        assert!(body.contains("Not reviewed"));
    }
);

db_test!(
    async fn the_budget_leaves_files_out_and_says_so(backend) {
        let github = GithubMock::start().await;
        let big = format!(
            "{SAMPLE_DIFF}diff --git a/data.json b/data.json\n--- a/data.json\n+++ b/data.json\n@@ -0,0 +1 @@\n+{}\n",
            "x".repeat(4000)
        );
        github
            .serve_diff(ResponseTemplate::new(200).set_body_raw(big, DIFF))
            .await;
        let server = &github.server;
        let app = spawn_with(backend, |config| {
            configure(config, server);
            config.github.review_max_diff_bytes = 1000;
        })
        .await;
        let (token, project) = linked_project(&app, &github, true).await;
        deliver(&app, "pull_request", "d-budget", &pull_request_event("opened", HEAD))
            .await
            .expect(202);
        assert_eq!(finished_review(&app, &token, project).await["status"], "done");
        let body = &github.comments.all()[0].1;
        assert!(body.contains("`data.json`: over the review budget of 1000 bytes"), "{body}");
        assert!(body.contains("(1 file)"));
    }
);

db_test!(
    async fn a_stale_head_is_not_posted(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        github.move_head(NEWER);
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, true).await;
        deliver(&app, "pull_request", "d-stale", &pull_request_event("synchronize", HEAD))
            .await
            .expect(202);
        let review = finished_review(&app, &token, project).await;
        assert_eq!(review["status"], "skipped");
        assert!(review["reason"].as_str().unwrap().contains(NEWER));
        assert!(github.comments.all().is_empty());
    }
);

/// Fails the first `failures` calls with `failure`, then serves `then`.
struct FlakyThen {
    calls: AtomicUsize,
    failures: usize,
    failure: ResponseTemplate,
    then: ResponseTemplate,
}

impl Respond for FlakyThen {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
            self.failure.clone()
        } else {
            self.then.clone()
        }
    }
}

db_test!(
    async fn server_errors_and_secondary_limits_are_retried(backend) {
        let github = GithubMock::start().await;
        github
            .serve_diff(ResponseTemplate::new(200).set_body_raw(SAMPLE_DIFF, DIFF))
            .await;
        // The first POST of the comment hits a secondary rate limit, the next a 502.
        Mock::given(method("POST"))
            .and(path(format!("/repos/{REPO}/issues/7/comments")))
            .respond_with(FlakyThen {
                calls: AtomicUsize::new(0),
                failures: 1,
                failure: ResponseTemplate::new(403)
                    .insert_header("retry-after", "1")
                    .set_body_json(json!({"message": "You have exceeded a secondary rate limit."})),
                then: ResponseTemplate::new(502),
            })
            .up_to_n_times(2)
            .with_priority(1)
            .mount(&github.server)
            .await;
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, true).await;
        deliver(&app, "pull_request", "d-retry", &pull_request_event("opened", HEAD))
            .await
            .expect(202);
        let review = finished_review(&app, &token, project).await;
        assert_eq!(review["status"], "done", "{review}");
        assert_eq!(review["attempts"], 3);
        assert_eq!(github.comments.all().len(), 1);
        let chats = app
            .get(&format!("/api/v1/chat?project_id={project}"), &token)
            .await
            .expect(200);
        assert_eq!(chats.data()["total"], 1, "retries reuse the stored review chat");
    }
);

db_test!(
    async fn a_missing_pull_request_fails_for_good(backend) {
        let github = GithubMock::start().await;
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, true).await;
        let mut gone = pull_request_event("opened", HEAD);
        gone["pull_request"]["number"] = json!(8);
        deliver(&app, "pull_request", "d-404", &gone).await.expect(202);
        let review = finished_review(&app, &token, project).await;
        assert_eq!(review["status"], "failed");
        assert_eq!(review["attempts"], 1);
        assert!(review["reason"].as_str().unwrap().contains("404"), "{review}");
    }
);

db_test!(
    async fn a_review_command_reviews_the_current_head(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, true).await;
        let comment = json!({
            "action": "created",
            "issue": {"number": 7, "pull_request": {"url": "x"}},
            "comment": {"body": "/codesherpa review please", "author_association": "OWNER",
                        "user": {"login": "octocat", "type": "User"}},
            "repository": {"full_name": REPO},
            "sender": {"login": "octocat", "type": "User"},
        });
        deliver(&app, "issue_comment", "d-cmd", &comment).await.expect(202);
        let review = finished_review(&app, &token, project).await;
        assert_eq!(review["status"], "done", "{review}");
        assert_eq!(review["head_sha"], HEAD);
        assert_eq!(github.comments.all().len(), 1);
    }
);

db_test!(
    async fn a_github_app_exchanges_its_jwt_and_renews_on_401(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        let public = include_str!("../fixtures/github-app-test-key.pub.pem");
        let exchanges = Arc::new(AtomicUsize::new(0));
        let counter = exchanges.clone();
        Mock::given(method("POST"))
            .and(path("/app/installations/4242/access_tokens"))
            .respond_with(move |request: &Request| {
                let jwt = request.headers["authorization"]
                    .to_str()
                    .unwrap()
                    .strip_prefix("Bearer ")
                    .unwrap()
                    .to_owned();
                let key = jsonwebtoken::DecodingKey::from_rsa_pem(public.as_bytes()).unwrap();
                let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
                validation.set_required_spec_claims(&["exp", "iat", "iss"]);
                let claims = jsonwebtoken::decode::<Value>(&jwt, &key, &validation)
                    .expect("an RS256 JWT signed by the app key")
                    .claims;
                assert_eq!(claims["iss"], "12345");
                let (iat, exp) = (claims["iat"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
                assert!(exp - iat <= 600 + 60);
                assert!(iat < chrono::Utc::now().timestamp() - 30, "iat is in the past");
                let n = counter.fetch_add(1, Ordering::SeqCst);
                ResponseTemplate::new(201).set_body_json(json!({
                    "token": format!("ghs_installation_{n}"),
                    "expires_at": (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339(),
                }))
            })
            .mount(&github.server)
            .await;
        // The first token is refused once (revoked): the client must fetch a new one.
        Mock::given(method("GET"))
            .and(path(format!("/repos/{REPO}/pulls/7")))
            .and(header("authorization", "Bearer ghs_installation_0"))
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"})))
            .with_priority(1)
            .mount(&github.server)
            .await;
        // The App's own login, which its comments carry.
        Mock::given(method("GET"))
            .and(path("/app"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 12345, "slug": "codesherpa"})))
            .mount(&github.server)
            .await;
        let server = &github.server;
        let app = spawn_with(backend, |config| {
            configure(config, server);
            config.github.token = None;
            config.github.app = Some(GithubApp {
                id: "12345".into(),
                private_key_pem: include_str!("../fixtures/github-app-test-key.pem").into(),
            });
        })
        .await;
        let (token, project) = linked_project(&app, &github, true).await;
        let mut event = pull_request_event("opened", HEAD);
        event["installation"] = json!({"id": 4242});
        deliver(&app, "pull_request", "d-app", &event).await.expect(202);
        let review = finished_review(&app, &token, project).await;
        assert_eq!(review["status"], "done", "{review}");
        assert_eq!(exchanges.load(Ordering::SeqCst), 2, "one exchange, one renewal");
        let last = github.requests().await;
        let posted = last
            .iter()
            .find(|r| r.method.as_str() == "POST" && r.url.path().ends_with("/comments"))
            .unwrap();
        assert_eq!(posted.headers["authorization"], "Bearer ghs_installation_1");
    }
);

db_test!(
    async fn the_webhook_takes_large_deliveries_and_refuses_huge_ones(backend) {
        let github = GithubMock::start().await;
        let app = github_app(backend, &github).await;
        let padding = "x".repeat(3 * 1024 * 1024);
        let reply = deliver(&app, "push", "d-large", &json!({"ref": "refs/heads/main", "padding": padding}))
            .await
            .expect(200);
        assert_eq!(reply.data()["status"], "ignored");
        let huge = vec![b'x'; 26 * 1024 * 1024];
        let request = app
            .client
            .post(app.url("/api/v1/integrations/github/webhook"))
            .header("x-github-event", "push")
            .header("x-github-delivery", "d-huge")
            .header("x-hub-signature-256", sign_sha256(SECRET.as_bytes(), &huge))
            .body(huge);
        app.send(request).await.expect(413);
        // Other routes keep the ordinary limit.
        let (token, _) = app.user().await;
        let big = json!({"name": "x", "description": "y".repeat(2 * 1024 * 1024)});
        app.post("/api/v1/projects", &token, big).await.expect(413);
    }
);

/// Serves the diff slowly the first time (the server is killed meanwhile), then at once.
struct SlowFirstDiff(AtomicUsize);
impl Respond for SlowFirstDiff {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let template = ResponseTemplate::new(200).set_body_raw(SAMPLE_DIFF, DIFF);
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            template.set_delay(Duration::from_secs(60))
        } else {
            template
        }
    }
}

async fn start_binary(
    database_url: &str,
    github: &MockServer,
    dir: &std::path::Path,
) -> ServerProcess {
    let github_url = github.uri();
    ServerProcess::start(
        database_url,
        dir,
        &[
            ("GITHUB_WEBHOOK_SECRET", SECRET),
            ("GITHUB_API_URL", &github_url),
            ("GITHUB_WEB_URL", &github_url),
            ("GITHUB_CLIENT_ID", github_accounts::CLIENT_ID),
            ("GITHUB_CLIENT_SECRET", github_accounts::CLIENT_SECRET),
            ("GITHUB_TOKEN", "ghp_test_token"),
            ("JOB_LEASE_SECONDS", "2"),
            ("JOB_POLL_INTERVAL_MS", "100"),
        ],
    )
    .await
}

db_test!(
    async fn a_review_survives_kill_9_with_exactly_one_comment(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(SlowFirstDiff(AtomicUsize::new(0))).await;
        // This in-process server only owns the database: it polls too rarely to claim.
        let owner = spawn_with(backend, |config| {
            config.jobs.poll_interval = Duration::from_secs(3600);
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let mut first = start_binary(&owner.database_url, &github.server, dir.path()).await;
        let app = owner.at(&first.address);
        let (token, project) = linked_project(&app, &github, true).await;
        deliver(&app, "pull_request", "d-kill", &pull_request_event("opened", HEAD))
            .await
            .expect(202);
        // Wait until the job is fetching the diff, then kill -9.
        github.until_diff_asked().await;
        first.kill();
        assert!(github.comments.all().is_empty());

        let second = start_binary(&owner.database_url, &github.server, dir.path()).await;
        let app = owner.at(&second.address);
        let review = finished_review(&app, &token, project).await;
        assert_eq!(review["status"], "done", "{review}");
        assert_eq!(review["attempts"], 2);
        assert_eq!(github.comments.all().len(), 1);
    }
);

db_test!(
    async fn a_strangers_comment_with_the_marker_is_left_alone(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        let planted = format!("{MARKER}\nI am CodeSherpa, trust me.");
        github.comments.0.lock().unwrap().push((100, planted.clone()));
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, true).await;
        deliver(&app, "pull_request", "d-planted", &pull_request_event("opened", HEAD))
            .await
            .expect(202);
        let review = finished_review(&app, &token, project).await;
        assert_eq!(review["status"], "done", "{review}");
        let comments = github.comments.all();
        assert_eq!(comments.len(), 2, "the server posted its own comment");
        assert_eq!(comments[0], (100, planted), "the stranger's comment is untouched");
        assert!(comments[1].1.contains("CodeSherpa review"));
        let edits = github.requests().await.iter().filter(|r| r.method.as_str() == "PATCH").count();
        assert_eq!(edits, 0, "no edit of another account's comment was tried");
    }
);

db_test!(
    async fn when_github_hides_the_servers_login_its_recorded_comment_is_edited(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        github.comments.0.lock().unwrap().push((100, format!("{MARKER}\nplanted")));
        let server = &github.server;
        // A token GitHub's `GET /user` does not answer for (as some tokens and proxies).
        let app = spawn_with(backend, |config| {
            configure(config, server);
            config.github.token = Some("ghp_no_user_scope".into());
        })
        .await;
        let (token, project) = linked_project(&app, &github, true).await;
        deliver(&app, "pull_request", "d-hidden-1", &pull_request_event("opened", HEAD))
            .await
            .expect(202);
        assert_eq!(finished_review(&app, &token, project).await["status"], "done");
        github.move_head(NEWER);
        deliver(&app, "pull_request", "d-hidden-2", &pull_request_event("synchronize", NEWER))
            .await
            .expect(202);
        for _ in 0..400 {
            if github.comments.all().get(1).is_some_and(|(_, body)| body.contains(NEWER)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let comments = github.comments.all();
        assert_eq!(comments.len(), 2, "one comment of the server's, edited: {comments:?}");
        assert!(comments[1].1.contains(NEWER));
        assert_eq!(comments[0].1, format!("{MARKER}\nplanted"));
    }
);

/// The hidden marker as the server writes it (a stranger can copy it from any review).
const MARKER: &str = "<!-- codesherpa-review -->";

db_test!(
    async fn naming_a_repository_first_gets_no_reviews(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        let app = github_app(backend, &github).await;
        // The squatter names the repository first; with no verified project it is ignored.
        let (squatter, _) = app.user().await;
        let named = app
            .post("/api/v1/projects", &squatter, json!({"name": "mine", "repo_url": format!("https://github.com/{REPO}")}))
            .await
            .expect(201);
        assert_eq!(named.data()["repo_access"]["status"], "unverified", "{}", named.body);
        let named = named.data()["id"].as_i64().unwrap();
        let ignored = deliver(&app, "pull_request", "d-squat-0", &pull_request_event("opened", HEAD))
            .await
            .expect(200);
        assert_eq!(ignored.data()["status"], "ignored");
        // A squatter who connects an account without push access stays denied.
        github_accounts::connect(&app, &squatter, &github.accounts, "mallory").await;
        let checked = app
            .call(reqwest::Method::POST, &format!("/api/v1/projects/{named}/repo-access"), Some(&squatter), None)
            .await
            .expect(200);
        assert_eq!(checked.data()["repo_access"]["status"], "denied", "{}", checked.body);
        assert_eq!(checked.data()["repo_access"]["login"], "mallory");

        let (owner, project) = linked_project(&app, &github, true).await;
        let queued = deliver(&app, "pull_request", "d-squat-1", &pull_request_event("opened", HEAD))
            .await
            .expect(202);
        let review = finished_review(&app, &owner, project).await;
        assert_eq!(review["id"], queued.data()["review_id"]);
        assert_eq!(review["status"], "done", "{review}");
        let squatters = app.get(&format!("/api/v1/projects/{named}/reviews"), &squatter).await.expect(200);
        assert_eq!(squatters.data()["total"], 0, "the review is the verified owner's");
        let chats = app.get("/api/v1/chat", &squatter).await.expect(200);
        assert_eq!(chats.data()["total"], 0, "no finding reached the squatter");

        // Of two verified projects, the earliest-verified gets the reviews.
        let (second, later) = linked_project(&app, &github, true).await;
        let queued = deliver(&app, "pull_request", "d-squat-2", &pull_request_event("synchronize", HEAD))
            .await
            .expect(202);
        let reviews = app.get(&format!("/api/v1/projects/{project}/reviews"), &owner).await.expect(200);
        assert_eq!(reviews.data()["items"][0]["id"], queued.data()["review_id"]);
        let none = app.get(&format!("/api/v1/projects/{later}/reviews"), &second).await.expect(200);
        assert_eq!(none.data()["total"], 0);
    }
);

db_test!(
    async fn a_review_checks_again_that_access_still_holds(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, true).await;
        // An hour later the owner has lost push access on GitHub.
        github.accounts.grant("octocat", REPO, "pull");
        let an_hour_ago = chrono::Utc::now() - chrono::TimeDelta::minutes(61);
        codesherpa::with_pool!(&app.db, |pool| sqlx::query(
            "UPDATE projects SET repo_access_checked_at = $1 WHERE id = $2"
        )
        .bind(an_hour_ago)
        .bind(project)
        .execute(pool)
        .await
        .map(drop)
        .unwrap());
        deliver(&app, "pull_request", "d-lost", &pull_request_event("opened", HEAD))
            .await
            .expect(202);
        let review = finished_review(&app, &token, project).await;
        assert_eq!(review["status"], "skipped", "{review}");
        assert!(review["reason"].as_str().unwrap().contains("no longer verified"), "{review}");
        assert!(github.comments.all().is_empty(), "nothing posted");
        let read = app.get(&format!("/api/v1/projects/{project}"), &token).await.expect(200);
        assert_eq!(read.data()["repo_access"]["status"], "denied");
    }
);

#[tokio::test]
async fn credentials_go_to_the_api_and_nowhere_else() {
    let api = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/widgets/tarball/main"))
        .respond_with(ResponseTemplate::new(302).insert_header(
            "location",
            format!("{}/codeload/main.tar.gz", elsewhere.uri()),
        ))
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/codeload/main.tar.gz"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(b"tarball".to_vec(), "application/gzip"),
        )
        .mount(&elsewhere)
        .await;
    let mut config = Config::for_tests("sqlite::memory:").github;
    config.api_url = api.uri();
    config.token = Some("ghp_secret_token".into());
    let client = codesherpa::integrations::github::GithubClient::new(&config);
    let followed = client
        .get_raw("/repos/acme/widgets/tarball/main", Credential::Server(None))
        .await
        .unwrap();
    assert_eq!(followed.bytes().await.unwrap().as_ref(), b"tarball");
    client
        .get_raw(
            &format!("{}/codeload/main.tar.gz", elsewhere.uri()),
            Credential::Server(None),
        )
        .await
        .unwrap();
    let to_api = api.received_requests().await.unwrap();
    assert_eq!(
        to_api[0].headers["authorization"],
        "Bearer ghp_secret_token"
    );
    for request in elsewhere.received_requests().await.unwrap() {
        assert!(
            request.headers.get("authorization").is_none(),
            "a token went to another host"
        );
    }
}

/// Answers the diff with 404 the first time (a permanent failure), then at once.
struct MissingFirstDiff(AtomicUsize);
impl Respond for MissingFirstDiff {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"}))
        } else {
            GithubMock::diff_ok()
        }
    }
}

/// The project's reviews once all of them have finished, newest first.
async fn all_finished_reviews(
    app: &TestApp,
    token: &str,
    project: i64,
    count: usize,
) -> Vec<Value> {
    for _ in 0..400 {
        let reviews = app
            .get(&format!("/api/v1/projects/{project}/reviews"), token)
            .await
            .expect(200);
        let items = reviews.data()["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let finished =
            |r: &Value| matches!(r["status"].as_str(), Some("done" | "skipped" | "failed"));
        if items.len() == count && items.iter().all(finished) {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the reviews never finished");
}

db_test!(
    async fn an_operator_retries_a_failed_review_and_it_runs_again(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(MissingFirstDiff(AtomicUsize::new(0))).await;
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, true).await;
        deliver(&app, "pull_request", "d-retry", &pull_request_event("opened", HEAD))
            .await
            .expect(202);
        let review = finished_review(&app, &token, project).await;
        assert_eq!(review["status"], "failed", "{review}");

        let listed =
            codesherpa_cli(&app.database_url, &["jobs", "list", "--kind", "github.review"]).await;
        let line = listed.stdout.lines().next().expect("the review's job is listed");
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[1..4], ["github.review", "failed", "1"], "{line}");
        let retried = codesherpa_cli(&app.database_url, &["jobs", "retry", fields[0]]).await;
        assert!(retried.success, "{}", retried.stderr);

        // The review's own record was reset with its job, so the job runs it again.
        let review = finished_review(&app, &token, project).await;
        assert_eq!(review["status"], "done", "{review}");
        assert_eq!(review["reason"], Value::Null);
        assert_eq!(github.comments.all().len(), 1);
    }
);

db_test!(
    async fn two_reviews_of_one_pull_request_never_run_at_once_even_across_kill_9(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(SlowFirstDiff(AtomicUsize::new(0))).await;
        let owner = spawn_with(backend, |config| {
            config.jobs.poll_interval = Duration::from_secs(3600);
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let mut first = start_binary(&owner.database_url, &github.server, dir.path()).await;
        let app = owner.at(&first.address);
        let (token, project) = linked_project(&app, &github, true).await;
        // A push and a second delivery at the same head: two reviews of pull request 7.
        for (delivery, action) in [("d-open", "opened"), ("d-sync", "synchronize")] {
            deliver(&app, "pull_request", delivery, &pull_request_event(action, HEAD))
                .await
                .expect(202);
        }
        github.until_diff_asked().await;
        // The server has free workers, yet the second review waits for the first.
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(github.diff_requests().await, 1, "the second review started beside the first");
        first.kill();

        let second = start_binary(&owner.database_url, &github.server, dir.path()).await;
        let app = owner.at(&second.address);
        let reviews = all_finished_reviews(&app, &token, project, 2).await;
        let attempts: Vec<(&str, i64)> = reviews
            .iter()
            .map(|r| (r["status"].as_str().unwrap(), r["attempts"].as_i64().unwrap()))
            .collect();
        assert_eq!(attempts, [("done", 1), ("done", 2)], "newest first: {reviews:?}");
        assert_eq!(github.diff_requests().await, 3);
        // One after the other: the first posted the comment, the second edited it.
        let requests = github.requests().await;
        let writes: Vec<&str> = requests
            .iter()
            .filter(|r| r.url.path().contains("/comments") && r.method.as_str() != "GET")
            .map(|r| r.method.as_str())
            .collect();
        assert_eq!(writes, ["POST", "PATCH"]);
        assert_eq!(github.comments.all().len(), 1);
    }
);

/// Waits (bounded) until the project has `count` reviews, all finished; returns them,
/// newest first.
async fn reviews_finished(app: &TestApp, token: &str, project: i64, count: usize) -> Vec<Value> {
    for _ in 0..400 {
        let reviews = app
            .get(&format!("/api/v1/projects/{project}/reviews"), token)
            .await
            .expect(200);
        let items = reviews.data()["items"].as_array().unwrap().clone();
        if items.len() == count
            && items
                .iter()
                .all(|r| matches!(r["status"].as_str(), Some("done" | "skipped" | "failed")))
        {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the reviews never finished");
}

fn review_command(body: &str, association: &str) -> Value {
    json!({
        "action": "created",
        "issue": {"number": 7, "pull_request": {"url": format!("https://api.github.com/repos/{REPO}/pulls/7")}},
        "comment": {"id": 77, "body": body, "author_association": association,
                    "user": {"login": "octocat", "type": "User"}},
        "repository": {"full_name": REPO},
        "sender": {"login": "octocat", "type": "User"},
    })
}

db_test!(
    async fn findings_on_the_diff_are_one_pull_request_review_posted_once(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, true).await;
        deliver(&app, "pull_request", "d-inline", &pull_request_event("opened", HEAD))
            .await
            .expect(202);
        let review = finished_review(&app, &token, project).await;
        assert_eq!(review["status"], "done", "{review}");

        let posted = github.reviews.all();
        assert_eq!(posted.len(), 1, "one pull-request review");
        let pr_review = &posted[0];
        assert_eq!(pr_review["commit_id"], HEAD);
        let comments = pr_review["comments"].as_array().unwrap();
        // The local engine: the hard-coded key (CRITICAL, line 2), then the LOW ones.
        assert!(comments.len() >= 2, "{comments:?}");
        assert_eq!(comments[0]["path"], "src/pay.py");
        assert_eq!(comments[0]["line"], 2);
        assert_eq!(comments[0]["side"], "RIGHT");
        let first = comments[0]["body"].as_str().unwrap();
        assert!(first.starts_with("**CRITICAL**"), "{first}");
        assert!(
            first.contains("```suggestion\n    api_key = os.environ[\"API_KEY\"]\n```"),
            "a real drop-in replacement: {first}"
        );
        let print = comments.iter().find(|c| c["line"] == 3).expect("the print on line 3");
        assert!(!print["body"].as_str().unwrap().contains("```suggestion"), "advice only");
        let summary = github.comments.all();
        assert_eq!(summary.len(), 1);
        assert!(summary[0].1.contains("posted as inline comments"), "{}", summary[0].1);
        assert!(summary[0].1.contains("src/pay.py:2"), "the summary still lists them");

        // A push with the same lines, and a `/codesherpa review` at that head: the same
        // findings are never posted again, so no second pull-request review.
        github.move_head(NEWER);
        deliver(&app, "pull_request", "d-inline-2", &pull_request_event("synchronize", NEWER))
            .await
            .expect(202);
        reviews_finished(&app, &token, project, 2).await;
        deliver(&app, "issue_comment", "d-inline-3", &review_command("/codesherpa review", "OWNER"))
            .await
            .expect(202);
        let all = reviews_finished(&app, &token, project, 3).await;
        assert!(all.iter().all(|r| r["status"] == "done"), "{all:?}");
        assert_eq!(github.reviews.all().len(), 1, "nothing new to post");
        assert_eq!(github.comments.all().len(), 1, "exactly one summary comment");
    }
);

db_test!(
    async fn a_lost_answer_to_the_pull_request_review_posts_no_second_one(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        github.reviews.lose_next_answer.store(true, Ordering::SeqCst);
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, true).await;
        deliver(&app, "pull_request", "d-lost", &pull_request_event("opened", HEAD))
            .await
            .expect(202);
        let review = finished_review(&app, &token, project).await;
        assert_eq!(review["status"], "done", "{review}");
        assert_eq!(review["attempts"], 2, "retried after the 502");
        assert_eq!(github.reviews.all().len(), 1, "GitHub kept the first; no second one");
        assert_eq!(github.comments.all().len(), 1);
        assert!(github.comments.all()[0].1.contains("posted as inline comments"));

        // The fingerprints were recorded by the retry: a new push posts nothing again.
        github.move_head(NEWER);
        deliver(&app, "pull_request", "d-lost-2", &pull_request_event("synchronize", NEWER))
            .await
            .expect(202);
        reviews_finished(&app, &token, project, 2).await;
        assert_eq!(github.reviews.all().len(), 1);
    }
);

db_test!(
    async fn a_refused_pull_request_review_leaves_the_findings_to_the_summary(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        // GitHub resolves none of the lines (the diff changed under the review).
        github.reviews.accept_lines(&[]);
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, true).await;
        deliver(&app, "pull_request", "d-422", &pull_request_event("opened", HEAD))
            .await
            .expect(202);
        let review = finished_review(&app, &token, project).await;
        assert_eq!(review["status"], "done", "{review}");
        assert_eq!(review["attempts"], 1);
        assert!(github.reviews.all().is_empty());
        let summary = github.comments.all();
        assert_eq!(summary.len(), 1);
        assert!(summary[0].1.contains("did not accept the inline comments (422"), "{}", summary[0].1);
        assert!(summary[0].1.contains("src/pay.py:2"));

        // Nothing was recorded as posted: once GitHub takes the lines, they are posted.
        github.reviews.accept_lines(&[("src/pay.py", 2), ("src/pay.py", 3)]);
        github.move_head(NEWER);
        deliver(&app, "pull_request", "d-422-2", &pull_request_event("synchronize", NEWER))
            .await
            .expect(202);
        reviews_finished(&app, &token, project, 2).await;
        assert_eq!(github.reviews.all().len(), 1);
        assert_eq!(github.reviews.all()[0]["commit_id"], NEWER);
    }
);

const DOCS_DIFF: &str = "diff --git a/docs/guide.md b/docs/guide.md\n--- a/docs/guide.md\n+++ b/docs/guide.md\n@@ -1 +1,2 @@\n # Guide\n+password = \"hunter2hunter2\"\n";

db_test!(
    async fn settings_come_from_the_base_commit_never_from_the_pull_request(backend) {
        let github = GithubMock::start().await;
        github
            .serve_diff(ResponseTemplate::new(200).set_body_raw(format!("{SAMPLE_DIFF}{DOCS_DIFF}"), DIFF))
            .await;
        github.settings.put(
            BASE,
            "review:\n  ignore: [\"docs/**\"]\n  instructions: \"Prefer early returns.\"\n  max_inline_comments: 1\n",
        );
        // The pull request tries to switch its own review off: it is not read.
        github.settings.put(HEAD, "review:\n  enabled: false\n");
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, true).await;
        deliver(&app, "pull_request", "d-cfg", &pull_request_event("opened", HEAD))
            .await
            .expect(202);
        let review = finished_review(&app, &token, project).await;
        assert_eq!(review["status"], "done", "{review}");
        let asked: Vec<String> = github
            .requests()
            .await
            .iter()
            .filter(|r| r.url.path().ends_with("/contents/.codesherpa.yml"))
            .map(|r| r.url.query().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(asked, [format!("ref={BASE}")]);

        let posted = github.reviews.all();
        assert_eq!(posted.len(), 1);
        let comments = posted[0]["comments"].as_array().unwrap();
        assert_eq!(comments.len(), 1, "max_inline_comments: 1");
        assert!(comments[0]["body"].as_str().unwrap().starts_with("**CRITICAL**"));
        let summary = &github.comments.all()[0].1;
        assert!(
            summary.contains("`docs/guide.md`: not reviewed (ignored by .codesherpa.yml)"),
            "{summary}"
        );
        assert!(!summary.contains("docs/guide.md:2"), "an ignored file is not reviewed");
        assert!(summary.contains("inline comments are capped"), "{summary}");
    }
);

db_test!(
    async fn the_base_can_switch_reviews_off(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        github.settings.put(BASE, "review:\n  enabled: false\n");
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, true).await;
        deliver(&app, "pull_request", "d-off", &pull_request_event("opened", HEAD))
            .await
            .expect(202);
        let review = finished_review(&app, &token, project).await;
        assert_eq!(review["status"], "skipped", "{review}");
        assert!(review["reason"].as_str().unwrap().contains(".codesherpa.yml"), "{review}");
        assert!(github.comments.all().is_empty());
        assert!(github.reviews.all().is_empty());
    }
);

db_test!(
    async fn invalid_settings_never_stop_a_review_and_the_summary_says_why(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        // An unknown key: the whole file is set aside (inline stays on, the default).
        github.settings.put(BASE, "review:\n  inline: false\n  max_inline: 3\n");
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, true).await;
        deliver(&app, "pull_request", "d-bad", &pull_request_event("opened", HEAD))
            .await
            .expect(202);
        let review = finished_review(&app, &token, project).await;
        assert_eq!(review["status"], "done", "{review}");
        assert_eq!(github.reviews.all().len(), 1, "defaults: inline comments on");
        let summary = &github.comments.all()[0].1;
        assert!(summary.contains(".codesherpa.yml` at 0000000, line 3"), "{summary}");
        assert!(summary.contains("unknown field `max_inline`"), "{summary}");
        assert!(summary.contains("default settings"), "{summary}");
    }
);

db_test!(
    async fn commands_are_taken_only_from_people_the_repository_trusts(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, true).await;
        for (n, association) in ["CONTRIBUTOR", "NONE", "FIRST_TIME_CONTRIBUTOR"].iter().enumerate() {
            let reply = deliver(&app, "issue_comment", &format!("d-who-{n}"), &review_command("/codesherpa review", association))
                .await
                .expect(200);
            assert_eq!(reply.data()["status"], "ignored");
            let reason = reply.data()["reason"].as_str().unwrap().to_owned();
            assert!(reason.contains(&format!("author_association {association}")), "{reason}");
        }
        let mut unstated = review_command("/codesherpa pause", "OWNER");
        unstated["comment"].as_object_mut().unwrap().remove("author_association");
        let reply = deliver(&app, "issue_comment", "d-who-x", &unstated).await.expect(200);
        assert_eq!(reply.data()["status"], "ignored");
        let unknown = deliver(&app, "issue_comment", "d-who-u", &review_command("/codesherpa dance", "OWNER"))
            .await
            .expect(200);
        assert!(unknown.data()["reason"].as_str().unwrap().contains("unknown command"));

        let queued = deliver(&app, "issue_comment", "d-who-m", &review_command("/codesherpa full review", "MEMBER"))
            .await
            .expect(202);
        assert_eq!(queued.data()["status"], "queued");
        assert_eq!(queued.data()["delivery_id"], "d-who-m");
        let review = finished_review(&app, &token, project).await;
        assert_eq!(queued.data()["review_id"], review["id"]);
        assert_eq!(review["status"], "done", "{review}");
    }
);

db_test!(
    async fn pause_and_resume_switch_automatic_reviews_of_one_pull_request(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, true).await;
        let paused = deliver(&app, "issue_comment", "d-pause", &review_command("/codesherpa pause", "COLLABORATOR"))
            .await
            .expect(200);
        assert_eq!(paused.data()["status"], "paused");
        let again = deliver(&app, "issue_comment", "d-pause", &review_command("/codesherpa pause", "COLLABORATOR"))
            .await
            .expect(200);
        assert_eq!(again.data()["status"], "duplicate");
        let push = deliver(&app, "pull_request", "d-paused-push", &pull_request_event("synchronize", HEAD))
            .await
            .expect(200);
        assert_eq!(push.data()["status"], "ignored");
        assert!(push.data()["reason"].as_str().unwrap().contains("paused"));
        // Commands still work while paused.
        deliver(&app, "issue_comment", "d-paused-cmd", &review_command("/codesherpa review", "OWNER"))
            .await
            .expect(202);
        reviews_finished(&app, &token, project, 1).await;

        let resumed = deliver(&app, "issue_comment", "d-resume", &review_command("/codesherpa resume", "OWNER"))
            .await
            .expect(200);
        assert_eq!(resumed.data()["status"], "resumed");
        // The old pause redelivered changes nothing.
        let old = deliver(&app, "issue_comment", "d-pause", &review_command("/codesherpa pause", "COLLABORATOR"))
            .await
            .expect(200);
        assert_eq!(old.data()["status"], "duplicate");
        github.move_head(NEWER);
        deliver(&app, "pull_request", "d-resumed-push", &pull_request_event("synchronize", NEWER))
            .await
            .expect(202);
        reviews_finished(&app, &token, project, 2).await;
    }
);

db_test!(
    async fn ask_answers_in_a_new_comment_citing_the_diff(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, true).await;
        deliver(&app, "pull_request", "d-ask-open", &pull_request_event("opened", HEAD))
            .await
            .expect(202);
        finished_review(&app, &token, project).await;
        assert_eq!(github.comments.all().len(), 1);

        let ask = review_command("/codesherpa ask Why is the api_key written here?", "OWNER");
        let queued = deliver(&app, "issue_comment", "d-ask", &ask).await.expect(202);
        assert_eq!(queued.data()["status"], "queued");
        assert!(queued.data().get("review_id").is_none());
        let again = deliver(&app, "issue_comment", "d-ask", &ask).await.expect(200);
        assert_eq!(again.data()["status"], "duplicate");
        let mut answer = None;
        for _ in 0..400 {
            let all = github.comments.all();
            if all.len() == 2 {
                answer = Some(all[1].1.clone());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let answer = answer.expect("an answer comment");
        assert!(answer.contains("> Why is the api_key written here?"), "{answer}");
        assert!(answer.contains("`src/pay.py:2`"), "{answer}");
        assert!(!answer.contains("<!-- codesherpa-review -->"), "not the summary");
        // The summary is still the one comment it was.
        assert!(github.comments.all()[0].1.contains("<!-- codesherpa-review -->"));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(github.comments.all().len(), 2, "answered once");
    }
);

db_test!(
    async fn a_push_reviews_only_the_commits_since_the_last_review(backend) {
        const THIRD: &str = "3333333333333333333333333333333333333333";
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        github.reviews.accept_lines(&[("src/pay.py", 2), ("src/pay.py", 3), ("src/pay.py", 5)]);
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, true).await;
        deliver(&app, "pull_request", "d-inc-1", &pull_request_event("opened", HEAD))
            .await
            .expect(202);
        reviews_finished(&app, &token, project, 1).await;

        // HEAD..NEWER adds one line: only that range is reviewed.
        github.compare.put(HEAD, NEWER, "ahead", json!([{
            "sha": "f00", "filename": "src/pay.py", "status": "modified",
            "additions": 1, "deletions": 0, "changes": 1,
            "patch": "@@ -4,1 +4,2 @@\n     return amount\n+    eval(amount)"
        }]));
        github.move_head(NEWER);
        deliver(&app, "pull_request", "d-inc-2", &pull_request_event("synchronize", NEWER))
            .await
            .expect(202);
        let all = reviews_finished(&app, &token, project, 2).await;
        assert_eq!(all[0]["status"], "done", "{all:?}");
        let summary = github.comments.all()[0].1.clone();
        assert!(summary.contains("Reviewed 1111111..2222222"), "{summary}");
        assert!(summary.contains("src/pay.py:5"), "the eval in the range: {summary}");
        assert!(!summary.contains("src/pay.py:2"), "the key is outside the range: {summary}");
        let compared: Vec<String> = github
            .requests()
            .await
            .iter()
            .filter(|r| r.url.path().contains("/compare/"))
            .map(|r| r.url.path().to_owned())
            .collect();
        assert_eq!(compared, [format!("/repos/{REPO}/compare/{HEAD}...{NEWER}")]);

        // A force-push: NEWER and THIRD diverged, so the whole pull request again.
        github.compare.put(NEWER, THIRD, "diverged", json!([]));
        github.move_head(THIRD);
        deliver(&app, "pull_request", "d-inc-3", &pull_request_event("synchronize", THIRD))
            .await
            .expect(202);
        reviews_finished(&app, &token, project, 3).await;
        let summary = github.comments.all()[0].1.clone();
        assert!(summary.contains(THIRD), "{summary}");
        assert!(!summary.contains("Reviewed 2222222..3333333"), "{summary}");
        assert!(summary.contains("src/pay.py:2"), "the whole pull request: {summary}");

        // `/codesherpa full review` never compares.
        let before = github.requests().await.iter().filter(|r| r.url.path().contains("/compare/")).count();
        deliver(&app, "issue_comment", "d-inc-4", &review_command("/codesherpa full review", "OWNER"))
            .await
            .expect(202);
        reviews_finished(&app, &token, project, 4).await;
        let after = github.requests().await.iter().filter(|r| r.url.path().contains("/compare/")).count();
        assert_eq!(before, after);
        assert_eq!(github.comments.all().len(), 1, "exactly one summary comment");
    }
);

db_test!(
    async fn a_crash_after_github_took_the_pull_request_review_posts_no_second_one(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        github.reviews.slow_next_answer.store(true, Ordering::SeqCst);
        // This in-process server only owns the database: it polls too rarely to claim.
        let owner = spawn_with(backend, |config| {
            config.jobs.poll_interval = Duration::from_secs(3600);
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let mut first = start_binary(&owner.database_url, &github.server, dir.path()).await;
        let app = owner.at(&first.address);
        let (token, project) = linked_project(&app, &github, true).await;
        deliver(&app, "pull_request", "d-crash-inline", &pull_request_event("opened", HEAD))
            .await
            .expect(202);
        // GitHub stored the review; its answer never reaches the server: kill -9.
        for _ in 0..400 {
            if !github.reviews.all().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(github.reviews.all().len(), 1);
        first.kill();

        let second = start_binary(&owner.database_url, &github.server, dir.path()).await;
        let app = owner.at(&second.address);
        let review = finished_review(&app, &token, project).await;
        assert_eq!(review["status"], "done", "{review}");
        assert_eq!(review["attempts"], 2);
        assert_eq!(github.reviews.all().len(), 1, "found by its marker, not posted again");
        assert_eq!(github.comments.all().len(), 1);

        // And recorded: the next push posts none of those findings again.
        github.move_head(NEWER);
        deliver(&app, "pull_request", "d-crash-inline-2", &pull_request_event("synchronize", NEWER))
            .await
            .expect(202);
        reviews_finished(&app, &token, project, 2).await;
        assert_eq!(github.reviews.all().len(), 1);
        assert!(github.comments.all()[0].1.contains("posted inline before"), "{}", github.comments.all()[0].1);
    }
);

db_test!(
    async fn inline_false_keeps_the_findings_to_the_summary(backend) {
        let github = GithubMock::start().await;
        github.serve_diff(GithubMock::diff_ok()).await;
        github.settings.put(BASE, "review:\n  inline: false\n");
        let app = github_app(backend, &github).await;
        let (token, project) = linked_project(&app, &github, true).await;
        deliver(&app, "pull_request", "d-no-inline", &pull_request_event("opened", HEAD))
            .await
            .expect(202);
        let review = finished_review(&app, &token, project).await;
        assert_eq!(review["status"], "done", "{review}");
        assert!(github.reviews.all().is_empty());
        let summary = &github.comments.all()[0].1;
        assert!(summary.contains("src/pay.py:2"));
        assert!(!summary.contains("inline"), "{summary}");
    }
);
