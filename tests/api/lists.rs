//! List pages are written by the database (`src/db/page.rs`), single items by serde: every
//! listed item must be the same JSON as the item read alone, whatever its content.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::helpers::{spawn, spawn_with, TestApp};

/// Text that JSON must escape or carry as it is.
const AWKWARD: &str = "quote \" backslash \\ tab \t newline \n bell \u{7} é 漢字 🦀 </script>";

/// Instants whose fractions serde writes with 0, 3 and 6 digits.
const INSTANTS: [&str; 3] = [
    "2024-02-29T23:59:59Z",
    "2024-02-29T23:59:59.120Z",
    "2025-01-01T00:00:00.000001Z",
];

async fn set_time(app: &TestApp, table: &str, column: &str, id: &Value, at: &str) {
    let at: DateTime<Utc> = at.parse().unwrap();
    let sql = format!("UPDATE {table} SET {column} = $1 WHERE id = $2");
    codesherpa::with_pool!(&app.db, |pool| sqlx::query(&sql)
        .bind(at)
        .bind(id.as_i64().unwrap())
        .execute(pool)
        .await
        .map(drop))
    .unwrap();
}

/// Every item of `list` equals the item read alone from `{item_path}/{id}`.
async fn assert_items_read_alone(
    app: &TestApp,
    token: &str,
    list: &str,
    item_path: &str,
) -> Vec<Value> {
    let items = app.get(list, token).await.expect(200).data()["items"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!items.is_empty(), "{list} is empty");
    for item in &items {
        let alone = app
            .get(&format!("{item_path}/{}", item["id"]), token)
            .await
            .expect(200);
        assert_eq!(item, alone.data(), "{list}");
    }
    items
}

db_test!(async fn listed_agents_and_projects_are_the_items_read_alone(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    for (i, at) in INSTANTS.iter().enumerate() {
        let agent = app
            .post("/api/v1/agents", &token, json!({
                "name": format!("agent {i} {AWKWARD}"),
                "description": if i == 0 { Value::Null } else { json!(AWKWARD) },
                "system_prompt": AWKWARD,
                "model": "local",
                "status": "inactive",
            }))
            .await
            .expect(201);
        set_time(&app, "agents", "created_at", &agent.data()["id"], at).await;

        let project = app
            .post("/api/v1/projects", &token, json!({
                "name": format!("project {i} {AWKWARD}"),
                "description": AWKWARD,
                "repo_url": "https://github.com/acme/widgets",
                "auto_review": i % 2 == 0,
            }))
            .await
            .expect(201);
        let id = &project.data()["id"];
        set_time(&app, "projects", "updated_at", id, at).await;
        set_time(&app, "projects", "synced_at", id, at).await;
        let skipped = json!([{"path": format!("big {AWKWARD}.bin"), "reason": "too_large"}]);
        let set_skipped = match backend {
            crate::helpers::Backend::Sqlite => "$1",
            crate::helpers::Backend::Postgres => "CAST($1 AS JSONB)",
        };
        let sql = format!(
            "UPDATE projects SET sync_skipped = {set_skipped}, sync_status = 'failed', \
             sync_reason = $2, sync_commit = 'abc123', sync_files = 7 WHERE id = $3"
        );
        codesherpa::with_pool!(&app.db, |pool| sqlx::query(&sql)
            .bind(skipped.to_string())
            .bind(AWKWARD)
            .bind(id.as_i64().unwrap())
            .execute(pool)
            .await
            .map(drop))
        .unwrap();
    }

    let agents = assert_items_read_alone(&app, &token, "/api/v1/agents", "/api/v1/agents").await;
    assert_eq!(agents.len(), 7, "4 built-in + 3");
    let created: Vec<&str> = agents[..3].iter().map(|a| a["created_at"].as_str().unwrap()).collect();
    assert_eq!(created, [INSTANTS[2], INSTANTS[1], INSTANTS[0]], "newest id first, serde's format");

    let projects = assert_items_read_alone(&app, &token, "/api/v1/projects", "/api/v1/projects").await;
    assert_eq!(projects[0]["sync"]["synced_at"], INSTANTS[2]);
    assert_eq!(projects[0]["sync"]["skipped"][0]["path"], format!("big {AWKWARD}.bin"));
    assert_eq!(projects[0]["auto_review"], true);
    assert_eq!(projects[1]["auto_review"], false);
    assert_eq!(projects[0]["description"], AWKWARD);
});

db_test!(async fn listed_chats_are_the_chats_read_alone(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let mut ids = Vec::new();
    for (i, message) in [
        format!("Please review this diff {AWKWARD}"),
        "hello there".to_owned(),
        format!("what does this do? {AWKWARD}"),
    ]
    .iter()
    .enumerate()
    {
        let chat = app
            .post("/api/v1/chat", &token, json!({
                "message": message,
                "session_id": if i < 2 { "first" } else { "second" },
                "code_context": "fn main() {\n    let password = \"hunter2\";\n}\n",
            }))
            .await
            .expect(201);
        ids.push(chat.data()["id"].clone());
    }
    // A chat cut off mid-answer, at an instant with a 3-digit fraction.
    set_time(&app, "chats", "created_at", &ids[1], INSTANTS[1]).await;
    codesherpa::with_pool!(&app.db, |pool| sqlx::query("UPDATE chats SET complete = FALSE WHERE id = $1")
        .bind(ids[1].as_i64().unwrap())
        .execute(pool)
        .await
        .map(drop))
    .unwrap();

    let all = assert_items_read_alone(&app, &token, "/api/v1/chat", "/api/v1/chat").await;
    assert_eq!(all.iter().map(|c| c["id"].clone()).collect::<Vec<_>>(), [ids[2].clone(), ids[1].clone(), ids[0].clone()]);
    assert_eq!(all[1]["complete"], false);
    assert_eq!(all[1]["created_at"], INSTANTS[1]);
    assert!(all.iter().any(|chat| chat["result"].is_object()), "a structured answer is listed: {all:?}");

    let session = assert_items_read_alone(&app, &token, "/api/v1/chat?session_id=first", "/api/v1/chat").await;
    assert_eq!(session.iter().map(|c| c["id"].clone()).collect::<Vec<_>>(), [ids[0].clone(), ids[1].clone()], "a session reads oldest first");

    let page = app.get("/api/v1/chat?limit=1&offset=1", &token).await.expect(200);
    assert_eq!(page.data()["items"].as_array().unwrap().len(), 1);
    assert_eq!(page.data()["items"][0]["id"], ids[1]);
    assert_eq!((page.data()["total"].clone(), page.data()["limit"].clone(), page.data()["offset"].clone()), (json!(3), json!(1), json!(1)));
    assert_eq!(page.body["message"], "Chats retrieved");
    assert!(page.headers["content-type"].to_str().unwrap().starts_with("application/json"));

    let past_the_end = app.get("/api/v1/chat?offset=10", &token).await.expect(200);
    assert_eq!(past_the_end.data()["items"], json!([]));
    assert_eq!(past_the_end.data()["total"], 3);
    let none = app.get("/api/v1/chat?session_id=nothing-here", &token).await.expect(200);
    assert_eq!(none.data(), &json!({"items": [], "total": 0, "limit": 50, "offset": 0}));
});

/// Runs one statement on the app's database, as an operator or another writer would.
async fn execute(app: &TestApp, sql: &str) {
    codesherpa::with_pool!(&app.db, |pool| sqlx::query(sql)
        .execute(pool)
        .await
        .map(drop))
    .unwrap();
}

async fn user_id(app: &TestApp, token: &str) -> i64 {
    app.get("/api/v1/user/me", token).await.expect(200).data()["id"]
        .as_i64()
        .unwrap()
}

/// The revision of one of the user's lists (the sum of its shards).
async fn revision(app: &TestApp, user_id: i64, list: &str) -> i64 {
    let sql = format!(
        "SELECT CAST(COALESCE(SUM(revision), 0) AS BIGINT) FROM list_revisions \
         WHERE user_id = {user_id} AND list = '{list}'"
    );
    let (revision,): (i64,) =
        codesherpa::with_pool!(&app.db, |pool| sqlx::query_as(&sql).fetch_one(pool).await).unwrap();
    revision
}

/// Sets one of the user's lists' revision to `revision` (one shard holding it), which no
/// real writer can do: a page kept at `revision` is current again.
async fn put_back_revision(app: &TestApp, user_id: i64, list: &str, revision: i64) {
    execute(
        app,
        &format!("DELETE FROM list_revisions WHERE user_id = {user_id} AND list = '{list}'"),
    )
    .await;
    execute(app, &format!(
        "INSERT INTO list_revisions (user_id, list, shard, revision) VALUES ({user_id}, '{list}', 0, {revision})"
    )).await;
}

fn names(page: &crate::helpers::Reply) -> Vec<String> {
    page.data()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            item["name"]
                .as_str()
                .or(item["message"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect()
}

// Pages are kept per instance (`src/db/pages.rs`); every list must still show every write
// at once, whoever made it: this instance, another one on the same database, or SQL that
// went round the server.
db_test!(async fn kept_pages_show_every_write_at_once_whoever_wrote_it(backend) {
    let app = spawn(backend).await;
    let other = app.sibling(|_| {}).await;
    let (token, _) = app.user().await;
    let user_id = user_id(&app, &token).await;
    let agents = "/api/v1/agents?limit=3";
    let projects = "/api/v1/projects";

    // Read twice, so the page is kept, then written on the other instance.
    for _ in 0..2 {
        app.get(agents, &token).await.expect(200);
        app.get(projects, &token).await.expect(200);
    }
    let agent = other.post("/api/v1/agents", &token, json!({"name": "from the other instance"})).await.expect(201);
    assert_eq!(names(&app.get(agents, &token).await.expect(200))[0], "from the other instance");
    let project = other.post("/api/v1/projects", &token, json!({"name": "first"})).await.expect(201);
    assert_eq!(names(&app.get(projects, &token).await.expect(200)), ["first"]);
    let renamed = format!("/api/v1/projects/{}", project.data()["id"]);
    other.put(&renamed, &token, json!({"name": "renamed"})).await.expect(200);
    assert_eq!(names(&app.get(projects, &token).await.expect(200)), ["renamed"]);

    // Writes that went round the server: insert, update, delete.
    execute(&app, &format!("UPDATE agents SET name = 'renamed by SQL' WHERE id = {}", agent.data()["id"])).await;
    assert_eq!(names(&app.get(agents, &token).await.expect(200))[0], "renamed by SQL");
    execute(&app, &format!("DELETE FROM agents WHERE id = {}", agent.data()["id"])).await;
    assert!(!names(&app.get(agents, &token).await.expect(200)).contains(&"renamed by SQL".to_owned()));
    execute(&app, &format!(
        "INSERT INTO projects (user_id, name, auto_review, created_at, updated_at) \
         SELECT user_id, 'by SQL', auto_review, created_at, updated_at FROM projects WHERE user_id = {user_id}"
    )).await;
    let listed = app.get(projects, &token).await.expect(200);
    assert_eq!(names(&listed), ["by SQL", "renamed"]);
    assert_eq!(listed.data()["total"], 2);
    other.delete(&renamed, &token).await.expect(200);
    assert_eq!(names(&app.get(projects, &token).await.expect(200)), ["by SQL"]);

    // Chat history, filtered and not, through both instances.
    let session = "/api/v1/chat?session_id=kept";
    for _ in 0..2 {
        assert_eq!(app.get(session, &token).await.expect(200).data()["total"], 0);
        app.get("/api/v1/chat", &token).await.expect(200);
    }
    other.post("/api/v1/chat", &token, json!({"message": "hello", "session_id": "kept"})).await.expect(201);
    assert_eq!(names(&app.get(session, &token).await.expect(200)), ["hello"]);
    assert_eq!(names(&app.get("/api/v1/chat", &token).await.expect(200)), ["hello"]);
    execute(&app, "UPDATE chats SET message = 'edited' WHERE session_id = 'kept'").await;
    assert_eq!(names(&app.get(session, &token).await.expect(200)), ["edited"]);
    drop(other);
});

// The reverse: while nothing is written, the kept page is what is served — shown by
// changing a row and putting its list's revision back, which no real writer can do.
db_test!(async fn a_kept_page_is_served_while_its_revision_stands(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let user_id = user_id(&app, &token).await;
    app.post("/api/v1/projects", &token, json!({"name": "before"})).await.expect(201);
    let kept = app.get("/api/v1/projects", &token).await.expect(200);
    let before = revision(&app, user_id, "projects").await;
    assert!(before > 0, "the write raised the revision");

    execute(&app, &format!("UPDATE projects SET name = 'after' WHERE user_id = {user_id}")).await;
    put_back_revision(&app, user_id, "projects", before).await;
    assert_eq!(app.get("/api/v1/projects", &token).await.expect(200).body, kept.body, "kept while the revision stands");

    put_back_revision(&app, user_id, "projects", before + 1).await;
    assert_eq!(names(&app.get("/api/v1/projects", &token).await.expect(200)), ["after"]);

    // Kept per page and per user: another page of the list, and another user, read their own.
    assert_eq!(app.get("/api/v1/projects?offset=1", &token).await.expect(200).data()["items"], json!([]));
    let (stranger, _) = app.user().await;
    assert_eq!(app.get("/api/v1/projects", &stranger).await.expect(200).data()["total"], 0);
});

// With `LIST_CACHE_MB=0` no page is kept: the same answers, each read afresh.
db_test!(async fn lists_answer_alike_with_no_pages_kept(backend) {
    let app = spawn_with(backend, |config| config.db.list_cache_bytes = 0).await;
    let (token, _) = app.user().await;
    let user_id = user_id(&app, &token).await;
    app.post("/api/v1/projects", &token, json!({"name": "before"})).await.expect(201);
    app.get("/api/v1/projects", &token).await.expect(200);
    let before = revision(&app, user_id, "projects").await;
    execute(&app, &format!("UPDATE projects SET name = 'after' WHERE user_id = {user_id}")).await;
    put_back_revision(&app, user_id, "projects", before).await;
    assert_eq!(names(&app.get("/api/v1/projects", &token).await.expect(200)), ["after"]);
});

// On PostgreSQL the revisions asked while one query is out are read by the next, together
// (`src/db/revisions.rs`): each request must still get its own list's revision, read after
// it asked. Six lists of two users stand at the same revision with their pages kept; one
// of them is written, and many requests for all six, at once, must show that write and
// only there.
db_test!(async fn lists_asked_at_once_each_show_their_own_writes(backend) {
    let app = spawn(backend).await;
    let mut lists = Vec::new();
    for user in ["first", "second"] {
        let (token, _) = app.user().await;
        let user_id = user_id(&app, &token).await;
        app.post("/api/v1/agents", &token, json!({"name": format!("{user}'s agent")})).await.expect(201);
        app.post("/api/v1/projects", &token, json!({"name": format!("{user}'s project")})).await.expect(201);
        app.post("/api/v1/chat", &token, json!({"message": format!("{user}'s chat")})).await.expect(201);
        for (list, path, table, column) in [
            ("agents", "/api/v1/agents", "agents", "name"),
            ("projects", "/api/v1/projects", "projects", "name"),
            ("chats", "/api/v1/chat", "chats", "message"),
        ] {
            lists.push((user_id, token.clone(), list, path, table, column));
        }
    }

    for (round, written) in lists.iter().enumerate() {
        let standing = 100 * (round as i64 + 1);
        let mut kept = Vec::new();
        for (user_id, token, list, path, ..) in &lists {
            put_back_revision(&app, *user_id, list, standing).await;
            kept.push(app.get(path, token).await.expect(200).body);
        }
        let (user_id, _, _, _, table, column) = written;
        let changed = format!("changed in round {round}");
        execute(&app, &format!(
            "UPDATE {table} SET {column} = '{changed}' WHERE user_id = {user_id} AND {column} LIKE '%''s %'"
        )).await;

        let asked = (0..8).flat_map(|_| lists.iter().enumerate()).map(|(i, (_, token, _, path, ..))| {
            let app = &app;
            async move { (i, app.get(path, token).await.expect(200)) }
        });
        for (i, reply) in futures_util::future::join_all(asked).await {
            if i == round {
                assert!(names(&reply).contains(&changed), "round {round}: the written list shows its write");
            } else {
                assert_eq!(reply.body, kept[i], "round {round}: list {i} is the page kept at its revision");
            }
        }
    }
});
