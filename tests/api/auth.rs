use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn, spawn_with, TestApp, TEST_SECRET};

fn claims(sub: &Value, kind: &str, exp_offset: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": sub, "iat": now, "exp": now + exp_offset, "jti": "forged", "type": kind})
}

fn sign(claims: &Value, algorithm: Algorithm, secret: &str) -> String {
    encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn me_status(app: &TestApp, token: &str) -> (u16, String) {
    let reply = app.get("/api/v1/user/me", token).await;
    let status = reply.status.as_u16();
    let reply = reply.expect(status);
    (status, reply.code().to_owned())
}

db_test!(async fn register_returns_the_user_without_secrets(backend) {
    let app = spawn(backend).await;
    let reply = app.register("  Ada@Example.COM ", "password123").await.expect(201);
    let user = reply.data();
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["name"], "Test User");
    assert_eq!(user["is_active"], true);
    assert!(user["id"].as_i64().unwrap() > 0);
    assert!(user["created_at"].is_string());
    let text = reply.body.to_string();
    assert!(!text.contains("hashed_password") && !text.contains("password123") && !text.contains("$2b$"));
});

db_test!(async fn register_refuses_a_taken_email_in_any_case(backend) {
    let app = spawn(backend).await;
    app.register("dup@example.com", "password123").await.expect(201);
    let reply = app.register("DUP@example.com", "password456").await.expect(409);
    assert_eq!(reply.code(), "conflict");
});

db_test!(async fn register_validates_every_field(backend) {
    let app = spawn(backend).await;
    let reply = app
        .post_public("/api/v1/auth/register", json!({"name": " ", "email": "not-an-email", "password": "short"}))
        .await
        .expect(422);
    assert_eq!(reply.code(), "validation_error");
    let mut fields = reply.error_fields();
    fields.sort();
    assert_eq!(fields, ["email", "name", "password"]);

    // bcrypt's 72-byte limit: 72 is accepted, 73 refused rather than truncated.
    app.register("max@example.com", &"p".repeat(72)).await.expect(201);
    let reply = app.register("over@example.com", &"p".repeat(73)).await.expect(422);
    assert_eq!(reply.error_fields(), ["password"]);

    let reply = app.post_public("/api/v1/auth/register", json!({"email": "a@b.co", "password": "password123"})).await.expect(422);
    assert_eq!(reply.error_fields(), ["name"]);
});

db_test!(async fn login_answers_tokens_and_the_user(backend) {
    let app = spawn(backend).await;
    app.register("ada@example.com", "password123").await.expect(201);
    let reply = app.login("ADA@example.com", "password123").await.expect(200);
    let data = reply.data();
    assert_eq!(data["token_type"], "bearer");
    assert_eq!(data["expires_in"], 1800);
    assert_eq!(data["user"]["email"], "ada@example.com");
    let token = data["access_token"].as_str().unwrap();
    let me = app.get("/api/v1/user/me", token).await.expect(200);
    assert_eq!(me.data()["email"], "ada@example.com");
    assert!(data["refresh_token"].as_str().unwrap() != token);
});

db_test!(async fn login_accepts_the_oauth2_password_form(backend) {
    let app = spawn(backend).await;
    app.register("form@example.com", "password123").await.expect(201);
    let request = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .form(&[("username", "form@example.com"), ("password", "password123"), ("grant_type", "password")]);
    let reply = app.send(request).await.expect(200);
    assert!(reply.data()["access_token"].is_string());
    // OAuth2 clients such as Swagger UI's Authorize read the token at the top level.
    assert_eq!(reply.body["access_token"], reply.data()["access_token"]);
    assert_eq!(reply.body["token_type"], "bearer");
});

db_test!(async fn login_does_not_reveal_which_part_was_wrong(backend) {
    let app = spawn(backend).await;
    app.register("ada@example.com", "password123").await.expect(201);
    let wrong_password = app.login("ada@example.com", "password124").await.expect(401);
    let unknown_email = app.login("nobody@example.com", "password123").await.expect(401);
    assert_eq!(wrong_password.body, unknown_email.body);
    assert_eq!(wrong_password.code(), "unauthorized");
});

db_test!(async fn deactivated_users_are_refused(backend) {
    let app = spawn(backend).await;
    let (token, login) = app.user().await;
    let email = login["user"]["email"].as_str().unwrap().to_owned();
    app.deactivate(login["user"]["id"].as_i64().unwrap()).await;
    assert_eq!(me_status(&app, &token).await, (403, "forbidden".into()));
    let reply = app.login(&email, "password123").await.expect(403);
    assert_eq!(reply.code(), "forbidden");
    let refresh = login["refresh_token"].clone();
    app.post_public("/api/v1/auth/refresh", json!({"refresh_token": refresh})).await.expect(403);
});

db_test!(async fn deactivation_made_elsewhere_bites_within_the_cache_ttl(backend) {
    let app = spawn_with(backend, |config| config.auth.cache_ttl = std::time::Duration::from_millis(300)).await;
    let (token, login) = app.user().await;
    assert_eq!(me_status(&app, &token).await.0, 200);
    // A change through the API is seen at once...
    let renamed = app.put("/api/v1/user/me", &token, json!({"name": "Renamed"})).await.expect(200);
    assert_eq!(app.get("/api/v1/user/me", &token).await.expect(200).data(), renamed.data());
    // ...one made behind its back, within the TTL.
    app.deactivate(login["user"]["id"].as_i64().unwrap()).await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(me_status(&app, &token).await, (403, "forbidden".into()));
});

// Reads that miss the cache together share one read of the row, and a read begun before a
// change through the API never outlives it: whatever was in flight when a rename
// returned, every request after it sees the new name (even with a long TTL).
db_test!(async fn reads_in_flight_never_outlive_a_change_through_the_api(backend) {
    let app = spawn_with(backend, |config| config.auth.cache_ttl = std::time::Duration::from_secs(60)).await;
    let (token, _) = app.user().await;
    let me = || async { app.get("/api/v1/user/me", &token).await.expect(200).data()["name"].clone() };
    let rename = |name: String| app.put("/api/v1/user/me", &token, json!({"name": name}));
    for round in 0..20 {
        // Forgotten by this rename, the row is read anew by the burst that follows...
        rename(format!("Before {round}")).await.expect(200);
        let name = format!("After {round}");
        let readers = futures_util::future::join_all((0..24).map(|_| me()));
        // ...while the next rename commits.
        let (seen, renamed) = tokio::join!(readers, rename(name.clone()));
        renamed.expect(200);
        assert!(seen.iter().all(|name| name.is_string()), "{seen:?}");
        let after = futures_util::future::join_all((0..8).map(|_| me())).await;
        assert!(after.iter().all(|seen| *seen == json!(name)), "round {round}: {after:?}");
    }
});

db_test!(async fn forged_and_foreign_tokens_are_rejected(backend) {
    let app = spawn(backend).await;
    let (token, login) = app.user().await;
    let sub = Value::String(login["user"]["id"].to_string());

    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(&sub, "access", 600).to_string());
    let unsigned = format!("{none_header}.{payload}.");
    let tampered = {
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut body: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        body["sub"] = json!("999999");
        parts[1] = URL_SAFE_NO_PAD.encode(body.to_string());
        parts.join(".")
    };
    let cases = [
        ("alg none", unsigned),
        ("tampered payload", tampered),
        ("expired", sign(&claims(&sub, "access", -600), Algorithm::HS256, TEST_SECRET)),
        ("expired a second ago", sign(&claims(&sub, "access", -1), Algorithm::HS256, TEST_SECRET)),
        ("other algorithm", sign(&claims(&sub, "access", 600), Algorithm::HS512, TEST_SECRET)),
        ("other secret", sign(&claims(&sub, "access", 600), Algorithm::HS256, "another-secret-of-at-least-32-bytes!!")),
        ("refresh as access", login["refresh_token"].as_str().unwrap().to_owned()),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (case, forged) in cases {
        assert_eq!(me_status(&app, &forged).await, (401, "unauthorized".into()), "{case}");
    }
    // A correctly signed token for a user that does not exist.
    let ghost = sign(&claims(&json!("424242"), "access", 600), Algorithm::HS256, TEST_SECRET);
    assert_eq!(me_status(&app, &ghost).await.0, 401);

    let missing = app.call(Method::GET, "/api/v1/user/me", None, None).await.expect(401);
    assert_eq!(missing.headers["www-authenticate"], "Bearer");
    let request = app.client.get(app.url("/api/v1/user/me")).header("authorization", format!("Basic {token}"));
    app.send(request).await.expect(401);
    assert_eq!(me_status(&app, &token).await.0, 200, "the real token still works");
});

db_test!(async fn refresh_rotates_and_reuse_revokes_the_family(backend) {
    let app = spawn(backend).await;
    let (_, login) = app.user().await;
    let first = login["refresh_token"].clone();

    let rotated = app.post_public("/api/v1/auth/refresh", json!({"refresh_token": first})).await.expect(200);
    let second = rotated.data()["refresh_token"].clone();
    assert_ne!(first, second);
    let access = rotated.data()["access_token"].as_str().unwrap();
    assert_eq!(me_status(&app, access).await.0, 200);

    // Replaying the spent token is refused and burns every token of that login...
    let reuse = app.post_public("/api/v1/auth/refresh", json!({"refresh_token": first})).await.expect(401);
    assert_eq!(reuse.code(), "unauthorized");
    app.post_public("/api/v1/auth/refresh", json!({"refresh_token": second})).await.expect(401);

    // ...but not the sessions of another login.
    let email = login["user"]["email"].as_str().unwrap();
    let other = app.login(email, "password123").await.expect(200);
    app.post_public("/api/v1/auth/refresh", json!({"refresh_token": other.data()["refresh_token"]}))
        .await
        .expect(200);
});

db_test!(async fn refresh_refuses_access_tokens_and_garbage(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    app.post_public("/api/v1/auth/refresh", json!({"refresh_token": token})).await.expect(401);
    app.post_public("/api/v1/auth/refresh", json!({"refresh_token": "nope"})).await.expect(401);
    let reply = app.post_public("/api/v1/auth/refresh", json!({})).await.expect(422);
    assert_eq!(reply.error_fields(), ["refresh_token"]);
});

db_test!(async fn logout_revokes_the_refresh_token(backend) {
    let app = spawn(backend).await;
    let (_, login) = app.user().await;
    let refresh = login["refresh_token"].clone();
    app.post_public("/api/v1/auth/logout", json!({"refresh_token": refresh})).await.expect(200);
    app.post_public("/api/v1/auth/refresh", json!({"refresh_token": refresh})).await.expect(401);
});

db_test!(async fn auth_routes_are_rate_limited_per_ip(backend) {
    let app = spawn_with(backend, |config| config.http.rate_limit_auth_per_minute = 3).await;
    for _ in 0..3 {
        app.login("nobody@example.com", "password123").await.expect(401);
    }
    let limited = app.login("nobody@example.com", "password123").await.expect(429);
    assert_eq!(limited.code(), "rate_limited");
    let retry_after: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    app.register("late@example.com", "password123").await.expect(429);
    // Other routes are not limited.
    let reply = app.send(app.client.get(app.url("/health"))).await;
    assert_eq!(reply.status, 200);
});

const OLD_KEY: &str = "the-key-before-rotation-0123456789abcdef";
const NEW_KEY: &str = "the-key-after-rotation-0123456789abcdefgh";

db_test!(async fn tokens_signed_with_the_previous_key_survive_a_rotation(backend) {
    let before = spawn_with(backend, |config| config.auth.secret_key = OLD_KEY.into()).await;
    let (access, login) = before.user().await;
    let rotated = before
        .sibling(|config| {
            config.auth.secret_key = NEW_KEY.into();
            config.auth.secret_key_previous = Some(OLD_KEY.into());
        })
        .await;
    assert_eq!(me_status(&rotated, &access).await.0, 200);
    let refreshed = rotated
        .post_public("/api/v1/auth/refresh", json!({"refresh_token": login["refresh_token"]}))
        .await
        .expect(200);
    let fresh = refreshed.data()["access_token"].as_str().unwrap();
    assert_eq!(me_status(&rotated, fresh).await.0, 200);
    // New tokens are signed with the new key: an instance that only knows the old key
    // refuses them.
    assert_eq!(me_status(&before, fresh).await, (401, "unauthorized".to_owned()));
    // A key that was never ours verifies nothing.
    let unrelated = before
        .sibling(|config| {
            config.auth.secret_key = "some-other-deployment-key-0123456789ab".into();
            config.auth.secret_key_previous = Some("yet-another-deployment-key-0123456789".into());
        })
        .await;
    assert_eq!(me_status(&unrelated, &access).await, (401, "unauthorized".to_owned()));
    unrelated
        .post_public("/api/v1/auth/refresh", json!({"refresh_token": refreshed.data()["refresh_token"]}))
        .await
        .expect(401);
    drop(unrelated);
    drop(rotated);
});
