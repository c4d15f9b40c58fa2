//! The map of the project (SPEC §6.4): Codebase Sherpa and Doc Sync get the files most
//! related to the question with their definitions (name, kind, line) within a budget —
//! code the snippets did not show included — and "where is X defined" / "what uses X"
//! come from the symbols and whole-word search, with every provider.

use std::time::Duration;

use serde_json::{json, Value};
use wiremock::{
    matchers::{method, path},
    Mock, MockServer, ResponseTemplate,
};

use crate::codebase::{github_tarball, project, upload};
use crate::helpers::{spawn, Backend, TestApp};
use crate::providers::openai_app_waiting;

/// What the prompt says right before the map, which ends the prompt.
const MAP_STARTS: &str = "even code not shown above:\n\n";

const CART: &str = "use crate::money::Money;\n\n/// The sum of a cart.\npub fn checkout_total(cart: &Cart) -> Money {\n    let sum = cart.items.iter().map(|i| i.price).sum();\n    Money::from_cents(sum)\n}\n\npub struct Cart {\n    items: Vec<Item>,\n}\n\nimpl Cart {\n    pub fn price(&self) -> u64 {\n        0\n    }\n}\n";
const MONEY: &str = "//! Amounts.\n\npub struct Money {\n    cents: u64,\n}\n\nimpl Money {\n    pub fn from_cents(cents: u64) -> Self {\n        Money { cents }\n    }\n}\n";
const API: &str = "fn handler(cart: Cart) -> Json {\n    let total = checkout_total(&cart);\n    Json(total)\n}\n\nfn refund() {\n    let again = checkout_total(&cart);\n}\n";
const SUB: &str = "let mut subtotal = 0;\nsubtotal += 1;\n// checkout_totals are cached\n";
const NOISE: &str = "pub fn unrelated() -> u8 {\n    7\n}\n";

async fn openai_app(backend: Backend, server: &MockServer) -> TestApp {
    openai_app_waiting(backend, server, Duration::from_secs(5)).await
}

async fn answering_mock() -> MockServer {
    let server = MockServer::start().await;
    let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "See src/cart.rs:4"}}]});
    let body = format!("data: {chunk}\n\ndata: [DONE]\n\n");
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .mount(&server)
        .await;
    server
}

/// The user's built-in agent of `role`, so that a chat makes exactly one call.
async fn agent_of(app: &TestApp, token: &str, role: &str) -> i64 {
    let agents = app.get("/api/v1/agents", token).await.expect(200);
    let items = agents.data()["items"].as_array().unwrap();
    let agent = items.iter().find(|a| a["role"] == role).unwrap();
    agent["id"].as_i64().unwrap()
}

/// Codebase Sherpa (Explain).
async fn sherpa(app: &TestApp, token: &str) -> i64 {
    agent_of(app, token, "code_explanation").await
}

/// The user turn of each request the mock received.
async fn prompts(server: &MockServer) -> Vec<String> {
    let requests = server.received_requests().await.unwrap();
    requests
        .iter()
        .map(|request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let messages = body["messages"].as_array().unwrap();
            messages.last().unwrap()["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// The map part of a prompt, and what comes before it.
fn split_map(prompt: &str) -> (&str, &str) {
    prompt
        .split_once(MAP_STARTS)
        .unwrap_or_else(|| panic!("no map in {prompt}"))
}

db_test!(async fn remote_models_get_the_map_with_code_the_snippets_did_not_show(backend) {
    let server = answering_mock().await;
    let app = openai_app(backend, &server).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    let files = [("src/api.rs", API), ("src/cart.rs", CART), ("src/money.rs", MONEY), ("src/noise.rs", NOISE)];
    upload(&app, &token, id, github_tarball(&files)).await.expect(200);
    let agent = sherpa(&app, &token).await;
    let question = json!({"message": "Where is `checkout_total` defined?", "project_id": id, "agent_id": agent});
    app.post("/api/v1/chat", &token, question).await.expect(201);
    let sent = prompts(&server).await;
    assert_eq!(sent.len(), 1);
    let (shown, map) = split_map(&sent[0]);
    assert!(shown.contains("src/cart.rs:4\n```"), "the definition is a snippet: {shown}");
    assert!(!shown.contains("src/money.rs:"), "money.rs has no line about the question: {shown}");
    assert!(map.starts_with(
        "`checkout_total` is defined at src/cart.rs:4 (function); used at src/api.rs:2, src/api.rs:7.\n\n\
         src/cart.rs\n  function checkout_total, line 4\n  struct Cart, line 9\n  method price in Cart, line 14\n"
    ), "{map}");
    assert!(map.contains("src/api.rs\n  function handler, line 1\n  function refund, line 6\n"), "{map}");
    // The snippet of cart.rs refers to Money, defined in a file the question never matched.
    assert!(
        map.contains("src/money.rs\n  struct Money, line 3\n  method from_cents in Money, line 8\n"),
        "{map}"
    );
    assert!(!map.contains("src/noise.rs"), "unrelated files stay out: {map}");
    let doc_sync = agent_of(&app, &token, "documentation").await;
    let question = json!({"message": "Document `checkout_total`", "project_id": id, "agent_id": doc_sync});
    app.post("/api/v1/chat", &token, question).await.expect(201);
    let both = prompts(&server).await;
    let (_, docs_map) = split_map(&both[1]);
    assert!(docs_map.contains("src/cart.rs\n  function checkout_total, line 4\n"), "Doc Sync too: {docs_map}");
});

db_test!(async fn the_map_stays_within_its_budget_on_a_big_project(backend) {
    let server = answering_mock().await;
    let app = openai_app(backend, &server).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    let mut files: Vec<(String, String)> = vec![("src/cart.rs".into(), CART.into())];
    // Three callers and thirty other functions a file: more related files, and more
    // definitions in each, than the budget holds.
    for f in 0..60 {
        let mut body = String::new();
        for s in 0..3 {
            body.push_str(&format!("pub fn caller_{f}_{s}() -> u64 {{\n    checkout_total(&cart)\n}}\n\n"));
        }
        for s in 0..30 {
            body.push_str(&format!("pub fn helper_number_{f}_{s}() {{}}\n"));
        }
        files.push((format!("src/handlers/h{f:02}.rs"), body));
    }
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    upload(&app, &token, id, github_tarball(&files)).await.expect(200);
    let agent = sherpa(&app, &token).await;
    let question = json!({"message": "What uses `checkout_total`?", "project_id": id, "agent_id": agent});
    app.post("/api/v1/chat", &token, question).await.expect(201);
    let prompts = prompts(&server).await;
    let (_, map) = split_map(&prompts[0]);
    assert!(map.chars().count() <= 4_000, "{} characters", map.chars().count());
    assert!(map.starts_with("`checkout_total` is defined at src/cart.rs:4 (function); used at src/handlers/h00.rs:2"), "{map}");
    assert!(map.contains("\nsrc/cart.rs\n  function checkout_total, line 4\n"), "the defining file first: {map}");
    assert!(map.contains("src/handlers/h00.rs\n  function caller_0_0, line 1\n"), "{map}");
    assert!(map.contains("more\n"), "a file cut short says how much is left: {map}");
    let files = map.lines().filter(|line| line.starts_with("src/handlers/")).count();
    assert!(files >= 8, "breadth first: the first definitions of many files: {map}");
});

db_test!(async fn the_local_engine_answers_from_the_symbols_and_whole_word_uses(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    let mut files = vec![("src/cart.rs", CART), ("src/sub.rs", SUB), ("src/money.rs", MONEY)];
    // More callers than the snippets show: the uses come from the search, not the windows.
    let callers: Vec<(String, String)> = (1..=6)
        .map(|i| (format!("src/c{i}.rs"), format!("fn call_{i}() {{\n    checkout_total(&cart);\n}}\n")))
        .collect();
    files.extend(callers.iter().map(|(p, c)| (p.as_str(), c.as_str())));
    upload(&app, &token, id, github_tarball(&files)).await.expect(200);
    let ask = |message: &str| app.post("/api/v1/chat", &token, json!({"message": message, "project_id": id}));
    let reply = ask("What uses `checkout_total`?").await.expect(201);
    assert_eq!(reply.data()["agent"], "Codebase Sherpa");
    let explanation = reply.data()["result"]["explanation"].as_str().unwrap();
    assert!(explanation.starts_with("`checkout_total` is defined at `src/cart.rs:4` (function). It is used at "), "{explanation}");
    for i in 1..=6 {
        assert!(explanation.contains(&format!("`src/c{i}.rs:2` (`checkout_total(&cart);`)")), "{explanation}");
    }
    assert!(!explanation.contains("src/sub.rs"), "subtotal and checkout_totals are other words: {explanation}");
    let reply = ask("Where is `from_cents` defined?").await.expect(201);
    let explanation = reply.data()["result"]["explanation"].as_str().unwrap();
    assert!(explanation.starts_with("`from_cents` is defined at `src/money.rs:8` (method in Money). It is used at `src/cart.rs:6`"), "{explanation}");
    let concepts = &reply.data()["result"]["key_concepts"];
    assert_eq!(concepts[0]["definition"], "a method in Money defined at src/money.rs:8", "{concepts}");
    // Other answers about the project's code point at the map's other files.
    let reply = ask("Explain how checkout_total works").await.expect(201);
    let steps = reply.data()["result"]["learning_steps"].to_string();
    assert!(steps.contains("Read the related files too: `src/c1.rs` (function `call_1`, line 1)"), "{steps}");
});

db_test!(async fn another_users_project_is_never_mapped(backend) {
    let server = answering_mock().await;
    let app = openai_app(backend, &server).await;
    let (victim, _) = app.user().await;
    let secret = project(&app, &victim).await;
    upload(&app, &victim, secret, github_tarball(&[("src/secret_cart.rs", CART)])).await.expect(200);
    let (alice, _) = app.user().await;
    let own = project(&app, &alice).await;
    upload(&app, &alice, own, github_tarball(&[("src/cart.rs", CART), ("src/api.rs", API)])).await.expect(200);
    let agent = sherpa(&app, &alice).await;
    let question = |project_id: i64| json!({"message": "Where is `checkout_total` defined?", "project_id": project_id, "agent_id": agent});
    let refused = app.post("/api/v1/chat", &alice, question(secret)).await.expect(404);
    assert_eq!(refused.code(), "not_found");
    assert!(prompts(&server).await.is_empty(), "nothing reached the model");
    app.post("/api/v1/chat", &alice, question(own)).await.expect(201);
    let prompts = prompts(&server).await;
    assert_eq!(prompts.len(), 1);
    let (_, map) = split_map(&prompts[0]);
    assert!(map.contains("src/cart.rs") && !prompts[0].contains("secret"), "{}", prompts[0]);
});

db_test!(async fn a_diff_is_mapped_around_its_files_and_the_names_it_uses(backend) {
    use codesherpa::codebase::map::{map, Focus};
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    let files = [("src/api.rs", API), ("src/cart.rs", CART), ("src/money.rs", MONEY), ("src/noise.rs", NOISE)];
    upload(&app, &token, id, github_tarball(&files)).await.expect(200);
    // As a review would ask: the changed file, the names the change touches, its lines.
    let focus = Focus {
        terms: vec!["checkout_total".into()],
        paths: vec!["src/api.rs".into()],
        code: "+    let again = checkout_total(&cart);\n+    Money::from_cents(1)\n".into(),
    };
    let mapped = map(&app.db, id, &focus, 4_000).await.unwrap();
    let paths: Vec<&str> = mapped.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["src/api.rs", "src/cart.rs", "src/money.rs"], "{}", mapped.render());
    assert_eq!(mapped.names[0].definitions[0].citation(), "src/cart.rs:4");
    let uses: Vec<String> = mapped.names[0].uses.iter().map(|u| u.citation()).collect();
    assert_eq!(uses, ["src/api.rs:2", "src/api.rs:7"]);
    let small = map(&app.db, id, &focus, 120).await.unwrap();
    assert!(small.render().chars().count() <= 120, "{}", small.render());
    let unindexed = project(&app, &token).await;
    assert!(map(&app.db, unindexed, &focus, 4_000).await.unwrap().is_empty());
});
