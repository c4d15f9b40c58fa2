//! A deadline for receiving a request body: a client that trickles its body cannot hold a
//! connection and a handler for long. Past `BODY_TIMEOUT_SECONDS` the body fails to read
//! and the request is answered 408, and the connection closed.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::Request,
    http::{header, HeaderValue, StatusCode},
    response::Response,
};
use http_body::{Body as _, Frame, SizeHint};
use tokio::time::Sleep;

use super::layers::answer_instead;
use crate::error::status_envelope;

#[derive(Debug, thiserror::Error)]
#[error("the request body was not received in time")]
struct BodyTimedOut;

/// The body, failing once the deadline passes; it records that it did.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a request's body missed its deadline.
pub struct Deadline(Arc<AtomicBool>);

impl Deadline {
    pub fn expired(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Holds `req`'s body to `timeout`, counted from now. A request that has no body (most
/// reads) needs no timer.
pub fn watch(req: &mut Request, timeout: Duration) -> Option<Deadline> {
    if req.body().is_end_stream() {
        return None;
    }
    let expired = Arc::new(AtomicBool::new(false));
    let body = std::mem::take(req.body_mut());
    *req.body_mut() = Body::new(DeadlineBody {
        inner: body,
        deadline: Box::pin(tokio::time::sleep(timeout)),
        expired: expired.clone(),
    });
    Some(Deadline(expired))
}

/// Whatever the handler made of the failed read, the client was too slow: 408, and the
/// connection closed.
pub fn timed_out(response: Response) -> Response {
    let mut timed_out = answer_instead(
        response,
        status_envelope(
            StatusCode::REQUEST_TIMEOUT,
            "The request body was not received in time",
        ),
    );
    timed_out
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    timed_out
}
