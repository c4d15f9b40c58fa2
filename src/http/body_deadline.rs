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
};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::Response,
};
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

use crate::{error::status_envelope, state::AppState};

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

pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let expired = Arc::new(AtomicBool::new(false));
    let deadline = Box::pin(tokio::time::sleep(state.config.body_timeout));
    let flag = expired.clone();
    let req = req.map(move |inner| {
        Body::new(DeadlineBody {
            inner,
            deadline,
            expired: flag,
        })
    });
    let response = next.run(req).await;
    if !expired.load(Ordering::Relaxed) {
        return response;
    }
    // Whatever the handler made of the failed read, the client was too slow.
    let mut timed_out = status_envelope(
        StatusCode::REQUEST_TIMEOUT,
        "The request body was not received in time",
    );
    timed_out
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    timed_out
}
