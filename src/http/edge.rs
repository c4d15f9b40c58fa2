//! The service every request enters first: its id, span, log line and metrics sample, the
//! body deadline, the envelope for framework-level failures and the security headers.
//!
//! Hand-written rather than one `middleware::from_fn` per concern: a `from_fn` clones and
//! boxes everything beneath it on every request, and a stack applied with `Router::layer`
//! is wrapped around each route, so each request cloned it again level by level. That
//! plumbing, not the work, was half of `/health`'s instructions (bench/README.md,
//! "Stop 20"). Here the stack is built once around the router and each request costs one
//! boxed future.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
    time::Instant,
};

use axum::{
    body::{Body, Bytes},
    extract::{MatchedPath, Request},
    http::HeaderValue,
    response::Response,
    BoxError,
};
use futures_util::future::BoxFuture;
use tower::{Layer, Service};
use tracing::Instrument;

use super::{
    body_deadline,
    layers::{self, REQUEST_ID, SECURITY_HEADERS, X_REQUEST_ID},
};
use crate::state::AppState;

/// Wraps the whole application in [`Edge`].
#[derive(Clone)]
pub struct EdgeLayer(pub AppState);

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            state: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    state: AppState,
}

impl<S, B, ResBody> Service<axum::http::Request<B>> for Edge<S>
where
    S: Service<Request, Response = axum::http::Response<ResBody>, Error = Infallible>,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let mut req = req.map(Body::new);
        let request_id = layers::request_id(req.headers());
        let id_header = HeaderValue::from_str(&request_id).expect("sanitised request id");
        req.headers_mut().insert(X_REQUEST_ID, id_header.clone());
        let method = req.method().clone();
        let span = tracing::info_span!("request", %method, path = %req.uri().path(), %request_id);
        let deadline = body_deadline::watch(&mut req, self.state.config.http.body_timeout);
        let answer = span.in_scope(|| self.inner.call(req));
        let state = self.state.clone();
        Box::pin(async move {
            let Ok(response) = REQUEST_ID
                .scope(request_id, answer.instrument(span.clone()))
                .await;
            let mut response = response.map(Body::new);
            if deadline.is_some_and(|deadline| deadline.expired()) {
                response = body_deadline::timed_out(response);
            } else {
                response = layers::envelope_errors(response);
            }
            let elapsed = started.elapsed();
            let route = response
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str);
            let status = response.status().as_u16();
            state.metrics.record(&method, route, status, elapsed);
            crate::memory::request_finished();
            span.in_scope(|| {
                tracing::info!(
                    status,
                    latency_ms = elapsed.as_secs_f64() * 1e3,
                    "request completed"
                )
            });
            let headers = response.headers_mut();
            for (name, value) in SECURITY_HEADERS {
                if !headers.contains_key(&name) {
                    headers.insert(name, HeaderValue::from_static(value));
                }
            }
            headers.insert(X_REQUEST_ID, id_header);
            Ok(response)
        })
    }
}

/// Route layer: hands the matched route template to [`Edge`] via the response, since the
/// request it was set on stays inside the router.
#[derive(Clone, Copy)]
pub struct RememberRouteLayer;

impl<S> Layer<S> for RememberRouteLayer {
    type Service = RememberRoute<S>;

    fn layer(&self, inner: S) -> RememberRoute<S> {
        RememberRoute(inner)
    }
}

#[derive(Clone)]
pub struct RememberRoute<S>(S);

impl<S> Service<Request> for RememberRoute<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Remembered<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let route = req.extensions().get::<MatchedPath>().cloned();
        Remembered {
            answer: self.0.call(req),
            route,
        }
    }
}

pin_project_lite::pin_project! {
    /// The route's answer, carrying the route template.
    pub struct Remembered<F> {
        #[pin]
        answer: F,
        route: Option<MatchedPath>,
    }
}

impl<F, E> Future for Remembered<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.answer.poll(cx))?;
        if let Some(route) = this.route.take() {
            response.extensions_mut().insert(route);
        }
        Poll::Ready(Ok(response))
    }
}
