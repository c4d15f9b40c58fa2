//! Authentication: registration, login, rotating refresh tokens and the `AuthUser` guard.

pub mod extractor;
pub mod limit;
pub mod password;
pub mod routes;
pub mod settings;
pub mod store;
pub mod tokens;

pub use extractor::AuthUser;
pub use settings::Settings;
