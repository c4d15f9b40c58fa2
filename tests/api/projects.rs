use serde_json::json;

use crate::helpers::spawn;

db_test!(async fn project_crud(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let created = app
        .post("/api/v1/projects", &token, json!({"name": "payments", "repo_url": "https://github.com/acme/payments"}))
        .await
        .expect(201);
    let project = created.data().clone();
    assert_eq!(project["name"], "payments");
    assert_eq!(project["repo_url"], "https://github.com/acme/payments");
    assert!(project["description"].is_null());
    let path = format!("/api/v1/projects/{}", project["id"]);

    assert_eq!(app.get(&path, &token).await.expect(200).data(), &project);
    let updated = app.put(&path, &token, json!({"description": "Card payments", "repo_url": null})).await.expect(200);
    assert_eq!(updated.data()["description"], "Card payments");
    assert!(updated.data()["repo_url"].is_null());
    assert_eq!(updated.data()["name"], "payments");

    let list = app.get("/api/v1/projects", &token).await.expect(200);
    assert_eq!(list.data()["total"], 1);
    app.delete(&path, &token).await.expect(200);
    app.get(&path, &token).await.expect(404);
    assert_eq!(app.get("/api/v1/projects", &token).await.expect(200).data()["total"], 0);
});

db_test!(async fn project_input_is_validated(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    for repo_url in ["ftp://example.com/x", "github.com/acme/x", "https://"] {
        let reply = app.post("/api/v1/projects", &token, json!({"name": "p", "repo_url": repo_url})).await.expect(422);
        assert_eq!(reply.error_fields(), ["repo_url"], "{repo_url}");
    }
    let reply = app.post("/api/v1/projects", &token, json!({"name": 42})).await.expect(422);
    assert_eq!(reply.error_fields(), ["name"]);
    assert_eq!(app.get("/api/v1/projects", &token).await.expect(200).data()["total"], 0, "nothing half-written");
});

db_test!(async fn another_users_projects_are_invisible(backend) {
    let app = spawn(backend).await;
    let (alice, _) = app.user().await;
    let (mallory, _) = app.user().await;
    let project = app.post("/api/v1/projects", &alice, json!({"name": "secret-repo"})).await.expect(201);
    let path = format!("/api/v1/projects/{}", project.data()["id"]);

    app.get(&path, &mallory).await.expect(404);
    app.put(&path, &mallory, json!({"name": "mine now"})).await.expect(404);
    app.delete(&path, &mallory).await.expect(404);
    assert_eq!(app.get("/api/v1/projects", &mallory).await.expect(200).data()["total"], 0);
    assert_eq!(app.get(&path, &alice).await.expect(200).data()["name"], "secret-repo");
});

db_test!(async fn deleting_a_project_keeps_chats_and_other_users_data(backend) {
    let app = spawn(backend).await;
    let (alice, alice_login) = app.user().await;
    let (bob, _) = app.user().await;
    let project = app.post("/api/v1/projects", &alice, json!({"name": "doomed"})).await.expect(201);
    let project_id = project.data()["id"].as_i64().unwrap();
    let bobs = app.post("/api/v1/projects", &bob, json!({"name": "bob's"})).await.expect(201);
    let user_id = alice_login["user"]["id"].as_i64().unwrap();
    let now = chrono::Utc::now();
    codesherpa::with_pool!(&app.db, |pool| sqlx::query(
        "INSERT INTO chats (user_id, session_id, project_id, message, created_at) VALUES ($1, 's1', $2, 'hello', $3)"
    )
    .bind(user_id)
    .bind(project_id)
    .bind(now)
    .execute(pool)
    .await
    .map(drop))
    .unwrap();

    app.delete(&format!("/api/v1/projects/{project_id}"), &alice).await.expect(200);

    let (count, linked): (i64, Option<i64>) = codesherpa::with_pool!(&app.db, |pool| sqlx::query_as(
        "SELECT COUNT(*), MAX(project_id) FROM chats WHERE user_id = $1"
    )
    .bind(user_id)
    .fetch_one(pool)
    .await)
    .unwrap();
    assert_eq!((count, linked), (1, None), "the chat is kept, unlinked");
    let path = format!("/api/v1/projects/{}", bobs.data()["id"]);
    app.get(&path, &bob).await.expect(200);
});
