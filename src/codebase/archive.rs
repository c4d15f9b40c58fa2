//! Reads an uploaded or downloaded archive (`.tar.gz` or `.zip`) entirely in memory, with
//! every limit enforced while reading: nothing is ever written to disk, so no entry can
//! escape anywhere. Unsafe or unwanted entries are skipped and reported, not fatal.
//! Blocking: call it from `spawn_blocking`.

use std::{
    cell::Cell,
    io::{self, Cursor, Read, Seek},
    rc::Rc,
};

use flate2::read::GzDecoder;

use crate::projects::sync::Skipped;

pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
pub const MAX_FILES: usize = 20_000;
/// Counted in bytes actually inflated: a zip entry's declared size proves nothing.
pub const MAX_UNPACKED_BYTES: u64 = 200 * 1024 * 1024;
/// The skipped list is bounded too: a hostile archive can hold millions of entries.
const MAX_SKIPPED_LISTED: usize = 1_000;
/// Each reported name is cut to this (on a character boundary): a refused name can be
/// megabytes long, and the list is stored in the project's row.
pub const MAX_REPORTED_NAME_BYTES: usize = 300;
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
    #[error("the zip's entries overlap (several entries share the same data, as in a zip bomb)")]
    OverlappingEntries,
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

/// A skipped entry as it will be reported, its name already cut to size. The first
/// component is kept apart so that a top directory shared by every entry, known only at
/// the end, can still be stripped.
struct Listed {
    top: Option<String>,
    rest: String,
    reason: &'static str,
    /// The path was accepted, so it has a say in what the shared top directory is.
    accepted: bool,
}

impl Listed {
    fn name(self, shared_top: Option<&str>) -> String {
        match self.top {
            Some(top) if Some(top.as_str()) != shared_top => {
                cut_to_report(format!("{top}/{}", self.rest))
            }
            _ => self.rest,
        }
    }
}

#[derive(Default)]
struct Collector {
    files: Vec<(Vec<String>, String)>,
    skipped: Vec<Listed>,
    unlisted: usize,
    /// Bytes of file content inflated so far.
    unpacked: u64,
    pax_commit: Option<String>,
}

impl Collector {
    fn list(&mut self, listed: Listed) {
        if self.skipped.len() < MAX_SKIPPED_LISTED {
            self.skipped.push(listed);
        } else {
            self.unlisted += 1;
        }
    }

    fn skip(&mut self, parts: &[String], reason: &'static str) {
        let (top, rest) = match parts {
            [top, rest @ ..] if !rest.is_empty() => (Some(top.clone()), rest.join("/")),
            _ => (None, parts.join("/")),
        };
        self.list(Listed {
            top,
            rest: cut_to_report(rest),
            reason,
            accepted: true,
        });
    }

    /// A note about the archive as a whole (listed as `*`).
    fn note(&mut self, reason: &'static str) {
        self.list(Listed {
            top: None,
            rest: "*".into(),
            reason,
            accepted: false,
        });
    }

    /// An entry whose path was refused, named as written (made safe to show).
    fn refuse(&mut self, raw_path: &[u8], reason: &'static str) {
        if self.skipped.len() >= MAX_SKIPPED_LISTED {
            self.unlisted += 1;
            return;
        }
        // Only a first component that could be a top directory is kept apart.
        let first = raw_path
            .iter()
            .take(MAX_PATH_CHARS * 4 + 1)
            .position(|&b| b == b'/')
            .and_then(|slash| {
                let top = std::str::from_utf8(&raw_path[..slash]).ok()?;
                (!top.chars().any(char::is_control)).then(|| (top.to_owned(), slash))
            });
        let listed = match first {
            Some((top, slash)) => Listed {
                top: Some(top),
                rest: reported_name(&raw_path[slash + 1..]),
                reason,
                accepted: false,
            },
            None => Listed {
                top: None,
                rest: reported_name(raw_path),
                reason,
                accepted: false,
            },
        };
        self.skipped.push(listed);
    }

    /// Looks at one entry; `read` gives at most `limit` bytes of its content. Tar has to
    /// inflate an entry's whole content to get past it, so it passes that size as
    /// `inflates_at_least` and it counts before anything is read; a zip passes 0, as its
    /// declared sizes say nothing, and only what is read counts. Returns false once the
    /// archive must not be read any further.
    fn entry(
        &mut self,
        raw_path: &[u8],
        kind: Kind,
        inflates_at_least: u64,
        read: impl FnOnce(u64) -> io::Result<Vec<u8>>,
    ) -> bool {
        let parts = match split_path(raw_path) {
            Ok(parts) => parts,
            Err(reason) => {
                self.refuse(raw_path, reason);
                return true;
            }
        };
        if parts.is_empty() {
            return true;
        }
        match kind {
            Kind::Directory => return true,
            Kind::Symlink => {
                self.skip(&parts, "symbolic link");
                return true;
            }
            Kind::HardLink => {
                self.skip(&parts, "hard link");
                return true;
            }
            Kind::Other => {
                self.skip(&parts, "not a regular file");
                return true;
            }
            Kind::File => {}
        }
        let before = self.unpacked;
        self.unpacked = before.saturating_add(inflates_at_least);
        if self.unpacked > MAX_UNPACKED_BYTES {
            self.skip(&parts, TOO_MANY_UNPACKED);
            return false;
        }
        if inflates_at_least > MAX_FILE_BYTES {
            self.skip(&parts, "larger than 1 MiB");
            return true;
        }
        if self.files.len() >= MAX_FILES {
            self.skip(&parts, "beyond the first 20000 files");
            return true;
        }
        // Never inflate past either limit: one byte more shows it was crossed.
        let room = MAX_UNPACKED_BYTES - before;
        let bytes = match read(MAX_FILE_BYTES.min(room) + 1) {
            Ok(bytes) => bytes,
            Err(_) => {
                self.skip(&parts, "unreadable entry");
                return true;
            }
        };
        self.unpacked = before.saturating_add(inflates_at_least.max(bytes.len() as u64));
        if self.unpacked > MAX_UNPACKED_BYTES {
            self.skip(&parts, TOO_MANY_UNPACKED);
            return false;
        }
        if bytes.len() as u64 > MAX_FILE_BYTES {
            self.skip(&parts, "larger than 1 MiB");
            return true;
        }
        // Anywhere in the file: PostgreSQL's text cannot hold NUL.
        if bytes.contains(&0) {
            self.skip(&parts, "binary file");
            return true;
        }
        let content = String::from_utf8(bytes)
            .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned());
        self.files.push((parts, content));
        true
    }

    /// Strips a top directory shared by every entry (GitHub's `{owner}-{repo}-{sha}/`).
    /// Contents are moved, never copied: they may add up to 200 MiB.
    fn finish(self) -> Extracted {
        let top = common_top(
            self.files
                .iter()
                .map(|(parts, _)| (parts.len() > 1).then(|| parts[0].as_str()))
                .chain(
                    self.skipped
                        .iter()
                        .filter(|listed| listed.accepted)
                        .map(|listed| listed.top.as_deref()),
                ),
        );
        let strip = usize::from(top.is_some());
        let mut files: Vec<SourceFile> = self
            .files
            .into_iter()
            .map(|(parts, content)| SourceFile {
                path: parts[strip.min(parts.len() - 1)..].join("/"),
                content,
            })
            .collect();
        // A path may appear twice in a tar; the later entry wins, as when unpacking.
        files.reverse();
        let mut seen = std::collections::HashSet::new();
        files.retain(|file| seen.insert(file.path.clone()));
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut skipped: Vec<Skipped> = self
            .skipped
            .into_iter()
            .map(|listed| Skipped {
                reason: listed.reason.to_owned(),
                path: listed.name(top.as_deref()),
            })
            .collect();
        if self.unlisted > 0 {
            skipped.push(Skipped {
                path: "*".into(),
                reason: format!("{} more entries skipped", self.unlisted),
            });
        }
        let commit = self
            .pax_commit
            .or_else(|| top.as_deref().and_then(commit_in_top_directory));
        Extracted {
            files,
            skipped,
            commit,
        }
    }
}

/// `raw` as a name fit to report: UTF-8, control characters (NUL included) replaced by
/// U+FFFD, at most [`MAX_REPORTED_NAME_BYTES`]. Every input byte gives at least one byte
/// of output, so nothing past the first few hundred bytes is ever looked at.
fn reported_name(raw: &[u8]) -> String {
    let raw = &raw[..raw.len().min(MAX_REPORTED_NAME_BYTES + 3)];
    let safe = String::from_utf8_lossy(raw)
        .chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect();
    cut_to_report(safe)
}

fn cut_to_report(mut name: String) -> String {
    if name.len() > MAX_REPORTED_NAME_BYTES {
        let end = (0..=MAX_REPORTED_NAME_BYTES)
            .rev()
            .find(|&end| name.is_char_boundary(end))
            .unwrap_or(0);
        name.truncate(end);
    }
    name
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

/// The first component every entry shares, when each has more than one (`None` items
/// are entries that have only one).
fn common_top<'a>(mut entries: impl Iterator<Item = Option<&'a str>>) -> Option<String> {
    let top = entries.next()??;
    entries
        .all(|first| first == Some(top))
        .then(|| top.to_owned())
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
                collector.note(TOO_MANY_UNPACKED);
                return Ok(());
            }
            Err(_) if !collector.files.is_empty() || !collector.skipped.is_empty() => {
                collector.note("the archive ends early; the rest was not read");
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
        // Exactly what the stream must inflate to get past this entry.
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
    refuse_overlaps(&mut archive)?;
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
        let go_on = collector.entry(&name, kind, 0, |limit| {
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

/// Refuses a zip in which two entries' [local header, end of data) spans overlap: many
/// directory entries pointing at one compressed block inflate it again and again (a
/// non-recursive zip bomb), and no zip tool writes such a file.
fn refuse_overlaps<R: Read + Seek>(archive: &mut zip::ZipArchive<R>) -> Result<(), ArchiveError> {
    let mut spans = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        // An entry whose local header cannot be read is reported when it is read.
        let Ok(file) = archive.by_index_raw(index) else {
            continue;
        };
        let Some(data_start) = file.data_start() else {
            continue;
        };
        spans.push((
            file.header_start(),
            data_start.saturating_add(file.compressed_size()),
        ));
    }
    if overlapping(&mut spans) {
        return Err(ArchiveError::OverlappingEntries);
    }
    Ok(())
}

/// Whether any two of the half-open `(start, end)` spans share a byte.
fn overlapping(spans: &mut [(u64, u64)]) -> bool {
    spans.sort_unstable();
    spans.windows(2).any(|pair| pair[1].0 < pair[0].1)
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

    fn file(collector: &mut Collector, path: &str, content: &[u8]) -> bool {
        collector.entry(path.as_bytes(), Kind::File, 0, |limit| {
            Ok(content[..content.len().min(limit as usize)].to_vec())
        })
    }

    #[test]
    fn reported_names_are_safe_and_short() {
        assert_eq!(
            reported_name(b"bad\0name\x07.txt"),
            "bad\u{FFFD}name\u{FFFD}.txt"
        );
        assert_eq!(reported_name(b"caf\xff"), "caf\u{FFFD}");
        let accented = "é".repeat(400);
        let cut = reported_name(accented.as_bytes());
        assert_eq!(cut.len(), MAX_REPORTED_NAME_BYTES);
        assert!(accented.starts_with(&cut));
        // A character across the limit is dropped whole.
        let straddling = format!("{}€tail", "a".repeat(299));
        assert_eq!(reported_name(straddling.as_bytes()), "a".repeat(299));
    }

    #[test]
    fn overlapping_spans_are_found() {
        assert!(!overlapping(&mut [(30, 31), (0, 10), (10, 20)]));
        assert!(overlapping(&mut [(20, 40), (0, 10), (5, 6)]));
        assert!(overlapping(&mut [(0, 10), (0, 10)]));
        assert!(!overlapping(&mut []));
    }

    #[test]
    fn inflated_bytes_count_whatever_an_entry_declares() {
        let mut collector = Collector::default();
        let big = vec![b'a'; 2 * MAX_FILE_BYTES as usize];
        let mut requested = 0;
        let read = (0..300)
            .take_while(|i| {
                collector.entry(format!("b{i}").as_bytes(), Kind::File, 0, |limit| {
                    assert!(limit <= MAX_FILE_BYTES + 1);
                    requested += limit;
                    Ok(big[..limit as usize].to_vec())
                })
            })
            .count();
        assert_eq!(read, 199, "the 200th entry crosses 200 MiB");
        assert!(requested <= MAX_UNPACKED_BYTES + 1, "{requested}");
        let extracted = collector.finish();
        assert!(extracted.files.is_empty());
        assert_eq!(extracted.skipped.len(), 200);
        assert_eq!(extracted.skipped[199].reason, TOO_MANY_UNPACKED);
    }

    #[test]
    fn a_nul_anywhere_makes_a_file_binary() {
        let mut collector = Collector::default();
        let mut late = vec![b'a'; 9 * 1024];
        late.push(0);
        file(&mut collector, "top/late.txt", &late);
        file(&mut collector, "top/ok.txt", b"fine\n");
        file(&mut collector, "top/bad\0name.txt", b"x");
        file(&mut collector, "top/../../etc/passwd", b"x");
        let extracted = collector.finish();
        let paths: Vec<&str> = extracted.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["ok.txt"], "the shared top directory is stripped");
        let skipped: Vec<(&str, &str)> = extracted
            .skipped
            .iter()
            .map(|s| (s.path.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(
            skipped,
            [
                ("late.txt", "binary file"),
                ("bad\u{FFFD}name.txt", "path has control characters"),
                ("../../etc/passwd", "path escapes the archive (..)"),
            ]
        );
    }

    #[test]
    fn the_skipped_list_is_bounded() {
        let mut collector = Collector::default();
        let long = format!("/{}", "n".repeat(1024 * 1024));
        for _ in 0..1_500 {
            file(&mut collector, &long, b"x");
        }
        let skipped = collector.finish().skipped;
        assert_eq!(skipped.len(), MAX_SKIPPED_LISTED + 1);
        assert!(skipped[..MAX_SKIPPED_LISTED]
            .iter()
            .all(|s| s.path.len() == MAX_REPORTED_NAME_BYTES && s.reason == "path is too long"));
        assert_eq!(
            skipped[MAX_SKIPPED_LISTED].reason,
            "500 more entries skipped"
        );
    }

    #[test]
    fn zips_with_shared_data_are_refused() {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        writer
            .start_file("a.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut writer, b"hello\n").unwrap();
        let single = writer.finish().unwrap().into_inner();
        assert_eq!(extract(&single).unwrap().files.len(), 1);
        // The same local entry listed twice in the central directory.
        let eocd = single.len() - 22;
        let cd_offset = u32::from_le_bytes(single[eocd + 16..eocd + 20].try_into().unwrap());
        let central = single[cd_offset as usize..eocd].to_vec();
        let mut twice = single[..eocd].to_vec();
        let mut second = central.clone();
        second[46] = b'b';
        twice.extend_from_slice(&second);
        let mut end = single[eocd..].to_vec();
        end[8..10].copy_from_slice(&2u16.to_le_bytes());
        end[10..12].copy_from_slice(&2u16.to_le_bytes());
        end[12..16].copy_from_slice(&(2 * central.len() as u32).to_le_bytes());
        twice.extend_from_slice(&end);
        assert_eq!(
            extract(&twice).unwrap_err(),
            ArchiveError::OverlappingEntries
        );
    }
}
