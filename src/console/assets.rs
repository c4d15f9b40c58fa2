//! The console's files, embedded at compile time from `assets/console/`, each with its
//! content type and an ETag (a digest of its bytes, computed once).

use std::sync::LazyLock;

use sha2::{Digest, Sha256};

pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    pub etag: String,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

macro_rules! embed {
    ($($path:literal => $type:expr),+ $(,)?) => {
        [$(($path, $type, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/console/", $path)) as &[u8])),+]
    };
}

/// Every file the console may load; anything else is a 404.
static FILES: [(&str, &str, &[u8]); 32] = embed![
    "index.html" => HTML,
    "console.css" => CSS,
    "favicon.svg" => SVG,
    "js/main.js" => JS,
    "js/api.js" => JS,
    "js/session.js" => JS,
    "js/socket.js" => JS,
    "js/dom.js" => JS,
    "js/markdown.js" => JS,
    "js/results.js" => JS,
    "js/views/auth.js" => JS,
    "js/views/chat.js" => JS,
    "js/views/agents.js" => JS,
    "js/views/projects.js" => JS,
    "js/views/account.js" => JS,
    "vendor/marked/marked.esm.js" => JS,
    "vendor/dompurify/purify.es.mjs" => JS,
    "vendor/highlight/core.min.js" => JS,
    "vendor/highlight/languages/bash.min.js" => JS,
    "vendor/highlight/languages/css.min.js" => JS,
    "vendor/highlight/languages/diff.min.js" => JS,
    "vendor/highlight/languages/go.min.js" => JS,
    "vendor/highlight/languages/ini.min.js" => JS,
    "vendor/highlight/languages/java.min.js" => JS,
    "vendor/highlight/languages/javascript.min.js" => JS,
    "vendor/highlight/languages/json.min.js" => JS,
    "vendor/highlight/languages/python.min.js" => JS,
    "vendor/highlight/languages/rust.min.js" => JS,
    "vendor/highlight/languages/sql.min.js" => JS,
    "vendor/highlight/languages/typescript.min.js" => JS,
    "vendor/highlight/languages/xml.min.js" => JS,
    "vendor/highlight/languages/yaml.min.js" => JS,
];

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(path, content_type, body)| Asset {
            path,
            content_type,
            body,
            etag: format!("\"{}\"", hex::encode(&Sha256::digest(body)[..16])),
        })
        .collect()
});

pub fn index() -> &'static Asset {
    find("index.html").expect("index.html is embedded")
}

pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.path == path)
}
