//! Writing a project's files, their lines and their symbols into the index, one
//! generation at a time, re-indexing only what changed.
//!
//! A file row is visible at generation G when `generation <= G < until_gen`
//! ([`VISIBLE`]). A re-index diffs the new file set against the live one by content hash
//! and writes rows only for new and changed files, pending (`until_gen = generation`,
//! visible to no one) and in short transactions ([`write`]). Then one transaction makes
//! the generation live, ends the rows it replaces or deletes (`until_gen` = the new
//! generation) and opens its own: readers name one generation, so they see the old set
//! or the new one, never a mix. Rows of unchanged files are shared by both generations.
//! Ended rows, and pending ones a crash or a lost race left behind, are deleted after.

mod write;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use sha2::{Digest, Sha256};

use super::{
    archive::{Extracted, SourceFile},
    symbols::parse::{definitions, Definition},
    trigrams::Filter,
};
use crate::{
    db::Db,
    error::{Error, Result},
    in_transaction,
    projects::sync::{self, Indexed},
    with_pool,
};

/// `until_gen` of a row no generation has replaced.
pub const OPEN: i64 = i64::MAX;
/// The rows of `project_files f` visible at the generation bound to `$2`.
pub const VISIBLE: &str = "f.generation <= $2 AND f.until_gen > $2";
/// Paths per statement when ending the rows of deleted files.
const PATHS_PER_UPDATE: usize = 400;
/// Rows per DELETE when dropping rows: symbols first, then the files' texts, then the
/// files, which then cascade to nothing.
const SYMBOLS_PER_DELETE: i64 = 4_000;
const FILES_PER_DELETE: i64 = 250;

/// A new or changed file, to be written with its symbols.
pub(super) struct Changed<'a> {
    pub path: &'a str,
    pub content: &'a str,
    pub hash: &'a str,
    pub symbols: Vec<Definition>,
    /// Its blocks' trigram filters, stored (`codebase::trigrams`).
    pub grams: Vec<u8>,
}

/// Indexes `extracted` as the project's new file set. Returns `None` when the project is
/// gone; a newer index that finished first wins (this one is then dropped).
pub async fn replace(db: &Db, project_id: i64, extracted: Extracted) -> Result<Option<Indexed>> {
    let Some(generation) = sync::next_generation(db, project_id).await? else {
        return Ok(None);
    };
    let Extracted {
        files,
        skipped,
        commit,
    } = extracted;
    let indexed = Indexed {
        commit,
        files: files.len() as i64,
        skipped,
    };
    let live = make_live(db, project_id, generation, files, &indexed).await;
    let (stale, result) = match live {
        Ok(true) => ("until_gen <= $2", Ok(Some(indexed))),
        Ok(false) => ("generation = $2", Ok(Some(indexed))),
        Err(err) => ("generation = $2", Err(err)),
    };
    // Left behind, such rows are only dead weight (no reader sees them), and the next
    // index that goes live deletes them.
    if let Err(err) = drop_rows(db, project_id, stale, generation).await {
        tracing::warn!(project_id, error = %err, "could not delete stale index rows");
    }
    result
}

/// Writes what changed since the live generation and makes `generation` live; false when
/// a newer generation went live first.
async fn make_live(
    db: &Db,
    project_id: i64,
    generation: i64,
    files: Vec<SourceFile>,
    indexed: &Indexed,
) -> Result<bool> {
    let files = Arc::new(files);
    let hashes = hash_all(Arc::clone(&files)).await?;
    let kept: HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let mut written = vec![false; files.len()];
    // Each turn diffs against the live generation. A turn fails only when an older index
    // went live meanwhile (its rows then are the base): there are finitely many of those.
    loop {
        let base = sync::live_generation(db, project_id).await?.unwrap_or(0);
        if base > generation {
            return Ok(false);
        }
        let old = live_hashes(db, project_id, base).await?;
        let changed: Vec<usize> = (0..files.len())
            .filter(|&i| !written[i] && old.get(&files[i].path) != Some(&hashes[i]))
            .collect();
        let written_now = parse_and_write(db, project_id, generation, &files, &hashes, &changed);
        if let Err(err) = written_now.await {
            // A newer generation that went live deletes pending rows like these (see
            // `replace`): this index lost the race, which is no failure.
            if sync::live_generation(db, project_id).await?.unwrap_or(0) > generation {
                return Ok(false);
            }
            return Err(err);
        }
        for i in changed {
            written[i] = true;
        }
        let removed: Vec<&str> = old
            .keys()
            .map(String::as_str)
            .filter(|path| !kept.contains(path))
            .collect();
        if swap(db, project_id, generation, base, &removed, indexed).await? {
            return Ok(true);
        }
    }
}

/// Files parsed (and written) at a time.
const FILES_PER_PART: usize = 256;

/// Parses the files at `changed` and writes them as pending rows of `generation`, a part
/// at a time: the next part is parsed while this one is written, so that the parsers and
/// the database's writer work at once (SQLite indexing 17.5 s → see bench/README.md).
async fn parse_and_write(
    db: &Db,
    project_id: i64,
    generation: i64,
    files: &Arc<Vec<SourceFile>>,
    hashes: &[String],
    changed: &[usize],
) -> Result<()> {
    let start = |part: &[usize]| tokio::spawn(parse(Arc::clone(files), part.to_vec()));
    let mut parts = changed.chunks(FILES_PER_PART);
    let mut parsing = parts.next().map(|part| (part, start(part)));
    while let Some((part, parsed)) = parsing {
        let parsed = parsed.await.map_err(Error::internal)??;
        parsing = parts.next().map(|next| (next, start(next)));
        let rows: Vec<Changed> = part
            .iter()
            .zip(parsed)
            .map(|(&i, (symbols, grams))| Changed {
                path: &files[i].path,
                content: &files[i].content,
                hash: &hashes[i],
                symbols,
                grams,
            })
            .collect();
        write::write_generation(db, project_id, generation, &rows).await?;
    }
    Ok(())
}

/// SHA-256 of every file's content, off the async workers.
async fn hash_all(files: Arc<Vec<SourceFile>>) -> Result<Vec<String>> {
    tokio::task::spawn_blocking(move || {
        files
            .iter()
            .map(|file| hex::encode(Sha256::digest(file.content.as_bytes())))
            .collect()
    })
    .await
    .map_err(Error::internal)
}

/// The symbols and the stored trigram filter of the files at `indices`: CPU work, off
/// the async workers, on as many threads as there are cores (tree-sitter's parse is most
/// of an index's CPU).
async fn parse(
    files: Arc<Vec<SourceFile>>,
    indices: Vec<usize>,
) -> Result<Vec<(Vec<Definition>, Vec<u8>)>> {
    tokio::task::spawn_blocking(move || {
        let one = |i: usize| {
            let file = &files[i];
            let grams = Filter::of_text(&file.content).encode();
            (definitions(&file.path, &file.content), grams)
        };
        // Each thread takes the next file when done with one: file sizes vary a
        // hundredfold, and fixed shares left one core idle a third of the time.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads.min(indices.len()).max(1))
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let at = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&i) = indices.get(at) else {
                                break done;
                            };
                            done.push((at, one(i)));
                        }
                    })
                })
                .collect();
            let mut done = Vec::with_capacity(indices.len());
            for worker in workers {
                let parsed = worker
                    .join()
                    .map_err(|_| Error::internal("a parser thread panicked"))?;
                done.extend(parsed);
            }
            done.sort_unstable_by_key(|(at, _)| *at);
            Ok(done.into_iter().map(|(_, parsed)| parsed).collect())
        })
    })
    .await
    .map_err(Error::internal)?
}

/// The live generation's files and their content hashes (empty for rows written before
/// hashes were kept, so such files count as changed).
async fn live_hashes(db: &Db, project_id: i64, base: i64) -> Result<HashMap<String, String>> {
    let sql =
        format!("SELECT f.path, f.hash FROM project_files f WHERE f.project_id = $1 AND {VISIBLE}");
    let rows: Vec<(String, String)> = with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(project_id)
        .bind(base)
        .fetch_all(pool)
        .await)?;
    Ok(rows.into_iter().collect())
}

/// In one transaction: makes `generation` live if `base` still is, ends the rows its own
/// rows replace and those of `removed` files, and opens its rows.
async fn swap(
    db: &Db,
    project_id: i64,
    generation: i64,
    base: i64,
    removed: &[&str],
    indexed: &Indexed,
) -> Result<bool> {
    let replaced = "UPDATE project_files SET until_gen = $2 \
                    WHERE project_id = $1 AND until_gen = $3 AND generation < $2 AND path IN \
                    (SELECT path FROM project_files WHERE project_id = $1 AND generation = $2)";
    let open = "UPDATE project_files SET until_gen = $3 WHERE project_id = $1 AND generation = $2";
    in_transaction!(db, |tx| {
        if !sync::make_live(&mut *tx, project_id, generation, base, indexed).await? {
            return Ok(false);
        }
        sqlx::query(replaced)
            .bind(project_id)
            .bind(generation)
            .bind(OPEN)
            .execute(&mut *tx)
            .await?;
        for paths in removed.chunks(PATHS_PER_UPDATE) {
            let sql = removed_update(paths.len());
            let mut query = sqlx::query(&sql)
                .bind(project_id)
                .bind(generation)
                .bind(OPEN);
            for path in paths {
                query = query.bind(*path);
            }
            query.execute(&mut *tx).await?;
        }
        sqlx::query(open)
            .bind(project_id)
            .bind(generation)
            .bind(OPEN)
            .execute(&mut *tx)
            .await?;
        true
    })
}

fn removed_update(paths: usize) -> String {
    let placeholders: Vec<String> = (0..paths).map(|i| format!("${}", i + 4)).collect();
    format!(
        "UPDATE project_files SET until_gen = $2 WHERE project_id = $1 AND until_gen = $3 \
         AND generation < $2 AND path IN ({})",
        placeholders.join(", ")
    )
}

/// Deletes the file rows `condition` names (with `$2` the generation), with their
/// symbols and text, a batch per statement so that no write holds SQLite's lock for long.
async fn drop_rows(db: &Db, project_id: i64, condition: &str, generation: i64) -> Result<()> {
    let files = format!("SELECT id FROM project_files WHERE project_id = $1 AND {condition}");
    let symbols = format!(
        "DELETE FROM project_symbols WHERE id IN (SELECT id FROM project_symbols \
         WHERE file_id IN ({files}) LIMIT $3)"
    );
    let contents = format!(
        "DELETE FROM project_contents WHERE file_id IN (SELECT file_id FROM project_contents \
         WHERE file_id IN ({files}) LIMIT $3)"
    );
    let files = format!("DELETE FROM project_files WHERE id IN ({files} LIMIT $3)");
    for (sql, batch) in [
        (symbols, SYMBOLS_PER_DELETE),
        (contents, FILES_PER_DELETE),
        (files, FILES_PER_DELETE),
    ] {
        loop {
            let affected = with_pool!(db, |pool| sqlx::query(&sql)
                .bind(project_id)
                .bind(generation)
                .bind(batch)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()))?;
            if affected == 0 {
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn removed_paths_are_numbered_after_the_fixed_parameters() {
        assert_eq!(
            super::removed_update(2),
            "UPDATE project_files SET until_gen = $2 WHERE project_id = $1 AND until_gen = $3 \
             AND generation < $2 AND path IN ($4, $5)"
        );
    }
}
