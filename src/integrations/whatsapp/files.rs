//! Files of code shared from a phone (SPEC §6.3): a `document` whose file is text is
//! fetched through the Graph media API and read as UTF-8; anything else gets a reply
//! saying why and what is supported.

use super::{
    client::{Downloaded, GraphError},
    pace::Pacer,
    payload::Media,
};
use crate::{jobs::Stop, state::AppState};

/// The largest file read: 1 MiB.
pub const FILE_MAX_BYTES: usize = 1024 * 1024;

/// What CodeSherpa reads, told to anyone who sends something else.
pub const SUPPORTED: &str = "CodeSherpa reads text messages only, and files of code shared as \
    a document: a text or source file (.rs, .py, .js, .ts, .go, .java, .json, .md, …) up to 1 MiB.";

/// Source-code and text extensions read whatever MIME type the phone gave the file
/// (phones often send `application/octet-stream` for them).
const TEXT_EXTENSIONS: &[&str] = &[
    "bash",
    "bat",
    "c",
    "cc",
    "cfg",
    "cjs",
    "clj",
    "cmake",
    "conf",
    "cpp",
    "cs",
    "css",
    "csv",
    "cxx",
    "dart",
    "diff",
    "dockerfile",
    "el",
    "env",
    "erl",
    "ex",
    "exs",
    "fs",
    "go",
    "gradle",
    "graphql",
    "groovy",
    "h",
    "hpp",
    "hs",
    "htm",
    "html",
    "ini",
    "java",
    "jl",
    "js",
    "json",
    "jsx",
    "kt",
    "kts",
    "less",
    "lua",
    "m",
    "md",
    "mjs",
    "ml",
    "nim",
    "nix",
    "patch",
    "php",
    "pl",
    "proto",
    "ps1",
    "py",
    "r",
    "rb",
    "rs",
    "rst",
    "sass",
    "scala",
    "scss",
    "sh",
    "sol",
    "sql",
    "svelte",
    "swift",
    "tex",
    "tf",
    "toml",
    "ts",
    "tsx",
    "txt",
    "vue",
    "xml",
    "yaml",
    "yml",
    "zig",
    "zsh",
];

/// Names that are source files without an extension.
const TEXT_NAMES: &[&str] = &["dockerfile", "makefile", "gemfile", "rakefile", "procfile"];

/// A shared file, once looked at.
#[derive(Debug, PartialEq, Eq)]
pub enum File {
    /// Its text, to be reviewed or explained.
    Text(String),
    /// The reply that says why it is not read.
    Refused(String),
}

/// Reads the shared file when it is text and small enough; otherwise says why not.
pub async fn read(
    state: &AppState,
    phone_number_id: &str,
    media: &Media,
    pacer: &mut Pacer,
) -> Result<File, Stop> {
    let name = display_name(media);
    if !is_text(media.mime_type.as_deref(), media.filename.as_deref()) {
        return Ok(File::Refused(format!(
            "{name} is not a text file, so CodeSherpa cannot read it. {SUPPORTED}"
        )));
    }
    let graph = &state.whatsapp.graph;
    let info = loop {
        match graph.media(&media.id, phone_number_id).await {
            Ok(info) => break info,
            Err(err) => match unavailable(err) {
                Ok(err) => pacer.after_error(err).await?,
                Err(refusal) => return Ok(File::Refused(refusal)),
            },
        }
    };
    if info
        .file_size
        .is_some_and(|size| size > FILE_MAX_BYTES as u64)
    {
        return Ok(too_large(&name));
    }
    let downloaded = loop {
        match graph.download(&info.url, FILE_MAX_BYTES).await {
            Ok(downloaded) => break downloaded,
            Err(err) => match unavailable(err) {
                Ok(err) => pacer.after_error(err).await?,
                Err(refusal) => return Ok(File::Refused(refusal)),
            },
        }
    };
    Ok(match downloaded {
        Downloaded::TooLarge => too_large(&name),
        Downloaded::Bytes(bytes) => match as_text(bytes) {
            Some(text) => File::Text(text),
            None => File::Refused(format!(
                "{name} holds binary data, so CodeSherpa cannot read it. {SUPPORTED}"
            )),
        },
    })
}

/// A permanent failure to fetch the file becomes a reply (the user can send it again);
/// anything else is handed back to be retried.
fn unavailable(err: GraphError) -> Result<GraphError, String> {
    match err {
        GraphError::Permanent { reason, .. } => {
            tracing::warn!(%reason, "a shared file could not be fetched");
            Err(
                "Sorry, that file could not be fetched from WhatsApp. Please send it again."
                    .to_owned(),
            )
        }
        err => Ok(err),
    }
}

fn too_large(name: &str) -> File {
    File::Refused(format!(
        "{name} is larger than 1 MiB, so CodeSherpa cannot read it. Send a smaller file, or \
         paste the part you want reviewed. {SUPPORTED}"
    ))
}

fn display_name(media: &Media) -> String {
    match media.filename.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => {
            format!("\"{}\"", name.chars().take(100).collect::<String>())
        }
        _ => "The file".to_owned(),
    }
}

/// A `text/*`, `application/json` or `application/x-*` MIME type (and a few other text
/// ones), or a source-code extension.
pub fn is_text(mime_type: Option<&str>, filename: Option<&str>) -> bool {
    let mime = mime_type
        .and_then(|m| m.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let textual_mime = mime.starts_with("text/")
        || mime.starts_with("application/x-")
        || matches!(
            mime.as_str(),
            "application/json"
                | "application/javascript"
                | "application/xml"
                | "application/yaml"
                | "application/sql"
                | "application/toml"
                | "application/typescript"
        )
        || mime.ends_with("+json")
        || mime.ends_with("+xml");
    textual_mime || filename.is_some_and(has_source_name)
}

fn has_source_name(filename: &str) -> bool {
    let name = filename
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(filename)
        .trim()
        .to_ascii_lowercase();
    if TEXT_NAMES.contains(&name.as_str()) {
        return true;
    }
    name.rsplit_once('.')
        .is_some_and(|(stem, ext)| !stem.is_empty() && TEXT_EXTENSIONS.contains(&ext))
}

/// The file's text: UTF-8 without NUL bytes (a NUL anywhere means binary); a leading
/// byte-order mark is dropped.
fn as_text(bytes: Vec<u8>) -> Option<String> {
    if bytes.contains(&0) {
        return None;
    }
    let text = String::from_utf8(bytes).ok()?;
    Some(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_known_by_its_mime_type_or_its_name() {
        assert!(is_text(Some("text/plain"), None));
        assert!(is_text(Some("Text/X-Rust; charset=utf-8"), Some("a.bin")));
        assert!(is_text(Some("application/json"), None));
        assert!(is_text(Some("application/x-python-code"), None));
        assert!(is_text(
            Some("application/octet-stream"),
            Some("src/main.rs")
        ));
        assert!(is_text(None, Some("Dockerfile")));
        assert!(is_text(
            Some("application/octet-stream"),
            Some("CONFIG.YAML")
        ));
        assert!(!is_text(Some("application/pdf"), Some("report.pdf")));
        assert!(!is_text(Some("image/png"), Some("shot.png")));
        assert!(!is_text(Some("application/octet-stream"), Some(".rs")));
        assert!(!is_text(None, None));
    }

    #[test]
    fn binary_content_is_refused_and_a_bom_dropped() {
        assert_eq!(
            as_text(b"fn main() {}\n".to_vec()).as_deref(),
            Some("fn main() {}\n")
        );
        assert_eq!(
            as_text("\u{feff}x = 1".as_bytes().to_vec()).as_deref(),
            Some("x = 1")
        );
        assert_eq!(as_text(b"MZ\x90\x00\x03".to_vec()), None);
        assert_eq!(as_text(vec![0xff, 0xfe, 0x41]), None);
    }
}
