//! The floor a load generator on this machine can measure: hyper on the same runtime and
//! connection builder as the server, answering every request with the same 200 and JSON
//! body as `GET /health` and doing nothing else (no router, no edge service, no state).
//! A route of the server cannot beat it, so a latency target it misses is a target this
//! machine cannot show. `cargo run --release --example floor -- 127.0.0.1:8490`, then
//! `wrk -t2 -c256 -d6s --latency http://127.0.0.1:8490/` (`bench/floor.sh` runs both).

use std::convert::Infallible;

use axum::body::Bytes;
use http_body_util::Full;
use hyper::{header, Request, Response};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use tokio::net::TcpListener;

const BODY: &str = concat!(
    r#"{"success":true,"data":{"status":"ok","version":""#,
    env!("CARGO_PKG_VERSION"),
    r#""},"message":"Service is running"}"#
);

#[tokio::main]
async fn main() {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8490".to_owned());
    let listener = TcpListener::bind(&address).await.expect("bind");
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = tower::service_fn(|_: Request<hyper::body::Incoming>| async {
                Ok::<_, Infallible>(
                    Response::builder()
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Full::new(Bytes::from_static(BODY.as_bytes())))
                        .expect("a fixed response"),
                )
            });
            let _ = builder
                .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service))
                .await;
        });
    }
}
