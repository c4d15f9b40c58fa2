//! Writing the rows of one generation: its files (pending: `until_gen = generation`, so
//! that no reader sees them before the swap) with their symbols, in short transactions (a
//! long one would hold SQLite's write lock for seconds).

use std::{collections::HashMap, sync::Arc};

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
/// And at most this many files: one multi-row INSERT writes them all, at 7 parameters
/// each (SQLite allows 32,766 a statement, PostgreSQL 65,535).
const TRANSACTION_FILES: usize = 500;
const FILE_COLUMNS: usize = 7;

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
        while end < files.len()
            && bytes < TRANSACTION_BYTES
            && symbols < TRANSACTION_SYMBOLS
            && end - start < TRANSACTION_FILES
        {
            bytes += files[end].content.len();
            symbols += files[end].symbols.len();
            end += 1;
        }
        write_batch(db, project_id, generation, &files[start..end]).await?;
        start = end;
    }
    Ok(())
}

/// Writes `files` and their symbols in one transaction, a few multi-row statements: one
/// for the files, one for their texts, one per [`SYMBOLS_PER_INSERT`] symbols (a
/// statement per file and per file's symbols made indexing wait on round trips).
async fn write_batch(
    db: &Db,
    project_id: i64,
    generation: i64,
    files: &[Changed<'_>],
) -> Result<()> {
    let files_insert = format!(
        "INSERT INTO project_files (project_id, generation, until_gen, path, size, lines, \
         hash) VALUES {} RETURNING id, path",
        db.values(files.len(), FILE_COLUMNS)
    );
    let contents_insert = format!(
        "INSERT INTO project_contents (file_id, content, grams) VALUES {}",
        db.values(files.len(), 3)
    );
    let ids = in_transaction!(db, |tx| {
        let query = files
            .iter()
            .fold(sqlx::query_as(&files_insert), |query, file| {
                query
                    .bind(project_id)
                    .bind(generation)
                    .bind(generation)
                    .bind(file.path)
                    .bind(file.content.len() as i64)
                    .bind(file.content.lines().count() as i64)
                    .bind(file.hash)
            });
        let rows: Vec<(i64, String)> = query.fetch_all(&mut *tx).await?;
        // RETURNING's order is not promised: the rows are matched by path, unique here.
        let by_path: HashMap<String, i64> = rows.into_iter().map(|(id, path)| (path, id)).collect();
        let ids = files
            .iter()
            .map(|file| {
                by_path
                    .get(file.path)
                    .copied()
                    .ok_or_else(|| Error::internal(format!("no row written for {}", file.path)))
            })
            .collect::<Result<Vec<i64>>>()?;
        let query = files
            .iter()
            .zip(&ids)
            .fold(sqlx::query(&contents_insert), |query, (file, id)| {
                query.bind(*id).bind(file.content).bind(&file.grams)
            });
        query.execute(&mut *tx).await?;
        let mut symbols = Vec::new();
        for (file, id) in files.iter().zip(&ids) {
            let lines: Vec<&str> = file.content.lines().collect();
            for s in &file.symbols {
                let text = line_text(&lines, s).ok_or_else(|| {
                    Error::internal(format!("symbol {} past the end of {}", s.name, file.path))
                })?;
                symbols.push((*id, s, text));
            }
        }
        for run in symbols.chunks(SYMBOLS_PER_INSERT) {
            let sql = symbols_insert(db, run.len());
            let query = run.iter().fold(sqlx::query(&sql), |query, (id, s, text)| {
                query
                    .bind(*id)
                    .bind(project_id)
                    .bind(generation)
                    .bind(&s.name)
                    .bind(s.name.to_lowercase())
                    .bind(s.kind.as_str())
                    .bind(s.line)
                    .bind(s.end_line)
                    .bind(&s.container)
                    .bind(*text)
            });
            query.execute(&mut *tx).await?;
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
