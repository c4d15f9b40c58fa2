//! `/projects/{id}/files`, `/projects/{id}/files/content` and `/projects/{id}/search`:
//! upload code, list and read what is indexed, search it. Owner only.

use axum::{
    body::{to_bytes, Bytes},
    extract::{Request, State},
    response::IntoResponse,
};
use serde::{Deserialize, Serialize};
use tokio::sync::OwnedSemaphorePermit;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::files::{FileContent, FileEntry};
use super::{
    archive::{self, ArchiveError},
    files, index,
    matcher::{Matcher, Options},
    search::{self, Hit},
    snapshot, Unread,
};
use crate::{
    auth::AuthUser,
    error::{
        ok,
        responses::{envelope_schema, Authenticated, ServerErrors},
        Error, ErrorBody, Result,
    },
    extract::{over_length_limit, Id, Query},
    pagination::{Page, PageParams},
    projects::{
        self,
        sync::{self as sync_state, SyncStateResponse, SyncStatus},
    },
    state::AppState,
    validate::{Violations, NUL_REFUSED},
};

/// `/api/v1/projects/{id}/files`, `…/files/content` and `…/search` with their
/// OpenAPI.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(CodebaseApi::openapi())
        .routes(routes!(list_files, upload))
        .routes(routes!(read_file))
        .routes(routes!(search_files))
        .routes(routes!(super::symbols::routes::list_symbols))
}

/// A page inlines its items, so the file entry is named in the document here.
#[derive(OpenApi)]
#[openapi(components(schemas(FileEntry)))]
struct CodebaseApi;

envelope_schema!(FileEntryPageResponse, Page<FileEntry>);
envelope_schema!(FileContentResponse, FileContent);
envelope_schema!(SearchResultResponse, SearchResult);

const SEARCH_DEFAULT_LIMIT: i64 = 20;
const QUERY_MAX_CHARS: usize = 200;
const PATH_MAX_CHARS: usize = 1_024;

/// A `.tar.gz` or `.zip` archive of the code; the format is read from its first bytes.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct Archive(Vec<u8>);

#[utoipa::path(put, path = "/api/v1/projects/{id}/files", tag = "codebase", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id")),
    request_body(description = "A .tar.gz or .zip archive (at most UPLOAD_LIMIT_BYTES, default 50 MiB). \
        A single top directory is stripped; unsafe, binary and oversized entries are skipped and listed.",
        content(
            (Archive = "application/gzip"),
            (Archive = "application/zip"),
            (Archive = "application/octet-stream"),
        )),
    responses(
        (status = 200, description = "Indexed: the project's new file set replaced the old one at once", body = SyncStateResponse),
        Authenticated, ServerErrors,
        (status = 404, description = "No such project of this user", body = ErrorBody),
        (status = 400, description = "The body could not be read", body = ErrorBody),
        (status = 408, description = "The body did not arrive within `BODY_TIMEOUT_SECONDS`", body = ErrorBody),
        (status = 413, description = "Archive larger than UPLOAD_LIMIT_BYTES", body = ErrorBody),
        (status = 415, description = "Neither a .tar.gz nor a .zip archive", body = ErrorBody),
        (status = 422, description = "The archive is corrupt, or a zip whose entries overlap", body = ErrorBody),
        (status = 429, description = "`INDEX_CONCURRENCY` archives are being indexed on this server; retry later",
            body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    ))]
pub async fn upload(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
    request: Request,
) -> Result<impl IntoResponse> {
    projects::store::owned(&state.db, user.id, id).await?;
    // Taken before the body is buffered, so that at most INDEX_CONCURRENCY archives are
    // held, inflated and indexed at once; a slow body is bounded by BODY_TIMEOUT_SECONDS.
    let permit = state
        .index_permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| Error::RateLimited {
            retry_after_secs: INDEXING_BUSY_RETRY_SECS,
        })?;
    let limit = state.config.codebase.upload_limit_bytes;
    let body = to_bytes(request.into_body(), limit).await.map_err(|err| {
        if over_length_limit(&err) {
            Error::PayloadTooLarge
        } else {
            Error::BadRequest("Could not read the request body".into())
        }
    })?;
    if archive::format_of(&body).is_none() {
        return Err(Error::UnsupportedMediaType(
            "Expected a .tar.gz or .zip archive",
        ));
    }
    // Its own task: a client that goes away must not stop an index half-written.
    tokio::spawn(index_upload(state.clone(), id, body, permit))
        .await
        .map_err(Error::internal)??;
    let project = projects::store::owned(&state.db, user.id, id).await?;
    Ok(ok(project.sync, "Files indexed"))
}

/// Seconds a client is told to wait when every indexing permit is taken.
const INDEXING_BUSY_RETRY_SECS: u64 = 5;

async fn index_upload(
    state: AppState,
    id: i64,
    body: Bytes,
    _permit: OwnedSemaphorePermit,
) -> Result<()> {
    let extracted = super::extract(body).await.map_err(|err| match err {
        Unread::Interrupted(err) => Error::internal(err),
        Unread::Archive(ArchiveError::UnknownFormat) => {
            Error::UnsupportedMediaType("Expected a .tar.gz or .zip archive")
        }
        Unread::Archive(err @ (ArchiveError::Corrupt | ArchiveError::OverlappingEntries)) => {
            Error::invalid("body", err.to_string())
        }
    })?;
    sync_state::mark(&state.db, id, SyncStatus::Running, None).await?;
    match index::replace(&state.db, id, extracted).await {
        Ok(Some(_)) => {
            snapshot::warm(&state.db, id).await;
            Ok(())
        }
        Ok(None) => Err(Error::NotFound("Project")),
        Err(err) => {
            let failed = Some("indexing failed");
            sync_state::mark(&state.db, id, SyncStatus::Failed, failed).await?;
            Err(err)
        }
    }
}

/// PostgreSQL cannot compare text holding NUL: refused alike on both databases.
fn refuse_nul(field: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::invalid(field, NUL_REFUSED));
    }
    Ok(())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileListParams {
    /// Only paths that start with this (case-sensitive), e.g. `src/`.
    #[param(max_length = 1024, pattern = r"^[^\x00]*$")]
    pub path_prefix: Option<String>,
    /// 1 to 100; default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Rows to skip; default 0.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/files", tag = "codebase", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id"), FileListParams),
    responses(
        (status = 200, description = "Indexed files, by path", body = FileEntryPageResponse),
        Authenticated, ServerErrors,
        (status = 404, description = "No such project of this user", body = ErrorBody),
        (status = 422, description = "Invalid parameters", body = ErrorBody),
    ))]
pub async fn list_files(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
    Query(params): Query<FileListParams>,
) -> Result<impl IntoResponse> {
    let page = PageParams {
        limit: params.limit,
        offset: params.offset,
    }
    .validate()?;
    let prefix = params.path_prefix.unwrap_or_default();
    refuse_nul("path_prefix", &prefix)?;
    if prefix.chars().count() > PATH_MAX_CHARS {
        return Err(Error::invalid(
            "path_prefix",
            format!("must be at most {PATH_MAX_CHARS} characters"),
        ));
    }
    projects::store::owned(&state.db, user.id, id).await?;
    let (items, total) = files::list(&state.db, id, &prefix, page).await?;
    Ok(ok(Page::new(items, total, page), "Files retrieved"))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileContentParams {
    /// The file's path as listed, e.g. `src/cart.rs`.
    #[param(min_length = 1, max_length = 1024, pattern = r"^[^\x00]*$")]
    pub path: String,
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/files/content", tag = "codebase", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id"), FileContentParams),
    responses(
        (status = 200, description = "The file", body = FileContentResponse),
        Authenticated, ServerErrors,
        (status = 404, description = "No such project of this user, or no such file in it", body = ErrorBody),
        (status = 422, description = "Invalid parameters", body = ErrorBody),
    ))]
pub async fn read_file(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
    Query(params): Query<FileContentParams>,
) -> Result<impl IntoResponse> {
    refuse_nul("path", &params.path)?;
    let chars = params.path.chars().count();
    if !(1..=PATH_MAX_CHARS).contains(&chars) {
        return Err(Error::invalid(
            "path",
            format!("must be 1 to {PATH_MAX_CHARS} characters"),
        ));
    }
    projects::store::owned(&state.db, user.id, id).await?;
    let file = files::content(&state.db, id, &params.path)
        .await?
        .ok_or(Error::NotFound("File"))?;
    Ok(ok(file, "File retrieved"))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Text to find in lines, taken as is (blanks included), or a regular expression with
    /// `regex=true`; a query equal to a file's path or name also finds that file.
    #[param(min_length = 1, max_length = 200, pattern = r"^[^\x00]*$")]
    pub q: String,
    /// 1 to 100; default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// A glob on paths: without `/` it matches file names at any depth (`*.py`); with
    /// `/` it is anchored at the root, `*` within a directory, `**` across (`src/**/*.rs`).
    #[param(min_length = 1, max_length = 1024, pattern = r"^[^\x00]*$")]
    pub path: Option<String>,
    /// `insensitive` (default) or `sensitive`.
    #[param(inline)]
    pub case: Option<Case>,
    /// Whole identifiers only: the match is not preceded or followed by `[A-Za-z0-9_]`.
    pub word: Option<bool>,
    /// `q` is a regular expression (Rust `regex` syntax); an invalid one is a 422 on `q`.
    pub regex: Option<bool>,
}

/// Whether letter case must match.
#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Case {
    #[default]
    Insensitive,
    Sensitive,
}

/// Matching lines, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    pub items: Vec<Hit>,
    /// How many lines match (files whose path is the query count once each), counted
    /// exactly up to 1,000.
    #[schema(minimum = 0, maximum = 1000)]
    pub total: i64,
    /// False when more than 1,000 lines match (`total` is then 1,000) or the search was
    /// cut short (`partial`).
    pub total_exact: bool,
    /// The search reached `SEARCH_TIMEOUT_MS`: these are the matches found until then.
    pub partial: bool,
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/search", tag = "codebase", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id"), SearchParams),
    responses(
        (status = 200, description = "Matches: files named by the query, then definitions of \
            the query (its exact name, then names starting with it), then lines matching with the \
            query's exact case, then the rest, each by path and line", body = SearchResultResponse),
        Authenticated, ServerErrors,
        (status = 404, description = "No such project of this user", body = ErrorBody),
        (status = 422, description = "Invalid parameters, an invalid regular expression or glob", body = ErrorBody),
        (status = 503, description = "The project was re-indexed several times during the search", body = ErrorBody),
    ))]
pub async fn search_files(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
    Query(params): Query<SearchParams>,
) -> Result<impl IntoResponse> {
    let mut check = Violations::default();
    let q = params.q;
    if !(1..=QUERY_MAX_CHARS).contains(&q.chars().count()) {
        check.add("q", format!("must be 1 to {QUERY_MAX_CHARS} characters"));
    } else if q.contains('\0') {
        check.add("q", NUL_REFUSED);
    }
    let limit = params.limit.unwrap_or(SEARCH_DEFAULT_LIMIT);
    if !(1..=100).contains(&limit) {
        check.add("limit", "must be between 1 and 100");
    }
    if let Some(path) = &params.path {
        if !(1..=PATH_MAX_CHARS).contains(&path.chars().count()) {
            check.add("path", format!("must be 1 to {PATH_MAX_CHARS} characters"));
        } else if path.contains('\0') {
            check.add("path", NUL_REFUSED);
        }
    }
    check.finish()?;
    let options = Options {
        case_sensitive: matches!(params.case, Some(Case::Sensitive)),
        word: params.word.unwrap_or(false),
        regex: params.regex.unwrap_or(false),
    };
    let matcher = Matcher::new(&q, options, params.path.as_deref())
        .map_err(|invalid| Error::invalid(invalid.field, invalid.message))?;
    let live = sync_state::owned_live_generation(&state.db, user.id, id).await?;
    let request = search::Request {
        matcher: &matcher,
        limit: limit as usize,
        timeout: state.config.codebase.search_timeout,
        cap: search::TOTAL_CAP,
    };
    let found = search::search(&state.db, id, live, &request).await?;
    Ok(ok(
        SearchResult {
            items: found.hits,
            total: found.total,
            total_exact: found.total_exact,
            partial: found.partial,
        },
        "Search results",
    ))
}
