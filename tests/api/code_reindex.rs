//! Incremental re-index (SPEC §6.4): a re-upload or re-sync writes only the files whose
//! content changed, removes deleted ones, and the swap stays atomic — also when two
//! re-indexes of one project race.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::codebase::{github_tarball, project, upload};
use crate::helpers::{spawn, TestApp};

/// `count` Rust files, each defining `f{i}` (or `f{i}_{tag}` for the `changed` ones),
/// plus `extra`.
fn version(
    count: usize,
    changed: &[usize],
    tag: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = (0..count)
        .map(|i| {
            let name = if changed.contains(&i) {
                format!("f{i}_{tag}")
            } else {
                format!("f{i}")
            };
            (
                format!("src/m{i:03}.rs"),
                format!("/// Module {i}.\npub fn {name}() -> u32 {{\n    {i}\n}}\n"),
            )
        })
        .collect();
    files.extend(extra.iter().map(|(p, c)| (p.to_string(), c.to_string())));
    files
}

fn tarball(files: &[(String, String)]) -> Vec<u8> {
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    github_tarball(&refs)
}

/// Every file row of the project's index, by path: (row id, path) pairs.
async fn file_rows(app: &TestApp) -> BTreeMap<String, Vec<i64>> {
    let rows: Vec<(String, i64)> = codesherpa::with_pool!(&app.db, |pool| sqlx::query_as(
        "SELECT path, id FROM project_files ORDER BY id"
    )
    .fetch_all(pool)
    .await)
    .unwrap();
    let mut by_path: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (path, id) in rows {
        by_path.entry(path).or_default().push(id);
    }
    by_path
}

async fn count(app: &TestApp, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    let (n,): (i64,) =
        codesherpa::with_pool!(&app.db, |pool| sqlx::query_as(&sql).fetch_one(pool).await).unwrap();
    n
}

async fn total(app: &TestApp, token: &str, path: &str) -> Value {
    app.get(path, token).await.expect(200).data()["total"].clone()
}

db_test!(async fn a_reindex_writes_only_changed_files_and_removes_deleted_ones(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    let first = version(60, &[], "", &[("src/gone.rs", "pub fn gone_away() {}\n")]);
    upload(&app, &token, id, tarball(&first)).await.expect(200);
    let before = file_rows(&app).await;
    assert_eq!(before.len(), 61);

    let second = version(60, &[3, 17, 42], "v2", &[("src/new.rs", "pub fn brand_new() {}\n")]);
    let reply = upload(&app, &token, id, tarball(&second)).await.expect(200);
    assert_eq!(reply.data()["files"], 61, "{}", reply.data());

    let after = file_rows(&app).await;
    let paths: BTreeSet<&String> = after.keys().collect();
    let expected: BTreeSet<&String> = second.iter().map(|(p, _)| p).collect();
    assert_eq!(paths, expected, "deleted files are gone, new ones are there");
    assert!(after.values().all(|ids| ids.len() == 1), "no replaced row is left: {after:?}");
    for (path, ids) in &after {
        let changed = ["src/m003.rs", "src/m017.rs", "src/m042.rs", "src/new.rs"].contains(&path.as_str());
        if changed {
            assert!(before.get(path).is_none_or(|old| old != ids), "{path} was written again");
        } else {
            assert_eq!(before.get(path), Some(ids), "{path} did not change and was not rewritten");
        }
    }
    assert_eq!(count(&app, "project_symbols").await, 61, "one definition per file");

    // Searches and symbols see exactly the new set.
    let search = |q: &str| format!("/api/v1/projects/{id}/search?q={q}&word=true");
    assert_eq!(total(&app, &token, &search("gone_away")).await, 0);
    assert_eq!(total(&app, &token, &search("brand_new")).await, 1);
    assert_eq!(total(&app, &token, &search("f17_v2")).await, 1);
    assert_eq!(total(&app, &token, &search("f17")).await, 0, "the old line of a changed file is gone");
    assert_eq!(total(&app, &token, &search("f18")).await, 1, "unchanged files are still searched");
    let symbols = |q: &str| format!("/api/v1/projects/{id}/symbols?q={q}");
    assert_eq!(total(&app, &token, &symbols("gone")).await, 0);
    assert_eq!(total(&app, &token, &symbols("brand_new")).await, 1);
    let f42 = app.get(&symbols("f42"), &token).await.expect(200);
    assert_eq!(f42.data()["items"][0]["name"], "f42_v2");
    assert_eq!(f42.data()["total"], 1);
    let files = app.get(&format!("/api/v1/projects/{id}/files?limit=100"), &token).await.expect(200);
    assert_eq!(files.data()["total"], 61);
    let content = app.get(&format!("/api/v1/projects/{id}/files/content?path=src/m018.rs"), &token).await.expect(200);
    assert_eq!(content.data()["content"], second[18].1);

    // Back to the first version: the changed files are written again, the new one removed.
    upload(&app, &token, id, tarball(&first)).await.expect(200);
    assert_eq!(total(&app, &token, &search("gone_away")).await, 1);
    assert_eq!(total(&app, &token, &search("f17_v2")).await, 0);
    assert_eq!(total(&app, &token, &search("f17")).await, 1);
    assert_eq!(total(&app, &token, &symbols("brand_new")).await, 0);
    assert_eq!(count(&app, "project_files").await, 61);
    assert_eq!(count(&app, "project_symbols").await, 61);
});

db_test!(async fn an_unchanged_reupload_writes_nothing_and_an_empty_one_removes_everything(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    let files = version(20, &[], "", &[]);
    upload(&app, &token, id, tarball(&files)).await.expect(200);
    let before = file_rows(&app).await;
    upload(&app, &token, id, tarball(&files)).await.expect(200);
    assert_eq!(file_rows(&app).await, before, "the same rows serve the new generation");
    assert_eq!(total(&app, &token, &format!("/api/v1/projects/{id}/search?q=f7&word=true")).await, 1);

    let only_readme = vec![("README.md".to_owned(), "# shop\n".to_owned())];
    upload(&app, &token, id, tarball(&only_readme)).await.expect(200);
    assert_eq!(file_rows(&app).await.into_keys().collect::<Vec<_>>(), ["README.md"]);
    assert_eq!(count(&app, "project_symbols").await, 0);
    assert_eq!(total(&app, &token, &format!("/api/v1/projects/{id}/search?q=pub")).await, 0);
});

db_test!(async fn racing_reindexes_leave_one_whole_version(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    upload(&app, &token, id, tarball(&version(200, &[], "", &[]))).await.expect(200);
    let put = |files: Vec<(String, String)>| {
        let (client, url, token) = (app.client.clone(), app.url(&format!("/api/v1/projects/{id}/files")), token.clone());
        tokio::spawn(async move {
            client.put(url).bearer_auth(token).header("content-type", "application/gzip")
                .body(tarball(&files)).send().await.unwrap().status().as_u16()
        })
    };
    let all: Vec<usize> = (0..200).collect();
    let a = put(version(200, &all[..100], "a", &[("a.rs", "fn only_a() {}\n")]));
    let b = put(version(200, &all[50..], "b", &[("b.rs", "fn only_b() {}\n")]));
    assert_eq!((a.await.unwrap(), b.await.unwrap()), (200, 200));

    let search = |q: &str| format!("/api/v1/projects/{id}/search?q={q}&limit=1");
    let (in_a, in_b) = (total(&app, &token, &search("_a()")).await, total(&app, &token, &search("_b()")).await);
    let whole_a = in_a == 101 && in_b == 0;
    let whole_b = in_a == 0 && in_b == 151;
    assert!(whole_a || whole_b, "one version, whole: {in_a} lines of a, {in_b} of b");
    assert_eq!(count(&app, "project_files").await, 201, "nothing left behind");
    assert_eq!(total(&app, &token, &format!("/api/v1/projects/{id}/files?limit=1")).await, 201);
});

db_test!(async fn another_instances_reindex_is_seen_at_once_by_what_this_one_keeps_in_memory(backend) {
    // Each instance keeps the live generation's files, symbols and texts in memory. A
    // re-index on another instance makes a new generation live, which this one must
    // read at once: nothing it kept of the old one may answer for it.
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    for budget in [None, Some(0)] {
        let other = app
            .sibling(|config| {
                if let Some(bytes) = budget {
                    config.codebase.cache_bytes = bytes;
                }
            })
            .await;
        let first = version(30, &[], "", &[("src/gone.rs", "pub fn gone_away() {}\n")]);
        upload(&app, &token, id, tarball(&first)).await.expect(200);
        let search = |q: &str| format!("/api/v1/projects/{id}/search?q={q}&word=true");
        let symbols = |q: &str| format!("/api/v1/projects/{id}/symbols?q={q}");
        // This instance reads (and keeps) the first version.
        assert_eq!(total(&other, &token, &search("f17")).await, 1);
        assert_eq!(total(&other, &token, &search("gone_away")).await, 1);
        assert_eq!(total(&other, &token, &symbols("f17")).await, 1);
        let path = other.get(&format!("/api/v1/projects/{id}/search?q=gone.rs"), &token).await.expect(200);
        assert_eq!(path.data()["items"][0]["path"], "src/gone.rs", "{}", path.data());

        let second = version(30, &[17], "v2", &[]);
        upload(&app, &token, id, tarball(&second)).await.expect(200);
        assert_eq!(total(&other, &token, &search("f17")).await, 0, "budget {budget:?}");
        assert_eq!(total(&other, &token, &search("gone_away")).await, 0);
        let changed = other.get(&search("f17_v2"), &token).await.expect(200);
        assert_eq!(changed.data()["total"], 1);
        assert_eq!(changed.data()["items"][0]["snippet"], "pub fn f17_v2() -> u32 {");
        let symbol = other.get(&symbols("f17"), &token).await.expect(200);
        assert_eq!(symbol.data()["total"], 1);
        assert_eq!(symbol.data()["items"][0]["name"], "f17_v2");
        let path = other.get(&format!("/api/v1/projects/{id}/search?q=gone.rs"), &token).await.expect(200);
        assert_eq!(path.data()["total"], 0, "{}", path.data());
        drop(other);
    }
});

db_test!(async fn files_indexed_before_filters_were_stored_are_still_found(backend) {
    // Rows written before migration 0014 have no trigram filter (`grams` NULL). An
    // instance reading such a generation computes their filters from the text: a search
    // finds their lines exactly as it finds a filtered file's.
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    let files = version(30, &[], "", &[("src/old.rs", "pub fn kept_from_before() {}\n")]);
    upload(&app, &token, id, tarball(&files)).await.expect(200);
    let cleared = codesherpa::with_pool!(&app.db, |pool| sqlx::query(
        "UPDATE project_contents SET grams = NULL"
    )
    .execute(pool)
    .await
    .map(|done| done.rows_affected()))
    .unwrap();
    assert!(cleared >= 31, "{cleared}");
    let other = app.sibling(|_| {}).await;
    let search = |q: &str| format!("/api/v1/projects/{id}/search?q={q}");
    let found = other.get(&search("kept_from_before"), &token).await.expect(200);
    assert_eq!(found.data()["total"], 1, "{}", found.data());
    assert_eq!(found.data()["items"][0]["path"], "src/old.rs");
    assert_eq!(found.data()["items"][0]["line"], 1);
    assert_eq!(total(&other, &token, &format!("{}&word=true", search("f17"))).await, 1);
    assert_eq!(total(&other, &token, &search("no_such_text_anywhere")).await, 0);
});
