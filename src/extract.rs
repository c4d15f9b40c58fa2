//! Request extractors whose every rejection is an enveloped `Error` with field detail.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Request},
    http::{header, request::Parts, HeaderMap},
};
use serde::{de::DeserializeOwned, Deserialize, Deserializer};

use crate::error::{Error, FieldError};

/// A JSON body. Wrong content type → 415, malformed JSON → 400, wrong shape → 422.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        if !has_content_type(req.headers(), "application/json") {
            return Err(Error::UnsupportedMediaType(
                "Expected a JSON body with Content-Type: application/json",
            ));
        }
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(Json)
    }
}

/// Query parameters; a value of the wrong type is a 422 naming the parameter.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        parse_form(parts.uri.query().unwrap_or_default().as_bytes()).map(Query)
    }
}

/// A numeric resource id from the path. An id that cannot exist is simply not found.
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| Error::NotFound("Resource"))?;
        raw.parse().map(Id).map_err(|_| Error::NotFound("Resource"))
    }
}

pub fn has_content_type(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case(expected))
}

/// Buffers the body within the configured limit (413 beyond it).
pub async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, Error> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE
            || over_length_limit(&rejection)
        {
            Error::PayloadTooLarge
        } else {
            Error::BadRequest("Could not read the request body".into())
        }
    })
}

/// Whether a body failed because it grew past a length limit. A chunked body declares
/// no length, so the limit trips while it is read, and every body wrapper between the
/// limit and the reader (the server-wide limit, the body deadline, axum's own limit)
/// adds a layer to the error: the whole chain is searched.
pub fn over_length_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(err), |err| err.source())
        .any(|err| err.is::<http_body_util::LengthLimitError>())
}

/// Every JSON body of this API is an object. serde would also fill a struct from an
/// array of its fields in order (`[null, null]`), which no client means: refuse it.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.trim_ascii_start().first() == Some(&b'[') {
        return Err(Error::invalid("body", "must be a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let field = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_data() {
            Error::Validation(vec![field_error(field, &inner.to_string())])
        } else {
            Error::BadRequest(format!(
                "Malformed JSON at line {} column {}",
                inner.line(),
                inner.column()
            ))
        }
    })?;
    deserializer
        .end()
        .map_err(|_| Error::BadRequest("Malformed JSON: trailing characters".into()))?;
    Ok(value)
}

pub fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(bytes));
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let field = err.path().to_string();
        Error::Validation(vec![field_error(field, &err.into_inner().to_string())])
    })
}

/// serde says "missing field `x`" and "duplicate field `x`" (a parameter repeated in a
/// query string, a key repeated in a body) at the parent's path; name the field itself
/// instead, and drop serde_json's " at line L column C" suffix.
fn field_error(path: String, message: &str) -> FieldError {
    let message = message
        .rfind(" at line ")
        .map_or(message, |at| &message[..at]);
    let named = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix('`'))
            .map(|name| match path.as_str() {
                "." | "" => name.to_owned(),
                parent => format!("{parent}.{name}"),
            })
    };
    if let Some(field) = named("missing field `") {
        return FieldError::new(field, "field required");
    }
    if let Some(field) = named("duplicate field `") {
        return FieldError::new(field, "must be given once");
    }
    let field = if path == "." { "body".into() } else { path };
    FieldError::new(field, message)
}

/// For PATCH-like updates: absent → `None`, `null` → `Some(None)`, value → `Some(Some(v))`.
pub fn nullable<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// JSON Schema's `integer` includes `42.0`: an optional id accepts any integral number
/// within `i64`, however it is written.
pub fn optional_integer<'de, D>(deserializer: D) -> Result<Option<i64>, D::Error>
where
    D: Deserializer<'de>,
{
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    // 2^63 is exactly representable; every integral f64 below it in magnitude fits i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    number
        .as_i64()
        .or_else(|| {
            number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && (-LIMIT..LIMIT).contains(f))
                .map(|f| f as i64)
        })
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("expected a 64-bit integer, got {number}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
    }

    #[test]
    fn missing_field_is_named() {
        let err = parse_json::<Login>(br#"{"email":"a@b.c"}"#).err().unwrap();
        match err {
            Error::Validation(errors) => {
                assert_eq!(errors, vec![FieldError::new("password", "field required")])
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse_json::<Login>(br#"{"email":5,"password":"x"}"#)
            .err()
            .unwrap();
        match err {
            Error::Validation(errors) => {
                assert_eq!(errors[0].field, "email");
                assert!(errors[0].message.contains("invalid type"));
                assert!(!errors[0].message.contains("line"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Paging {
        limit: Option<i64>,
    }

    #[test]
    fn a_repeated_field_is_named() {
        for (err, field) in [
            (
                parse_form::<Paging>(b"limit=1&limit=2").err().unwrap(),
                "limit",
            ),
            (
                parse_json::<Login>(br#"{"email":"a","email":"b","password":"c"}"#)
                    .err()
                    .unwrap(),
                "email",
            ),
        ] {
            match err {
                Error::Validation(errors) => {
                    assert_eq!(errors, vec![FieldError::new(field, "must be given once")])
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_length_limit_is_found_however_deeply_wrapped() {
        use http_body_util::{BodyExt, Full, Limited};
        let body = Limited::new(Full::new(Bytes::from_static(b"0123456789")), 4);
        let tripped = body.collect().await.err().unwrap();
        let wrapped = axum::Error::new(axum::Error::new(axum::Error::new(tripped)));
        assert!(over_length_limit(&wrapped));
        assert!(!over_length_limit(&axum::Error::new("connection reset")));
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        assert!(matches!(
            parse_json::<Login>(b"{\"email\":").err().unwrap(),
            Error::BadRequest(_)
        ));
        assert!(matches!(
            parse_json::<Login>(br#"{"email":"a","password":"b"} x"#)
                .err()
                .unwrap(),
            Error::BadRequest(_)
        ));
    }

    #[test]
    fn integers_may_be_written_as_integral_numbers() {
        #[derive(Deserialize)]
        struct Ids {
            #[serde(default, deserialize_with = "optional_integer")]
            id: Option<i64>,
        }
        let id = |json: &str| serde_json::from_str::<Ids>(json).map(|ids| ids.id);
        assert_eq!(id("{}").unwrap(), None);
        assert_eq!(id(r#"{"id":null}"#).unwrap(), None);
        assert_eq!(id(r#"{"id":42}"#).unwrap(), Some(42));
        assert_eq!(id(r#"{"id":142083.0}"#).unwrap(), Some(142_083));
        assert_eq!(id(r#"{"id":-1e3}"#).unwrap(), Some(-1000));
        for bad in [
            r#"{"id":1.5}"#,
            r#"{"id":"7"}"#,
            r#"{"id":9223372036854775808}"#,
            r#"{"id":1e300}"#,
        ] {
            assert!(id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nullable_distinguishes_absent_from_null() {
        #[derive(Deserialize)]
        struct Patch {
            #[serde(default, deserialize_with = "nullable")]
            description: Option<Option<String>>,
        }
        let absent: Patch = serde_json::from_str("{}").unwrap();
        let null: Patch = serde_json::from_str(r#"{"description":null}"#).unwrap();
        let set: Patch = serde_json::from_str(r#"{"description":"d"}"#).unwrap();
        assert_eq!(absent.description, None);
        assert_eq!(null.description, Some(None));
        assert_eq!(set.description, Some(Some("d".into())));
    }
}
