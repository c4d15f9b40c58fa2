//! The OpenAPI document is the contract: what it allows is accepted, what the server
//! refuses is declared (constraints, statuses, content types).

use regex::Regex;
use serde_json::{json, Value};

use crate::helpers::{spawn, TestApp};

/// Every whitespace character Rust's `trim` removes (Unicode White_Space), and a few
/// look-alikes that are not whitespace and so make a name non-blank.
const WHITESPACE: [char; 25] = [
    '\t', '\n', '\u{b}', '\u{c}', '\r', ' ', '\u{85}', '\u{a0}', '\u{1680}', '\u{2000}',
    '\u{2001}', '\u{2002}', '\u{2003}', '\u{2004}', '\u{2005}', '\u{2006}', '\u{2007}', '\u{2008}',
    '\u{2009}', '\u{200a}', '\u{2028}', '\u{2029}', '\u{202f}', '\u{205f}', '\u{3000}',
];
const NOT_WHITESPACE: [char; 4] = ['\u{1c}', '\u{180e}', '\u{200b}', '\u{feff}'];

async fn openapi(app: &TestApp) -> Value {
    app.client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn pattern(schema: &Value) -> Regex {
    Regex::new(schema["pattern"].as_str().expect("a pattern")).unwrap()
}

db_test!(async fn blank_names_are_refused_exactly_as_the_pattern_says(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let doc = openapi(&app).await;
    let name = &doc["components"]["schemas"]["CreateProject"]["properties"]["name"];
    let not_blank = pattern(name);
    for c in WHITESPACE {
        let blank = format!("{c}{c}");
        assert!(!not_blank.is_match(&blank), "{c:?}");
        let reply = app.post("/api/v1/projects", &token, json!({"name": blank})).await.expect(422);
        assert_eq!(reply.error_fields(), ["name"], "{c:?}");
    }
    for c in NOT_WHITESPACE {
        let name = format!(" {c} ");
        assert!(not_blank.is_match(&name), "{c:?}");
        app.post("/api/v1/projects", &token, json!({"name": name})).await.expect(201);
    }
});

db_test!(async fn max_length_counts_the_text_as_sent(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let doc = openapi(&app).await;
    let max = doc["components"]["schemas"]["CreateAgent"]["properties"]["name"]["maxLength"]
        .as_u64()
        .unwrap() as usize;
    let longest = "n".repeat(max);
    let agent = app.post("/api/v1/agents", &token, json!({"name": longest})).await.expect(201);
    assert_eq!(agent.data()["name"], longest.as_str());
    // Trimming would bring it under the limit, but the schema measures what was sent.
    let padded = format!(" {longest}");
    let reply = app.post("/api/v1/agents", &token, json!({"name": padded})).await.expect(422);
    assert_eq!(reply.error_fields(), ["name"]);
    let reply = app.post("/api/v1/agents", &token, json!({"name": "a", "role": ""})).await.expect(422);
    assert_eq!(reply.error_fields(), ["role"]);
});

db_test!(async fn repo_urls_match_the_declared_pattern(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let doc = openapi(&app).await;
    let repo_url = pattern(&doc["components"]["schemas"]["CreateProject"]["properties"]["repo_url"]);
    let accepted = [
        "https://github.com/acme/x",
        " http://git.example.com:8080/a.git\n",
        "\u{3000}",
        "",
    ];
    for url in accepted {
        assert!(repo_url.is_match(url), "{url:?}");
        app.post("/api/v1/projects", &token, json!({"name": "p", "repo_url": url})).await.expect(201);
    }
    let refused = [
        "ftp://x",
        "https://",
        "https:///path",
        "github.com/acme/x",
        "https://a b",
        "https://a\u{a0}b",
        "HTTPS://github.com/a",
    ];
    for url in refused {
        assert!(!repo_url.is_match(url), "{url:?}");
        let reply = app.post("/api/v1/projects", &token, json!({"name": "p", "repo_url": url})).await.expect(422);
        assert_eq!(reply.error_fields(), ["repo_url"], "{url:?}");
    }
});

db_test!(async fn integer_ids_may_be_written_with_a_fraction_of_zero(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let project = app.post("/api/v1/projects", &token, json!({"name": "p"})).await.expect(201);
    let id = project.data()["id"].as_i64().unwrap();
    let chat = app
        .post("/api/v1/chat", &token, json!({"message": "hello", "project_id": id as f64}))
        .await
        .expect(201);
    assert_eq!(chat.data()["project_id"], id);
    let reply = app
        .post("/api/v1/chat", &token, json!({"message": "hello", "agent_id": 1.5}))
        .await
        .expect(422);
    assert_eq!(reply.error_fields(), ["agent_id"]);
});

db_test!(async fn an_array_is_not_an_object_body(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let project = app.post("/api/v1/projects", &token, json!({"name": "keep me", "description": "d"})).await.expect(201);
    let path = format!("/api/v1/projects/{}", project.data()["id"]);
    let reply = app.put(&path, &token, json!([null, null])).await.expect(422);
    assert_eq!(reply.error_fields(), ["body"]);
    app.post("/api/v1/agents", &token, json!(["an agent"])).await.expect(422);
    let unchanged = app.get(&path, &token).await.expect(200);
    assert_eq!(unchanged.data()["description"], "d");
});

db_test!(async fn passwords_are_eight_characters_to_seventy_two_bytes(backend) {
    let app = spawn(backend).await;
    // Eight bytes but four characters: under the declared minLength.
    let reply = app.register("short@example.com", &"é".repeat(4)).await.expect(422);
    assert_eq!(reply.error_fields(), ["password"]);
    app.register("longest@example.com", &"é".repeat(36)).await.expect(201);
    let reply = app.register("too-long@example.com", &"é".repeat(37)).await.expect(422);
    assert_eq!(reply.error_fields(), ["password"]);
});

/// Statuses the server answers on every operation of a kind, whatever the handler does.
fn declared(op: &Value) -> Vec<&str> {
    op["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

db_test!(async fn every_operation_declares_the_framework_answers(backend) {
    let app = spawn(backend).await;
    let doc = openapi(&app).await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let statuses = declared(op);
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if secured {
                assert!(statuses.contains(&"401"), "{method} {path}: 401");
            }
            if op["requestBody"].is_object() {
                for status in ["400", "413", "415", "422"] {
                    assert!(statuses.contains(&status), "{method} {path}: {status}");
                }
            }
            if let Some(limited) = op["responses"].get("429") {
                assert!(limited["headers"]["Retry-After"].is_object(), "{method} {path}: Retry-After");
            }
            let paged = op["parameters"].as_array().is_some_and(|params| {
                params.iter().any(|p| p["name"] == "limit")
            });
            if paged {
                assert!(statuses.contains(&"422"), "{method} {path}: 422 for paging");
                let limit = op["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "limit").unwrap();
                assert_eq!(limit["schema"]["minimum"], 1, "{method} {path}");
                assert_eq!(limit["schema"]["maximum"], 100, "{method} {path}");
            }
        }
    }
});

db_test!(async fn declared_limits_are_the_enforced_ones(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    app.get("/api/v1/agents?limit=100&offset=0", &token).await.expect(200);
    for query in ["limit=0", "limit=101", "offset=-1"] {
        app.get(&format!("/api/v1/chat/sessions?{query}"), &token).await.expect(422);
    }
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    let served = response.headers()["content-type"].to_str().unwrap().to_owned();
    let doc = openapi(&app).await;
    let documented = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
        .as_object()
        .unwrap();
    assert!(documented.contains_key(&served), "{served} not in {documented:?}");
});

db_test!(async fn nul_characters_are_refused_on_every_database(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let doc = openapi(&app).await;
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [("CreateProject", "name"), ("CreateProject", "description"), ("ChatRequest", "code_context")] {
        let declared = pattern(&schemas[schema]["properties"][field]);
        assert!(!declared.is_match("a\u{0}b"), "{schema}.{field}");
        assert!(declared.is_match("ab"), "{schema}.{field}");
    }
    let reply = app.post("/api/v1/projects", &token, json!({"name": "a\u{0}b"})).await.expect(422);
    assert_eq!(reply.error_fields(), ["name"]);
    let reply = app.post("/api/v1/projects", &token, json!({"name": "p", "repo_url": "https://x\u{0}"})).await.expect(422);
    assert_eq!(reply.error_fields(), ["repo_url"]);
    let reply = app.post("/api/v1/agents", &token, json!({"name": "a", "system_prompt": "\u{0}"})).await.expect(422);
    assert_eq!(reply.error_fields(), ["system_prompt"]);
    let reply = app
        .post("/api/v1/chat", &token, json!({"message": "hi", "code_context": "fn main() {}\u{0}"}))
        .await
        .expect(422);
    assert_eq!(reply.error_fields(), ["code_context"]);
    let reply = app.get("/api/v1/chat?session_id=a%00b", &token).await.expect(422);
    assert_eq!(reply.error_fields(), ["session_id"]);
    app.login("nobody\u{0}@example.com", "password123").await.expect(401);
    assert_eq!(app.get("/api/v1/projects", &token).await.expect(200).data()["total"], 0);
});
