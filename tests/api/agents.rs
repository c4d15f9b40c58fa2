use serde_json::json;

use crate::helpers::spawn;

db_test!(async fn new_users_get_the_builtin_specialists(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let reply = app.get("/api/v1/agents", &token).await.expect(200);
    assert_eq!(reply.data()["total"], 4);
    let mut roles: Vec<&str> = reply.data()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|agent| agent["role"].as_str().unwrap())
        .collect();
    roles.sort();
    assert_eq!(roles, ["code_explanation", "code_review", "documentation", "orchestrator"]);
    let names = reply.data()["items"].to_string();
    for name in ["Orchestrator", "Review Monk", "Codebase Sherpa", "Doc Sync"] {
        assert!(names.contains(name), "{name}");
    }
});

db_test!(async fn agent_crud(backend) {
    let app = spawn(backend).await;
    let (token, login) = app.user().await;
    let created = app
        .post("/api/v1/agents", &token, json!({"name": "  Security Reviewer ", "description": "Finds holes"}))
        .await
        .expect(201);
    let agent = created.data().clone();
    assert_eq!(agent["name"], "Security Reviewer");
    assert_eq!(agent["status"], "active");
    assert_eq!(agent["role"], "custom");
    assert_eq!(agent["user_id"], login["user"]["id"]);
    assert!(agent["system_prompt"].is_null());
    let path = format!("/api/v1/agents/{}", agent["id"]);

    let read = app.get(&path, &token).await.expect(200);
    assert_eq!(read.data(), &agent);

    let updated = app
        .put(&path, &token, json!({"status": "inactive", "description": null, "system_prompt": "Be strict", "model": "gpt-4o-mini"}))
        .await
        .expect(200);
    let updated = updated.data();
    assert_eq!(updated["status"], "inactive");
    assert!(updated["description"].is_null());
    assert_eq!(updated["system_prompt"], "Be strict");
    assert_eq!(updated["model"], "gpt-4o-mini");
    assert_eq!(updated["name"], "Security Reviewer", "untouched fields stay");
    assert_eq!(updated["created_at"], agent["created_at"]);
    assert!(updated["updated_at"].as_str().unwrap() >= agent["updated_at"].as_str().unwrap());

    app.put(&path, &token, json!({"status": "processing"})).await.expect(200);
    app.delete(&path, &token).await.expect(200);
    app.get(&path, &token).await.expect(404);
    app.delete(&path, &token).await.expect(404);
});

db_test!(async fn agent_input_is_validated(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let reply = app.post("/api/v1/agents", &token, json!({"name": "A", "status": "busy"})).await.expect(422);
    assert_eq!(reply.error_fields(), ["status"]);
    let reply = app.post("/api/v1/agents", &token, json!({"name": ""})).await.expect(422);
    assert_eq!(reply.error_fields(), ["name"]);
    let reply = app.post("/api/v1/agents", &token, json!({"description": "no name"})).await.expect(422);
    assert_eq!(reply.error_fields(), ["name"]);
    let reply = app.post("/api/v1/agents", &token, json!({"name": "x".repeat(101)})).await.expect(422);
    assert_eq!(reply.error_fields(), ["name"]);

    let created = app.post("/api/v1/agents", &token, json!({"name": "A", "status": "inactive"})).await.expect(201);
    assert_eq!(created.data()["status"], "inactive");
    let path = format!("/api/v1/agents/{}", created.data()["id"]);
    let reply = app.put(&path, &token, json!({"status": "sleeping"})).await.expect(422);
    assert_eq!(reply.error_fields(), ["status"]);
    let reply = app.put(&path, &token, json!({"name": "  "})).await.expect(422);
    assert_eq!(reply.error_fields(), ["name"]);
    let unchanged = app.get(&path, &token).await.expect(200);
    assert_eq!(unchanged.data()["status"], "inactive", "a refused update changes nothing");
});

db_test!(async fn another_users_agents_are_invisible(backend) {
    let app = spawn(backend).await;
    let (alice, _) = app.user().await;
    let (mallory, _) = app.user().await;
    let agent = app.post("/api/v1/agents", &alice, json!({"name": "Private"})).await.expect(201);
    let path = format!("/api/v1/agents/{}", agent.data()["id"]);

    assert_eq!(app.get(&path, &mallory).await.expect(404).code(), "not_found");
    app.put(&path, &mallory, json!({"name": "Stolen"})).await.expect(404);
    app.delete(&path, &mallory).await.expect(404);
    let list = app.get("/api/v1/agents", &mallory).await.expect(200);
    assert!(!list.data().to_string().contains("Private"));

    let still = app.get(&path, &alice).await.expect(200);
    assert_eq!(still.data()["name"], "Private");
});

db_test!(async fn agent_lists_page_newest_first(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    for i in 0..5 {
        app.post("/api/v1/agents", &token, json!({"name": format!("agent {i}")})).await.expect(201);
    }
    let page = app.get("/api/v1/agents?limit=2&offset=1", &token).await.expect(200);
    let data = page.data();
    assert_eq!((data["total"].as_i64(), data["limit"].as_i64(), data["offset"].as_i64()), (Some(9), Some(2), Some(1)));
    let names: Vec<&str> = data["items"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["agent 3", "agent 2"]);

    let all = app.get("/api/v1/agents", &token).await.expect(200);
    assert_eq!(all.data()["limit"], 50);
    assert_eq!(all.data()["items"].as_array().unwrap().len(), 9);

    let bad = [("limit=101", "limit"), ("limit=0", "limit"), ("limit=abc", "limit"), ("offset=-1", "offset"), ("limit=1&limit=2", "limit"), ("offset=0&offset=1", "offset")];
    for (query, field) in bad {
        let reply = app.get(&format!("/api/v1/agents?{query}"), &token).await.expect(422);
        assert_eq!(reply.error_fields(), [field], "{query}");
    }
});

db_test!(async fn agent_ids_that_cannot_exist_are_not_found(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    for path in ["/api/v1/agents/abc", "/api/v1/agents/999999", "/api/v1/agents/-1", "/api/v1/agents/99999999999999999999"] {
        app.get(path, &token).await.expect(404);
    }
});

db_test!(async fn agents_left_processing_by_a_crash_recover_at_start(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let stuck = app.post("/api/v1/agents", &token, json!({"name": "Stuck"})).await.expect(201);
    let working = app.post("/api/v1/agents", &token, json!({"name": "Working"})).await.expect(201);
    let long_ago = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    for (agent, updated_at) in [(&stuck, long_ago), (&working, chrono::Utc::now())] {
        codesherpa::with_pool!(&app.db, |pool| sqlx::query(
            "UPDATE agents SET status = 'processing', updated_at = $1 WHERE id = $2"
        )
        .bind(updated_at)
        .bind(agent.data()["id"].as_i64().unwrap())
        .execute(pool)
        .await
        .map(drop))
        .unwrap();
    }
    // Another instance starting on the same database (as after a crash and restart).
    let restarted = app.sibling(|_| {}).await;
    let status = |agent: &crate::helpers::Reply| format!("/api/v1/agents/{}", agent.data()["id"]);
    assert_eq!(restarted.get(&status(&stuck), &token).await.expect(200).data()["status"], "active");
    assert_eq!(
        restarted.get(&status(&working), &token).await.expect(200).data()["status"],
        "processing",
        "a recent generation, perhaps on another instance, is left alone"
    );
    drop(restarted);
});
