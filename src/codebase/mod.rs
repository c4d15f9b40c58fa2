//! Codebase knowledge: a project's files — uploaded as an archive or synced from its
//! repository — indexed for substring search, listed, read, and retrieved into chats.

pub mod archive;
pub mod files;
pub mod index;
pub mod retrieval;
pub mod routes;
pub mod search;
pub mod settings;
pub mod sync;

pub use settings::Settings;
