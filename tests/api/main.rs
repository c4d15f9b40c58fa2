//! Black-box tests through the real server on a real port. Every test runs on SQLite and
//! on PostgreSQL (each test on its own database); the PostgreSQL copies are reported as
//! ignored unless `TEST_POSTGRES_URL` is set (see `db_test!`).

#[macro_use]
mod helpers;

mod agents;
mod auth;
mod chat;
mod cluster;
mod code_reindex;
mod code_search;
mod code_symbols;
mod codebase;
mod codebase_sync;
mod console;
mod contract;
mod envelope;
mod github;
mod github_access;
mod github_accounts;
mod github_context;
mod jobs;
mod jobs_cli;
mod limits;
mod lists;
mod operations;
mod project_map;
mod projects;
mod providers;
mod redis_partition;
mod retention;
mod robustness;
mod users;
mod whatsapp;
mod whatsapp_notify;
mod whatsapp_production;
mod ws;
mod ws_caps;
