//! `limit`/`offset` paging and the `{items, total, limit, offset}` list shape.

use std::future::Future;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use axum::{
    body::Bytes,
    http::header::CONTENT_TYPE,
    response::{IntoResponse, Response},
};

pub use crate::db::page::PageRequest;

use crate::{
    db::{
        page,
        pages::{PageKey, Pages},
        Db,
    },
    error::Result,
    validate::Violations,
};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 100;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1 to 100; default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Rows to skip; default 0.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

impl PageParams {
    pub fn validate(&self) -> Result<PageRequest> {
        let mut check = Violations::default();
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        let offset = self.offset.unwrap_or(0);
        if !(1..=MAX_LIMIT).contains(&limit) {
            check.add("limit", format!("must be between 1 and {MAX_LIMIT}"));
        }
        if offset < 0 {
            check.add("offset", "must not be negative");
        }
        check.finish()?;
        Ok(PageRequest { limit, offset })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

impl<T> Page<T> {
    pub fn new(items: Vec<T>, total: i64, request: PageRequest) -> Self {
        Page {
            items,
            total,
            limit: request.limit,
            offset: request.offset,
        }
    }
}

/// A 200 answer in the envelope whose page was written by the database
/// ([`crate::db::page`]): the same JSON as `ok(Page::new(…), message)`, with the items'
/// text copied in as it came instead of decoded and encoded again.
pub struct JsonPage(Bytes);

impl JsonPage {
    /// The page `key` names, kept or read by `read` ([`crate::db::pages`]), in the envelope.
    pub async fn serve(
        pages: &Pages,
        db: &Db,
        key: PageKey,
        message: &'static str,
        read: impl Future<Output = Result<page::Page>>,
    ) -> Result<JsonPage> {
        let (limit, offset) = (key.limit, key.offset);
        let body = move |page: page::Page| {
            let message = serde_json::to_string(message).unwrap_or_default();
            format!(
                r#"{{"success":true,"data":{{"items":{},"total":{},"limit":{limit},"offset":{offset}}},"message":{message}}}"#,
                page.items, page.total
            )
        };
        let body = pages.get_or_read(db, key, read, body).await?;
        Ok(JsonPage(body))
    }
}

impl IntoResponse for JsonPage {
    fn into_response(self) -> Response {
        ([(CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let page = PageParams::default().validate().unwrap();
        assert_eq!((page.limit, page.offset), (50, 0));
        let max = PageParams {
            limit: Some(100),
            offset: Some(5),
        }
        .validate()
        .unwrap();
        assert_eq!((max.limit, max.offset), (100, 5));
        for (limit, offset) in [(0, 0), (101, 0), (10, -1)] {
            let params = PageParams {
                limit: Some(limit),
                offset: Some(offset),
            };
            assert!(params.validate().is_err(), "{limit} {offset}");
        }
    }
}
