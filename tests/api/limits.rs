//! Abuse from outside: junk that must not grow `/metrics`, forwarded addresses that must
//! not pick their own rate-limit key, and slow clients that must not hold connections.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn, spawn_with, TestApp};

fn series(page: &str) -> usize {
    page.lines().filter(|line| !line.starts_with('#')).count()
}

/// Made-up methods on a known route and on unknown paths, each one different.
async fn junk(app: &TestApp, from: usize, to: usize) {
    for i in from..to {
        let made_up = Method::from_bytes(format!("JUNK{i}").as_bytes()).unwrap();
        let on_route = app
            .client
            .request(made_up.clone(), app.url("/api/v1/agents"))
            .send()
            .await
            .unwrap();
        assert!(on_route.status().is_client_error(), "{}", on_route.status());
        let off_route = app
            .client
            .request(made_up, app.url(&format!("/no/such/path/{i}")))
            .send()
            .await
            .unwrap();
        assert!(
            off_route.status().is_client_error(),
            "{}",
            off_route.status()
        );
        let lost = app
            .client
            .get(app.url(&format!("/nowhere-{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(lost.status(), 404);
    }
}

db_test!(async fn junk_methods_and_paths_do_not_grow_metrics(backend) {
    let app = spawn(backend).await;
    // The first junk creates the collapsed series; from then on the page must stay flat.
    junk(&app, 0, 3).await;
    app.metrics().await;
    let before = app.metrics().await;
    junk(&app, 3, 303).await;
    let after = app.metrics().await;
    assert_eq!(series(&after), series(&before), "new series appeared:\n{after}");
    // Counters and sums grow by a few digits, never by a series per request.
    assert!(after.len() < before.len() + 2_000, "{} -> {} bytes", before.len(), after.len());
    assert!(after.contains(r#"method="OTHER""#), "{after}");
    assert!(after.contains(r#"route="unmatched""#), "{after}");
    assert!(!after.contains("JUNK"), "a made-up method became a label");
    assert!(!after.contains("/nowhere-"), "a raw path became a label");
});

db_test!(async fn forwarded_for_keys_on_the_proxys_entry_even_with_a_port(backend) {
    let app = spawn_with(backend, |config| {
        config.http.trust_proxy_headers = true;
        config.http.rate_limit_auth_per_minute = 3;
    })
    .await;
    let login = json!({"email": "nobody@example.com", "password": "password123"});
    let mut statuses = Vec::new();
    for i in 0..6 {
        // The client writes a fresh first entry each time; our proxy appends ip:port.
        let forwarded = format!("10.9.8.{i}, 203.0.113.7:{}", 40_000 + i);
        let reply = app
            .send(app.client.post(app.url("/api/v1/auth/login")).header("x-forwarded-for", forwarded).json(&login))
            .await;
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429], "one key for one proxy entry");

    // A bracketed IPv6 entry with a port is one client too.
    let mut statuses = Vec::new();
    for i in 0..5 {
        let forwarded = format!("10.7.7.{i}, [2001:db8::7]:{}", 50_000 + i);
        let reply = app
            .send(app.client.post(app.url("/api/v1/auth/login")).header("x-forwarded-for", forwarded).json(&login))
            .await;
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
});

db_test!(async fn an_unparsable_last_entry_never_promotes_a_client_entry(backend) {
    let app = spawn_with(backend, |config| {
        config.http.trust_proxy_headers = true;
        config.http.rate_limit_auth_per_minute = 3;
    })
    .await;
    let login = json!({"email": "nobody@example.com", "password": "password123"});
    let mut statuses = Vec::new();
    for i in 0..5 {
        // Garbage last: the socket peer is the key, not the rotating client-written entry.
        let forwarded = format!("10.1.1.{i}, unknown");
        let reply = app
            .send(app.client.post(app.url("/api/v1/auth/login")).header("x-forwarded-for", forwarded).json(&login))
            .await;
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
});

/// Reads until the server closes the connection; what it sent before closing.
/// The outer bound only keeps a broken server from hanging the test.
async fn read_until_closed(tcp: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        loop {
            match tcp.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the connection was still open; got {:?}",
        String::from_utf8_lossy(&seen)
    );
    String::from_utf8_lossy(&seen).into_owned()
}

async fn raw_connection(app: &TestApp) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap()
}

db_test!(async fn half_sent_headers_and_idle_connections_are_closed(backend) {
    use tokio::io::AsyncWriteExt;
    let app = spawn_with(backend, |config| config.http.header_timeout = std::time::Duration::from_secs(1)).await;
    let mut slow = raw_connection(&app).await;
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").await.unwrap();
    let answered = read_until_closed(&mut slow).await;
    assert!(!answered.contains("200 OK"), "{answered}");

    // A connection that said nothing at all goes the same way.
    let mut silent = raw_connection(&app).await;
    read_until_closed(&mut silent).await;

    // A keep-alive connection is answered, then closed once it idles.
    let mut idle = raw_connection(&app).await;
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let answered = read_until_closed(&mut idle).await;
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");

    // Everyone else is still served.
    let (token, _) = app.user().await;
    app.get("/api/v1/user/me", &token).await.expect(200);
});

db_test!(async fn a_trickled_body_gets_408(backend) {
    use tokio::io::AsyncWriteExt;
    let app = spawn_with(backend, |config| config.http.body_timeout = std::time::Duration::from_secs(1)).await;
    let mut slow = raw_connection(&app).await;
    slow.write_all(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"email\": ",
    )
    .await
    .unwrap();
    let answered = read_until_closed(&mut slow).await;
    assert!(answered.starts_with("HTTP/1.1 408"), "{answered}");
    let body = &answered[answered.find("\r\n\r\n").expect("a body") + 4..];
    let envelope: serde_json::Value = serde_json::from_str(body).expect("a JSON envelope");
    assert_eq!((envelope["success"].as_bool(), envelope["code"].as_str()), (Some(false), Some("timeout")), "{envelope}");
    assert!(envelope["data"].is_null());
});
