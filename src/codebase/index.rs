//! Writing a project's files and their lines into the index, one generation at a time.
//!
//! A re-index writes a new generation in short transactions (a long one would hold
//! SQLite's write lock for seconds), then makes it live with one `UPDATE` of the project,
//! then deletes the older generations. Readers always name one generation, so they see
//! the old set or the new one, never a mix; a generation that fails on the way is
//! deleted, so a failed index leaves nothing behind.

use super::{
    archive::{Extracted, SourceFile},
    symbols::parse::{definitions, Definition},
};
use crate::{
    db::Db,
    error::{Error, Result},
    projects::sync::{self, Indexed},
    specialists::reading::defined_name,
    with_pool,
};

/// Rows per multi-row INSERT: 4 parameters each stays far below both backends' limits.
const LINES_PER_INSERT: usize = 400;
/// 9 parameters each.
const SYMBOLS_PER_INSERT: usize = 200;
/// A write transaction ends once it wrote this much text or this many lines: on SQLite
/// every other writer waits for it, so it must stay well under a second.
const TRANSACTION_BYTES: usize = 1024 * 1024;
const TRANSACTION_LINES: usize = 4_000;
/// Rows per DELETE when dropping a generation: its lines first (each also leaves the
/// search index), then its files, which then cascade to nothing.
const LINES_PER_DELETE: i64 = 4_000;
const FILES_PER_DELETE: i64 = 50;

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
    // Parsing is CPU work: off the async workers, like the extraction.
    let (files, symbols) = tokio::task::spawn_blocking(move || {
        let symbols: Vec<Vec<Definition>> = files
            .iter()
            .map(|file| definitions(&file.path, &file.content))
            .collect();
        (files, symbols)
    })
    .await
    .map_err(Error::internal)?;
    let live = async {
        write_generation(db, project_id, generation, &files, &symbols).await?;
        sync::make_live(db, project_id, generation, &indexed).await
    }
    .await;
    let (stale, result) = match live {
        Ok(true) => ("generation < $2", Ok(Some(indexed))),
        Ok(false) => ("generation = $2", Ok(Some(indexed))),
        Err(err) => ("generation = $2", Err(err)),
    };
    // Left behind, stale rows are only dead weight (no reader names their generation),
    // and the next index deletes every generation older than its own.
    if let Err(err) = drop_generations(db, project_id, stale, generation).await {
        tracing::warn!(project_id, error = %err, "could not delete a stale index generation");
    }
    result
}

/// What one write transaction holds: file rows, and runs of a file's lines that follow
/// its row (in this transaction or an earlier one).
#[derive(Default)]
struct Batch<'a> {
    writes: Vec<Write<'a>>,
    bytes: usize,
    lines: usize,
}

enum Write<'a> {
    File(&'a SourceFile),
    Lines(Vec<(i64, bool, &'a str)>),
    Symbols(&'a [Definition]),
}

impl<'a> Batch<'a> {
    fn push(&mut self, write: Write<'a>) {
        match &write {
            Write::File(file) => self.bytes += file.content.len(),
            Write::Lines(rows) => {
                self.bytes += rows.iter().map(|(_, _, text)| text.len()).sum::<usize>();
                self.lines += rows.len();
            }
            Write::Symbols(symbols) => self.lines += symbols.len(),
        }
        self.writes.push(write);
    }

    fn full(&self) -> bool {
        self.bytes >= TRANSACTION_BYTES || self.lines >= TRANSACTION_LINES
    }
}

async fn write_generation(
    db: &Db,
    project_id: i64,
    generation: i64,
    files: &[SourceFile],
    symbols: &[Vec<Definition>],
) -> Result<()> {
    let mut batch = Batch::default();
    let mut file_id = None;
    for (file, symbols) in files.iter().zip(symbols) {
        batch.push(Write::File(file));
        for run in symbols.chunks(SYMBOLS_PER_INSERT) {
            batch.push(Write::Symbols(run));
        }
        let mut rows = file
            .content
            .lines()
            .enumerate()
            .filter(|(_, text)| !text.trim().is_empty())
            .map(|(i, text)| (i as i64 + 1, defined_name(text).is_some(), text));
        loop {
            if batch.full() {
                let full = std::mem::take(&mut batch);
                file_id = write_batch(db, project_id, generation, full, file_id).await?;
            }
            let run: Vec<_> = rows.by_ref().take(LINES_PER_INSERT).collect();
            if run.is_empty() {
                break;
            }
            batch.push(Write::Lines(run));
        }
    }
    if !batch.writes.is_empty() {
        write_batch(db, project_id, generation, batch, file_id).await?;
    }
    Ok(())
}

/// Writes `batch` in one transaction. `file_id` is the file the batch's first lines
/// belong to when its row was written before; returns the last file written.
async fn write_batch(
    db: &Db,
    project_id: i64,
    generation: i64,
    batch: Batch<'_>,
    mut file_id: Option<i64>,
) -> Result<Option<i64>> {
    crate::in_transaction!(db, |tx| {
        for write in &batch.writes {
            if let Write::File(file) = write {
                let (id,): (i64,) = sqlx::query_as(
                    "INSERT INTO project_files (project_id, generation, path, content, size, lines) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(project_id)
                .bind(generation)
                .bind(&file.path)
                .bind(&file.content)
                .bind(file.content.len() as i64)
                .bind(file.content.lines().count() as i64)
                .fetch_one(&mut *tx)
                .await?;
                file_id = Some(id);
                continue;
            }
            let id = file_id.ok_or_else(|| Error::internal("rows before their file"))?;
            match write {
                Write::File(_) => {}
                Write::Lines(rows) => {
                    let sql = lines_insert(rows.len());
                    let mut query = sqlx::query(&sql);
                    for (line, definition, text) in rows {
                        query = query
                            .bind(id)
                            .bind(*line)
                            .bind(i64::from(*definition))
                            .bind(*text);
                    }
                    query.execute(&mut *tx).await?;
                }
                Write::Symbols(symbols) => {
                    let sql = symbols_insert(symbols.len());
                    let mut query = sqlx::query(&sql);
                    for s in *symbols {
                        let (name, lower) = (&s.name, s.name.to_lowercase());
                        query = query
                            .bind(id)
                            .bind(project_id)
                            .bind(generation)
                            .bind(name)
                            .bind(lower);
                        query = query
                            .bind(s.kind.as_str())
                            .bind(s.line)
                            .bind(s.end_line)
                            .bind(&s.container);
                    }
                    query.execute(&mut *tx).await?;
                }
            }
        }
        file_id
    })
}

fn lines_insert(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|i| {
            let n = i * 4;
            format!("(${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4)
        })
        .collect();
    format!(
        "INSERT INTO project_lines (file_id, line, definition, text) VALUES {}",
        values.join(", ")
    )
}

const SYMBOL_COLUMNS: usize = 9;

fn symbols_insert(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|i| {
            let placeholders: Vec<String> = (1..=SYMBOL_COLUMNS)
                .map(|n| format!("${}", i * SYMBOL_COLUMNS + n))
                .collect();
            format!("({})", placeholders.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO project_symbols (file_id, project_id, generation, name, name_lower, kind, \
         line, end_line, container) VALUES {}",
        values.join(", ")
    )
}

/// Deletes the generations `condition` names: their lines, then their files, a batch per
/// statement so that no write holds SQLite's lock for long.
async fn drop_generations(
    db: &Db,
    project_id: i64,
    condition: &str,
    generation: i64,
) -> Result<()> {
    let files = format!("SELECT id FROM project_files WHERE project_id = $1 AND {condition}");
    let lines = format!(
        "DELETE FROM project_lines WHERE id IN (SELECT id FROM project_lines \
         WHERE file_id IN ({files}) LIMIT $3)"
    );
    let symbols = format!(
        "DELETE FROM project_symbols WHERE id IN (SELECT id FROM project_symbols \
         WHERE project_id = $1 AND {condition} LIMIT $3)"
    );
    let files = format!("DELETE FROM project_files WHERE id IN ({files} LIMIT $3)");
    for (sql, batch) in [
        (lines, LINES_PER_DELETE),
        (symbols, LINES_PER_DELETE),
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
    use super::*;

    #[test]
    fn line_inserts_number_their_parameters() {
        assert_eq!(
            lines_insert(2),
            "INSERT INTO project_lines (file_id, line, definition, text) VALUES ($1, $2, $3, $4), ($5, $6, $7, $8)"
        );
    }
}
