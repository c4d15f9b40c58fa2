//! The accept loop: hyper's connection builder with a timer, so slow clients cannot hold
//! connections (`axum::serve` offers no header timeout), plus graceful draining.

use std::{convert::Infallible, future::Future, time::Duration};

use axum::{extract::ConnectInfo, http::Request, response::Response};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::net::{TcpListener, TcpStream};
use tower::{Service, ServiceExt};

/// Serves `app` on `listener` until `shutdown` resolves, then waits for open connections
/// to finish (WebSockets are told to close by whoever fires `shutdown`).
///
/// `header_timeout` bounds how long a connection may take to send a request's headers,
/// counted from when the server starts waiting for them: a fresh connection, and an idle
/// keep-alive connection between requests, are closed once it runs out. HTTP/2
/// connections are pinged at that interval and closed when a ping goes unanswered.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    S: Service<Request<Incoming>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(header_timeout)
        .keep_alive_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(err) => {
                    // Out of file descriptors, most likely: wait instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // `ConnectInfo` for the rate limiter, as `into_make_service_with_connect_info` gives.
        let service = app.clone().map_request(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tcp = prepared(tcp);
            // Telling HTTP/1 from HTTP/2 waits for the first bytes with no timer of its
            // own: a connection that never speaks is dropped here.
            let mut first = [0u8; 1];
            if !matches!(
                tokio::time::timeout(header_timeout, tcp.peek(&mut first)).await,
                Ok(Ok(1..))
            ) {
                return;
            }
            let connection = builder.serve_connection_with_upgrades(
                TokioIo::new(tcp),
                TowerToHyperService::new(service),
            );
            if let Err(err) = watcher.watch(connection).await {
                tracing::debug!(error = %err, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Streams write many small frames: send each at once instead of waiting on Nagle.
fn prepared(tcp: TcpStream) -> TcpStream {
    if let Err(err) = tcp.set_nodelay(true) {
        tracing::warn!(error = %err, "cannot set TCP_NODELAY");
    }
    tcp
}
