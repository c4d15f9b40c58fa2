//! Writing the rows of one generation: its files (pending: `until_gen = generation`, so
//! that no reader sees them before the swap) with their symbols, in short transactions (a
//! long one would hold SQLite's write lock for seconds).

use std::sync::Arc;

use super::Changed;
use crate::{
    codebase::{
        snapshot::{Kept, Text},
        symbols::parse::Definition,
    },
    db::Db,
    error::{Error, Result},
    in_transaction,
};

/// Symbols per multi-row INSERT: 10 parameters each stays far below both backends' limits.
const SYMBOLS_PER_INSERT: usize = 100;
/// A write transaction ends once it wrote this much text or this many symbols: on SQLite
/// every other writer waits for it, so it must stay well under a second.
const TRANSACTION_BYTES: usize = 1024 * 1024;
const TRANSACTION_SYMBOLS: usize = 2_000;

/// Writes `files` as pending rows of `generation`.
pub(super) async fn write_generation(
    db: &Db,
    project_id: i64,
    generation: i64,
    files: &[Changed<'_>],
) -> Result<()> {
    let mut start = 0;
    while start < files.len() {
        let (mut bytes, mut symbols) = (0, 0);
        let mut end = start;
        while end < files.len() && bytes < TRANSACTION_BYTES && symbols < TRANSACTION_SYMBOLS {
            bytes += files[end].content.len();
            symbols += files[end].symbols.len();
            end += 1;
        }
        write_batch(db, project_id, generation, &files[start..end]).await?;
        start = end;
    }
    Ok(())
}

/// Writes `files` and their symbols in one transaction.
async fn write_batch(
    db: &Db,
    project_id: i64,
    generation: i64,
    files: &[Changed<'_>],
) -> Result<()> {
    let ids = in_transaction!(db, |tx| {
        let mut ids = Vec::with_capacity(files.len());
        for file in files {
            let (file_id,): (i64,) = sqlx::query_as(
                "INSERT INTO project_files (project_id, generation, until_gen, path, size, \
                 lines, hash) VALUES ($1, $2, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(project_id)
            .bind(generation)
            .bind(file.path)
            .bind(file.content.len() as i64)
            .bind(file.content.lines().count() as i64)
            .bind(file.hash)
            .fetch_one(&mut *tx)
            .await?;
            ids.push(file_id);
            sqlx::query(
                "INSERT INTO project_contents (file_id, content, grams) VALUES ($1, $2, $3)",
            )
            .bind(file_id)
            .bind(file.content)
            .bind(&file.grams)
            .execute(&mut *tx)
            .await?;
            let lines: Vec<&str> = file.content.lines().collect();
            for run in file.symbols.chunks(SYMBOLS_PER_INSERT) {
                let sql = symbols_insert(db, run.len());
                let mut query = sqlx::query(&sql);
                for s in run {
                    let text = line_text(&lines, s).ok_or_else(|| {
                        Error::internal(format!("symbol {} past the end of {}", s.name, file.path))
                    })?;
                    query = query
                        .bind(file_id)
                        .bind(project_id)
                        .bind(generation)
                        .bind(&s.name)
                        .bind(s.name.to_lowercase());
                    query = query
                        .bind(s.kind.as_str())
                        .bind(s.line)
                        .bind(s.end_line)
                        .bind(&s.container)
                        .bind(text);
                }
                query.execute(&mut *tx).await?;
            }
        }
        ids
    })?;
    // Committed, the ids are the files' for good (SQLite may hand out a rolled-back one
    // again): their texts are kept now, so that the first searches after an index need
    // not read them back.
    let kept = Kept::of(db);
    for (id, file) in ids.into_iter().zip(files) {
        kept.keep_text(id, Arc::new(Text::new(file.content.to_owned())));
    }
    Ok(())
}

/// The text of the line a definition starts on.
fn line_text<'a>(lines: &[&'a str], definition: &Definition) -> Option<&'a str> {
    let index = usize::try_from(definition.line).ok()?.checked_sub(1)?;
    lines.get(index).copied()
}

const SYMBOL_COLUMNS: usize = 10;

/// A multi-row INSERT of `rows` symbols.
fn symbols_insert(db: &Db, rows: usize) -> String {
    format!(
        "INSERT INTO project_symbols (file_id, project_id, generation, name, name_lower, kind, \
         line, end_line, container, text) VALUES {}",
        db.values(rows, SYMBOL_COLUMNS)
    )
}
