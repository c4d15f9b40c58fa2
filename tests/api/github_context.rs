//! Context from the code in pull-request reviews (SPEC §6.2): when the linked project has
//! an index, the review sees where the functions and types the diff changes are used
//! elsewhere — in the prompt a remote model reads, and in the local engine's findings.

use std::time::Duration;

use codesherpa::llm::ProviderKind;
use serde_json::{json, Value};
use wiremock::{
    matchers::{method, path},
    Mock, MockServer, ResponseTemplate,
};

use crate::{
    codebase::{github_tarball, upload},
    github::{self, finished_review, linked_project, pull_request_event, GithubMock, HEAD},
    helpers::{spawn_with, Backend, TestApp},
};

const DIFF: &str = "application/vnd.github.diff";

/// `checkout_total` (lines 4–6), as the project's index holds it.
const CART: &str = "use crate::money::Money;\n\n/// The sum of a cart.\npub fn checkout_total(cart: &Cart) -> Money {\n    cart.items.iter().map(|i| i.price).sum()\n}\n";
/// Calls it at line 2.
const API: &str = "fn handler(cart: Cart) -> Json {\n    let total = checkout_total(&cart);\n    Json(total)\n}\n";
/// Calls it at line 3; `checkout_totals` is another word.
const REFUND: &str = "// checkout_totals are cached\nfn refund(cart: &Cart) -> Money {\n    -checkout_total(cart)\n}\n";

/// The pull request changes the body of `checkout_total`.
const CHANGE: &str = "diff --git a/src/cart.rs b/src/cart.rs\n--- a/src/cart.rs\n+++ b/src/cart.rs\n@@ -3,4 +3,4 @@\n /// The sum of a cart.\n pub fn checkout_total(cart: &Cart) -> Money {\n-    cart.items.iter().map(|i| i.price).sum()\n+    cart.items.iter().map(|i| i.price * i.quantity).sum()\n }\n";

const USE_IN_API: &str = "src/api.rs:2: let total = checkout_total(&cart);";
const USE_IN_REFUND: &str = "src/refund.rs:3: -checkout_total(cart)";

/// A server reviewing `acme/widgets#7` (whose diff is [`CHANGE`]) with the local engine,
/// or with an OpenAI-compatible model on `openai`.
async fn app(backend: Backend, github: &GithubMock, openai: Option<&MockServer>) -> TestApp {
    github
        .serve_diff(ResponseTemplate::new(200).set_body_raw(CHANGE, DIFF))
        .await;
    let base = openai.map(|server| format!("{}/v1", server.uri()));
    let server = &github.server;
    spawn_with(backend, move |config| {
        github::configure(config, server);
        if let Some(base) = base {
            config.llm.provider = ProviderKind::OpenAi;
            config.llm.openai_base_url = base;
            config.llm.openai_api_key = Some("sk-test-key".into());
            config.llm.timeout = Duration::from_secs(30);
        }
    })
    .await
}

/// A model that answers every review (with no findings) as server-sent events.
async fn openai_model() -> MockServer {
    let server = MockServer::start().await;
    let review = json!({"summary": "Looks fine.", "findings": [], "quality_score": 8, "security_risk": "None"});
    let chunk = json!({"id": "c1", "object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": {"content": review.to_string()}}]});
    let body = format!("data: {chunk}\n\ndata: [DONE]\n\n");
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .mount(&server)
        .await;
    server
}

/// The project's code, indexed by an upload.
async fn index(app: &TestApp, token: &str, project: i64, files: &[(&str, &str)]) {
    let reply = upload(app, token, project, github_tarball(files))
        .await
        .expect(200);
    assert_eq!(reply.data()["status"], "done", "{}", reply.data());
}

/// Delivers the pull request and waits until its review is done.
async fn reviewed(app: &TestApp, token: &str, project: i64) -> Value {
    github::deliver(
        app,
        "pull_request",
        "d-context",
        &pull_request_event("opened", HEAD),
    )
    .await
    .expect(202);
    let review = finished_review(app, token, project).await;
    assert_eq!(review["status"], "done", "{review}");
    review
}

/// The user turn of the one review the model was asked for.
async fn prompt(model: &MockServer) -> String {
    let requests = model.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "one generation for one review");
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    let messages = body["messages"].as_array().unwrap();
    let user = messages.iter().rev().find(|m| m["role"] == "user").unwrap();
    user["content"].as_str().unwrap().to_owned()
}

db_test!(
    async fn the_prompt_lists_where_a_changed_function_is_used(backend) {
        let github = GithubMock::start().await;
        let model = openai_model().await;
        let app = app(backend, &github, Some(&model)).await;
        let (token, project) = linked_project(&app, &github, true).await;
        let files = [("src/cart.rs", CART), ("src/api.rs", API), ("src/refund.rs", REFUND)];
        index(&app, &token, project, &files).await;

        reviewed(&app, &token, project).await;
        let prompt = prompt(&model).await;
        let section = prompt
            .split_once("Context from the code")
            .map(|(_, section)| section)
            .unwrap_or_else(|| panic!("no context section: {prompt}"));
        assert!(section.contains("`checkout_total` (changed at src/cart.rs:5)"), "{section}");
        assert!(section.contains(USE_IN_API), "{section}");
        assert!(section.contains(USE_IN_REFUND), "{section}");
        assert!(!section.contains("src/cart.rs:4:"), "its own definition is no use: {section}");
        assert!(!section.contains("src/refund.rs:1"), "`checkout_totals` is another word");
        let map = prompt
            .split_once("Map of the project")
            .map(|(_, map)| map)
            .unwrap_or_else(|| panic!("no map: {prompt}"));
        assert!(map.contains("src/cart.rs\n  function checkout_total, line 4"), "the changed file first: {map}");
        assert!(map.contains("src/refund.rs\n  function refund, line 2"), "a caller's file: {map}");
    }
);

db_test!(
    async fn the_local_engine_cites_the_uses_in_the_posted_review(backend) {
        let github = GithubMock::start().await;
        let app = app(backend, &github, None).await;
        let (token, project) = linked_project(&app, &github, true).await;
        let files = [("src/cart.rs", CART), ("src/api.rs", API), ("src/refund.rs", REFUND)];
        index(&app, &token, project, &files).await;

        let review = reviewed(&app, &token, project).await;
        let chat_id = review["chat_id"].as_i64().unwrap();
        let chat = app.get(&format!("/api/v1/chat/{chat_id}"), &token).await.expect(200);
        let findings = chat.data()["result"]["findings"].as_array().unwrap().clone();
        let note = findings
            .iter()
            .find(|f| f["issue"].as_str().is_some_and(|i| i.contains("is used at")))
            .unwrap_or_else(|| panic!("no note citing the uses: {findings:?}"));
        assert_eq!((note["file"].as_str(), note["line"].as_u64()), (Some("src/cart.rs"), Some(5)));
        assert_eq!(note["severity"], "LOW");
        assert_eq!(
            note["issue"],
            "`checkout_total` changed here; it is used at src/api.rs:2, src/refund.rs:3."
        );
        let comments = github.comment_bodies();
        assert_eq!(comments.len(), 1);
        assert!(
            comments[0].contains("it is used at src/api.rs:2, src/refund.rs:3"),
            "the posted review cites them: {}",
            comments[0]
        );
    }
);

db_test!(
    async fn a_project_without_an_index_gets_no_context(backend) {
        let github = GithubMock::start().await;
        let model = openai_model().await;
        let app = app(backend, &github, Some(&model)).await;
        let (token, project) = linked_project(&app, &github, true).await;

        reviewed(&app, &token, project).await;
        let prompt = prompt(&model).await;
        assert!(prompt.contains("i.price * i.quantity"), "the diff is there: {prompt}");
        assert!(!prompt.contains("Context from the code"), "{prompt}");
    }
);

db_test!(
    async fn a_change_used_nowhere_else_gets_no_context(backend) {
        let github = GithubMock::start().await;
        let model = openai_model().await;
        let app = app(backend, &github, Some(&model)).await;
        let (token, project) = linked_project(&app, &github, true).await;
        index(&app, &token, project, &[("src/cart.rs", CART), ("src/other.rs", "fn other() {}\n")]).await;

        reviewed(&app, &token, project).await;
        let prompt = prompt(&model).await;
        assert!(prompt.contains("i.price * i.quantity"), "the diff is there: {prompt}");
        assert!(!prompt.contains("Context from the code"), "{prompt}");
    }
);
