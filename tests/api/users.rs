use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::helpers::{spawn, spawn_with, TestApp};

db_test!(async fn me_reads_and_updates_the_profile(backend) {
    let app = spawn(backend).await;
    let (token, login) = app.user().await;
    let me = app.get("/api/v1/user/me", &token).await.expect(200);
    assert_eq!(me.data(), &login["user"]);
    assert!(me.data().get("hashed_password").is_none());

    let updated = app
        .put("/api/v1/user/me", &token, json!({"name": "Ada L.", "email": "ADA.L@Example.com"}))
        .await
        .expect(200);
    assert_eq!(updated.data()["name"], "Ada L.");
    assert_eq!(updated.data()["email"], "ada.l@example.com");
    assert_eq!(app.get("/api/v1/user/me", &token).await.expect(200).data(), updated.data());

    // Numbers are linked by the phone itself (POST /user/whatsapp/link); null unlinks.
    link_whatsapp(&app, login["user"]["id"].as_i64().unwrap(), "919876543210").await;

    let cleared = app.put("/api/v1/user/me", &token, json!({"whatsapp_number": null})).await.expect(200);
    assert!(cleared.data()["whatsapp_number"].is_null());
    assert_eq!(cleared.data()["name"], "Ada L.");
});

db_test!(async fn me_update_is_validated(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let (_, other_login) = app.user().await;
    let taken = other_login["user"]["email"].as_str().unwrap().to_uppercase();
    app.put("/api/v1/user/me", &token, json!({"email": taken})).await.expect(409);

    let reply = app.put("/api/v1/user/me", &token, json!({"email": "nope", "name": "  "})).await.expect(422);
    let mut fields = reply.error_fields();
    fields.sort();
    assert_eq!(fields, ["email", "name"]);
});

db_test!(async fn whatsapp_number_is_read_only_but_can_be_unlinked(backend) {
    let app = spawn(backend).await;
    let (token, login) = app.user().await;
    link_whatsapp(&app, login["user"]["id"].as_i64().unwrap(), "14155550100").await;
    for number in [json!("+14155550123"), json!("14155550100")] {
        let reply = app
            .put("/api/v1/user/me", &token, json!({"name": "Kept?", "whatsapp_number": number}))
            .await
            .expect(422);
        assert_eq!(reply.error_fields(), ["whatsapp_number"]);
        let message = reply.body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("/api/v1/user/whatsapp/link"), "{message}");
    }
    let me = app.get("/api/v1/user/me", &token).await.expect(200);
    assert_eq!(me.data()["whatsapp_number"], "14155550100", "a refused request changes nothing");
    assert_eq!(me.data()["name"], "Test User");
    let cleared = app.put("/api/v1/user/me", &token, json!({"whatsapp_number": null})).await.expect(200);
    assert!(cleared.data()["whatsapp_number"].is_null());
    assert_eq!(cleared.data()["name"], "Test User");
});

/// Links a number behind the API's back, as the WhatsApp linking flow would.
async fn link_whatsapp(app: &TestApp, user_id: i64, number: &str) {
    codesherpa::with_pool!(&app.db, |pool| sqlx::query(
        "UPDATE users SET whatsapp_number = $1 WHERE id = $2"
    )
    .bind(number)
    .bind(user_id)
    .execute(pool)
    .await
    .map(drop))
    .expect("link WhatsApp number");
}

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

db_test!(async fn password_and_email_changes_survive_concurrent_name_updates(backend) {
    let app = spawn(backend).await;
    let (token, login) = app.user().await;
    let mut email = login["user"]["email"].as_str().unwrap().to_owned();
    let mut password = "password123".to_owned();
    for round in 0..3 {
        let new_password = format!("new-password-{round}");
        let new_email = format!("round-{round}-{email}");
        let change_password = app.put(
            "/api/v1/user/me",
            &token,
            json!({"password": new_password, "current_password": password}),
        );
        let change_email = app.put("/api/v1/user/me", &token, json!({"email": new_email}));
        let renames = join_all((0..30).map(|i| {
            app.put("/api/v1/user/me", &token, json!({"name": format!("Name {round}-{i}")}))
        }));
        let (password_reply, email_reply, renamed) =
            tokio::join!(change_password, change_email, renames);
        password_reply.expect(200);
        email_reply.expect(200);
        for reply in renamed {
            reply.expect(200);
        }
        app.login(&email, &password).await.expect(401);
        app.login(&new_email, &password).await.expect(401);
        app.login(&new_email, &new_password).await.expect(200);
        let me = app.get("/api/v1/user/me", &token).await.expect(200);
        assert_eq!(me.data()["email"], new_email.as_str());
        assert!(me.data()["name"].as_str().unwrap().starts_with(&format!("Name {round}-")));
        email = new_email;
        password = new_password;
    }
});

db_test!(async fn a_password_change_revokes_tokens_minted_concurrently(backend) {
    let app = spawn(backend).await;
    let (token, login) = app.user().await;
    let email = login["user"]["email"].as_str().unwrap().to_owned();
    let mut sessions = Vec::new();
    for _ in 0..12 {
        let login = app.login(&email, "password123").await.expect(200);
        sessions.push(login.data()["refresh_token"].as_str().unwrap().to_owned());
    }
    let refreshes = join_all(sessions.iter().map(|refresh_token| {
        app.post_public("/api/v1/auth/refresh", json!({"refresh_token": refresh_token}))
    }));
    let logins = join_all((0..6).map(|_| app.login(&email, "password123")));
    let change = app.put(
        "/api/v1/user/me",
        &token,
        json!({"password": "brand-new-password", "current_password": "password123"}),
    );
    let (refreshed, logged_in, changed) = tokio::join!(refreshes, logins, change);
    changed.expect(200);
    let minted: Vec<Value> = refreshed
        .into_iter()
        .chain(logged_in)
        .filter(|reply| reply.status == 200)
        .map(|reply| reply.data()["refresh_token"].clone())
        .collect();
    for refresh_token in sessions.iter().map(|t| json!(t)).chain(minted) {
        app.post_public("/api/v1/auth/refresh", json!({"refresh_token": refresh_token}))
            .await
            .expect(401);
    }
});

/// Sends `body` to `PUT /user/me` as if from `ip` (the server trusts X-Forwarded-For here).
async fn put_me_from(app: &TestApp, ip: &str, token: &str, body: Value) -> crate::helpers::Reply {
    app.send(
        app.client
            .put(app.url("/api/v1/user/me"))
            .bearer_auth(token)
            .header("x-forwarded-for", ip)
            .json(&body),
    )
    .await
}

/// Registers and logs in a fresh user from `ip`; returns the access token.
async fn user_from(app: &TestApp, ip: &str) -> String {
    let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
    let credentials = json!({"name": "Guesser", "email": email, "password": "password123"});
    app.send(
        app.client
            .post(app.url("/api/v1/auth/register"))
            .header("x-forwarded-for", ip)
            .json(&credentials),
    )
    .await
    .expect(201);
    let login = app
        .send(
            app.client
                .post(app.url("/api/v1/auth/login"))
                .header("x-forwarded-for", ip)
                .json(&credentials),
        )
        .await
        .expect(200);
    login.data()["access_token"].as_str().unwrap().to_owned()
}

fn guess(password: &str) -> Value {
    json!({"password": "another-password", "current_password": password})
}

fn assert_rate_limited(reply: crate::helpers::Reply) {
    let reply = reply.expect(429);
    assert_eq!(reply.code(), "rate_limited");
    let wait: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
}

db_test!(async fn current_password_guesses_are_limited_per_user(backend) {
    let app = spawn_with(backend, |config| {
        config.http.rate_limit_auth_per_minute = 5;
        config.http.trust_proxy_headers = true;
    })
    .await;
    let token = user_from(&app, "10.0.0.1").await;
    // Each guess from a new address: only the user's own budget stops them.
    for i in 0..5 {
        put_me_from(&app, &format!("10.0.1.{i}"), &token, guess("wrong-guess")).await.expect(422);
    }
    assert_rate_limited(put_me_from(&app, "10.0.2.1", &token, guess("wrong-guess")).await);
    // Refused before bcrypt: even the right password is not checked now.
    assert_rate_limited(put_me_from(&app, "10.0.2.2", &token, guess("password123")).await);
    // Changes that check no password are not limited.
    put_me_from(&app, "10.0.2.3", &token, json!({"name": "Still here"})).await.expect(200);
});

db_test!(async fn current_password_guesses_are_limited_per_ip(backend) {
    let app = spawn_with(backend, |config| {
        config.http.rate_limit_auth_per_minute = 5;
        config.http.trust_proxy_headers = true;
    })
    .await;
    let mut tokens = Vec::new();
    for i in 0..6 {
        tokens.push(user_from(&app, &format!("10.1.{i}.1")).await);
    }
    // One guess per account from one address: the address's budget (shared with the
    // auth routes) stops them.
    for token in &tokens[..5] {
        put_me_from(&app, "10.9.9.9", token, guess("wrong-guess")).await.expect(422);
    }
    assert_rate_limited(put_me_from(&app, "10.9.9.9", &tokens[5], guess("wrong-guess")).await);
    let login = app
        .send(
            app.client
                .post(app.url("/api/v1/auth/login"))
                .header("x-forwarded-for", "10.9.9.9")
                .json(&json!({"email": "x@example.com", "password": "whatever1"})),
        )
        .await;
    assert_rate_limited(login);
});
