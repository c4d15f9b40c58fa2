//! Cross-cutting HTTP concerns: observability, the error envelope for framework
//! failures, security headers, CORS and rate limiting.

pub mod layers;
pub mod metrics;
pub mod rate_limit;
