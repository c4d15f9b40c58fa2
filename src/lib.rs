//! CodeSherpa API server: auth, users, agents and projects over REST, on SQLite or
//! PostgreSQL. `app::run` is the entry point shared by the binary and the tests.

pub mod agents;
pub mod app;
pub mod auth;
pub mod config;
pub mod db;
pub mod docs;
pub mod error;
pub mod extract;
pub mod health;
pub mod http;
pub mod pagination;
pub mod projects;
pub mod state;
pub mod telemetry;
pub mod users;
pub mod validate;
