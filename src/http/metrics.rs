//! Prometheus metrics: request counts and latency histograms by method, route and status;
//! open sockets, jobs by kind and state, and rows the retention job deleted by table.

use std::time::Duration;

use axum::http::Method;
use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};

/// The label of a request method: one of the standard methods, or `OTHER`.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("OTHER", Method::as_str)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    table: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
    /// Set from the hub when scraped.
    pub websocket_connections: Gauge,
    /// Set from the jobs table when scraped; kinds are the handlers' names (bounded).
    jobs: Family<JobLabels, Gauge>,
    /// Tables are the ones registered for retention at start-up (bounded).
    pruned: Family<TableLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~8 s
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("codesherpa");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            latency.clone(),
        );
        let websocket_connections = Gauge::default();
        registry.register(
            "websocket_connections",
            "Open WebSocket connections on this instance",
            websocket_connections.clone(),
        );
        let jobs = Family::<JobLabels, Gauge>::default();
        registry.register(
            "jobs",
            "Background jobs by kind and state (queued, running, failed)",
            jobs.clone(),
        );
        let pruned = Family::<TableLabels, Counter>::default();
        registry.register(
            "pruned_rows",
            "Rows the retention job deleted, by table",
            pruned.clone(),
        );
        Metrics {
            registry,
            jobs,
            pruned,
            requests,
            latency,
            websocket_connections,
        }
    }

    /// `method` is bounded here: any method outside the standard set counts as `OTHER`,
    /// so made-up methods cannot add series. `route` must be a route template or one
    /// fixed value for unmatched requests.
    pub fn record(&self, method: &Method, route: &str, status: u16, elapsed: Duration) {
        let labels = RequestLabels {
            method: method_label(method).to_owned(),
            route: route.to_owned(),
            status,
        };
        self.latency
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    /// Replaces the job gauges with `(kind, state, count)` rows (absent ones are zero).
    pub fn set_jobs(&self, counts: impl IntoIterator<Item = (String, String, i64)>) {
        self.jobs.clear();
        for (kind, state, count) in counts {
            self.jobs
                .get_or_create(&JobLabels { kind, state })
                .set(count);
        }
    }

    /// Counts `rows` deleted from `table` (0 makes the series show before any prune).
    pub fn add_pruned(&self, table: &str, rows: u64) {
        self.pruned
            .get_or_create(&TableLabels {
                table: table.to_owned(),
            })
            .inc_by(rows);
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_histograms() {
        let metrics = Metrics::new();
        metrics.record(
            &Method::GET,
            "/api/v1/agents",
            200,
            Duration::from_millis(3),
        );
        metrics.record(
            &Method::GET,
            "/api/v1/agents",
            200,
            Duration::from_millis(5),
        );
        let text = metrics.render();
        assert!(text.contains(
            r#"codesherpa_http_requests_total{method="GET",route="/api/v1/agents",status="200"} 2"#
        ));
        assert!(text.contains("codesherpa_http_request_duration_seconds_bucket"));
    }

    #[test]
    fn counts_pruned_rows_by_table() {
        let metrics = Metrics::new();
        metrics.add_pruned("jobs", 0);
        assert!(metrics
            .render()
            .contains(r#"codesherpa_pruned_rows_total{table="jobs"} 0"#));
        metrics.add_pruned("jobs", 500);
        metrics.add_pruned("jobs", 20);
        assert!(metrics
            .render()
            .contains(r#"codesherpa_pruned_rows_total{table="jobs"} 520"#));
    }

    #[test]
    fn made_up_methods_share_one_label() {
        let junk = Method::from_bytes(b"JUNK").unwrap();
        assert_eq!(method_label(&junk), "OTHER");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
    }
}
