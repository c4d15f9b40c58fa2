//! Shared by the benchmark clients: a fresh user and their access token.

use serde_json::{json, Value};

pub async fn token_for(client: &reqwest::Client, base: &str) -> String {
    let email = format!("bench-{}@bench.example", uuid::Uuid::new_v4().simple());
    let credentials = json!({"name": "Bench", "email": email, "password": "benchmark password"});
    client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&credentials)
        .send()
        .await
        .expect("register");
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&credentials)
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login JSON");
    login["data"]["access_token"]
        .as_str()
        .expect("token")
        .to_owned()
}
