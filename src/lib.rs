//! CodeSherpa API server: auth, users, agents, projects and AI chat over REST and
//! server-sent events, on SQLite or PostgreSQL. `app::run` is the entry point shared by the binary and the tests.

pub mod agents;
pub mod app;
pub mod auth;
pub mod chat;
pub mod codebase;
pub mod config;
pub mod console;
pub mod db;
pub mod docs;
pub mod env;
pub mod error;
pub mod extract;
pub mod health;
pub mod http;
pub mod integrations;
pub mod jobs;
pub mod llm;
pub mod memory;
pub mod orchestrator;
pub mod pagination;
pub mod projects;
pub mod redis_bus;
pub mod specialists;
pub mod state;
pub mod telemetry;
pub mod users;
pub mod validate;
pub mod ws;
