//! Reads an uploaded or downloaded archive (`.tar.gz` or `.zip`) entirely in memory, with
//! every limit enforced while reading: nothing is ever written to disk, so no entry can
//! escape anywhere. Unsafe or unwanted entries are skipped and reported, not fatal.
//! Blocking: call it from `spawn_blocking`.

use std::{
    cell::Cell,
    io::{self, Cursor, Read},
    rc::Rc,
};

use flate2::read::GzDecoder;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
pub const MAX_FILES: usize = 20_000;
pub const MAX_UNPACKED_BYTES: u64 = 200 * 1024 * 1024;
/// A NUL byte this early marks a binary file.
const BINARY_PROBE: usize = 8 * 1024;
/// The skipped list is bounded too: a hostile archive can hold millions of entries.
const MAX_SKIPPED_LISTED: usize = 1_000;
const MAX_PATH_CHARS: usize = 1_024;
/// Tar headers and padding are not file content but still have to be inflated.
const STREAM_SLACK_BYTES: u64 = 16 * 1024 * 1024;

pub const TOO_MANY_UNPACKED: &str = "archive exceeds 200 MiB unpacked; the rest was not read";

/// A file of the archive that will be indexed.
#[derive(Debug)]
pub struct SourceFile {
    pub path: String,
    pub content: String,
}

/// An entry left out, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Skipped {
    #[schema(example = "assets/logo.png")]
    pub path: String,
    #[schema(example = "binary file")]
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Extracted {
    pub files: Vec<SourceFile>,
    pub skipped: Vec<Skipped>,
    /// The commit a GitHub tarball was made from (its pax `comment` or top directory).
    pub commit: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveError {
    #[error("the body is not a .tar.gz or .zip archive")]
    UnknownFormat,
    #[error("the archive is corrupt or truncated")]
    Corrupt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    TarGz,
    Zip,
}

/// The archive format, from its magic bytes (Content-Type headers are often generic).
pub fn format_of(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        Some(Format::TarGz)
    } else if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        Some(Format::Zip)
    } else {
        None
    }
}

pub fn extract(bytes: &[u8]) -> Result<Extracted, ArchiveError> {
    let mut collector = Collector::default();
    match format_of(bytes).ok_or(ArchiveError::UnknownFormat)? {
        Format::TarGz => read_tar_gz(bytes, &mut collector)?,
        Format::Zip => read_zip(bytes, &mut collector)?,
    }
    Ok(collector.finish())
}

/// An entry's kind, as both formats describe it.
enum Kind {
    File,
    Directory,
    Symlink,
    HardLink,
    Other,
}

#[derive(Default)]
struct Collector {
    files: Vec<(Vec<String>, String)>,
    skipped: Vec<(Vec<String>, &'static str)>,
    /// Entries whose path was refused, as written in the archive.
    refused: Vec<(String, &'static str)>,
    unlisted: usize,
    unpacked: u64,
    pax_commit: Option<String>,
    stopped: bool,
}

impl Collector {
    fn skip(&mut self, parts: Vec<String>, reason: &'static str) {
        if self.listed() < MAX_SKIPPED_LISTED {
            self.skipped.push((parts, reason));
        } else {
            self.unlisted += 1;
        }
    }

    fn refuse(&mut self, path: String, reason: &'static str) {
        if self.listed() < MAX_SKIPPED_LISTED {
            self.refused.push((path, reason));
        } else {
            self.unlisted += 1;
        }
    }

    fn listed(&self) -> usize {
        self.skipped.len() + self.refused.len()
    }

    /// Looks at one entry; `read` gives at most `limit` bytes of its content. Returns
    /// false once the archive must not be read any further.
    fn entry(
        &mut self,
        raw_path: &[u8],
        kind: Kind,
        declared_size: u64,
        read: impl FnOnce(u64) -> io::Result<Vec<u8>>,
    ) -> bool {
        let parts = match split_path(raw_path) {
            Ok(parts) => parts,
            Err(reason) => {
                self.refuse(String::from_utf8_lossy(raw_path).into_owned(), reason);
                return true;
            }
        };
        if parts.is_empty() {
            return true;
        }
        match kind {
            Kind::Directory => return true,
            Kind::Symlink => {
                self.skip(parts, "symbolic link");
                return true;
            }
            Kind::HardLink => {
                self.skip(parts, "hard link");
                return true;
            }
            Kind::Other => {
                self.skip(parts, "not a regular file");
                return true;
            }
            Kind::File => {}
        }
        self.unpacked = self.unpacked.saturating_add(declared_size);
        if self.unpacked > MAX_UNPACKED_BYTES {
            self.skip(parts, TOO_MANY_UNPACKED);
            self.stopped = true;
            return false;
        }
        if declared_size > MAX_FILE_BYTES {
            self.skip(parts, "larger than 1 MiB");
            return true;
        }
        if self.files.len() >= MAX_FILES {
            self.skip(parts, "beyond the first 20000 files");
            return true;
        }
        // A zip entry may inflate to more than it declares: never read past the limit.
        let bytes = match read(MAX_FILE_BYTES + 1) {
            Ok(bytes) => bytes,
            Err(_) => {
                self.skip(parts, "unreadable entry");
                return true;
            }
        };
        if bytes.len() as u64 > MAX_FILE_BYTES {
            self.skip(parts, "larger than 1 MiB");
            return true;
        }
        if bytes[..bytes.len().min(BINARY_PROBE)].contains(&0) {
            self.skip(parts, "binary file");
            return true;
        }
        let content = String::from_utf8(bytes)
            .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned());
        self.files.push((parts, content));
        true
    }

    /// Strips a top directory shared by every entry (GitHub's `{owner}-{repo}-{sha}/`).
    fn finish(mut self) -> Extracted {
        let top = common_top(
            self.files
                .iter()
                .map(|(parts, _)| parts)
                .chain(self.skipped.iter().map(|(parts, _)| parts)),
        );
        let strip = usize::from(top.is_some());
        let join = |parts: &[String]| parts[strip.min(parts.len() - 1)..].join("/");
        let mut files: Vec<SourceFile> = self
            .files
            .iter()
            .map(|(parts, content)| SourceFile {
                path: join(parts),
                content: content.clone(),
            })
            .collect();
        // A path may appear twice in a tar; the later entry wins, as when unpacking.
        files.reverse();
        let mut seen = std::collections::HashSet::new();
        files.retain(|file| seen.insert(file.path.clone()));
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut skipped: Vec<Skipped> = self
            .skipped
            .iter()
            .map(|(parts, reason)| Skipped {
                path: join(parts),
                reason: (*reason).to_owned(),
            })
            .collect();
        let top_prefix = top.as_ref().map(|top| format!("{top}/"));
        skipped.extend(self.refused.iter().map(|(path, reason)| {
            Skipped {
                path: top_prefix
                    .as_deref()
                    .and_then(|prefix| path.strip_prefix(prefix))
                    .unwrap_or(path)
                    .to_owned(),
                reason: (*reason).to_owned(),
            }
        }));
        if self.unlisted > 0 {
            skipped.push(Skipped {
                path: "*".into(),
                reason: format!("{} more entries skipped", self.unlisted),
            });
        }
        let commit = self
            .pax_commit
            .take()
            .or_else(|| top.as_deref().and_then(commit_in_top_directory));
        Extracted {
            files,
            skipped,
            commit,
        }
    }
}

/// The path's components, or why it is refused. `\` counts as a separator too, so a
/// Windows-made `..\x` is caught.
fn split_path(raw: &[u8]) -> Result<Vec<String>, &'static str> {
    let path = std::str::from_utf8(raw).map_err(|_| "path is not UTF-8")?;
    if path.chars().count() > MAX_PATH_CHARS {
        return Err("path is too long");
    }
    let bytes = path.as_bytes();
    let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if path.starts_with('/') || path.starts_with('\\') || drive {
        return Err("absolute path");
    }
    let mut parts = Vec::new();
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => return Err("path escapes the archive (..)"),
            part if part.chars().any(char::is_control) => {
                return Err("path has control characters")
            }
            part => parts.push(part.to_owned()),
        }
    }
    Ok(parts)
}

fn common_top<'a>(mut entries: impl Iterator<Item = &'a Vec<String>>) -> Option<String> {
    let first = entries.next()?;
    if first.len() < 2 {
        return None;
    }
    let top = &first[0];
    entries
        .all(|parts| parts.len() >= 2 && &parts[0] == top)
        .then(|| top.clone())
}

/// `acme-payments-1a2b3c4` → `1a2b3c4` (GitHub names the top directory after the commit).
fn commit_in_top_directory(top: &str) -> Option<String> {
    let (_, sha) = top.rsplit_once('-')?;
    is_commit(sha).then(|| sha.to_owned())
}

fn is_commit(text: &str) -> bool {
    (7..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Counts inflated bytes and refuses to go past the limit: the last line against a gzip
/// bomb made of headers rather than file content.
struct Bounded<R> {
    inner: R,
    read: Rc<Cell<u64>>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read.get() > MAX_UNPACKED_BYTES + STREAM_SLACK_BYTES {
            return Err(io::Error::other("unpacked size limit"));
        }
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

fn over_stream_limit(read: &Cell<u64>) -> bool {
    read.get() > MAX_UNPACKED_BYTES + STREAM_SLACK_BYTES
}

fn read_tar_gz(bytes: &[u8], collector: &mut Collector) -> Result<(), ArchiveError> {
    let inflated = Rc::new(Cell::new(0));
    let stream = Bounded {
        inner: GzDecoder::new(bytes),
        read: inflated.clone(),
    };
    let mut archive = tar::Archive::new(stream);
    let entries = archive.entries().map_err(|_| ArchiveError::Corrupt)?;
    for entry in entries {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(_) if over_stream_limit(&inflated) => {
                collector.skip(vec!["*".into()], TOO_MANY_UNPACKED);
                return Ok(());
            }
            Err(_) if !collector.files.is_empty() || collector.listed() > 0 => {
                collector.skip(
                    vec!["*".into()],
                    "the archive ends early; the rest was not read",
                );
                return Ok(());
            }
            Err(_) => return Err(ArchiveError::Corrupt),
        };
        use tar::EntryType as T;
        let kind = match entry.header().entry_type() {
            T::XGlobalHeader => {
                collector.pax_commit = pax_commit(&mut entry);
                continue;
            }
            T::XHeader | T::GNULongName | T::GNULongLink => continue,
            T::Regular | T::Continuous => Kind::File,
            T::Directory => Kind::Directory,
            T::Symlink => Kind::Symlink,
            T::Link => Kind::HardLink,
            _ => Kind::Other,
        };
        let path = entry.path_bytes().into_owned();
        let size = entry.size();
        let go_on = collector.entry(&path, kind, size, |limit| {
            let mut content = Vec::new();
            (&mut entry).take(limit).read_to_end(&mut content)?;
            Ok(content)
        });
        if !go_on {
            break;
        }
    }
    Ok(())
}

/// GitHub's tarballs carry the commit as the global pax header's `comment`.
fn pax_commit<R: Read>(entry: &mut tar::Entry<'_, R>) -> Option<String> {
    let extensions = entry.pax_extensions().ok()??;
    extensions.flatten().find_map(|extension| {
        let value = extension.value().ok()?.trim();
        (extension.key().ok()? == "comment" && is_commit(value)).then(|| value.to_owned())
    })
}

fn read_zip(bytes: &[u8], collector: &mut Collector) -> Result<(), ArchiveError> {
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|_| ArchiveError::Corrupt)?;
    for index in 0..archive.len() {
        let name = archive.name_for_index(index).unwrap_or("*").to_owned();
        let mut file = match archive.by_index(index) {
            Ok(file) => file,
            Err(_) => {
                // Encrypted or an unsupported compression method: report it by name.
                collector.entry(name.as_bytes(), Kind::Other, 0, |_| Ok(Vec::new()));
                continue;
            }
        };
        let kind = if file.is_symlink() {
            Kind::Symlink
        } else if file.is_dir() {
            Kind::Directory
        } else if file.is_file() {
            Kind::File
        } else {
            Kind::Other
        };
        let name = file.name_raw().to_vec();
        let size = file.size();
        let go_on = collector.entry(&name, kind, size, |limit| {
            let mut content = Vec::new();
            (&mut file).take(limit).read_to_end(&mut content)?;
            Ok(content)
        });
        if !go_on {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        assert_eq!(split_path(b"a/./b//c.rs").unwrap(), ["a", "b", "c.rs"]);
        assert_eq!(split_path(b"/etc/passwd"), Err("absolute path"));
        assert_eq!(split_path(b"C:\\x"), Err("absolute path"));
        assert_eq!(
            split_path(b"a/../../x"),
            Err("path escapes the archive (..)")
        );
        assert_eq!(
            split_path(b"a\\..\\x"),
            Err("path escapes the archive (..)")
        );
    }

    #[test]
    fn commits_from_top_directories() {
        assert_eq!(
            commit_in_top_directory("acme-pay-ments-1a2b3c4").as_deref(),
            Some("1a2b3c4")
        );
        assert_eq!(commit_in_top_directory("project"), None);
        assert_eq!(commit_in_top_directory("my-project"), None);
    }

    #[test]
    fn unknown_bytes_are_refused() {
        assert_eq!(extract(b"hello").unwrap_err(), ArchiveError::UnknownFormat);
        assert_eq!(
            extract(&[0x1f, 0x8b, 0, 0]).unwrap_err(),
            ArchiveError::Corrupt
        );
    }
}
