//! Symbols (SPEC §6.4): definitions read with tree-sitter from Rust, Python, JavaScript,
//! TypeScript, Go and Java files, looked up by name prefix and kind, owner-only, swapped
//! with the files; and search ranks them first.

use serde_json::{json, Value};

use crate::codebase::{github_tarball, project, upload};
use crate::helpers::spawn;

const RUST: &str = r#"use std::fmt;

pub const LIMIT: usize = 10;
static COUNTER: u32 = 0;

pub struct Cart {
    items: Vec<u64>,
}

pub enum State { Open, Closed }

pub type Money = u64;

pub trait Priced {
    fn price(&self) -> Money;
}

impl Priced for Cart {
    fn price(&self) -> Money {
        self.items.iter().sum()
    }
}

impl<T> Wrapper<T> {
    pub fn new() -> Self {
        fn helper() {}
        todo!()
    }
}

mod tests {
    fn checkout_total() {}
}

pub fn checkout_total(cart: &Cart) -> Money {
    cart.price()
}
"#;

const PYTHON: &str = r#"import os

def total(items):
    return sum(items)

class Cart:
    def __init__(self):
        self.items = []

    @property
    def size(self):
        def inner():
            pass
        return len(self.items)
"#;

const JAVASCRIPT: &str = r#"export const API_URL = "https://example.com";
let counter = 0;

export function fetchTotal(url) {
  return fetch(url);
}

const handler = (req) => req.body;

class Store {
  constructor() {}
  load(id) { return id; }
}
"#;

const TYPESCRIPT: &str = r#"export interface Shape {
  area(): number;
}

export type Id = string;

enum Color { Red, Green }

namespace Geometry {
  export function origin(): number { return 0; }
}

export abstract class Base implements Shape {
  abstract area(): number;
  describe(): string { return "base"; }
}
"#;

const GO: &str = r#"package shop

const (
	MaxItems = 10
	MinItems, Other = 1, 2
)

type Cart struct {
	Items []int
}

type Pricer interface {
	Price() int
}

type ID = string

func NewCart() *Cart {
	return &Cart{}
}

func (c *Cart) Total() int {
	return 0
}
"#;

const JAVA: &str = r#"package shop;

public class Cart {
    public Cart() {}

    public int total() { return 0; }

    interface Visitor {
        void visit(Cart cart);
    }

    enum Size { SMALL, LARGE }
}
"#;

fn files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("src/cart.rs", RUST),
        ("shop/cart.py", PYTHON),
        ("web/store.js", JAVASCRIPT),
        ("web/shape.ts", TYPESCRIPT),
        ("go/cart.go", GO),
        ("java/Cart.java", JAVA),
        ("README.md", "# fn not_a_symbol() {}\n"),
    ]
}

/// `name kind line-end_line container` for each symbol of one file, by line.
fn listed(items: &[Value], path: &str) -> Vec<String> {
    let mut rows: Vec<(i64, String)> = items
        .iter()
        .filter(|s| s["path"] == path)
        .map(|s| {
            let container = s["container"].as_str().unwrap_or("-");
            (
                s["line"].as_i64().unwrap(),
                format!(
                    "{} {} {}-{} {}",
                    s["name"].as_str().unwrap(),
                    s["kind"].as_str().unwrap(),
                    s["line"],
                    s["end_line"],
                    container
                ),
            )
        })
        .collect();
    rows.sort();
    rows.into_iter().map(|(_, row)| row).collect()
}

db_test!(async fn symbols_are_read_from_each_language(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    upload(&app, &token, id, github_tarball(&files())).await.expect(200);
    let all = app.get(&format!("/api/v1/projects/{id}/symbols?limit=100"), &token).await.expect(200);
    let items = all.data()["items"].as_array().unwrap().clone();
    let expected: [(&str, &[&str]); 7] = [
        ("src/cart.rs", &[
            "LIMIT constant 3-3 -", "COUNTER constant 4-4 -", "Cart struct 6-8 -", "State enum 10-10 -",
            "Money type 12-12 -", "Priced trait 14-16 -", "price method 15-15 Priced", "price method 19-21 Cart",
            "new method 25-28 Wrapper", "helper function 26-26 Wrapper", "tests module 31-33 -",
            "checkout_total function 32-32 tests", "checkout_total function 35-37 -",
        ]),
        ("shop/cart.py", &[
            "total function 3-4 -", "Cart class 6-14 -", "__init__ method 7-8 Cart", "size method 11-14 Cart",
            "inner function 12-13 Cart",
        ]),
        ("web/store.js", &[
            "API_URL constant 1-1 -", "fetchTotal function 4-6 -", "handler function 8-8 -", "Store class 10-13 -",
            "constructor method 11-11 Store", "load method 12-12 Store",
        ]),
        ("web/shape.ts", &[
            "Shape interface 1-3 -", "area method 2-2 Shape", "Id type 5-5 -", "Color enum 7-7 -",
            "Geometry module 9-11 -", "origin function 10-10 Geometry", "Base class 13-16 -", "area method 14-14 Base",
            "describe method 15-15 Base",
        ]),
        ("go/cart.go", &[
            "MaxItems constant 4-4 -", "MinItems constant 5-5 -", "Other constant 5-5 -", "Cart struct 8-10 -",
            "Pricer interface 12-14 -", "ID type 16-16 -", "NewCart function 18-20 -", "Total method 22-24 Cart",
        ]),
        ("java/Cart.java", &[
            "Cart class 3-13 -", "Cart method 4-4 Cart", "total method 6-6 Cart", "Visitor interface 8-10 Cart",
            "visit method 9-9 Visitor", "Size enum 12-12 Cart",
        ]),
        ("README.md", &[]),
    ];
    for (path, symbols) in expected {
        assert_eq!(listed(&items, path), symbols, "{path}");
    }
    assert_eq!(all.data()["total"], 47);
});

db_test!(async fn symbols_are_looked_up_by_prefix_and_kind(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    upload(&app, &token, id, github_tarball(&files())).await.expect(200);
    let lookup = |params: &str| format!("/api/v1/projects/{id}/symbols?{params}");
    let names = |data: &Value| -> Vec<String> {
        data["items"].as_array().unwrap().iter()
            .map(|s| format!("{}@{}:{}", s["name"].as_str().unwrap(), s["path"].as_str().unwrap(), s["line"])).collect()
    };
    let cart = app.get(&lookup("q=cart"), &token).await.expect(200);
    assert_eq!(names(cart.data()), ["Cart@go/cart.go:8", "Cart@java/Cart.java:3", "Cart@java/Cart.java:4", "Cart@shop/cart.py:6", "Cart@src/cart.rs:6"], "exact names first");
    let checkout = app.get(&lookup("q=CHECKOUT"), &token).await.expect(200);
    assert_eq!(checkout.data()["total"], 2, "case-insensitive prefix");
    let total = app.get(&lookup("q=total&limit=1"), &token).await.expect(200);
    assert_eq!(names(total.data()), ["total@java/Cart.java:6"], "the exact case first");
    assert_eq!(total.data()["total"], 3);
    let to = app.get(&lookup("q=to"), &token).await.expect(200);
    assert_eq!(names(to.data()), ["Total@go/cart.go:22", "total@java/Cart.java:6", "total@shop/cart.py:3"]);
    let methods = app.get(&lookup("q=price&kind=method"), &token).await.expect(200);
    assert_eq!(methods.data()["total"], 2);
    let structs = app.get(&lookup("kind=struct"), &token).await.expect(200);
    assert_eq!(names(structs.data()), ["Cart@go/cart.go:8", "Cart@src/cart.rs:6"]);
    let none = app.get(&lookup("q=zzz"), &token).await.expect(200);
    assert_eq!(none.data(), &json!({"items": [], "total": 0}));
    for (params, field) in [("kind=macro", "kind"), ("limit=0", "limit"), ("limit=101", "limit"), ("q=a%00", "q")] {
        assert_eq!(app.get(&lookup(params), &token).await.expect(422).error_fields(), [field], "{params}");
    }
    let long = format!("q={}", "a".repeat(201));
    assert_eq!(app.get(&lookup(&long), &token).await.expect(422).error_fields(), ["q"]);
    let (mallory, _) = app.user().await;
    assert_eq!(app.get(&lookup("q=cart"), &mallory).await.expect(404).code(), "not_found");
    let found = codesherpa::codebase::symbols::find(&app.db, id, "Cart").await.unwrap();
    assert_eq!(found.len(), 5);
    assert!(codesherpa::codebase::symbols::find(&app.db, id, "cart").await.unwrap().is_empty(), "find is exact");
});

db_test!(async fn a_reindex_replaces_the_symbols_with_the_files(backend) {
    let app = spawn(backend).await;
    let (token, _) = app.user().await;
    let id = project(&app, &token).await;
    let empty = app.get(&format!("/api/v1/projects/{id}/symbols"), &token).await.expect(200);
    assert_eq!(empty.data()["total"], 0, "nothing indexed yet");
    upload(&app, &token, id, github_tarball(&files())).await.expect(200);
    upload(&app, &token, id, github_tarball(&[("src/lib.rs", "pub fn fresh() {}\n")])).await.expect(200);
    let all = app.get(&format!("/api/v1/projects/{id}/symbols"), &token).await.expect(200);
    assert_eq!(all.data()["items"], json!([{"name": "fresh", "kind": "function", "path": "src/lib.rs", "line": 1, "end_line": 1, "container": null}]));
    let (rows,): (i64,) = codesherpa::with_pool!(&app.db, |pool| sqlx::query_as("SELECT COUNT(*) FROM project_symbols").fetch_one(pool).await).unwrap();
    assert_eq!(rows, 1, "the old generation's symbols are deleted");
    app.delete(&format!("/api/v1/projects/{id}"), &token).await.expect(200);
    let (rows,): (i64,) = codesherpa::with_pool!(&app.db, |pool| sqlx::query_as("SELECT COUNT(*) FROM project_symbols").fetch_one(pool).await).unwrap();
    assert_eq!(rows, 0, "deleted with the project");
});
