//! Review notifications on WhatsApp (SPEC §6.3): a linked owner who opted in
//! (`whatsapp_notify`) hears when a pull-request review of their project finishes — as
//! text within 24 hours of their last message, as the approved template outside that
//! window, skipped and counted without a template; never when opted out. The review runs
//! end to end against the GitHub mock, the message goes to the Graph mock.

use std::time::Duration;

use codesherpa::{config::Config, with_pool};
use serde_json::{json, Value};
use wiremock::{
    matchers::{body_partial_json, header, method, path},
    Mock, MockServer, ResponseTemplate,
};

use crate::{
    github::{
        self, finished_review, linked_project, pull_request_event, GithubMock, HEAD, NEWER, REPO,
    },
    helpers::{spawn_with, Backend, TestApp},
    whatsapp::{
        body_of, graph, link, scalar, APP_SECRET, GRAPH_TOKEN, MESSAGES_PATH, PHONE_NUMBER_ID,
        VERIFY_TOKEN,
    },
};

const NUMBER: &str = "15551230077";
const TEMPLATE: &str = "codesherpa_review_finished";

/// A server with GitHub reviews and WhatsApp (notifications from `PHONE_NUMBER_ID`).
async fn spawn(
    backend: Backend,
    github: &GithubMock,
    graph: &MockServer,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let (github_server, graph_url) = (&github.server, graph.uri());
    spawn_with(backend, move |config| {
        github::configure(config, github_server);
        config.whatsapp.verify_token = Some(VERIFY_TOKEN.into());
        config.whatsapp.app_secret = Some(APP_SECRET.into());
        config.whatsapp.access_token = Some(GRAPH_TOKEN.into());
        config.whatsapp.api_url = graph_url;
        config.whatsapp.api_version = "v21.0".into();
        config.whatsapp.phone_number_id = Some(PHONE_NUMBER_ID.into());
        configure(config);
    })
    .await
}

/// An owner of a verified project linking `acme/widgets`, with `NUMBER` linked.
async fn owner(app: &TestApp, github: &GithubMock, graph: &MockServer) -> (String, i64) {
    github.serve_diff(GithubMock::diff_ok()).await;
    let (token, project) = linked_project(app, github, true).await;
    link(app, graph, &token, NUMBER).await;
    (token, project)
}

async fn opt_in(app: &TestApp, token: &str, on: bool) {
    let me = app
        .put("/api/v1/user/me", token, json!({"whatsapp_notify": on}))
        .await
        .expect(200);
    assert_eq!(me.data()["whatsapp_notify"], on);
    assert_eq!(
        me.data()["whatsapp_number"],
        NUMBER,
        "the rest is unchanged"
    );
}

/// Reviews the pull request at `sha` (a new delivery) and waits until the review is done.
async fn review(app: &TestApp, github: &GithubMock, token: &str, project: i64, sha: &str) -> Value {
    github.move_head(sha);
    let action = if sha == HEAD { "opened" } else { "synchronize" };
    github::deliver(
        app,
        "pull_request",
        &format!("d-{sha}"),
        &pull_request_event(action, sha),
    )
    .await
    .expect(202);
    let review = finished_review(app, token, project).await;
    assert_eq!(review["status"], "done", "{review}");
    assert_eq!(review["head_sha"], sha);
    review
}

/// The notification messages (text or template) the Graph API received.
async fn notifications(graph: &MockServer) -> Vec<Value> {
    graph
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(body_of)
        .filter(|b| b["to"] == NUMBER && (b["type"] == "template" || b["type"] == "text"))
        .collect()
}

/// Waits until no notification job is queued or running.
async fn notified(app: &TestApp) {
    for _ in 0..400 {
        let open = scalar(
            app,
            "SELECT COUNT(*) FROM jobs WHERE kind = 'whatsapp.notify' AND status IN ('queued', 'running')",
        )
        .await;
        if open == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the notification never went out");
}

async fn notify_jobs(app: &TestApp) -> i64 {
    scalar(
        app,
        "SELECT COUNT(*) FROM jobs WHERE kind = 'whatsapp.notify'",
    )
    .await
}

/// Meta accepts template messages (with the access token).
async fn accept_templates(graph: &MockServer) {
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(header(
            "authorization",
            format!("Bearer {GRAPH_TOKEN}").as_str(),
        ))
        .and(body_partial_json(
            json!({"messaging_product": "whatsapp", "type": "template"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp", "contacts": [{"input": NUMBER, "wa_id": NUMBER}],
            "messages": [{"id": "wamid.TEMPLATE1", "message_status": "accepted"}]})))
        .mount(graph)
        .await;
}

/// Moves every message from `NUMBER` two days into the past: the window is closed.
async fn close_the_window(app: &TestApp) {
    with_pool!(&app.db, |pool| sqlx::query(
        "UPDATE whatsapp_messages SET created_at = $1 WHERE sender_number = $2"
    )
    .bind(chrono::Utc::now() - chrono::Duration::days(2))
    .bind(NUMBER)
    .execute(pool)
    .await
    .map(drop))
    .unwrap();
}

async fn counted(app: &TestApp, outcome: &str) -> f64 {
    let text = app.metrics().await;
    let series = format!("codesherpa_whatsapp_notifications_total{{outcome=\"{outcome}\"}}");
    text.lines()
        .find_map(|line| line.strip_prefix(series.as_str())?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

db_test!(async fn within_the_window_an_opted_in_owner_gets_a_text(backend) {
    let (github, graph) = (GithubMock::start().await, graph().await);
    let app = spawn(backend, &github, &graph, |_| {}).await;
    let (token, project) = owner(&app, &github, &graph).await;
    let me = app.get("/api/v1/user/me", &token).await.expect(200);
    assert_eq!(me.data()["whatsapp_notify"], false, "off by default");

    // Opted out: the review finishes and nobody is told.
    review(&app, &github, &token, project, HEAD).await;
    assert_eq!(notify_jobs(&app).await, 0, "no notification queued");
    opt_in(&app, &token, true).await;
    let review = review(&app, &github, &token, project, NEWER).await;
    notified(&app).await;
    let sent = notifications(&graph).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let body = sent[0]["text"]["body"].as_str().unwrap();
    assert_eq!(sent[0]["type"], "text");
    assert_eq!(sent[0]["messaging_product"], "whatsapp");
    assert!(body.contains(&format!("{REPO}#7")), "{body}");
    assert!(body.contains(review["comment_url"].as_str().unwrap()), "{body}");
    assert!(body.contains("/10"), "the quality score: {body}");
    assert!(body.to_lowercase().contains("critical") || body.contains("high"), "findings by severity: {body}");
    assert_eq!(counted(&app, "text").await, 1.0);
    assert_eq!(notify_jobs(&app).await, 1, "one job per review");
});

db_test!(async fn outside_the_window_the_approved_template_goes_out(backend) {
    let (github, graph) = (GithubMock::start().await, graph().await);
    let app = spawn(backend, &github, &graph, |config| {
        config.whatsapp.notify_template = Some(TEMPLATE.into());
        config.whatsapp.notify_template_language = "en_US".into();
    })
    .await;
    let (token, project) = owner(&app, &github, &graph).await;
    accept_templates(&graph).await;
    opt_in(&app, &token, true).await;
    close_the_window(&app).await;
    let review = review(&app, &github, &token, project, HEAD).await;
    notified(&app).await;
    let sent = notifications(&graph).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let template = &sent[0];
    assert_eq!(template["type"], "template");
    assert_eq!(template["template"]["name"], TEMPLATE);
    assert_eq!(template["template"]["language"]["code"], "en_US");
    let components = template["template"]["components"].as_array().unwrap();
    assert_eq!(components.len(), 1);
    assert_eq!(components[0]["type"], "body");
    let parameters: Vec<&str> = components[0]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["type"], "text");
            p["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(parameters.len(), 4, "{parameters:?}");
    assert_eq!(parameters[0], format!("{REPO}#7"));
    assert!(parameters[1].ends_with("/10"), "{parameters:?}");
    assert!(!parameters[2].is_empty() && !parameters[2].contains('\n'));
    assert_eq!(parameters[3], review["comment_url"]);
    assert_eq!(counted(&app, "template").await, 1.0);
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'whatsapp.notify' AND status = 'done'").await, 1);
});

db_test!(async fn a_text_refused_outside_the_window_becomes_the_template(backend) {
    let (github, graph) = (GithubMock::start().await, graph().await);
    let app = spawn(backend, &github, &graph, |config| {
        config.whatsapp.notify_template = Some(TEMPLATE.into());
    })
    .await;
    let (token, project) = owner(&app, &github, &graph).await;
    opt_in(&app, &token, true).await;
    // Meta's clock says the window closed: free text is refused with 131047.
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(body_partial_json(json!({"type": "text", "to": NUMBER})))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "(#131047) Re-engagement message", "type": "OAuthException", "code": 131047,
            "error_data": {"messaging_product": "whatsapp", "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
            "fbtrace_id": "AbCdEf"}})))
        .with_priority(1)
        .mount(&graph)
        .await;
    accept_templates(&graph).await;
    review(&app, &github, &token, project, HEAD).await;
    notified(&app).await;
    let kinds: Vec<Value> = notifications(&graph).await.iter().map(|b| b["type"].clone()).collect();
    assert_eq!(kinds, ["text", "template"]);
    assert_eq!(counted(&app, "template").await, 1.0);
    assert_eq!(counted(&app, "text").await, 0.0);
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'whatsapp.notify' AND status = 'done'").await, 1);
});

db_test!(async fn without_a_template_a_notification_outside_the_window_is_skipped_and_counted(backend) {
    let (github, graph) = (GithubMock::start().await, graph().await);
    let app = spawn(backend, &github, &graph, |_| {}).await;
    let (token, project) = owner(&app, &github, &graph).await;
    opt_in(&app, &token, true).await;
    close_the_window(&app).await;
    assert_eq!(counted(&app, "skipped").await, 0.0);
    review(&app, &github, &token, project, HEAD).await;
    notified(&app).await;
    assert!(notifications(&graph).await.is_empty(), "nothing sent");
    assert_eq!(counted(&app, "skipped").await, 1.0);
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'whatsapp.notify' AND status = 'done'").await, 1);

    // Opted out again: the next review tells nobody and counts nothing.
    opt_in(&app, &token, false).await;
    review(&app, &github, &token, project, NEWER).await;
    assert_eq!(notify_jobs(&app).await, 1);
    assert_eq!(counted(&app, "skipped").await, 1.0);
});

db_test!(async fn whatsapp_notify_is_documented_on_the_user_and_its_update(backend) {
    let app = spawn_with(backend, |_| {}).await;
    let spec: Value = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let schemas = &spec["components"]["schemas"];
    assert_eq!(schemas["User"]["properties"]["whatsapp_notify"]["type"], "boolean");
    assert!(schemas["User"]["required"].as_array().unwrap().contains(&json!("whatsapp_notify")));
    let update = &schemas["UpdateMe"]["properties"]["whatsapp_notify"];
    assert!(update["type"] == "boolean" || update["type"] == json!(["boolean", "null"]), "{update}");
    let (token, _) = app.user().await;
    app.put("/api/v1/user/me", &token, json!({"whatsapp_notify": "yes"})).await.expect(422);
    let me = app.put("/api/v1/user/me", &token, json!({"whatsapp_notify": true})).await.expect(200);
    assert_eq!(me.data()["whatsapp_notify"], true);
    assert_eq!(app.get("/api/v1/user/me", &token).await.expect(200).data()["whatsapp_notify"], true);
});
