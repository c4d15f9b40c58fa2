//! Cross-cutting HTTP concerns: observability, the error envelope for framework
//! failures, security headers, CORS and rate limiting.

pub mod body_deadline;
pub mod edge;
pub mod layers;
pub mod metrics;
pub mod rate_limit;
pub mod request_id;
pub mod serve;
pub mod settings;

pub use settings::Settings;
