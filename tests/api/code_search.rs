//! Code search parameters and bounds (SPEC §6.4): every answer equals a plain scan of the
//! uploaded lines — for LIKE and FTS syntax characters, non-ASCII text, case, whole
//! words, regular expressions and path globs — totals are capped, a deadline gives a
//! partial answer, and the order is definitions, exact case, the rest.

use std::time::Duration;

use regex::RegexBuilder;
use serde_json::Value;

use crate::codebase::{github_tarball, project, upload};
use crate::helpers::{spawn, spawn_with, TestApp};

const FILES: &[(&str, &str)] = &[
    ("README.md", "# Café Ünïcode\nSearch for café, CAFÉ and Straße / STRASSE.\n日本語のテキスト 日本\nemoji 🦀 crab\n\n   \nGreek σοφός ΣΟΦΌΣ\n"),
    ("odd.txt", "5 \u{212A} is a Kelvin sign, ok\n\u{17F}elf is a long s\na_b a%b a[b] a\\b ab\n\"quoted\" 'single' `tick`\nNEAR(a b) AND OR NOT\nx AND y near and\ntab\there $1 -- ; ::\n"),
    ("scripts/tool.py", "import os\n\ndef total(items):\n    return sum(items)  # Total\n\nclass Self_Test:\n    def run(self):\n        print(\"self\", total([1]))\n"),
    ("src/deep/nested/mod.rs", "pub const LIMIT: usize = 100;\n/// [link] and `code`\npub fn total_amount(x: &[u8]) -> usize {\n    x.len() * LIMIT % 7\n}\n"),
    ("src/lib.rs", "use std::fmt;\n\npub struct Total {\n    amount: u64,\n}\n\nimpl Total {\n    pub fn total(&self) -> u64 {\n        self.amount\n    }\n}\n\nfn escape(s: &str) -> String {\n    s.replace('\\\\', \"\\\\\\\\\").replace('%', \"\\\\%\")\n}\n"),
    ("web/app.js", "export function fetchTotal(url) {\n  return fetch(url).then(r => r.json());\n}\nconst re = /a[b]c/; // AND \"NEAR\"\n"),
];

const LITERALS: &[&str] = &[
    "fn",
    "self",
    "SELF",
    "Self",
    "%",
    "_",
    "a_b",
    "a%b",
    "[",
    "[b]",
    "\\",
    "a\\b",
    "\\\\",
    "\"",
    "\"quoted\"",
    "'",
    "`",
    "AND",
    "and",
    "NEAR",
    "NEAR(",
    "OR NOT",
    "é",
    "É",
    "café",
    "CAFÉ",
    "straße",
    "STRASSE",
    "日本",
    "🦀",
    "k",
    "K",
    "ok",
    "s",
    "elf",
    "total",
    "Total",
    "TOTAL",
    "x",
    "ab",
    "a b",
    "(",
    ")",
    "*",
    "?",
    "  ",
    "return",
    "print",
    "const",
    "\u{17F}",
    "\u{212A}",
    "$1",
    "--",
    "::",
    ";",
    "σοφός",
    "ΣΟΦΌΣ",
    "ς",
];

/// Patterns, and whether they may be searched as whole words (the scan below checks words
/// on substrings, where anchors and `\b` would mean something else).
const REGEXES: &[(&str, bool)] = &[
    (r"fn\s+\w+", true),
    (r"^\s*def ", false),
    (r"[A-Z]{3,}", true),
    (r"a.b", true),
    (r"\d+", true),
    (r"é|ü", true),
    (r"(?i)near", true),
    (r"\bself\b", false),
    (r"(?x) s e l f # comment", true),
    (r".", true),
    (r"café$", false),
    (r"[[:punct:]]{2}", true),
    (r"(?-i)Total", true),
    (r"a*", false),
];

const GLOBS: &[&str] = &[
    "*.rs",
    "src/**/*.rs",
    "*.md",
    "src/*.rs",
    "**/mod.rs",
    "scripts/*",
    "*.{py,js}",
    "web/app.js",
];

#[derive(Clone, Copy, Debug)]
struct Mode<'a> {
    case_sensitive: bool,
    word: bool,
    regex: bool,
    glob: Option<&'a str>,
}

fn is_identifier(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Unicode simple case folding for the characters of this corpus.
fn fold(c: char) -> char {
    match c {
        '\u{17F}' => 's',
        '\u{212A}' => 'k',
        'ς' => 'σ',
        _ => {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(l), None) => l,
                _ => c,
            }
        }
    }
}

fn glob_matches(glob: &str, path: &str) -> bool {
    let glob = if glob.contains('/') {
        glob.to_owned()
    } else {
        format!("**/{glob}")
    };
    globset::GlobBuilder::new(&glob)
        .literal_separator(true)
        .build()
        .unwrap()
        .compile_matcher()
        .is_match(path)
}

/// Whether `line[start..end]` (in chars) is not touched by identifier characters.
fn bounded(line: &[char], start: usize, end: usize) -> bool {
    let touched_before = start > 0 && is_identifier(line[start - 1]);
    let touched_after = end < line.len() && is_identifier(line[end]);
    !touched_before && !touched_after
}

fn literal_matches(line: &str, query: &str, mode: Mode) -> bool {
    let line: Vec<char> = line.chars().collect();
    let query: Vec<char> = query.chars().collect();
    let same = |a: char, b: char| {
        if mode.case_sensitive {
            a == b
        } else {
            fold(a) == fold(b)
        }
    };
    (0..=line.len().saturating_sub(query.len()))
        .filter(|s| s + query.len() <= line.len())
        .any(|s| {
            query.iter().enumerate().all(|(i, q)| same(line[s + i], *q))
                && (!mode.word || bounded(&line, s, s + query.len()))
        })
}

fn regex_matches(line: &str, pattern: &str, mode: Mode) -> bool {
    let build = |p: &str| {
        RegexBuilder::new(p)
            .case_insensitive(!mode.case_sensitive)
            .build()
            .unwrap()
    };
    if !mode.word {
        return build(pattern).is_match(line);
    }
    // A newline ends a `(?x)` comment before the closing parenthesis.
    let end = if pattern.starts_with("(?x)") {
        "\n"
    } else {
        ""
    };
    let whole = build(&format!("^(?:{pattern}{end})$"));
    let chars: Vec<char> = line.chars().collect();
    (0..=chars.len()).any(|s| {
        (s..=chars.len()).any(|e| {
            bounded(&chars, s, e) && whole.is_match(&chars[s..e].iter().collect::<String>())
        })
    })
}

/// The lines a plain scan of FILES finds, by path and line.
fn scan(query: &str, mode: Mode) -> Vec<(String, i64)> {
    let mut found = Vec::new();
    let mut files = FILES.to_vec();
    files.sort();
    for (path, content) in files {
        if mode.glob.is_some_and(|glob| !glob_matches(glob, path)) {
            continue;
        }
        for (i, line) in content.lines().enumerate() {
            let hit = if mode.regex {
                regex_matches(line, query, mode)
            } else {
                literal_matches(line, query, mode)
            };
            if hit && !line.trim().is_empty() {
                found.push((path.to_owned(), i as i64 + 1));
            }
        }
    }
    found
}

fn search_url(id: i64, query: &str, mode: Mode, limit: usize) -> String {
    let mut params = vec![("q", query.to_owned()), ("limit", limit.to_string())];
    if mode.case_sensitive {
        params.push(("case", "sensitive".into()));
    }
    if mode.word {
        params.push(("word", "true".into()));
    }
    if mode.regex {
        params.push(("regex", "true".into()));
    }
    if let Some(glob) = mode.glob {
        params.push(("path", glob.into()));
    }
    format!(
        "/api/v1/projects/{id}/search?{}",
        serde_urlencoded::to_string(&params).unwrap()
    )
}

fn positions(data: &Value) -> Vec<(String, i64)> {
    let mut items: Vec<(String, i64)> = data["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["path"].as_str().unwrap().to_owned(),
                i["line"].as_i64().unwrap(),
            )
        })
        .collect();
    items.sort();
    items
}

async fn assert_like_scan(app: &TestApp, token: &str, id: i64, query: &str, mode: Mode<'_>) {
    let expected = scan(query, mode);
    assert!(
        expected.len() < 100,
        "{query:?} {mode:?} matches too much to compare"
    );
    let found = app
        .get(&search_url(id, query, mode, 100), token)
        .await
        .expect(200);
    let data = found.data();
    assert_eq!(positions(data), expected, "{query:?} {mode:?}");
    assert_eq!(data["total"], expected.len() as i64, "{query:?} {mode:?}");
    assert_eq!(
        (&data["total_exact"], &data["partial"]),
        (&Value::Bool(true), &Value::Bool(false))
    );
}

db_test!(async fn search_answers_what_a_line_scan_finds(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    upload(&app, &token, id, github_tarball(FILES)).await.expect(200);
    let mut compared = 0;
    for (n, query) in LITERALS.iter().enumerate() {
        for (case_sensitive, word) in [(false, false), (true, false), (false, true), (true, true)] {
            let mode = Mode { case_sensitive, word, regex: false, glob: None };
            assert_like_scan(&app, &token, id, query, mode).await;
            compared += 1;
        }
        let glob = Some(GLOBS[n % GLOBS.len()]);
        assert_like_scan(&app, &token, id, query, Mode { case_sensitive: false, word: n % 2 == 0, regex: false, glob }).await;
        compared += 1;
    }
    for (n, (pattern, words)) in REGEXES.iter().enumerate() {
        for (case_sensitive, word) in [(false, false), (true, false), (false, true), (true, true)] {
            if word && !words {
                continue;
            }
            let mode = Mode { case_sensitive, word, regex: true, glob: None };
            assert_like_scan(&app, &token, id, pattern, mode).await;
            compared += 1;
        }
        let glob = Some(GLOBS[n % GLOBS.len()]);
        assert_like_scan(&app, &token, id, pattern, Mode { case_sensitive: false, word: false, regex: true, glob }).await;
        compared += 1;
    }
    assert!(compared > 350, "{compared}");
});

db_test!(async fn definitions_come_first_then_exact_case_then_the_rest(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    let files = [
        ("a.rs", "let x = TOTAL;\nlet y = total;\n"),
        ("b.rs", "fn total_amount() {}\n"),
        ("c.rs", "// total\nfn total() {}\n"),
    ];
    upload(&app, &token, id, github_tarball(&files)).await.expect(200);
    let found = app.get(&format!("/api/v1/projects/{id}/search?q=total"), &token).await.expect(200);
    let order: Vec<(String, i64)> = found.data()["items"].as_array().unwrap().iter()
        .map(|i| (i["path"].as_str().unwrap().to_owned(), i["line"].as_i64().unwrap())).collect();
    let expected = [("c.rs", 2), ("b.rs", 1), ("a.rs", 2), ("c.rs", 1), ("a.rs", 1)];
    assert_eq!(order, expected.map(|(p, l)| (p.to_owned(), l)), "{}", found.data());
});

db_test!(async fn totals_are_exact_up_to_a_thousand(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    let many: String = (0..1500).map(|i| format!("needle {i}\n")).collect();
    let exact: String = (0..1000).map(|i| format!("pin {i}\n")).collect();
    upload(&app, &token, id, github_tarball(&[("many.txt", many.as_str()), ("exact.txt", exact.as_str())])).await.expect(200);
    let url = |q: &str| format!("/api/v1/projects/{id}/search?q={q}&limit=5");
    let capped = app.get(&url("needle"), &token).await.expect(200);
    assert_eq!((&capped.data()["total"], &capped.data()["total_exact"], &capped.data()["partial"]), (&1000.into(), &false.into(), &false.into()));
    let lines: Vec<i64> = capped.data()["items"].as_array().unwrap().iter().map(|i| i["line"].as_i64().unwrap()).collect();
    assert_eq!(lines, [1, 2, 3, 4, 5], "by path and line");
    let full = app.get(&url("pin"), &token).await.expect(200);
    assert_eq!((&full.data()["total"], &full.data()["total_exact"]), (&1000.into(), &true.into()));
    let short = app.get(&url("n"), &token).await.expect(200);
    assert_eq!((&short.data()["total"], &short.data()["total_exact"]), (&1000.into(), &false.into()), "one-letter queries work");
});

db_test!(async fn a_search_past_its_deadline_answers_partially(backend) {
    let app = spawn_with(backend, |config| config.codebase.search_timeout = Duration::ZERO).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    upload(&app, &token, id, github_tarball(FILES)).await.expect(200);
    for query in ["self", "se", "(?i)self&regex=true"] {
        let found = app.get(&format!("/api/v1/projects/{id}/search?q={query}"), &token).await.expect(200);
        let data = found.data();
        assert_eq!((&data["partial"], &data["total_exact"]), (&true.into(), &false.into()), "{query}: {data}");
        assert_eq!(data["total"].as_i64().unwrap(), data["items"].as_array().unwrap().len() as i64);
    }
});

db_test!(async fn search_parameters_are_checked(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    upload(&app, &token, id, github_tarball(FILES)).await.expect(200);
    let search = |params: &str| format!("/api/v1/projects/{id}/search?{params}");
    for (params, field) in [
        ("q=a(&regex=true", "q"),
        ("q=%5B&regex=true", "q"),
        ("q=x&path=a%5B", "path"),
        ("q=x&path=", "path"),
        ("q=x&case=upper", "case"),
        ("q=x&word=maybe", "word"),
        ("q=x&regex=1x", "regex"),
    ] {
        let refused = app.get(&search(params), &token).await.expect(422);
        assert_eq!(refused.code(), "validation_error", "{params}");
        assert_eq!(refused.error_fields(), [field], "{params}");
    }
    let long_path = format!("q=x&path={}", "a".repeat(1025));
    assert_eq!(app.get(&search(&long_path), &token).await.expect(422).error_fields(), ["path"]);
    // What is not a regular expression is searched literally.
    let literal = app.get(&search("q=a(&regex=false&case=insensitive&word=false"), &token).await.expect(200);
    assert_eq!(literal.data()["total"], 0);
    let (mallory, _) = app.user().await;
    app.get(&search("q=self&regex=true&path=*.rs"), &mallory).await.expect(404);
});

db_test!(async fn the_document_declares_the_search_contract(backend) {
    let app = spawn(backend).await;
    let doc: Value = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let operation = &doc["paths"]["/api/v1/projects/{id}/search"]["get"];
    let params: std::collections::BTreeMap<&str, &Value> = operation["parameters"].as_array().unwrap().iter()
        .map(|p| (p["name"].as_str().unwrap(), &p["schema"])).collect();
    assert_eq!(params["case"]["enum"], serde_json::json!(["insensitive", "sensitive"]));
    assert_eq!((&params["word"]["type"], &params["regex"]["type"]), (&"boolean".into(), &"boolean".into()));
    assert_eq!((&params["path"]["minLength"], &params["path"]["maxLength"]), (&1.into(), &1024.into()));
    let result = &doc["components"]["schemas"]["SearchResult"];
    assert_eq!(result["required"], serde_json::json!(["items", "total", "total_exact", "partial"]));
    assert_eq!(result["properties"]["total"]["maximum"], 1000);
    let symbols = &doc["paths"]["/api/v1/projects/{id}/symbols"]["get"]["parameters"];
    let kind = symbols.as_array().unwrap().iter().find(|p| p["name"] == "kind").unwrap();
    let kinds = ["function", "method", "class", "struct", "enum", "trait", "interface", "type", "constant", "module"];
    assert_eq!(kind["schema"]["enum"], serde_json::json!(kinds));
});

db_test!(async fn definitions_past_the_cap_still_come_first(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    let many: String = (0..1500).map(|i| format!("total {i}\n")).collect();
    let files = [("a.txt", many.as_str()), ("z.py", "def totally():\n    pass\n"), ("zz.go", "package z\n\nfunc total() {}\n")];
    upload(&app, &token, id, github_tarball(&files)).await.expect(200);
    let found = app.get(&format!("/api/v1/projects/{id}/search?q=total&limit=3"), &token).await.expect(200);
    let order: Vec<(String, i64)> = found.data()["items"].as_array().unwrap().iter()
        .map(|i| (i["path"].as_str().unwrap().to_owned(), i["line"].as_i64().unwrap())).collect();
    assert_eq!(order, [("zz.go".to_owned(), 3), ("z.py".to_owned(), 1), ("a.txt".to_owned(), 1)], "{}", found.data());
    assert_eq!((&found.data()["total"], &found.data()["total_exact"]), (&1000.into(), &false.into()));
});

db_test!(async fn many_candidate_files_are_read_in_path_order(backend) {
    // More candidate files than PostgreSQL lists at once, so its pages and then the rest
    // of the candidates are read; SQLite lists them all. The answers must be the same.
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    let files: Vec<(String, String)> = (0..300)
        .map(|i| {
            let mut content = format!("// file {i}\nlet common = {i};\ncommon += 1;\nreturn common;\n");
            if i % 3 == 0 {
                content.push_str(&"many_lines();\n".repeat(12));
            }
            if i % 60 == 7 {
                content.push_str("a rare_needle here\n");
            }
            (format!("d{}/f{i:03}.txt", i % 7), content)
        })
        .collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    upload(&app, &token, id, github_tarball(&refs)).await.expect(200);
    let mut sorted = files.clone();
    sorted.sort();
    let scan = |query: &str| -> Vec<(String, i64)> {
        sorted.iter().flat_map(|(path, content)| {
            content.lines().enumerate().filter(|(_, l)| l.contains(query)).map(|(i, _)| (path.clone(), i as i64 + 1)).collect::<Vec<_>>()
        }).collect()
    };
    for (query, exact) in [("common", true), ("many_lines", false), ("rare_needle", true), ("file 1", true)] {
        let expected = scan(query);
        let found = app.get(&format!("/api/v1/projects/{id}/search?q={query}&limit=100"), &token).await.expect(200);
        let data = found.data();
        assert_eq!(data["total"], expected.len().min(1000) as i64, "{query}");
        assert_eq!((&data["total_exact"], &data["partial"]), (&exact.into(), &false.into()), "{query}");
        let items: Vec<(String, i64)> = data["items"].as_array().unwrap().iter()
            .map(|i| (i["path"].as_str().unwrap().to_owned(), i["line"].as_i64().unwrap())).collect();
        let first: Vec<(String, i64)> = expected.into_iter().take(100).collect();
        assert_eq!(items, first, "{query}: the first lines by path and line");
    }
    let glob = app.get(&format!("/api/v1/projects/{id}/search?q=common&path=d3/*&limit=100"), &token).await.expect(200);
    let in_d3 = files.iter().filter(|(p, _)| p.starts_with("d3/")).count() as i64;
    assert_eq!(glob.data()["total"], in_d3 * 3);
});
