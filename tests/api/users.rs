use serde_json::json;

use crate::helpers::spawn;

db_test!(async fn me_reads_and_updates_the_profile(backend) {
    let app = spawn(backend).await;
    let (token, login) = app.user().await;
    let me = app.get("/api/v1/user/me", &token).await.expect(200);
    assert_eq!(me.data(), &login["user"]);
    assert!(me.data().get("hashed_password").is_none());

    let updated = app
        .put("/api/v1/user/me", &token, json!({"name": "Ada L.", "email": "ADA.L@Example.com", "whatsapp_number": "+91 98765-43210"}))
        .await
        .expect(200);
    assert_eq!(updated.data()["name"], "Ada L.");
    assert_eq!(updated.data()["email"], "ada.l@example.com");
    assert_eq!(updated.data()["whatsapp_number"], "+919876543210");
    assert_eq!(app.get("/api/v1/user/me", &token).await.expect(200).data(), updated.data());

    let cleared = app.put("/api/v1/user/me", &token, json!({"whatsapp_number": null})).await.expect(200);
    assert!(cleared.data()["whatsapp_number"].is_null());
    assert_eq!(cleared.data()["name"], "Ada L.");
});

db_test!(async fn me_update_is_validated(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let (other, other_login) = app.user().await;
    let taken = other_login["user"]["email"].as_str().unwrap().to_uppercase();
    app.put("/api/v1/user/me", &token, json!({"email": taken})).await.expect(409);

    app.put("/api/v1/user/me", &other, json!({"whatsapp_number": "+14155550100"})).await.expect(200);
    let reply = app.put("/api/v1/user/me", &token, json!({"whatsapp_number": "14155550100"})).await.expect(409);
    assert_eq!(reply.code(), "conflict");

    let reply = app.put("/api/v1/user/me", &token, json!({"email": "nope", "whatsapp_number": "12"})).await.expect(422);
    let mut fields = reply.error_fields();
    fields.sort();
    assert_eq!(fields, ["email", "whatsapp_number"]);
});

db_test!(async fn password_change_needs_the_current_password(backend) {
    let app = spawn(backend).await;
    let (token, login) = app.user().await;
    let email = login["user"]["email"].as_str().unwrap().to_owned();

    let reply = app.put("/api/v1/user/me", &token, json!({"password": "new-password-1"})).await.expect(422);
    assert_eq!(reply.error_fields(), ["current_password"]);
    let reply = app
        .put("/api/v1/user/me", &token, json!({"password": "new-password-1", "current_password": "wrong-password"}))
        .await
        .expect(422);
    assert_eq!(reply.error_fields(), ["current_password"]);
    app.login(&email, "password123").await.expect(200);

    app.put("/api/v1/user/me", &token, json!({"password": "new-password-1", "current_password": "password123"}))
        .await
        .expect(200);
    app.login(&email, "password123").await.expect(401);
    app.login(&email, "new-password-1").await.expect(200);
    // Sessions opened with the old password end.
    app.post_public("/api/v1/auth/refresh", json!({"refresh_token": login["refresh_token"]}))
        .await
        .expect(401);
});
