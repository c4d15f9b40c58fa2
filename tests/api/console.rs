//! The web console at `/`: the page, its assets, its Content-Security-Policy, and the
//! socket it opens. It reads no database, so these run on SQLite only.

use std::collections::BTreeSet;

use regex::Regex;
use reqwest::{header, Method};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{client::IntoClientRequest, Error as WsError},
};

use crate::helpers::{spawn, Backend, TestApp};

async fn page(app: &TestApp, path: &str) -> reqwest::Response {
    app.client.get(app.url(path)).send().await.expect("request")
}

fn header_of(response: &reqwest::Response, name: header::HeaderName) -> &str {
    response
        .headers()
        .get(&name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_policy_and_no_inline_script() {
    let app = spawn(Backend::Sqlite).await;
    let response = page(&app, "/").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header_of(&response, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(
        header_of(&response, header::X_CONTENT_TYPE_OPTIONS),
        "nosniff"
    );
    let csp = header_of(&response, header::CONTENT_SECURITY_POLICY).to_owned();
    let host = app.address.trim_start_matches("http://");
    for directive in [
        "default-src 'self'",
        "script-src 'self';",
        "style-src 'self';",
        "object-src 'none'",
        "frame-ancestors 'none'",
        &format!("connect-src 'self' ws://{host} wss://{host}"),
    ] {
        assert!(csp.contains(directive), "{directive} not in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(
        !csp.contains("http:") && !csp.contains("https:"),
        "no external origin: {csp}"
    );

    let html = response.text().await.unwrap();
    let scripts = Regex::new(r"(?is)<script\b([^>]*)>(.*?)</script>").unwrap();
    let found: Vec<_> = scripts.captures_iter(&html).collect();
    assert!(!found.is_empty(), "the page loads its script");
    for script in found {
        assert!(
            script[1].contains("src=\"/console/"),
            "external file: {}",
            &script[0]
        );
        assert!(script[2].trim().is_empty(), "inline script: {}", &script[0]);
    }
    let inline = Regex::new(r#"(?i)\s(on[a-z]+|style)\s*=|javascript:|https?://"#).unwrap();
    assert!(
        !inline.is_match(&html),
        "inline handler, style or external URL in the page"
    );
}

#[tokio::test]
async fn every_asset_the_page_loads_is_served_with_its_type() {
    let app = spawn(Backend::Sqlite).await;
    let html = page(&app, "/").await.text().await.unwrap();
    let linked = Regex::new(r#"(?:src|href)="(/console/[^"]+)""#).unwrap();
    let imports = Regex::new(r#"(?:from|import)\s*['"](\.{1,2}/[^'"]+)['"]"#).unwrap();

    // Follow the page's links and every module's imports, as the browser would.
    let mut queue: Vec<String> = linked
        .captures_iter(&html)
        .map(|c| c[1].to_owned())
        .collect();
    let mut seen = BTreeSet::new();
    while let Some(path) = queue.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let response = page(&app, &path).await;
        assert_eq!(response.status(), 200, "{path}");
        let expected = match path.rsplit('.').next().unwrap() {
            "js" | "mjs" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "svg" => "image/svg+xml",
            other => panic!("unexpected asset type {other}"),
        };
        assert_eq!(
            header_of(&response, header::CONTENT_TYPE),
            expected,
            "{path}"
        );
        assert!(
            header_of(&response, header::CONTENT_SECURITY_POLICY).contains("default-src 'self'")
        );
        if expected.starts_with("text/javascript") {
            let source = response.text().await.unwrap();
            let dir = &path[..path.rfind('/').unwrap()];
            for import in imports.captures_iter(&source) {
                queue.push(resolve(dir, &import[1]));
            }
        }
    }
    assert!(seen.contains("/console/js/main.js"), "{seen:?}");
    assert!(
        seen.contains("/console/vendor/dompurify/purify.es.mjs"),
        "{seen:?}"
    );
    assert!(seen.len() > 20, "the module graph was followed: {seen:?}");
}

fn resolve(dir: &str, relative: &str) -> String {
    let mut parts: Vec<&str> = dir.split('/').collect();
    for part in relative.split('/') {
        match part {
            "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    parts.join("/")
}

#[tokio::test]
async fn assets_are_revalidated_by_etag() {
    let app = spawn(Backend::Sqlite).await;
    let first = page(&app, "/console/js/main.js").await;
    assert_eq!(header_of(&first, header::CACHE_CONTROL), "no-cache");
    let etag = header_of(&first, header::ETAG).to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    let again = app
        .client
        .get(app.url("/console/js/main.js"))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(header_of(&again, header::ETAG), etag);
    assert!(again.bytes().await.unwrap().is_empty());

    let stale = app
        .client
        .get(app.url("/console/js/main.js"))
        .header(header::IF_NONE_MATCH, "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
    let other = page(&app, "/console/console.css").await;
    assert_ne!(
        header_of(&other, header::ETAG),
        etag,
        "each file has its own tag"
    );
}

#[tokio::test]
async fn unknown_assets_are_404_envelopes_and_nothing_outside_is_reachable() {
    let app = spawn(Backend::Sqlite).await;
    for path in [
        "/console/nope.js",
        "/console/../Cargo.toml",
        "/console/%2e%2e/Cargo.toml",
        "/console/js/../../src/main.rs",
        "/console/",
    ] {
        let reply = app.call(Method::GET, path, None, None).await.expect(404);
        assert_eq!(reply.code(), "not_found", "{path}");
    }
    let reply = app
        .call(Method::GET, "/console/%FF.js", None, None)
        .await
        .expect(400);
    assert_eq!(reply.code(), "bad_request");
    // Only GET (and HEAD) are served.
    app.call(Method::POST, "/", None, None).await.expect(405);
}

#[tokio::test]
async fn the_api_keeps_its_own_strict_headers() {
    let app = spawn(Backend::Sqlite).await;
    let response = page(&app, "/api/v1/user/me").await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        header_of(&response, header::CONTENT_SECURITY_POLICY),
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert_eq!(header_of(&response, header::X_FRAME_OPTIONS), "DENY");
}

fn upgrade_status(result: Result<impl Sized, WsError>) -> u16 {
    match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => 101,
    }
}

#[tokio::test]
async fn the_console_may_open_a_socket_to_its_own_host_only() {
    let app = spawn(Backend::Sqlite).await;
    let (token, _) = app.user().await;
    let host = app.address.trim_start_matches("http://").to_owned();

    let mut same = app.ws_url(&token).into_client_request().unwrap();
    same.headers_mut()
        .insert("origin", app.address.parse().unwrap());
    assert_eq!(upgrade_status(connect_async(same).await), 101);

    for origin in [
        format!("http://{host}.evil.example"),
        format!("http://evil.example/{host}"),
        "null".to_owned(),
    ] {
        let mut foreign = app.ws_url(&token).into_client_request().unwrap();
        foreign
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        assert_eq!(
            upgrade_status(connect_async(foreign).await),
            403,
            "{origin}"
        );
    }
}

#[tokio::test]
async fn the_console_routes_are_in_the_openapi_document() {
    let app = spawn(Backend::Sqlite).await;
    let doc: serde_json::Value = page(&app, "/api/v1/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    let index = &doc["paths"]["/"]["get"]["responses"];
    assert!(index["200"]["content"]["text/html"].is_object(), "{index}");
    let asset = &doc["paths"]["/console/{path}"]["get"]["responses"];
    assert!(
        asset["200"]["content"]["text/javascript"].is_object(),
        "{asset}"
    );
    assert!(
        asset["404"]["content"]["application/json"].is_object(),
        "{asset}"
    );
}
