//! Writing the rows of one generation: its files (pending: `until_gen = generation`, so
//! that no reader sees them before the swap), their non-blank lines and their symbols, in
//! short transactions (a long one would hold SQLite's write lock for seconds).

use super::Changed;
use crate::{
    codebase::symbols::parse::Definition,
    db::Db,
    error::{Error, Result},
    specialists::reading::defined_name,
};

/// Rows per multi-row INSERT: 4 parameters each stays far below both backends' limits.
const LINES_PER_INSERT: usize = 400;
/// 9 parameters each.
const SYMBOLS_PER_INSERT: usize = 200;
/// A write transaction ends once it wrote this much text or this many lines: on SQLite
/// every other writer waits for it, so it must stay well under a second.
const TRANSACTION_BYTES: usize = 1024 * 1024;
const TRANSACTION_LINES: usize = 4_000;

/// What one write transaction holds: file rows, and runs of a file's lines that follow
/// its row (in this transaction or an earlier one).
#[derive(Default)]
struct Batch<'a> {
    writes: Vec<Write<'a>>,
    bytes: usize,
    lines: usize,
}

enum Write<'a> {
    File(&'a Changed<'a>),
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

/// Writes `files` as pending rows of `generation`.
pub(super) async fn write_generation(
    db: &Db,
    project_id: i64,
    generation: i64,
    files: &[Changed<'_>],
) -> Result<()> {
    let mut batch = Batch::default();
    let mut file_id = None;
    for file in files {
        batch.push(Write::File(file));
        for run in file.symbols.chunks(SYMBOLS_PER_INSERT) {
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
                    "INSERT INTO project_files (project_id, generation, until_gen, path, content, \
                     size, lines, hash) VALUES ($1, $2, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .bind(project_id)
                .bind(generation)
                .bind(file.path)
                .bind(file.content)
                .bind(file.content.len() as i64)
                .bind(file.content.lines().count() as i64)
                .bind(file.hash)
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
