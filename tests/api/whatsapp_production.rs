//! WhatsApp in production (SPEC §6.3) against the Graph mock: the typing indicator in the
//! read call, Meta's throttling codes as Meta sends them (retried, never failed; the parts
//! of a long answer in order and 6 s apart after a pair-rate refusal), files of code
//! fetched through the media API, and delivery statuses recorded and counted.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use codesherpa::with_pool;
use serde_json::{json, Value};
use wiremock::{
    matchers::{body_partial_json, header, method, path, query_param},
    Mock, MockServer, Request, Respond, ResponseTemplate,
};

use crate::{
    helpers::TestApp,
    whatsapp::{
        app, app_with, body_of, chats_of, deliver, graph, link, mount_receipts, notification,
        provider_answering, receipts, scalar, sent, settled, status_of, text, texts, GRAPH_TOKEN,
        MESSAGES_PATH, PHONE_NUMBER_ID,
    },
};

const NUMBER: &str = "15551230001";

/// Meta's error body for `code`, with the message and details its reference gives.
fn meta_error(code: i64) -> Value {
    let (message, details) = match code {
        4 => ("(#4) Application request limit reached", "Too many API calls"),
        80_007 => (
            "(#80007) Rate limit issues",
            "The WhatsApp Business Account has reached its rate limit",
        ),
        130_429 => (
            "(#130429) Rate limit hit",
            "Cloud API message throughput has been reached",
        ),
        131_056 => (
            "(#131056) (Business Account, Consumer Account) pair rate limit hit",
            "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.",
        ),
        _ => ("(#131000) Something went wrong", "Something went wrong"),
    };
    json!({"error": {
        "message": message, "type": "OAuthException", "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details},
        "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"
    }})
}

/// Answers text messages, refusing the ones whose number (1-based, in arrival order) is
/// listed with that Graph error code; logs when each text arrived and what it carried.
#[derive(Clone)]
struct Throttling {
    refusals: Arc<Vec<(usize, i64)>>,
    log: Arc<Mutex<Vec<(Instant, String, bool)>>>,
}

impl Throttling {
    fn new(refusals: &[(usize, i64)]) -> Self {
        Throttling {
            refusals: Arc::new(refusals.to_vec()),
            log: Arc::default(),
        }
    }

    /// `(when, body, accepted)` of every text, in order.
    fn log(&self) -> Vec<(Instant, String, bool)> {
        self.log.lock().unwrap().clone()
    }

    async fn mount(&self, graph: &MockServer) {
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .and(header(
                "authorization",
                format!("Bearer {GRAPH_TOKEN}").as_str(),
            ))
            .and(body_partial_json(json!({"type": "text"})))
            .respond_with(self.clone())
            .with_priority(1)
            .mount(graph)
            .await;
    }
}

impl Respond for Throttling {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body = body_of(request)["text"]["body"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut log = self.log.lock().unwrap();
        let nth = log.len() + 1;
        let refusal = self
            .refusals
            .iter()
            .find(|(n, _)| *n == nth)
            .map(|(_, code)| *code);
        log.push((Instant::now(), body, refusal.is_none()));
        match refusal {
            Some(code) => ResponseTemplate::new(400).set_body_json(meta_error(code)),
            None => sent(),
        }
    }
}

/// Accepts text messages, each with a wamid of its own.
struct FreshIds;

impl Respond for FreshIds {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": NUMBER, "wa_id": NUMBER}],
            "messages": [{"id": format!("wamid.OUT{}", uuid::Uuid::new_v4().simple())}]
        }))
    }
}

/// The reply job's (status, attempts) once it has ended (its message ends just before).
async fn job_of(app: &TestApp, wamid: &str) -> (String, i64) {
    for _ in 0..200 {
        let job = job_row(app, wamid).await;
        if job.0 != "running" && job.0 != "queued" {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    job_row(app, wamid).await
}

async fn job_row(app: &TestApp, wamid: &str) -> (String, i64) {
    with_pool!(&app.db, |pool| sqlx::query_as::<_, (String, i32)>(
        "SELECT status, attempts FROM jobs WHERE dedupe_key = $1 AND kind = 'whatsapp.reply'"
    )
    .bind(wamid)
    .fetch_one(pool)
    .await)
    .map(|(status, attempts)| (status, i64::from(attempts)))
    .unwrap()
}

/// The value of the sample `name{labels}` in an exposition.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
}

db_test!(async fn the_read_receipt_shows_the_typing_indicator(backend) {
    let graph = graph().await;
    let app = app(backend, &graph).await;
    deliver(&app, &notification(vec![text(NUMBER, "wamid.TYPE1", "hello")])).await;
    settled(&app, 1).await;
    let reads: Vec<Value> = graph.received_requests().await.unwrap().iter().map(body_of)
        .filter(|b| b["status"] == "read").collect();
    assert_eq!(reads, [json!({
        "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.TYPE1",
        "typing_indicator": {"type": "text"}
    })], "one call marks it read and shows the indicator");
    let requests = graph.received_requests().await.unwrap();
    let first = body_of(&requests[0]);
    assert_eq!(first["status"], "read", "the indicator shows before the reply: {first}");
});

db_test!(async fn throttling_codes_are_retried_and_never_fail_a_reply(backend) {
    let graph = graph().await;
    // Two attempts only: a retry on the last one would fail the job, so the run waits.
    let app = app_with(backend, &graph, |config| config.jobs.max_attempts = 2).await;
    let (token, _) = app.user().await;
    link(&app, &graph, &token, NUMBER).await;
    let throttling = Throttling::new(&[(1, 130_429), (2, 80_007), (3, 4), (4, 130_429)]);
    throttling.mount(&graph).await;
    deliver(&app, &notification(vec![text(NUMBER, "wamid.THR1", "what is a closure?")])).await;
    settled(&app, 2).await;
    assert_eq!(status_of(&app, "wamid.THR1").await, ("done".to_owned(), None));
    assert_eq!(job_of(&app, "wamid.THR1").await, ("done".to_owned(), 2), "four refusals, two attempts");
    let log = throttling.log();
    assert_eq!(log.iter().map(|(_, _, ok)| *ok).collect::<Vec<_>>(), [false, false, false, false, true]);
    assert!(log.windows(2).all(|w| w[0].1 == w[1].1), "the same part each time");
    assert_eq!(chats_of(&app, &token, NUMBER).await.len(), 1, "answered once");
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM jobs WHERE status = 'failed'").await, 0);
});

db_test!(async fn after_a_pair_rate_refusal_the_parts_go_out_in_order_six_seconds_apart(backend) {
    let graph = graph().await;
    let line = |i: usize| format!("{i:04} the quick brown fox jumps over the lazy dog, again and again\n");
    let answer: String = (0..180).map(line).collect();
    let provider = provider_answering(&answer).await;
    let base = format!("{}/v1", provider.uri());
    let app = app_with(backend, &graph, move |config| {
        config.llm.provider = codesherpa::llm::ProviderKind::OpenAi;
        config.llm.openai_base_url = base;
        config.llm.openai_api_key = Some("sk-test".into());
    })
    .await;
    let (token, _) = app.user().await;
    link(&app, &graph, &token, NUMBER).await;
    let throttling = Throttling::new(&[(2, 131_056)]);
    throttling.mount(&graph).await;
    deliver(&app, &notification(vec![text(NUMBER, "wamid.PAIR1", "@Doc Sync document everything")])).await;
    settled(&app, 2).await;
    assert_eq!(status_of(&app, "wamid.PAIR1").await.0, "done");
    let log = throttling.log();
    assert_eq!(log.len(), 4, "three parts, the second sent twice");
    assert_eq!(log.iter().map(|(_, _, ok)| *ok).collect::<Vec<_>>(), [true, false, true, true]);
    assert_eq!(log[1].1, log[2].1, "the refused part is sent again before the next");
    let delivered: String = log.iter().filter(|(_, _, ok)| *ok).map(|(_, body, _)| body.as_str()).collect();
    assert_eq!(delivered, answer.trim_end(), "in order, nothing lost");
    let gap = |a: usize, b: usize| log[b].0.duration_since(log[a].0);
    assert!(gap(1, 2) >= Duration::from_secs(6), "retried {:?} after the refusal", gap(1, 2));
    assert!(gap(2, 3) >= Duration::from_secs(6), "next part {:?} later", gap(2, 3));
    assert_eq!(job_of(&app, "wamid.PAIR1").await.0, "done");
});

/// A media id with its metadata (`GET /v21.0/{id}`) and its download (`/media/{id}`),
/// both expecting the access token; the download is fetched `downloads` times.
async fn mount_media(
    graph: &MockServer,
    id: &str,
    mime_type: &str,
    file_size: Option<usize>,
    content: Vec<u8>,
    downloads: u64,
) {
    let mut info = json!({
        "messaging_product": "whatsapp", "id": id, "mime_type": mime_type,
        "sha256": "a3f1c9", "url": format!("{}/media/{id}?ext=1&hash=ATu", graph.uri()),
    });
    if let Some(size) = file_size {
        info["file_size"] = json!(size.to_string());
    }
    let bearer = format!("Bearer {GRAPH_TOKEN}");
    Mock::given(method("GET"))
        .and(path(format!("/v21.0/{id}")))
        .and(query_param("phone_number_id", PHONE_NUMBER_ID))
        .and(header("authorization", bearer.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(info))
        .mount(graph)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/media/{id}")))
        .and(header("authorization", bearer.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_raw(content, "application/octet-stream"))
        .expect(downloads)
        .mount(graph)
        .await;
}

fn document(
    wamid: &str,
    media_id: &str,
    filename: &str,
    mime_type: &str,
    caption: Option<&str>,
) -> Value {
    let mut document =
        json!({"filename": filename, "mime_type": mime_type, "sha256": "a3f1c9", "id": media_id});
    if let Some(caption) = caption {
        document["caption"] = json!(caption);
    }
    json!({"from": NUMBER, "id": wamid, "timestamp": "1750857384", "type": "document", "document": document})
}

db_test!(async fn a_shared_file_of_code_is_fetched_and_reviewed_other_files_are_refused(backend) {
    let graph = graph().await;
    let app = app(backend, &graph).await;
    let (token, _) = app.user().await;
    link(&app, &graph, &token, NUMBER).await;
    let code = "def pay(amount):\n    api_key = \"sk_live_1234567890abcdef\"\n    print(amount)\n    return amount\n";
    mount_media(&graph, "1001", "text/x-python", Some(code.len()), code.as_bytes().to_vec(), 2).await;
    mount_media(&graph, "1002", "application/pdf", Some(10), b"%PDF-1.7".to_vec(), 0).await;
    mount_media(&graph, "1003", "text/x-rust", Some(2 * 1024 * 1024), vec![b'a'; 16], 0).await;
    mount_media(&graph, "1004", "text/plain", None, b"MZ\x90\x00\x03\x00binary".to_vec(), 1).await;
    mount_media(&graph, "1005", "application/octet-stream", None, vec![b'x'; 1024 * 1024 + 1], 1).await;

    // No caption: "Review this file", with the file as the code.
    deliver(&app, &notification(vec![document("wamid.F1", "1001", "pay.py", "text/x-python", None)])).await;
    settled(&app, 2).await;
    let chats = chats_of(&app, &token, NUMBER).await;
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0]["message"], "Review this file");
    assert_eq!(chats[0]["agent"], "Review Monk");
    let reply = texts(&graph).await.into_iter().map(|(_, b)| b).collect::<String>();
    assert!(reply.to_lowercase().contains("secret") || reply.contains("api_key"), "the file was reviewed: {reply}");

    // A caption is the message; the file is the context (a source name is enough).
    deliver(&app, &notification(vec![document("wamid.F2", "1001", "pay.py", "application/octet-stream", Some("@Codebase Sherpa what does this do?"))])).await;
    settled(&app, 3).await;
    let chats = chats_of(&app, &token, NUMBER).await;
    assert_eq!(chats.len(), 2);
    let asked = chats.iter().find(|c| c["message"] == "what does this do?").expect("the caption is the message");
    assert_eq!(asked["agent"], "Codebase Sherpa");

    let refusals = [
        ("wamid.F3", "1002", "report.pdf", "application/pdf", "not a text file"),
        ("wamid.F4", "1003", "huge.rs", "text/x-rust", "larger than 1 MiB"),
        ("wamid.F5", "1004", "notes.txt", "text/plain", "binary"),
        ("wamid.F6", "1005", "dump.sql", "application/octet-stream", "larger than 1 MiB"),
    ];
    for (n, (wamid, media, name, mime, why)) in refusals.into_iter().enumerate() {
        deliver(&app, &notification(vec![document(wamid, media, name, mime, None)])).await;
        settled(&app, 4 + n as i64).await;
        let (to, reply) = texts(&graph).await.last().unwrap().clone();
        assert_eq!(to, NUMBER);
        assert!(reply.contains(why) && reply.contains(name), "{name}: {reply}");
        assert!(reply.contains("1 MiB") && reply.contains("text"), "names what is supported: {reply}");
        assert_eq!(status_of(&app, wamid).await.0, "done");
    }
    assert_eq!(chats_of(&app, &token, NUMBER).await.len(), 2, "no chat for refused files");
    graph.verify().await;
});

db_test!(async fn images_and_files_from_unknown_numbers_get_the_link_notice(backend) {
    let graph = graph().await;
    let app = app(backend, &graph).await;
    let image = json!({"from": "15550001234", "id": "wamid.UI1", "timestamp": "1", "type": "image",
        "image": {"mime_type": "image/jpeg", "sha256": "abc", "id": "2754859441498128"}});
    deliver(&app, &notification(vec![image])).await;
    settled(&app, 1).await;
    let sent = texts(&graph).await;
    assert_eq!(sent.len(), 1);
    assert!(sent[0].1.contains("text messages") && sent[0].1.contains("link"), "{}", sent[0].1);
    assert!(graph.received_requests().await.unwrap().iter().all(|r| r.method.as_str() == "POST"), "nothing downloaded");
});

/// Meta's `statuses` notification for our sent messages.
fn statuses(entries: Vec<Value>) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
        "statuses": entries}}]}]})
}

fn status(wamid: &str, status: &str) -> Value {
    json!({"id": wamid, "status": status, "timestamp": "1750857390", "recipient_id": NUMBER,
        "conversation": {"id": "c1", "origin": {"type": "service"}},
        "pricing": {"billable": false, "pricing_model": "PMP", "category": "service"}})
}

async fn part_status(app: &TestApp, sent_id: &str) -> (Option<String>, Option<i64>) {
    with_pool!(&app.db, |pool| sqlx::query_as::<
        _,
        (Option<String>, Option<i64>),
    >(
        "SELECT status, error_code FROM whatsapp_reply_parts WHERE sent_id = $1"
    )
    .bind(sent_id)
    .fetch_one(pool)
    .await)
    .unwrap()
}

async fn sent_ids(app: &TestApp, wamid: &str) -> Vec<String> {
    with_pool!(&app.db, |pool| sqlx::query_scalar::<_, String>(
        "SELECT p.sent_id FROM whatsapp_reply_parts p JOIN whatsapp_messages m ON m.id = p.message_id \
         WHERE m.wamid = $1 AND p.sent_id IS NOT NULL ORDER BY p.seq"
    )
    .bind(wamid)
    .fetch_all(pool)
    .await)
    .unwrap()
}

db_test!(async fn delivery_statuses_are_recorded_on_the_sent_parts_and_counted(backend) {
    let graph = graph().await;
    let app = app(backend, &graph).await;
    let before = app.metrics().await;
    for status in ["sent", "delivered", "read", "failed"] {
        assert_eq!(sample(&before, &format!("codesherpa_whatsapp_delivery_statuses_total{{status=\"{status}\"}}")), 0.0);
    }
    let (token, _) = app.user().await;
    link(&app, &graph, &token, NUMBER).await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(body_partial_json(json!({"type": "text"})))
        .respond_with(FreshIds)
        .with_priority(1)
        .mount(&graph)
        .await;
    deliver(&app, &notification(vec![text(NUMBER, "wamid.ST1", "hello")])).await;
    deliver(&app, &notification(vec![text(NUMBER, "wamid.ST2", "and again")])).await;
    settled(&app, 3).await;
    let first = sent_ids(&app, "wamid.ST1").await[0].clone();
    let second = sent_ids(&app, "wamid.ST2").await[0].clone();
    assert_ne!(first, second);

    let reply = deliver(&app, &statuses(vec![status(&first, "sent"), status(&first, "delivered")])).await;
    assert_eq!(reply.data()["statuses"], 2);
    assert_eq!(reply.data()["queued"], 0);
    assert_eq!(part_status(&app, &first).await, (Some("delivered".into()), None));
    deliver(&app, &statuses(vec![status(&first, "read")])).await;
    // Meta's retry of a receipt, and a late `delivered`: counted once, never a step back.
    deliver(&app, &statuses(vec![status(&first, "read"), status(&first, "delivered")])).await;
    assert_eq!(part_status(&app, &first).await, (Some("read".into()), None));

    let mut failed = status(&second, "failed");
    failed["errors"] = json!([{"code": 131026, "title": "Message undeliverable",
        "message": "Message undeliverable", "error_data": {"details": "Message Undeliverable."}}]);
    deliver(&app, &statuses(vec![status(&second, "sent"), failed])).await;
    assert_eq!(part_status(&app, &second).await, (Some("failed".into()), Some(131_026)));

    let after = app.metrics().await;
    let count = |status: &str| sample(&after, &format!("codesherpa_whatsapp_delivery_statuses_total{{status=\"{status}\"}}"));
    assert_eq!((count("sent"), count("delivered"), count("read"), count("failed")), (2.0, 1.0, 1.0, 1.0), "{after}");
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM whatsapp_messages").await, 3, "receipts are not messages");
    assert_eq!(receipts(&graph).await.len(), 2, "receipts cause no call");
});

db_test!(async fn receipts_of_messages_sent_elsewhere_are_counted_without_a_graph_call(backend) {
    let graph = MockServer::start().await;
    mount_receipts(&graph).await;
    let app = app(backend, &graph).await;
    let reply = deliver(&app, &statuses(vec![status("wamid.UNKNOWN", "delivered")])).await;
    assert_eq!(reply.data()["statuses"], 1);
    assert_eq!(reply.data()["messages"], 0);
    assert!(graph.received_requests().await.unwrap().is_empty());
    let text = app.metrics().await;
    assert_eq!(sample(&text, "codesherpa_whatsapp_delivery_statuses_total{status=\"delivered\"}"), 1.0);
});
