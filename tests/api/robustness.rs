//! Concurrency and failure: mixed write load without a 5xx, and agent statuses restored
//! by compare-and-set.

use std::time::Duration;

use futures_util::{future::join_all, StreamExt};
use serde_json::{json, Value};

use codesherpa::llm::ProviderKind;

use crate::helpers::{
    agent_status, spawn, spawn_on_slow_openai, spawn_with, Reply, ServerProcess, TestApp,
};

/// Everything one user does in one round, all at once.
async fn round(
    app: &TestApp,
    token: &str,
    email: &str,
    refresh: &mut String,
    n: usize,
) -> Vec<Reply> {
    let login = app.login(email, "password123").await;
    let session = login.data()["refresh_token"].clone();
    let agent = app.post(
        "/api/v1/agents",
        token,
        json!({"name": format!("Agent {n}")}),
    );
    let project = app.post(
        "/api/v1/projects",
        token,
        json!({"name": format!("Project {n}")}),
    );
    let chat = app.post(
        "/api/v1/chat",
        token,
        json!({"message": "hello there", "session_id": format!("s{n}")}),
    );
    let rename = app.put(
        "/api/v1/user/me",
        token,
        json!({"name": format!("Load {n}")}),
    );
    let rotate = app.post_public(
        "/api/v1/auth/refresh",
        json!({"refresh_token": refresh.as_str()}),
    );
    let logout = app.post_public("/api/v1/auth/logout", json!({"refresh_token": session}));
    let (agent, project, chat, rename, rotate, logout) =
        tokio::join!(agent, project, chat, rename, rotate, logout);
    if rotate.status == 200 {
        *refresh = rotate.data()["refresh_token"].as_str().unwrap().to_owned();
    }
    let mut replies = vec![login, agent, project, chat, rename, rotate];
    if logout.status == 200 {
        // The token logout was meant to revoke is dead for good.
        replies.push(
            app.post_public("/api/v1/auth/refresh", json!({"refresh_token": session}))
                .await
                .expect(401),
        );
    }
    if let Some(id) = replies[1].data()["id"].as_i64() {
        let agent_path = format!("/api/v1/agents/{id}");
        let project_path = format!("/api/v1/projects/{}", replies[2].data()["id"]);
        let put = app.put(&agent_path, token, json!({"status": "inactive"}));
        let delete = app.delete(&project_path, token);
        let (put, delete) = tokio::join!(put, delete);
        replies.push(put);
        replies.push(delete);
    }
    replies.push(logout);
    replies
}

db_test!(async fn mixed_concurrent_writes_never_answer_5xx(backend) {
    let app = spawn_with(backend, |config| config.db.max_connections = 10).await;
    let mut users = Vec::new();
    for _ in 0..5 {
        let (token, login) = app.user().await;
        let email = login["user"]["email"].as_str().unwrap().to_owned();
        let refresh = login["refresh_token"].as_str().unwrap().to_owned();
        users.push((token, email, refresh));
    }
    let replies = join_all(users.iter_mut().map(|(token, email, refresh)| {
        let app = &app;
        async move {
            let mut all = Vec::new();
            for n in 0..8 {
                all.extend(round(app, token, email, refresh, n).await);
            }
            all
        }
    }))
    .await;
    let replies: Vec<Reply> = replies.into_iter().flatten().collect();
    let failures: Vec<(u16, &Value)> = replies
        .iter()
        .filter(|reply| !reply.status.is_success() && reply.status != 401)
        .map(|reply| (reply.status.as_u16(), &reply.body))
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
    // Every round ran to its end: logout, its check and the agent/project follow-ups.
    assert_eq!(replies.len(), 5 * 8 * 10);
    // Every chain of rotations is still alive, every logout answered 200.
    for (_, _, refresh) in &users {
        app.post_public("/api/v1/auth/refresh", json!({"refresh_token": refresh}))
            .await
            .expect(200);
    }
    let logouts = replies
        .iter()
        .filter(|reply| reply.body["message"] == "Logged out")
        .count();
    assert_eq!(logouts, 5 * 8);
});

db_test!(async fn a_status_set_during_a_generation_is_not_overwritten(backend) {
    let app = spawn_on_slow_openai(backend).await;
    let (token, _) = app.user().await;
    let agent = app
        .post("/api/v1/agents", &token, json!({"name": "Busy", "system_prompt": "Answer."}))
        .await
        .expect(201);
    let id = agent.data()["id"].as_i64().unwrap();
    let response = app
        .chat_stream(&token, json!({"message": "a long answer please", "agent_id": id, "session_id": "cas"}))
        .await;
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("event: delta") {
        seen.push_str(&String::from_utf8_lossy(&body.next().await.unwrap().unwrap()));
    }
    assert_eq!(agent_status(&app, &token, id).await, "processing");
    app.put(&format!("/api/v1/agents/{id}"), &token, json!({"status": "inactive"}))
        .await
        .expect(200);
    drop(body);
    // The generation ends once the server notices the hang-up and stores the partial chat.
    let mut stored = false;
    for _ in 0..100 {
        let list = app.get("/api/v1/chat?session_id=cas", &token).await.expect(200);
        if list.data()["total"] == 1 {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stored, "the cancelled chat was never stored");
    // Let a (wrong) restore land if one were coming.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(agent_status(&app, &token, id).await, "inactive");
});

db_test!(async fn a_generation_still_restores_an_untouched_agent(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let agent = app.post("/api/v1/agents", &token, json!({"name": "Idle"})).await.expect(201);
    let id = agent.data()["id"].as_i64().unwrap();
    app.post("/api/v1/chat", &token, json!({"message": "hi", "agent_id": id})).await.expect(201);
    // Still `processing` because of the chat, so the compare-and-set restores it.
    assert_eq!(agent_status(&app, &token, id).await, "active");
});

/// Holds a lock that stops the agent's status write — its row on PostgreSQL, the
/// database's write lock on SQLite — until `release` fires; `held` fires once it is taken.
async fn hold_agent_row(
    db: codesherpa::db::Db,
    agent_id: i64,
    held: tokio::sync::oneshot::Sender<()>,
    release: tokio::sync::oneshot::Receiver<()>,
) {
    let postgres = matches!(db, codesherpa::db::Db::Postgres(..));
    codesherpa::with_pool!(&db, |pool| {
        let mut conn = pool.acquire().await.unwrap();
        if postgres {
            sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
            sqlx::query("SELECT id FROM agents WHERE id = $1 FOR UPDATE")
                .bind(agent_id)
                .execute(&mut *conn)
                .await
                .unwrap();
        } else {
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        held.send(()).unwrap();
        let _ = release.await;
        sqlx::query("ROLLBACK").execute(&mut *conn).await.unwrap();
    });
}

db_test!(async fn the_first_delta_waits_until_the_agent_is_stored_processing(backend) {
    let app = spawn_on_slow_openai(backend).await; // a piece every 100 ms
    let (token, _) = app.user().await;
    let agent = app.post("/api/v1/agents", &token, json!({"name": "Marked"})).await.expect(201);
    let id = agent.data()["id"].as_i64().unwrap();
    let (held, taken) = tokio::sync::oneshot::channel();
    let (release, released) = tokio::sync::oneshot::channel();
    let holder = tokio::spawn(hold_agent_row(app.db.clone(), id, held, released));
    taken.await.unwrap();

    let response = app
        .chat_stream(&token, json!({"message": "a long answer please", "agent_id": id}))
        .await;
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    // The provider streams pieces all along; none is shown while the mark cannot be stored.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(800);
    while let Ok(Some(chunk)) = tokio::time::timeout_at(deadline, body.next()).await {
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    assert!(seen.contains("event: status"), "the generation never began: {seen}");
    assert!(!seen.contains("event: delta"), "a delta before the agent was marked: {seen}");

    release.send(()).unwrap();
    holder.await.unwrap();
    let first_delta = |seen: &str| {
        let start = seen.find("event: delta")?;
        seen[start..].find("\n\n").map(|end| seen[start..start + end].to_owned())
    };
    while first_delta(&seen).is_none() {
        seen.push_str(&String::from_utf8_lossy(&body.next().await.unwrap().unwrap()));
    }
    assert_eq!(agent_status(&app, &token, id).await, "processing");
    // Nothing the provider sent meanwhile is lost.
    let first = first_delta(&seen).unwrap();
    assert!(first.contains(r#""content":"piece0 ""#), "{first}");
});

db_test!(async fn kill_9_under_write_load_loses_no_acknowledged_write(backend) {
    // `spawn` provides (and finally drops) a migrated database; the binary serves it.
    let app = spawn(backend).await;
    let workdir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(&app.database_url, workdir.path(), &[]).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let email = format!("crash-{}@example.com", uuid::Uuid::new_v4().simple());
    let credentials = json!({"name": "Crash", "email": email, "password": "password123"});
    let url = |path: &str| format!("{}{path}", server.address);
    client.post(url("/api/v1/auth/register")).json(&credentials).send().await.unwrap();
    let login: Value = client
        .post(url("/api/v1/auth/login"))
        .json(&credentials)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["data"]["access_token"].as_str().unwrap().to_owned();

    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, i64, String)>::new()));
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let (client, token, acknowledged) = (client.clone(), token.clone(), acknowledged.clone());
            let base = server.address.clone();
            tokio::spawn(async move {
                for n in 0.. {
                    let (path, name) = if n % 2 == 0 {
                        ("/api/v1/projects", format!("project {writer}-{n}"))
                    } else {
                        ("/api/v1/agents", format!("agent {writer}-{n}"))
                    };
                    let Ok(reply) = client
                        .post(format!("{base}{path}"))
                        .bearer_auth(&token)
                        .json(&json!({"name": name}))
                        .send()
                        .await
                    else {
                        break; // the server is gone
                    };
                    if reply.status() != 201 {
                        continue;
                    }
                    // The write counts as acknowledged only once its whole answer arrived.
                    let Ok(body) = reply.json::<Value>().await else { break };
                    let id = body["data"]["id"].as_i64().expect("created id");
                    acknowledged.lock().unwrap().push((path.to_owned(), id, name));
                }
            })
        })
        .collect();
    while acknowledged.lock().unwrap().len() < 200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    let restarted = ServerProcess::start(&app.database_url, workdir.path(), &[]).await;
    for (path, id, name) in &acknowledged {
        let reply: Value = client
            .get(format!("{}{path}/{id}", restarted.address))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(reply["data"]["name"], name.as_str(), "{path}/{id} was acknowledged and lost: {reply}");
    }
    drop(restarted);
    drop(app);
});

/// An OpenAI-compatible provider that answers "ok" after `delay`.
async fn delayed_openai(delay: Duration) -> wiremock::MockServer {
    let server = wiremock::MockServer::start().await;
    let chunk = json!({"choices": [{"index": 0, "delta": {"content": "ok"}}]});
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_raw(
                    format!("data: {chunk}\n\ndata: [DONE]\n\n"),
                    "text/event-stream",
                )
                .set_delay(delay),
        )
        .mount(&server)
        .await;
    server
}

db_test!(async fn edits_during_generations_never_leave_an_agent_processing(backend) {
    let provider = delayed_openai(Duration::from_millis(40)).await;
    let base = format!("{}/v1", provider.uri());
    let app = spawn_with(backend, move |config| {
        config.llm.provider = ProviderKind::OpenAi;
        config.llm.openai_base_url = base;
        config.db.max_connections = 10;
    })
    .await;
    let (token, _) = app.user().await;
    let agent = app.post("/api/v1/agents", &token, json!({"name": "Edited"})).await.expect(201);
    let id = agent.data()["id"].as_i64().unwrap();
    let path = format!("/api/v1/agents/{id}");
    for round in 0..15 {
        // Renames spread over the generation read the agent while it is `processing`; the
        // ones that write after the chat restored it must not write `processing` back.
        let chat = app.post("/api/v1/chat", &token, json!({"message": "hi", "agent_id": id}));
        let renames = join_all((0..12u64).map(|i| {
            let (app, path, token) = (&app, &path, &token);
            async move {
                tokio::time::sleep(Duration::from_millis(5 * i)).await;
                app.put(path, token, json!({"name": format!("Edited {round}-{i}")})).await
            }
        }));
        let (chat, renames) = tokio::join!(chat, renames);
        chat.expect(201);
        for rename in renames {
            rename.expect(200);
        }
        assert_eq!(agent_status(&app, &token, id).await, "active", "round {round}");
    }
});

/// A PostgreSQL session of the operator's own, outside every pool it kills.
async fn operator_session(app: &TestApp) -> sqlx::PgConnection {
    <sqlx::PgConnection as sqlx::Connection>::connect(&app.database_url)
        .await
        .expect("operator session")
}

/// Kills every session of the app's database but the operator's, as a failover would.
async fn kill_server_sessions(operator: &mut sqlx::PgConnection) {
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(operator)
    .await
    .expect("terminate the server's sessions");
}

/// Counts the replies by status, each one in the envelope whatever its status.
fn tally(replies: Vec<Reply>, statuses: &mut std::collections::BTreeMap<u16, usize>) {
    for reply in replies {
        let status = reply.status.as_u16();
        *statuses.entry(status).or_default() += 1;
        reply.expect(status);
    }
}

/// PostgreSQL only: it kills the server's own database sessions, as a failover or an
/// operator's `pg_terminate_backend` would, while writes are in flight.
#[tokio::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "PostgreSQL: set TEST_POSTGRES_URL when building the tests"
)]
async fn killed_database_sessions_answer_503_never_500_and_recover() {
    let app = spawn_with(crate::helpers::Backend::Postgres, |config| {
        config.db.max_connections = 10;
        config.auth.cache_ttl = Duration::ZERO;
    })
    .await;
    let (token, _) = app.user().await;
    let mut operator = operator_session(&app).await;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for round in 0..20 {
        let writes = join_all((0..10).map(|i| {
            app.post(
                "/api/v1/projects",
                &token,
                json!({"name": format!("p{round}-{i}")}),
            )
        }));
        let kill = async {
            tokio::time::sleep(Duration::from_millis(round % 5)).await;
            kill_server_sessions(&mut operator).await;
        };
        let (replies, ()) = tokio::join!(writes, kill);
        tally(replies, &mut statuses);
    }
    assert!(
        statuses.keys().all(|status| [201, 503].contains(status)),
        "{statuses:?}"
    );
    // The pool replaces the dead sessions by itself: a connection that sat idle over a
    // second is checked before use (src/db/mod.rs, IDLE_BEFORE_PING), so once the last
    // round's survivors have sat that long, none of the killed ones is handed out.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.post("/api/v1/projects", &token, json!({"name": "after"}))
        .await
        .expect(201);
}

/// PostgreSQL only: lists read their revisions together (src/db/revisions.rs), so one
/// killed session fails every request its query answered: each must get the 503 its own
/// query would have, and the lists must recover.
#[tokio::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "PostgreSQL: set TEST_POSTGRES_URL when building the tests"
)]
async fn lists_read_together_answer_503_on_killed_sessions_and_recover() {
    let app = spawn_with(crate::helpers::Backend::Postgres, |config| {
        config.db.max_connections = 4;
        config.auth.cache_ttl = Duration::from_secs(60);
    })
    .await;
    let (token, _) = app.user().await;
    let mut operator = operator_session(&app).await;
    // The user is cached from here on: a list's one query is its revision's.
    app.get("/api/v1/projects", &token).await.expect(200);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for _ in 0..10 {
        kill_server_sessions(&mut operator).await;
        let reads = join_all((0..10).map(|_| app.get("/api/v1/projects", &token))).await;
        tally(reads, &mut statuses);
    }
    assert!(
        statuses.keys().all(|status| [200, 503].contains(status)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains_key(&503),
        "a killed session failed some reads: {statuses:?}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.get("/api/v1/projects", &token).await.expect(200);
}

/// PostgreSQL only: while the revisions' table cannot be read (an operator's `LOCK
/// TABLE`, a migration), list requests wait for the query out before their own; each
/// must still answer 503 in the envelope within the pool's 5 s, and lists come back once
/// the table can be read again.
#[tokio::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "PostgreSQL: set TEST_POSTGRES_URL when building the tests"
)]
async fn lists_answer_503_within_5_s_while_revisions_cannot_be_read() {
    let app = spawn_with(crate::helpers::Backend::Postgres, |config| {
        config.auth.cache_ttl = Duration::from_secs(60);
    })
    .await;
    let (token, _) = app.user().await;
    app.get("/api/v1/projects", &token).await.expect(200);
    let mut operator = operator_session(&app).await;
    sqlx::query("BEGIN").execute(&mut operator).await.unwrap();
    sqlx::query("LOCK TABLE list_revisions IN ACCESS EXCLUSIVE MODE")
        .execute(&mut operator)
        .await
        .unwrap();
    // Two waves: the second asks while the first's query is out, blocked.
    let wave = || join_all((0..5).map(|_| app.get("/api/v1/projects", &token)));
    let started = std::time::Instant::now();
    let (first, second) = tokio::join!(wave(), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        wave().await
    });
    let waited = started.elapsed();
    for reply in first.into_iter().chain(second) {
        assert_eq!(reply.body["code"], "service_unavailable", "{}", reply.body);
        reply.expect(503);
    }
    // The second wave's requests answer 5 s after they asked, not after the blocked
    // query's 5 s and then their own.
    assert!(waited < Duration::from_secs(8), "answered after {waited:?}");
    sqlx::query("COMMIT").execute(&mut operator).await.unwrap();
    app.get("/api/v1/projects", &token).await.expect(200);
}

/// SQLite only: a write that waits longer than the busy timeout (5 s) for the one writer
/// is an overload that passes, answered 503 in the envelope, never a 500; nothing of it
/// is written, and the server writes again once the lock is free.
#[tokio::test]
async fn a_write_queued_past_sqlites_busy_timeout_answers_503() {
    let app = spawn(crate::helpers::Backend::Sqlite).await;
    let (token, _) = app.user().await;
    let holder = hold_the_write_lock(&app).await;

    let refused = app
        .post(
            "/api/v1/projects",
            &token,
            json!({"name": "queued too long"}),
        )
        .await
        .expect(503);
    assert_eq!(refused.code(), "service_unavailable");
    assert!(
        !refused.body.to_string().contains("locked"),
        "no internals: {}",
        refused.body
    );

    holder.rollback().await.unwrap();
    app.post("/api/v1/projects", &token, json!({"name": "after"}))
        .await
        .expect(201);
    let names: Vec<Value> = app.get("/api/v1/projects", &token).await.expect(200).data()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(names, [json!("after")]);
}

/// SQLite only: a write that finds another connection writing waits for it (in short
/// steps, src/db/busy.rs) and goes through as soon as the lock is free.
#[tokio::test]
async fn a_write_behind_another_writer_goes_through_when_it_finishes() {
    let app = spawn(crate::helpers::Backend::Sqlite).await;
    let (token, _) = app.user().await;
    let holder = hold_the_write_lock(&app).await;

    let (answer, ()) = tokio::join!(
        app.post("/api/v1/projects", &token, json!({"name": "waited"})),
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            holder.rollback().await.unwrap();
        }
    );
    answer.expect(201);
    let listed = app.get("/api/v1/projects", &token).await.expect(200);
    assert_eq!(listed.data()["items"][0]["name"], "waited");
    assert_eq!(listed.data()["total"], 1);
}

/// SQLite only: a write burst grows the write-ahead log past its limit while a reader keeps
/// the log from starting over (as a steady stream of list pages does); once the reader has
/// moved on, the log is checkpointed and emptied with no further write.
#[tokio::test]
async fn sqlites_write_ahead_log_is_emptied_once_past_its_limit() {
    let app = spawn(crate::helpers::Backend::Sqlite).await;
    app.user().await;
    let pool = sqlite_pool(&app);
    let log = format!("{}-wal", app.database_url.trim_start_matches("sqlite://"));
    let log_size = || std::fs::metadata(&log).expect("write-ahead log").len();
    let limit = codesherpa::db::WAL_SIZE_LIMIT;
    let megabytes = (limit / 1_048_576 + 8) as i64;

    let mut reader = pool.begin().await.unwrap();
    sqlx::query("SELECT COUNT(*) FROM users")
        .fetch_one(&mut *reader)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE ballast (b BLOB)")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO ballast SELECT randomblob(1048576) FROM n",
    )
    .bind(megabytes)
    .execute(pool)
    .await
    .unwrap();
    assert!(
        log_size() > limit,
        "the burst grew the log to {}",
        log_size()
    );
    reader.rollback().await.unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while log_size() > limit {
        assert!(
            std::time::Instant::now() < deadline,
            "the log is still {} bytes",
            log_size()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ballast")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(kept, megabytes, "the checkpoint lost rows");
}

/// SQLite's one write lock, taken on a connection of the app's pool outside any request
/// and held until the transaction is rolled back.
async fn hold_the_write_lock(app: &TestApp) -> sqlx::Transaction<'static, sqlx::Sqlite> {
    let mut holder = sqlite_pool(app)
        .begin_with("BEGIN IMMEDIATE")
        .await
        .unwrap();
    sqlx::query("UPDATE users SET name = name WHERE id = -1")
        .execute(&mut *holder)
        .await
        .unwrap();
    holder
}

/// The pool of the test's own connections to a SQLite app's database.
fn sqlite_pool(app: &TestApp) -> &sqlx::SqlitePool {
    let codesherpa::db::Db::Sqlite(pool, ..) = &app.db else {
        unreachable!("a SQLite app")
    };
    pool
}
