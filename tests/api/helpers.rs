//! `TestApp`: a real server on port 0 with its own database, and a client for it.

use std::{str::FromStr, time::Duration};

use codesherpa::{config::Config, db::Db};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use uuid::Uuid;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const POSTGRES_VAR: &str = "TEST_POSTGRES_URL";
pub const REDIS_VAR: &str = "TEST_REDIS_URL";

/// The Redis server named by `TEST_REDIS_URL`. Tests that call this are declared with
/// `db_test!(needs_redis …)`, so they are ignored, not passed, when it is unset.
pub fn redis_url() -> String {
    std::env::var(REDIS_VAR)
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| panic!("{REDIS_VAR} must name a Redis server for this test"))
}

/// Expands one async test body into a `sqlite` and a `postgres` test. The PostgreSQL
/// copy is `#[ignore]`d (reported as ignored, never as passed) unless `TEST_POSTGRES_URL`
/// was set when the tests were built (see `build.rs`); `needs_redis` does the same for
/// both copies with `TEST_REDIS_URL`.
macro_rules! db_test {
    (async fn $name:ident($backend:ident) $body:block) => {
        db_test!(@emit $name $backend $body,
            all(), "",
            postgres_tests, "PostgreSQL: set TEST_POSTGRES_URL when building the tests");
    };
    (needs_redis async fn $name:ident($backend:ident) $body:block) => {
        db_test!(@emit $name $backend $body,
            redis_tests, "Redis: set TEST_REDIS_URL when building the tests",
            all(postgres_tests, redis_tests),
            "PostgreSQL and Redis: set TEST_POSTGRES_URL and TEST_REDIS_URL when building the tests");
    };
    (@emit $name:ident $backend:ident $body:block,
        $sqlite_cfg:meta, $sqlite_why:literal, $postgres_cfg:meta, $postgres_why:literal) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($backend: $crate::helpers::Backend) $body

            #[tokio::test]
            #[cfg_attr(not($sqlite_cfg), ignore = $sqlite_why)]
            async fn sqlite() {
                run($crate::helpers::Backend::Sqlite).await
            }

            #[tokio::test]
            #[cfg_attr(not($postgres_cfg), ignore = $postgres_why)]
            async fn postgres() {
                run($crate::helpers::Backend::Postgres).await
            }
        }
    };
}

pub struct TestApp {
    pub address: String,
    pub database_url: String,
    pub client: reqwest::Client,
    /// A separate connection to the server's database, for checks behind the API.
    pub db: Db,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    _sqlite_dir: Option<tempfile::TempDir>,
    postgres_database: Option<(String, String)>,
}

pub async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, |_| {}).await
}

pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
    let (database_url, sqlite_dir, postgres_database) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("test.db").display());
            (url, Some(dir), None)
        }
        Backend::Postgres => {
            let admin = std::env::var(POSTGRES_VAR)
                .ok()
                .filter(|url| !url.is_empty())
                .unwrap_or_else(|| panic!("{POSTGRES_VAR} must name a PostgreSQL server"));
            let name = format!("codesherpa_test_{}", Uuid::new_v4().simple());
            create_postgres_database(&admin, &name).await;
            (with_database(&admin, &name), None, Some((admin, name)))
        }
    };
    let mut config = Config::for_tests(database_url.clone());
    configure(&mut config);
    let mut app = start(config).await;
    app._sqlite_dir = sqlite_dir;
    app.postgres_database = postgres_database;
    app
}

/// Starts a server on `config.db.url`; the caller owns the database.
async fn start(config: Config) -> TestApp {
    let database_url = config.db.url.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = format!("http://{}", listener.local_addr().unwrap());
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        codesherpa::app::run(config, listener, async {
            let _ = stop.await;
        })
        .await
        .expect("server failed");
    });
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    wait_until_up(&client, &address).await;
    let db = Db::connect(&database_url, 2)
        .await
        .expect("test db connection");
    TestApp {
        address,
        database_url,
        client,
        db,
        shutdown: Some(shutdown),
        server: Some(server),
        _sqlite_dir: None,
        postgres_database: None,
    }
}

impl TestApp {
    /// A second instance on the same database, as behind a load balancer. Drop it before
    /// the first, which owns the database.
    pub async fn sibling(&self, configure: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = Config::for_tests(self.database_url.clone());
        configure(&mut config);
        start(config).await
    }

    /// A client of another server on this app's database (e.g. the binary run as a child
    /// process); dropping it stops nothing.
    pub fn at(&self, address: &str) -> TestApp {
        TestApp {
            address: address.to_owned(),
            database_url: self.database_url.clone(),
            client: self.client.clone(),
            db: self.db.clone(),
            shutdown: None,
            server: None,
            _sqlite_dir: None,
            postgres_database: None,
        }
    }

    /// Sends the shutdown signal (as SIGTERM would) without waiting.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Deactivates a user behind the API's back, as an operator would in the database.
    pub async fn deactivate(&self, user_id: i64) {
        codesherpa::with_pool!(&self.db, |pool| sqlx::query(
            "UPDATE users SET is_active = $1 WHERE id = $2"
        )
        .bind(false)
        .bind(user_id)
        .execute(pool)
        .await
        .map(drop))
        .expect("deactivate");
    }

    pub fn ws_url(&self, token: &str) -> String {
        format!(
            "{}/ws?token={token}",
            self.address.replacen("http", "ws", 1)
        )
    }
}

/// The secret `Config::for_tests` signs with.
pub const TEST_SECRET: &str = "test-secret-key-that-is-at-least-32-bytes-long";

async fn wait_until_up(client: &reqwest::Client, address: &str) {
    for _ in 0..200 {
        if let Ok(response) = client.get(format!("{address}/health")).send().await {
            if response.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("server at {address} did not come up");
}

fn with_database(admin_url: &str, database: &str) -> String {
    let (base, query) = admin_url
        .split_once('?')
        .map_or((admin_url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

async fn create_postgres_database(admin_url: &str, name: &str) {
    use sqlx::Connection;
    let options = PgConnectOptions::from_str(admin_url).expect("TEST_POSTGRES_URL is not a URL");
    let mut conn = sqlx::PgConnection::connect_with(&options)
        .await
        .unwrap_or_else(|err| panic!("{POSTGRES_VAR} is set but PostgreSQL is unreachable: {err}"));
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .expect("create test database");
}

fn drop_postgres_database(admin_url: String, name: String) {
    // Drop runs outside async context; a short-lived runtime on its own thread does the work.
    let worker = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            use sqlx::Connection;
            let options = PgConnectOptions::from_str(&admin_url).unwrap();
            if let Ok(mut conn) = sqlx::PgConnection::connect_with(&options).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            }
        });
    });
    let _ = worker.join();
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
        if let Some((admin, name)) = self.postgres_database.take() {
            drop_postgres_database(admin, name);
        }
    }
}

/// A response's status, headers and parsed JSON body.
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// Asserts the status and the envelope shape, failure or success.
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        let success = self.body["success"]
            .as_bool()
            .expect("envelope has `success`");
        assert_eq!(success, self.status.is_success(), "body: {}", self.body);
        assert!(
            self.body["message"].is_string(),
            "envelope has `message`: {}",
            self.body
        );
        if !success {
            assert!(
                self.body["data"].is_null(),
                "errors carry null data: {}",
                self.body
            );
            assert!(
                self.body["code"].is_string(),
                "errors carry a code: {}",
                self.body
            );
        }
        self
    }

    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    /// The fields named in a validation error.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The `/metrics` exposition (which must answer 200).
    pub async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request failed");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }

    /// `POST /chat/stream`, its events left unread.
    pub async fn chat_stream(&self, token: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/chat/stream"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    pub async fn post_public(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, None, Some(body)).await
    }

    pub async fn register(&self, email: &str, password: &str) -> Reply {
        self.post_public(
            "/api/v1/auth/register",
            json!({"name": "Test User", "email": email, "password": password}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post_public(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// Registers a fresh user and logs in; returns (access token, login data).
    pub async fn user(&self) -> (String, Value) {
        let email = format!("user-{}@example.com", Uuid::new_v4().simple());
        self.register(&email, "password123").await.expect(201);
        let login = self.login(&email, "password123").await.expect(200);
        let token = login.data()["access_token"].as_str().unwrap().to_owned();
        (token, login.data().clone())
    }
}

/// A server whose provider is [`slow_openai`]: generations that last a minute.
pub async fn spawn_on_slow_openai(backend: Backend) -> TestApp {
    let base = slow_openai().await;
    spawn_with(backend, move |config| {
        config.llm.provider = codesherpa::llm::ProviderKind::OpenAi;
        config.llm.openai_base_url = base;
    })
    .await
}

/// An agent's `status` as its owner reads it.
pub async fn agent_status(app: &TestApp, token: &str, id: i64) -> Value {
    app.get(&format!("/api/v1/agents/{id}"), token)
        .await
        .expect(200)
        .data()["status"]
        .clone()
}

/// Splits a server-sent-events body into (event name, JSON data) pairs.
pub fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut kind = "message".to_owned();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    kind = name.trim().to_owned();
                } else if let Some(piece) = line.strip_prefix("data:") {
                    data.push_str(piece.strip_prefix(' ').unwrap_or(piece));
                }
            }
            (!data.is_empty())
                .then(|| (kind, serde_json::from_str(&data).expect("SSE data is JSON")))
        })
        .collect()
}

/// A provider that streams one piece every 100 ms, for a long time.
pub async fn slow_openai() -> String {
    use axum::{body::Body, routing::post, Router};
    use futures_util::StreamExt;
    let app = Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            let pieces = futures_util::stream::iter(0..600).then(|i| async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let chunk =
                    json!({"choices": [{"index": 0, "delta": {"content": format!("piece{i} ")}}]});
                Ok::<_, std::io::Error>(format!("data: {chunk}\n\n"))
            });
            (
                [("content-type", "text/event-stream")],
                Body::from_stream(pieces),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/v1")
}

/// The server binary as a child process, as it runs in production, for crash tests: it is
/// killed with SIGKILL (no shutdown hook, no drain) by `kill` or when dropped. It runs in
/// `workdir` (so no developer `.env` is read) with test settings plus `settings`, which
/// override them.
pub struct ServerProcess {
    process: std::process::Child,
    pub address: String,
}

impl ServerProcess {
    pub async fn start(
        database_url: &str,
        workdir: &std::path::Path,
        settings: &[(&str, &str)],
    ) -> ServerProcess {
        // A free port: bound, read and released (the child binds it right after).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
            .to_string();
        let process = std::process::Command::new(env!("CARGO_BIN_EXE_codesherpa"))
            .env_clear()
            .current_dir(workdir)
            .envs([
                ("PATH", std::env::var("PATH").unwrap_or_default().as_str()),
                ("DATABASE_URL", database_url),
                ("HOST", "127.0.0.1"),
                ("PORT", &port),
                ("DEBUG", "true"),
                // Every run must accept the same access tokens.
                ("SECRET_KEY", TEST_SECRET),
                ("BCRYPT_ROUNDS", "4"),
                ("RATE_LIMIT_AUTH_PER_MINUTE", "0"),
                ("RATE_LIMIT_AI_PER_MINUTE", "0"),
                ("RUST_LOG", "warn"),
            ])
            .envs(settings.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the codesherpa binary");
        let server = ServerProcess {
            process,
            address: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..400 {
            let health = client
                .get(format!("{}/health", server.address))
                .send()
                .await;
            if health.is_ok_and(|reply| reply.status().is_success()) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the server binary did not come up");
    }

    pub fn kill(&mut self) {
        // std's kill is SIGKILL on Unix.
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What `codesherpa …` printed and how it exited.
pub struct CliRun {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary's command line (`codesherpa jobs list`, …) on `database_url`, as an
/// operator would beside a running server, from an empty directory (no `.env`).
pub async fn codesherpa_cli(database_url: &str, args: &[&str]) -> CliRun {
    let workdir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_codesherpa"));
    command
        .env_clear()
        .current_dir(workdir.path())
        .envs([
            ("PATH", std::env::var("PATH").unwrap_or_default().as_str()),
            ("DATABASE_URL", database_url),
            ("SECRET_KEY", TEST_SECRET),
        ])
        .args(args);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("run the codesherpa binary");
    CliRun {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
