//! Codebase knowledge: archives uploaded and extracted safely, the index searched,
//! files listed and read, re-indexing atomic, retrieval in chat, all owner-only.

use std::io::Write;

use flate2::{write::GzEncoder, Compression};
use serde_json::{json, Value};

use crate::helpers::{spawn, spawn_with, Reply, TestApp};

pub const SHA: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";

/// One tar entry to write; names are written raw, so unsafe ones reach the server as is.
pub enum Entry<'a> {
    File(&'a str, Vec<u8>),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    /// A header that announces `size` bytes but carries none (a bomb's first entry).
    Huge(&'a str, u64),
    PaxGlobal(&'a str),
}

fn header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(0o644);
    let raw = &mut header.as_old_mut().name;
    raw.fill(0);
    raw[..name.len()].copy_from_slice(name.as_bytes());
    header.set_cksum();
    header
}

pub fn tar_gz(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for entry in entries {
        match entry {
            Entry::File(name, data) => {
                let header = header(name, tar::EntryType::Regular, data.len() as u64);
                builder.append(&header, data.as_slice()).unwrap();
            }
            Entry::Symlink(name, target) | Entry::HardLink(name, target) => {
                let kind = match entry {
                    Entry::Symlink(..) => tar::EntryType::Symlink,
                    _ => tar::EntryType::Link,
                };
                let mut header = header(name, kind, 0);
                header.set_link_name(target).unwrap();
                header.set_cksum();
                builder.append(&header, std::io::empty()).unwrap();
            }
            Entry::Huge(name, size) => {
                let header = header(name, tar::EntryType::Regular, *size);
                builder.get_mut().write_all(header.as_bytes()).unwrap();
                builder.get_mut().write_all(&[b'a'; 4096]).unwrap();
            }
            Entry::PaxGlobal(commit) => {
                let record = format!(" comment={commit}\n");
                let record = format!("{}{record}", record.len() + 2);
                let header = header(
                    "pax_global_header",
                    tar::EntryType::XGlobalHeader,
                    record.len() as u64,
                );
                builder.append(&header, record.as_bytes()).unwrap();
            }
        }
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// A GitHub-style tarball of `files` under `acme-shop-{sha}/`.
pub fn github_tarball(files: &[(&str, &str)]) -> Vec<u8> {
    let top = format!("acme-shop-{}", &SHA[..7]);
    let names: Vec<String> = files
        .iter()
        .map(|(path, _)| format!("{top}/{path}"))
        .collect();
    let mut entries = vec![Entry::PaxGlobal(SHA)];
    for (name, (_, content)) in names.iter().zip(files) {
        entries.push(Entry::File(name, content.as_bytes().to_vec()));
    }
    tar_gz(&entries)
}

pub async fn upload(app: &TestApp, token: &str, project_id: i64, body: Vec<u8>) -> Reply {
    let request = app
        .client
        .put(app.url(&format!("/api/v1/projects/{project_id}/files")))
        .bearer_auth(token)
        .header("content-type", "application/gzip")
        .body(body);
    app.send(request).await
}

pub async fn project(app: &TestApp, token: &str) -> i64 {
    let reply = app
        .post("/api/v1/projects", token, json!({"name": "shop"}))
        .await
        .expect(201);
    reply.data()["id"].as_i64().unwrap()
}

const CART: &str = "use crate::money::Money;\n\n/// The sum of a cart.\npub fn checkout_total(cart: &Cart) -> Money {\n    cart.items.iter().map(|i| i.price).sum()\n}\n";
const API: &str = "fn handler(cart: Cart) -> Json {\n    let total = checkout_total(&cart);\n    Json(total)\n}\n\nfn refund() {\n    let again = checkout_total(&cart);\n}\n";
const SUB: &str = "let mut subtotal = 0;\nsubtotal += 1;\n// checkout_totals are cached\n";

fn skipped_reason<'a>(sync: &'a Value, path: &str) -> &'a str {
    sync["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"] == path)
        .and_then(|s| s["reason"].as_str())
        .unwrap_or_else(|| panic!("{path} not reported in {sync}"))
}

db_test!(async fn tarballs_are_extracted_safely_and_indexed(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    let before = app.get(&format!("/api/v1/projects/{id}"), &token).await.expect(200);
    assert_eq!(before.data()["sync"]["status"], "never");
    assert_eq!(before.data()["sync"]["files"], 0);

    let top = format!("acme-shop-{}", &SHA[..7]);
    let big = vec![b'x'; 2 * 1024 * 1024];
    let mut binary = b"\x7fELF".to_vec();
    binary.extend_from_slice(&[0, 1, 2, 3]);
    let names: Vec<String> = ["src/cart.rs", "src/api.rs", "link", "hard", "big.txt", "app.bin", "../escape.txt"]
        .iter()
        .map(|p| format!("{top}/{p}"))
        .collect();
    let body = tar_gz(&[
        Entry::PaxGlobal(SHA),
        Entry::File(&names[0], CART.as_bytes().to_vec()),
        Entry::File(&names[1], API.as_bytes().to_vec()),
        Entry::Symlink(&names[2], "/etc/passwd"),
        Entry::HardLink(&names[3], "/etc/shadow"),
        Entry::File(&names[4], big),
        Entry::File(&names[5], binary),
        Entry::File(&names[6], b"outside".to_vec()),
        Entry::File("/etc/cron.d/evil", b"* * * * * root sh".to_vec()),
    ]);
    let reply = upload(&app, &token, id, body).await.expect(200);
    let sync = reply.data();
    assert_eq!(sync["status"], "done", "{sync}");
    assert_eq!(sync["commit"], SHA, "the pax global header's commit");
    assert_eq!(sync["files"], 2, "{sync}");
    assert!(sync["synced_at"].is_string());
    assert!(sync["reason"].is_null());
    assert_eq!(skipped_reason(sync, "link"), "symbolic link");
    assert_eq!(skipped_reason(sync, "hard"), "hard link");
    assert_eq!(skipped_reason(sync, "big.txt"), "larger than 1 MiB");
    assert_eq!(skipped_reason(sync, "app.bin"), "binary file");
    assert_eq!(skipped_reason(sync, "../escape.txt"), "path escapes the archive (..)");
    assert_eq!(skipped_reason(sync, "/etc/cron.d/evil"), "absolute path");
    // The project shows the same object.
    let shown = app.get(&format!("/api/v1/projects/{id}"), &token).await.expect(200);
    assert_eq!(&shown.data()["sync"], sync);

    let files = app.get(&format!("/api/v1/projects/{id}/files"), &token).await.expect(200);
    let paths: Vec<&str> = files.data()["items"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["src/api.rs", "src/cart.rs"], "top directory stripped, pax header not a file");
    assert_eq!(files.data()["total"], 2);
    let cart = app.get(&format!("/api/v1/projects/{id}/files/content?path=src/cart.rs"), &token).await.expect(200);
    assert_eq!(cart.data()["content"], CART);
    assert_eq!(cart.data()["lines"], 6);
    app.get(&format!("/api/v1/projects/{id}/files/content?path=link"), &token).await.expect(404);
    let none = app.get(&format!("/api/v1/projects/{id}/files?path_prefix=SRC/"), &token).await.expect(200);
    assert_eq!(none.data()["total"], 0, "prefixes are case-sensitive");
    let some = app.get(&format!("/api/v1/projects/{id}/files?path_prefix=src/c"), &token).await.expect(200);
    assert_eq!(some.data()["total"], 1);
});

db_test!(async fn zip_uploads_and_tar_bombs(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    // One 2 MiB entry, copied 5 times without recompressing.
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    writer.start_file("shop/src/main.py", options).unwrap();
    writer.write_all(b"def main():\n    print('hi')\n").unwrap();
    writer.start_file("shop/blob/0.txt", options).unwrap();
    writer.write_all(&vec![b'a'; 2 * 1024 * 1024]).unwrap();
    let mut archive = writer.finish_into_readable().unwrap();
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer.raw_copy_file(archive.by_index(0).unwrap()).unwrap();
    for i in 0..5 {
        writer.raw_copy_file_rename(archive.by_index(1).unwrap(), format!("shop/blob/{i}.txt")).unwrap();
    }
    let zip = writer.finish().unwrap().into_inner();
    let reply = upload(&app, &token, id, zip).await.expect(200);
    let sync = reply.data();
    assert_eq!(sync["files"], 1, "{sync}");
    assert_eq!(skipped_reason(sync, "blob/0.txt"), "larger than 1 MiB");
    assert_eq!(sync["skipped"].as_array().unwrap().len(), 5, "{sync}");
    let files = app.get(&format!("/api/v1/projects/{id}/files"), &token).await.expect(200);
    assert_eq!(files.data()["items"][0]["path"], "src/main.py");
    // Other routes keep the general body limit below the upload limit.
    let big_json = json!({"name": "x".repeat(2 * 1024 * 1024)});
    app.post("/api/v1/projects", &token, big_json).await.expect(413);

    // A gzip bomb: a header announcing 300 MiB; nothing past it is read.
    let body = tar_gz(&[
        Entry::File("a.rs", b"fn a() {}\n".to_vec()),
        Entry::Huge("src/huge.txt", 300 * 1024 * 1024),
    ]);
    let reply = upload(&app, &token, id, body).await.expect(200);
    assert_eq!(reply.data()["files"], 1);
    assert!(skipped_reason(reply.data(), "src/huge.txt").contains("200 MiB"));
});

db_test!(async fn uploads_are_checked(backend) {
    let app = spawn_with(backend, |config| config.codebase.upload_limit_bytes = 64 * 1024).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    let not_archive = upload(&app, &token, id, b"just some text".to_vec()).await.expect(415);
    assert_eq!(not_archive.code(), "unsupported_media_type");
    let corrupt = upload(&app, &token, id, vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]).await.expect(422);
    assert_eq!(corrupt.code(), "validation_error");
    let noise: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut too_big = vec![0x1f, 0x8b];
    too_big.extend(noise);
    upload(&app, &token, id, too_big).await.expect(413);
    let after = app.get(&format!("/api/v1/projects/{id}"), &token).await.expect(200);
    assert_eq!(after.data()["sync"]["status"], "never", "a refused upload changes nothing");
});

db_test!(async fn search_ranks_definitions_and_handles_short_queries(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    let body = github_tarball(&[("src/api.rs", API), ("src/cart.rs", CART), ("src/sub.rs", SUB), ("README.md", "# Shop\nCart and checkout.\n")]);
    upload(&app, &token, id, body).await.expect(200);
    let search = |q: &str| format!("/api/v1/projects/{id}/search?q={q}");

    let found = app.get(&search("checkout_total"), &token).await.expect(200);
    let items = found.data()["items"].as_array().unwrap().clone();
    assert_eq!(found.data()["total"], 4, "lines containing it: {}", found.data());
    assert_eq!((items[0]["path"].as_str().unwrap(), items[0]["line"].as_i64().unwrap()), ("src/cart.rs", 4), "the definition first: {items:?}");
    assert_eq!(items[0]["snippet"], "pub fn checkout_total(cart: &Cart) -> Money {");
    assert_eq!(items.last().unwrap()["path"], "src/sub.rs", "a partial word last: {items:?}");
    let calls: Vec<i64> = items.iter().filter(|i| i["path"] == "src/api.rs").map(|i| i["line"].as_i64().unwrap()).collect();
    assert_eq!(calls, [2, 7]);

    let case = app.get(&search("CHECKOUT_TOTAL"), &token).await.expect(200);
    assert_eq!(case.data()["total"], 4, "case-insensitive");
    let limited = app.get(&format!("{}&limit=1", search("checkout_total")), &token).await.expect(200);
    assert_eq!(limited.data()["items"].as_array().unwrap().len(), 1);
    assert_eq!(limited.data()["total"], 4);

    let path = app.get(&search("cart.rs"), &token).await.expect(200);
    assert_eq!(path.data()["items"][0]["path"], "src/cart.rs", "exact path match: {}", path.data());
    assert_eq!(path.data()["items"][0]["line"], 1);

    let short = app.get(&search("%2B%3D"), &token).await.expect(200);
    assert_eq!(short.data()["total"], 1, "{}", short.data());
    assert_eq!(short.data()["items"][0]["path"], "src/sub.rs");
    assert_eq!(short.data()["items"][0]["line"], 2);
    let percent = app.get(&search("%25"), &token).await.expect(200);
    assert_eq!(percent.data()["total"], 0, "LIKE wildcards are literal");

    let missing = app.get(&search("nowhere_to_be_found"), &token).await.expect(200);
    assert_eq!(missing.data(), &json!({"items": [], "total": 0, "total_exact": true, "partial": false}));
    assert_eq!(app.get(&format!("/api/v1/projects/{id}/search"), &token).await.expect(422).error_fields(), ["q"]);
    assert_eq!(app.get(&format!("{}&limit=0", search("cart")), &token).await.expect(422).error_fields(), ["limit"]);
    assert_eq!(app.get(&format!("{}&limit=101", search("cart")), &token).await.expect(422).error_fields(), ["limit"]);
});

db_test!(async fn everything_is_owner_only(backend) {
    let app = spawn(backend).await;
    let (alice, _) = app.user().await;
    let (mallory, _) = app.user().await;
    let id = project(&app, &alice).await;
    upload(&app, &alice, id, github_tarball(&[("src/cart.rs", CART)])).await.expect(200);
    for path in [
        format!("/api/v1/projects/{id}/files"),
        format!("/api/v1/projects/{id}/files/content?path=src/cart.rs"),
        format!("/api/v1/projects/{id}/search?q=checkout"),
    ] {
        assert_eq!(app.get(&path, &mallory).await.expect(404).code(), "not_found", "{path}");
        app.get(&path, &alice).await.expect(200);
    }
    upload(&app, &mallory, id, github_tarball(&[("evil.rs", "fn evil() {}")])).await.expect(404);
    let files = app.get(&format!("/api/v1/projects/{id}/files"), &alice).await.expect(200);
    assert_eq!(files.data()["items"][0]["path"], "src/cart.rs", "nothing replaced");
    let chat = app.post("/api/v1/chat", &mallory, json!({"message": "where is checkout_total defined?", "project_id": id})).await;
    chat.expect(404);
    app.get("/api/v1/projects/999999/files", &alice).await.expect(404);
});

db_test!(async fn a_reindex_is_seen_whole_or_not_at_all(backend) {
    // Atomicity, not the deadline, is under test: a search cut short by a loaded machine
    // would answer part of a version.
    let app = spawn_with(backend, |config| config.codebase.search_timeout = std::time::Duration::from_secs(30)).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    let version = |tag: &str| {
        let files: Vec<(String, String)> = (0..300)
            .map(|i| (format!("src/m{i:03}.rs"), format!("// marker {tag}\nfn f{i}() {{}}\n")))
            .collect();
        let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
        github_tarball(&refs)
    };
    upload(&app, &token, id, version("old")).await.expect(200);
    let path = format!("/api/v1/projects/{id}/search?q=marker&limit=100");
    let new = version("new");
    let writer = {
        let (client, url, token) = (app.client.clone(), app.url(&format!("/api/v1/projects/{id}/files")), token.clone());
        tokio::spawn(async move {
            client.put(url).bearer_auth(token).header("content-type", "application/gzip").body(new).send().await.unwrap().status()
        })
    };
    let mut seen = std::collections::BTreeSet::new();
    while !writer.is_finished() {
        let found = app.get(&path, &token).await.expect(200);
        assert_eq!(found.data()["total"], 300, "never a mix or a gap: {}", found.data());
        let tags: std::collections::BTreeSet<String> = found.data()["items"].as_array().unwrap().iter()
            .map(|i| i["snippet"].as_str().unwrap().to_owned()).collect();
        assert_eq!(tags.len(), 1, "one version per answer: {tags:?}");
        seen.extend(tags);
    }
    assert_eq!(writer.await.unwrap(), 200);
    let found = app.get(&path, &token).await.expect(200);
    assert_eq!(found.data()["total"], 300);
    assert_eq!(found.data()["items"][0]["snippet"], "// marker new");
    assert!(seen.contains("// marker old"), "searches ran during the re-index: {seen:?}");
    let files = app.get(&format!("/api/v1/projects/{id}/files?limit=1"), &token).await.expect(200);
    assert_eq!(files.data()["total"], 300, "the old generation is gone");
    let (rows,): (i64,) = codesherpa::with_pool!(&app.db, |pool| sqlx::query_as("SELECT COUNT(*) FROM project_files").fetch_one(pool).await).unwrap();
    assert_eq!(rows, 300, "old files deleted");
});

db_test!(async fn chats_about_a_project_cite_path_and_line(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    upload(&app, &token, id, github_tarball(&[("src/api.rs", API), ("src/cart.rs", CART)])).await.expect(200);
    let reply = app
        .post("/api/v1/chat", &token, json!({"message": "Where is `checkout_total` defined and what calls it?", "project_id": id}))
        .await
        .expect(201);
    assert_eq!(reply.data()["agent"], "Codebase Sherpa");
    let explanation = reply.data()["result"]["explanation"].as_str().unwrap();
    assert!(explanation.contains("defined at `src/cart.rs:4`"), "{explanation}");
    assert!(explanation.contains("`src/api.rs:2`") && explanation.contains("`src/api.rs:7`"), "{explanation}");
    assert!(explanation.contains("local engine"), "{explanation}");
});

db_test!(async fn nul_characters_in_file_queries_are_refused(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let project = app.post("/api/v1/projects", &token, json!({"name": "p"})).await.expect(201);
    let id = &project.data()["id"];
    for (path, field) in [
        (format!("/api/v1/projects/{id}/files/content?path=src%00x"), "path"),
        (format!("/api/v1/projects/{id}/files?path_prefix=%00"), "path_prefix"),
        (format!("/api/v1/projects/{id}/search?q=a%00b"), "q"),
    ] {
        assert_eq!(app.get(&path, &token).await.expect(422).error_fields(), [field], "{path}");
    }
});

/// A zip of `entries` (name, content), deflated.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// `zip` with every entry's uncompressed size rewritten to 0, in its local header and in
/// the central directory (as a bomb declares).
fn declaring_zero(mut zip: Vec<u8>) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.clone())).unwrap();
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).unwrap();
        let (local, central) = (
            entry.header_start() as usize,
            entry.central_header_start() as usize,
        );
        zip[local + 22..local + 26].fill(0);
        zip[central + 24..central + 28].fill(0);
    }
    zip
}

/// A zip whose central directory lists `copies` entries, all pointing at the one local
/// entry of `zip_of([(name, content)])`: each reads the same compressed block.
fn overlapping_zip(content: &[u8], copies: usize) -> Vec<u8> {
    let single = zip_of(&[("f00000.txt", content)]);
    let eocd = single.len() - 22;
    let u32_at = |at: usize| u32::from_le_bytes(single[at..at + 4].try_into().unwrap()) as usize;
    let u16_at = |at: usize| u16::from_le_bytes(single[at..at + 2].try_into().unwrap()) as usize;
    let (cd_size, cd_offset) = (u32_at(eocd + 12), u32_at(eocd + 16));
    let central = &single[cd_offset..cd_offset + cd_size];
    let name_len = u16::from_le_bytes(central[28..30].try_into().unwrap()) as usize;
    assert_eq!((name_len, u16_at(eocd + 20)), (10, 0));
    let mut out = single[..cd_offset].to_vec();
    for i in 0..copies {
        let mut record = central.to_vec();
        record[46..56].copy_from_slice(format!("f{i:05}.txt").as_bytes());
        out.extend_from_slice(&record);
    }
    let mut end = single[eocd..].to_vec();
    end[8..10].copy_from_slice(&(copies as u16).to_le_bytes());
    end[10..12].copy_from_slice(&(copies as u16).to_le_bytes());
    end[12..16].copy_from_slice(&((cd_size * copies) as u32).to_le_bytes());
    out.extend_from_slice(&end);
    out
}

async fn project_file_rows(app: &TestApp) -> i64 {
    let (rows,): (i64,) = codesherpa::with_pool!(&app.db, |pool| sqlx::query_as(
        "SELECT COUNT(*) FROM project_files"
    )
    .fetch_one(pool)
    .await)
    .unwrap();
    rows
}

db_test!(async fn the_unpacked_limit_counts_inflated_bytes_not_declared_sizes(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    // 210 entries of 2 MiB each, every one declaring 0 bytes: each is read up to its
    // 1 MiB limit, and those bytes count, so reading stops near the 200th.
    let blob = vec![b'a'; 2 * 1024 * 1024];
    let names: Vec<String> = (0..210).map(|i| format!("shop/blob/{i:03}.txt")).collect();
    let mut entries: Vec<(&str, &[u8])> = vec![("shop/src/main.py", b"def main():\n    print('hi')\n")];
    entries.extend(names.iter().map(|name| (name.as_str(), blob.as_slice())));
    let bomb = declaring_zero(zip_of(&entries));
    assert!(bomb.len() < 2 * 1024 * 1024, "a small archive: {}", bomb.len());
    let reply = upload(&app, &token, id, bomb).await.expect(200);
    let sync = reply.data();
    assert_eq!(sync["files"], 1, "{sync}");
    assert_eq!(skipped_reason(sync, "blob/000.txt"), "larger than 1 MiB");
    let skipped = sync["skipped"].as_array().unwrap();
    let stopped: Vec<&Value> = skipped.iter().filter(|s| s["reason"].as_str().unwrap().contains("200 MiB")).collect();
    assert_eq!(stopped.len(), 1, "reading stops at the unpacked limit: {sync}");
    assert!(skipped.len() <= 201, "the rest was not read: {} listed", skipped.len());
});

db_test!(async fn zips_whose_entries_overlap_are_refused(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    // 1,000 central-directory entries sharing one compressed block.
    let bomb = overlapping_zip(&vec![b'a'; 2 * 1024 * 1024], 1_000);
    assert!(bomb.len() < 200 * 1024, "a small archive: {}", bomb.len());
    let reply = upload(&app, &token, id, bomb).await.expect(422);
    assert_eq!(reply.error_fields(), ["body"]);
    assert!(reply.body["errors"][0]["message"].as_str().unwrap().contains("overlap"), "{}", reply.body);
    let after = app.get(&format!("/api/v1/projects/{id}"), &token).await.expect(200);
    assert_eq!(after.data()["sync"]["status"], "never", "nothing indexed");
    assert_eq!(project_file_rows(&app).await, 0);
    // Two entries are enough to be refused.
    let small = overlapping_zip(b"fn main() {}\n", 2);
    assert_eq!(upload(&app, &token, id, small).await.expect(422).error_fields(), ["body"]);
});

db_test!(async fn reported_names_are_cut_short(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    // Names too long to be paths (refused as written) and a long valid path of a binary.
    let long: Vec<String> = (0..20).map(|i| format!("{i:02}{}", "n".repeat(60_000))).collect();
    let accented = format!("{}.bin", "é".repeat(500));
    let mut entries: Vec<(&str, &[u8])> = long.iter().map(|name| (name.as_str(), b"x".as_slice())).collect();
    entries.push((accented.as_str(), b"\0\x01"));
    entries.push(("ok.rs", b"fn ok() {}\n"));
    let reply = upload(&app, &token, id, zip_of(&entries)).await.expect(200);
    let skipped = reply.data()["skipped"].as_array().unwrap().clone();
    assert_eq!(skipped.len(), 21, "{skipped:?}");
    for entry in &skipped {
        let path = entry["path"].as_str().unwrap();
        assert!(path.len() <= 300, "{} bytes", path.len());
    }
    let binary = skipped.iter().find(|s| s["reason"] == "binary file").unwrap()["path"].as_str().unwrap();
    assert!(accented.starts_with(binary) && binary.len() >= 298, "cut on a character boundary: {binary}");
    assert_eq!(skipped.iter().filter(|s| s["reason"] == "path is too long").count(), 20);
    let shown = app.get(&format!("/api/v1/projects/{id}"), &token).await.expect(200);
    let size = shown.body.to_string().len();
    assert!(size < 16 * 1024, "the project stays small: {size} bytes");
});

db_test!(async fn nul_bytes_never_reach_the_database(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    let mut late = "let x = 1;\n".repeat(1_000).into_bytes();
    assert!(late.len() > 8 * 1024);
    late.extend_from_slice(b"\0 trailing\n");
    let body = zip_of(&[("bad\0name.txt", b"hello\n"), ("late.rs", &late), ("ok.rs", b"fn ok() {}\n"), ("bell\x07.txt", b"ding\n")]);
    // Twice: a re-index leaves no other generation behind either.
    for _ in 0..2 {
        let reply = upload(&app, &token, id, body.clone()).await.expect(200);
        let sync = reply.data();
        assert_eq!(sync["files"], 1, "{sync}");
        assert_eq!(skipped_reason(sync, "late.rs"), "binary file");
        assert_eq!(skipped_reason(sync, "bad\u{FFFD}name.txt"), "path has control characters");
        assert_eq!(skipped_reason(sync, "bell\u{FFFD}.txt"), "path has control characters");
        assert!(!sync.to_string().contains("\\u0000"), "{sync}");
        assert_eq!(project_file_rows(&app).await, 1, "only the live generation's files");
    }
    let files = app.get(&format!("/api/v1/projects/{id}/files"), &token).await.expect(200);
    assert_eq!(files.data()["items"][0]["path"], "ok.rs");
});

/// A request body sent chunked, as `chunks` arrive on the returned sender.
fn streamed_body() -> (tokio::sync::mpsc::Sender<Vec<u8>>, reqwest::Body) {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), receiver))
    });
    (sender, reqwest::Body::wrap_stream(stream))
}

db_test!(async fn uploads_beyond_index_concurrency_are_told_to_retry(backend) {
    let app = spawn_with(backend, |config| config.codebase.index_concurrency = 1).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    let archive = github_tarball(&[("src/cart.rs", CART)]);
    // The first upload holds the only permit while its body is still arriving. A probe
    // may take the permit before the first upload asks for it: that one is then refused
    // and sent again, until a probe is refused instead (only the first can hold it then).
    let mut probes = 0;
    let (sender, first, refused) = 'held: loop {
        let (sender, body) = streamed_body();
        let request = app.client.put(app.url(&format!("/api/v1/projects/{id}/files"))).bearer_auth(&token).body(body);
        let first = tokio::spawn(async move { request.send().await.unwrap().status() });
        let _ = sender.send(archive[..10].to_vec()).await;
        while !first.is_finished() {
            probes += 1;
            assert!(probes < 500, "the first upload never held the permit");
            let probe = upload(&app, &token, id, archive.clone()).await;
            if probe.status == 429 {
                break 'held (sender, first, probe);
            }
            probe.expect(200);
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(first.await.unwrap(), 429, "refused while a probe was indexing");
    };
    let refused = refused.expect(429);
    assert_eq!(refused.code(), "rate_limited");
    let retry_after: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    sender.send(archive[10..].to_vec()).await.unwrap();
    drop(sender);
    assert_eq!(first.await.unwrap(), 200);
    upload(&app, &token, id, archive).await.expect(200);
});

db_test!(async fn chunked_uploads_over_the_limit_are_too_large(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    let (sender, body) = streamed_body();
    let request = app.client.put(app.url(&format!("/api/v1/projects/{id}/files"))).bearer_auth(&token).body(body);
    let feed = tokio::spawn(async move {
        let mut chunk = vec![0x1f, 0x8b];
        chunk.resize(1024 * 1024, b'z');
        for _ in 0..60 {
            if sender.send(chunk.clone()).await.is_err() {
                return;
            }
            chunk[..2].fill(b'z');
        }
    });
    let reply = app.send(request).await.expect(413);
    assert_eq!(reply.code(), "payload_too_large");
    feed.abort();
});
