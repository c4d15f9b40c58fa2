//! `/projects/{id}/symbols`: the project's definitions by name prefix and kind. Owner only.

use axum::{extract::State, response::IntoResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Kind, Lookup, Symbol};
use crate::{
    auth::AuthUser,
    error::{
        ok,
        responses::{envelope_schema, Authenticated, ServerErrors},
        ErrorBody, Result,
    },
    extract::{Id, Query},
    projects,
    state::AppState,
    validate::{Violations, NUL_REFUSED},
};

envelope_schema!(SymbolListResponse, SymbolList);

const QUERY_MAX_CHARS: usize = 200;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SymbolParams {
    /// Names starting with this, case-insensitively (exact names first); all when absent.
    #[param(max_length = 200, pattern = r"^[^\x00]*$")]
    pub q: Option<String>,
    /// Only symbols of this kind.
    #[param(inline)]
    pub kind: Option<Kind>,
    /// 1 to 100; default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Definitions, exact names first, then by name, path and line.
#[derive(Debug, Serialize, ToSchema)]
pub struct SymbolList {
    pub items: Vec<Symbol>,
    /// How many symbols match.
    #[schema(minimum = 0)]
    pub total: i64,
}

const SYMBOLS_DEFAULT_LIMIT: i64 = 50;

#[utoipa::path(get, path = "/api/v1/projects/{id}/symbols", tag = "codebase", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Project id"), SymbolParams),
    responses(
        (status = 200, description = "The project's definitions (Rust, Python, JavaScript, TypeScript, \
            Go and Java files) whose name starts with `q`", body = SymbolListResponse),
        Authenticated, ServerErrors,
        (status = 404, description = "No such project of this user", body = ErrorBody),
        (status = 422, description = "Invalid parameters", body = ErrorBody),
        (status = 503, description = "The project was re-indexed several times during the lookup", body = ErrorBody),
    ))]
pub async fn list_symbols(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Id(id): Id,
    Query(params): Query<SymbolParams>,
) -> Result<impl IntoResponse> {
    let mut check = Violations::default();
    let q = params.q.unwrap_or_default();
    if q.chars().count() > QUERY_MAX_CHARS {
        check.add("q", format!("must be at most {QUERY_MAX_CHARS} characters"));
    } else if q.contains('\0') {
        check.add("q", NUL_REFUSED);
    }
    let limit = params.limit.unwrap_or(SYMBOLS_DEFAULT_LIMIT);
    if !(1..=100).contains(&limit) {
        check.add("limit", "must be between 1 and 100");
    }
    check.finish()?;
    let live = projects::sync::owned_live_generation(&state.db, user.id, id).await?;
    let lookup = Lookup {
        prefix: &q,
        kind: params.kind,
        limit,
    };
    let (items, total) = super::lookup(&state.db, id, live, &lookup).await?;
    Ok(ok(SymbolList { items, total }, "Symbols retrieved"))
}
