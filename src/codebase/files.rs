//! Reading the live generation of a project's files: the listing and one file's text.

use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;

use crate::{codebase::snapshot, db::Db, error::Result, pagination::PageRequest, with_pool};

/// Files of the live generation only (a re-index in progress is invisible).
const LIVE: &str = "FROM project_files f JOIN projects p ON p.id = f.project_id \
                    AND f.generation <= p.sync_generation AND f.until_gen > p.sync_generation \
                    WHERE f.project_id = $1";
/// The same, with each file's text as `c.content`.
const LIVE_WITH_TEXT: &str = "FROM project_files f JOIN project_contents c ON c.file_id = f.id \
                    JOIN projects p ON p.id = f.project_id \
                    AND f.generation <= p.sync_generation AND f.until_gen > p.sync_generation \
                    WHERE f.project_id = $1";

/// One indexed file.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct FileEntry {
    #[schema(example = "src/cart.rs")]
    pub path: String,
    /// Size in bytes.
    pub size: i64,
    /// Number of lines.
    pub lines: i64,
}

/// One indexed file with its text.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct FileContent {
    pub path: String,
    pub content: String,
    pub size: i64,
    pub lines: i64,
}

pub async fn list(
    db: &Db,
    project_id: i64,
    prefix: &str,
    page: PageRequest,
) -> Result<(Vec<FileEntry>, i64)> {
    // substr keeps the prefix case-sensitive on both backends (SQLite's LIKE is not).
    let filter = "AND substr(f.path, 1, length($2)) = $2";
    let rows = format!(
        "SELECT f.path, f.size, f.lines {LIVE} {filter} ORDER BY f.path LIMIT $3 OFFSET $4"
    );
    let count = format!("SELECT COUNT(*) {LIVE} {filter}");
    Ok(with_pool!(db, |pool| {
        let items = sqlx::query_as(&rows)
            .bind(project_id)
            .bind(prefix)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(pool)
            .await?;
        let (total,): (i64,) = sqlx::query_as(&count)
            .bind(project_id)
            .bind(prefix)
            .fetch_one(pool)
            .await?;
        Ok::<_, sqlx::Error>((items, total))
    })?)
}

pub async fn content(db: &Db, project_id: i64, path: &str) -> Result<Option<FileContent>> {
    let sql = format!("SELECT f.path, c.content, f.size, f.lines {LIVE_WITH_TEXT} AND f.path = $2");
    Ok(with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(project_id)
        .bind(path)
        .fetch_optional(pool)
        .await)?)
}

/// The text of each of `paths` that generation `generation` holds (kept in memory, or
/// read in one query); none when the generation stopped being live (its reader checks
/// that afterwards and reads again).
pub async fn contents_in(
    db: &Db,
    project_id: i64,
    generation: i64,
    paths: &[String],
) -> Result<Vec<(String, Arc<snapshot::Text>)>> {
    let Some(snapshot) = snapshot::of(db, project_id, generation).await? else {
        return Ok(Vec::new());
    };
    let files: Vec<(i64, &str)> = paths
        .iter()
        .filter_map(|p| snapshot.place_of(p))
        .map(|place| snapshot.file(place))
        .collect();
    let ids: Vec<i64> = files.iter().map(|(id, _)| *id).collect();
    let texts = snapshot::texts(db, &ids).await?;
    Ok(files
        .into_iter()
        .zip(texts)
        .map(|((_, path), text)| (path.to_owned(), text))
        .collect())
}
