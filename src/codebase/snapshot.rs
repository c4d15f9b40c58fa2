//! What each instance keeps in memory of the projects' indexes: a live generation's files
//! in path order and its symbols by name ([`Snapshot`]), and files' texts by id.
//!
//! Both are true for good once read. A generation's rows never change while it is live
//! (a re-index writes a generation of its own and makes it live in one transaction), and
//! a file row's id is never reused (AUTOINCREMENT on SQLite, an identity on PostgreSQL),
//! so a text read by its id is that id's text forever. Nothing is invalidated, on any
//! instance; the caches are only bounded, in bytes (`CODE_CACHE_MB`).
//!
//! What a search or a lookup then reads from the database is the live generation's
//! number (a row by its key, with the project's owner) and the texts not kept yet: the
//! files' trigram filters, which narrow a search to the parts of files to read, are kept
//! with the generation, and the instance that indexes keeps the texts it wrote.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use quick_cache::{sync::Cache, Weighter};
use tokio::sync::OnceCell;

use super::{
    index::VISIBLE,
    matcher::FOLDS_TO_ASCII,
    symbols::Kind,
    trigrams::{Blocks, Filter},
};
use crate::{
    db::Db,
    error::{Error, Result},
    projects::sync::live_generation,
    with_pool,
};

/// A live generation's files and symbols.
pub struct Snapshot {
    pub generation: i64,
    /// (id, path), by path in byte order (on both backends).
    files: Vec<(i64, Box<str>)>,
    /// The files' blocks' trigram filters.
    blocks: Blocks,
    /// The places of files without a filter (none could be had): they are read whole.
    unfiltered: Vec<u32>,
    /// By lowercase name, then path and line.
    symbols: Vec<Defined>,
    /// The symbols' indexes by file, then line and end line; a file's are at
    /// `by_file[file_starts[place]..file_starts[place + 1]]`.
    by_file: Vec<u32>,
    file_starts: Vec<u32>,
    /// Roughly what it takes in memory.
    bytes: usize,
}

/// One definition of a snapshot.
pub struct Defined {
    /// The file's place in the snapshot's files.
    pub file: u32,
    pub name: Box<str>,
    pub name_lower: Box<str>,
    pub kind: Kind,
    pub line: i64,
    pub end_line: i64,
    pub container: Option<Box<str>>,
    /// The text of its first line.
    pub text: Box<str>,
}

impl Snapshot {
    /// The files, by path: (id, path).
    pub fn files(&self) -> &[(i64, Box<str>)] {
        &self.files
    }

    /// The path of the file at `place`.
    pub fn path(&self, place: u32) -> &str {
        self.file(place).1
    }

    /// The file at `place`: (id, path).
    pub fn file(&self, place: u32) -> (i64, &str) {
        self.files
            .get(place as usize)
            .map_or((0, ""), |(id, path)| (*id, path))
    }

    /// The files' blocks' trigram filters.
    pub fn blocks(&self) -> &Blocks {
        &self.blocks
    }

    /// The places of files without a trigram filter, in order.
    pub fn unfiltered(&self) -> &[u32] {
        &self.unfiltered
    }

    /// The symbols whose lowercase name starts with `prefix` (lowercase), by name, path
    /// and line.
    pub fn starting_with(&self, prefix: &str) -> &[Defined] {
        let start = self.symbols.partition_point(|s| &*s.name_lower < prefix);
        let len = self.symbols[start..].partition_point(|s| s.name_lower.starts_with(prefix));
        &self.symbols[start..start + len]
    }

    /// The symbols whose lowercase name is `name` (lowercase), by path and line.
    pub fn named(&self, name: &str) -> &[Defined] {
        let range = self.starting_with(name);
        &range[..range.partition_point(|s| *s.name_lower == *name)]
    }

    /// The place of the file at `path`.
    pub fn place_of(&self, path: &str) -> Option<u32> {
        let place = self.files.binary_search_by(|(_, p)| (**p).cmp(path)).ok()?;
        Some(place as u32)
    }

    /// The symbols of the file at `place`, by line and end line.
    pub fn in_file(&self, place: u32) -> impl Iterator<Item = &Defined> {
        let place = place as usize;
        let start = self.file_starts.get(place).copied().unwrap_or(0) as usize;
        let end = self.file_starts.get(place + 1).copied().unwrap_or(0) as usize;
        self.by_file
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(|&i| &self.symbols[i as usize])
    }
}

/// A row of the files' query: id, path, the stored trigram filter, and the text where
/// there is none (rows indexed before filters were stored).
type FileRow = (i64, String, Option<Vec<u8>>, Option<String>);

#[derive(sqlx::FromRow)]
struct SymbolRow {
    file_id: i64,
    name: String,
    name_lower: String,
    kind: String,
    line: i64,
    end_line: i64,
    container: Option<String>,
    text: String,
}

/// Reads generation `generation` of the project whole.
async fn read(db: &Db, project_id: i64, generation: i64) -> Result<Snapshot> {
    let files_sql = format!(
        "SELECT f.id, f.path, c.grams, CASE WHEN c.grams IS NULL THEN c.content END \
         FROM project_files f LEFT JOIN project_contents c ON c.file_id = f.id \
         WHERE f.project_id = $1 AND {VISIBLE}"
    );
    let symbols_sql = format!(
        "SELECT s.file_id, s.name, s.name_lower, s.kind, s.line, s.end_line, s.container, s.text \
         FROM project_symbols s JOIN project_files f ON f.id = s.file_id \
         WHERE s.project_id = $1 AND {VISIBLE}"
    );
    let (files, symbols): (Vec<FileRow>, Vec<SymbolRow>) = match db {
        // Hundreds of thousands of rows: read on a reader thread in one go (sqlx would
        // hand them over from its worker thread one at a time, 3.3 s for 375,000).
        Db::Sqlite(_, readers, _) => {
            readers
                .read(move |conn| {
                    let key = (project_id, generation);
                    let files = conn
                        .prepare(&files_sql)?
                        .query_map(key, |row| {
                            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                        })?
                        .collect::<rusqlite::Result<_>>()?;
                    let symbols = conn
                        .prepare(&symbols_sql)?
                        .query_map(key, |row| {
                            Ok(SymbolRow {
                                file_id: row.get(0)?,
                                name: row.get(1)?,
                                name_lower: row.get(2)?,
                                kind: row.get(3)?,
                                line: row.get(4)?,
                                end_line: row.get(5)?,
                                container: row.get(6)?,
                                text: row.get(7)?,
                            })
                        })?
                        .collect::<rusqlite::Result<_>>()?;
                    Ok((files, symbols))
                })
                .await?
        }
        Db::Postgres(pool, _) => {
            let files = sqlx::query_as(&files_sql)
                .bind(project_id)
                .bind(generation)
                .fetch_all(pool)
                .await?;
            let symbols = sqlx::query_as(&symbols_sql)
                .bind(project_id)
                .bind(generation)
                .fetch_all(pool)
                .await?;
            (files, symbols)
        }
    };
    Ok(Snapshot::new(generation, files, symbols))
}

impl Snapshot {
    fn new(generation: i64, mut files: Vec<FileRow>, rows: Vec<SymbolRow>) -> Snapshot {
        files.sort_unstable_by(|(_, a, ..), (_, b, ..)| a.cmp(b));
        let mut bytes = 0;
        let (files, filters): (Vec<_>, Vec<_>) = files
            .into_iter()
            .map(|(id, path, stored, text)| {
                let filter = match (stored, text) {
                    (Some(stored), _) => Filter::decode(&stored),
                    (None, Some(text)) => Some(Filter::of_text(&text)),
                    (None, None) => None,
                };
                bytes += path.len() + 48;
                ((id, path.into_boxed_str()), filter)
            })
            .unzip();
        let blocks = Blocks::new(
            filters
                .iter()
                .enumerate()
                .filter_map(|(place, filter)| Some((place as u32, filter.as_ref()?))),
        );
        let unfiltered = (0..filters.len() as u32)
            .filter(|&place| filters[place as usize].is_none())
            .collect();
        drop(filters);
        bytes += blocks.bytes();
        let places: HashMap<i64, u32> = files
            .iter()
            .enumerate()
            .map(|(place, (id, _))| (*id, place as u32))
            .collect();
        let mut symbols: Vec<Defined> = rows
            .into_iter()
            .filter_map(|row| {
                let defined = Defined {
                    file: *places.get(&row.file_id)?,
                    kind: Kind::parse(&row.kind)?,
                    name: row.name.into_boxed_str(),
                    name_lower: row.name_lower.into_boxed_str(),
                    line: row.line,
                    end_line: row.end_line,
                    container: row.container.map(String::into_boxed_str),
                    text: row.text.into_boxed_str(),
                };
                bytes += 112
                    + defined.name.len() * 2
                    + defined.container.as_ref().map_or(0, |c| c.len())
                    + defined.text.len();
                Some(defined)
            })
            .collect();
        symbols.sort_unstable_by(|a, b| {
            (&a.name_lower, a.file, a.line).cmp(&(&b.name_lower, b.file, b.line))
        });
        let mut by_file: Vec<u32> = (0..symbols.len() as u32).collect();
        by_file.sort_unstable_by_key(|&i| {
            let s = &symbols[i as usize];
            (s.file, s.line, s.end_line)
        });
        // Each file's start in `by_file`: the count of symbols in the files before it.
        let mut file_starts = vec![0u32; files.len() + 1];
        for s in &symbols {
            file_starts[s.file as usize + 1] += 1;
        }
        for place in 1..file_starts.len() {
            file_starts[place] += file_starts[place - 1];
        }
        bytes += by_file.len() * 4 + file_starts.len() * 4;
        Snapshot {
            generation,
            files,
            blocks,
            unfiltered,
            symbols,
            by_file,
            file_starts,
            bytes,
        }
    }
}

/// [`read`], and `None` if the generation stopped being live meanwhile (some of its rows
/// may have been deleted before they were read: only a generation still live afterwards
/// was read whole).
async fn read_live(db: &Db, project_id: i64, generation: i64) -> Result<Option<Snapshot>> {
    let snapshot = read(db, project_id, generation).await?;
    let live = live_generation(db, project_id).await?;
    if live != Some(generation) {
        Kept::of(db).met_gone();
        return Ok(None);
    }
    Ok(Some(snapshot))
}

/// Why a snapshot was not had.
enum Miss {
    /// The generation stopped being live while it was read: part of it may be gone.
    Stale,
    Failed(Error),
}

/// One project's kept snapshot, or the read of it under way.
struct Entry {
    generation: i64,
    snapshot: Arc<OnceCell<Arc<Snapshot>>>,
    used: u64,
}

/// The kept snapshots and texts of one database.
pub struct Kept {
    snapshots: Mutex<HashMap<i64, Entry>>,
    /// The whole budget, in bytes.
    bytes: u64,
    /// What the kept snapshots may take of it.
    snapshot_bytes: usize,
    texts: Cache<i64, Arc<Text>, TextWeight>,
    /// What the texts may take now.
    texts_bytes: AtomicU64,
    clock: AtomicU64,
    /// Reads that met rows gone (see [`Kept::gone`]).
    gone: AtomicU64,
}

/// Weighs a text by its size, so the texts kept are bounded in bytes.
#[derive(Clone)]
struct TextWeight;

impl Weighter<i64, Arc<Text>> for TextWeight {
    fn weight(&self, _: &i64, text: &Arc<Text>) -> u64 {
        text.text.len() as u64 * 2 + 64
    }
}

/// A file's text, and the same with its ASCII letters lowercased: byte for byte, so an
/// offset in one is the same place in the other. A case-insensitive search for ASCII
/// runs `memchr::memmem` over the lowercased bytes (see `Matcher::find`).
pub struct Text {
    text: String,
    lower: Vec<u8>,
    /// Whether the text holds one of [`FOLDS_TO_ASCII`].
    folds_to_ascii: bool,
}

impl Text {
    pub fn new(text: String) -> Text {
        let lower = text.as_bytes().to_ascii_lowercase();
        let folds_to_ascii = text.contains(FOLDS_TO_ASCII);
        Text {
            text,
            lower,
            folds_to_ascii,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn lower(&self) -> &[u8] {
        &self.lower
    }

    pub fn folds_to_ascii(&self) -> bool {
        self.folds_to_ascii
    }
}

/// A kept text is typically a few KiB: how many entries a budget is sized for.
const TEXT_BYTES_ESTIMATE: u64 = 8 * 1024;

impl Kept {
    /// Keeps at most `bytes`: snapshots up to three quarters of it, texts what the kept
    /// snapshots leave, a quarter at least (a fixed half each left most of the
    /// snapshots' half unused on a 5,000-file project, while its texts did not fit
    /// theirs).
    pub fn new(bytes: u64) -> Kept {
        Kept {
            snapshots: Mutex::default(),
            bytes,
            snapshot_bytes: (bytes - bytes / 4) as usize,
            texts: Cache::with_weighter(
                (bytes / TEXT_BYTES_ESTIMATE).max(16) as usize,
                bytes.max(1),
                TextWeight,
            ),
            texts_bytes: AtomicU64::new(bytes.max(1)),
            clock: AtomicU64::new(0),
            gone: AtomicU64::new(0),
        }
    }

    /// The database's kept values (the budget set by `AppState`, or the default).
    pub fn of(db: &Db) -> Arc<Kept> {
        db.kept(|| Kept::new(super::Settings::DEFAULT_CACHE_BYTES))
    }

    /// The kept text of file `id`.
    pub fn text(&self, id: i64) -> Option<Arc<Text>> {
        self.texts.get(&id)
    }

    /// Keeps the text of file `id`.
    pub fn keep_text(&self, id: i64, text: Arc<Text>) {
        self.texts.insert(id, text);
    }

    /// How many reads so far met rows of a generation gone: a text no longer in the
    /// database, or a snapshot whose generation stopped being live while it was read.
    /// Everything else a reader reads is true for good once read (see the module's
    /// account), so a read of a generation during which this did not change read it
    /// whole, even if another generation went live meanwhile.
    pub fn gone(&self) -> u64 {
        self.gone.load(Ordering::SeqCst)
    }

    fn met_gone(&self) {
        self.gone.fetch_add(1, Ordering::SeqCst);
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }
}

/// Generation `generation` of the project, kept or read now; `None` when it stopped being
/// the live one while it was read (a reader that checks the live generation afterwards
/// then reads again).
pub async fn of(db: &Db, project_id: i64, generation: i64) -> Result<Option<Arc<Snapshot>>> {
    let kept = Kept::of(db);
    let cell = {
        let mut snapshots = kept.snapshots.lock().expect("snapshots lock");
        let used = kept.tick();
        match snapshots.get_mut(&project_id) {
            Some(entry) if entry.generation == generation => {
                entry.used = used;
                Some(entry.snapshot.clone())
            }
            // An older generation than the one kept: read, never kept.
            Some(entry) if entry.generation > generation => None,
            _ => {
                let snapshot = Arc::new(OnceCell::new());
                let entry = Entry {
                    generation,
                    snapshot: snapshot.clone(),
                    used,
                };
                snapshots.insert(project_id, entry);
                Some(snapshot)
            }
        }
    };
    let Some(cell) = cell else {
        return Ok(read_live(db, project_id, generation).await?.map(Arc::new));
    };
    // Concurrent readers of a generation not kept yet wait for one read of it.
    let read = cell
        .get_or_try_init(|| async {
            match read_live(db, project_id, generation).await {
                Ok(Some(snapshot)) => Ok(Arc::new(snapshot)),
                Ok(None) => Err(Miss::Stale),
                Err(err) => Err(Miss::Failed(err)),
            }
        })
        .await;
    match read {
        Ok(snapshot) => {
            let snapshot = snapshot.clone();
            evict(&kept, project_id);
            Ok(Some(snapshot))
        }
        Err(Miss::Stale) => Ok(None),
        Err(Miss::Failed(err)) => Err(err),
    }
}

/// The live generation's snapshot; `None` when nothing is indexed.
pub async fn live(db: &Db, project_id: i64) -> Result<Option<Arc<Snapshot>>> {
    let live = live_generation(db, project_id).await?;
    live_from(db, project_id, live).await
}

/// [`live`] from `live`, the live generation just read.
pub async fn live_from(
    db: &Db,
    project_id: i64,
    mut live: Option<i64>,
) -> Result<Option<Arc<Snapshot>>> {
    for _ in 0..super::ATTEMPTS {
        let Some(generation) = live else {
            return Ok(None);
        };
        if let Some(snapshot) = of(db, project_id, generation).await? {
            return Ok(Some(snapshot));
        }
        live = live_generation(db, project_id).await?;
    }
    Err(super::reindexing())
}

/// Drops the least recently used snapshots past their share of the budget (never
/// `keep`'s), and gives the texts what the kept ones leave.
fn evict(kept: &Kept, keep: i64) {
    let mut snapshots = kept.snapshots.lock().expect("snapshots lock");
    let size = |entry: &Entry| entry.snapshot.get().map_or(0, |s| s.bytes);
    let mut total: usize = snapshots.values().map(size).sum();
    while total > kept.snapshot_bytes {
        let oldest = snapshots
            .iter()
            .filter(|(project, entry)| **project != keep && entry.snapshot.get().is_some())
            .min_by_key(|(_, entry)| entry.used)
            .map(|(project, _)| *project);
        let Some(oldest) = oldest else { break };
        if let Some(entry) = snapshots.remove(&oldest) {
            total -= size(&entry);
        }
    }
    // Under the snapshots' lock, so that the last capacity set is the latest one.
    let texts = kept
        .bytes
        .saturating_sub(total as u64)
        .max(kept.bytes / 4)
        .max(1);
    if kept.texts_bytes.swap(texts, Ordering::Relaxed) != texts {
        kept.texts.set_capacity(texts);
    }
}

/// The texts of files `ids`, in that order: kept ones from memory, the others read in
/// one query and kept. A file no longer in the database (a generation that stopped
/// being live, whose reader then reads again) reads as empty.
pub async fn texts(db: &Db, ids: &[i64]) -> Result<Vec<Arc<Text>>> {
    let kept = Kept::of(db);
    let mut texts: Vec<Option<Arc<Text>>> = ids.iter().map(|id| kept.text(*id)).collect();
    let missing: Vec<i64> = ids
        .iter()
        .zip(&texts)
        .filter(|(_, text)| text.is_none())
        .map(|(id, _)| *id)
        .collect();
    if !missing.is_empty() {
        let sql = format!(
            "SELECT file_id, content FROM project_contents WHERE file_id IN {}",
            db.values(1, missing.len())
        );
        let rows: Vec<(i64, String)> = with_pool!(db, |pool| {
            let query = missing
                .iter()
                .fold(sqlx::query_as(&sql), |query, id| query.bind(*id));
            query.fetch_all(pool).await
        })?;
        let read: HashMap<i64, Arc<Text>> = rows
            .into_iter()
            .map(|(id, text)| (id, Arc::new(Text::new(text))))
            .collect();
        for (id, text) in ids.iter().zip(texts.iter_mut()) {
            if text.is_none() {
                match read.get(id) {
                    Some(read) => {
                        kept.keep_text(*id, read.clone());
                        *text = Some(read.clone());
                    }
                    None => kept.met_gone(),
                }
            }
        }
    }
    Ok(texts
        .into_iter()
        .map(|text| text.unwrap_or_else(|| Arc::new(Text::new(String::new()))))
        .collect())
}

/// Reads the project's live generation into memory now: after an index, so that the
/// first search or lookup need not wait for it. A failure only logs (the first reader
/// then reads it).
pub async fn warm(db: &Db, project_id: i64) {
    if let Err(err) = live(db, project_id).await {
        tracing::warn!(project_id, error = %err, "could not read the index generation");
    }
}
