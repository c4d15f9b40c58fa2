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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// Meta's delivery statuses of sent WhatsApp messages.
const WHATSAPP_STATUSES: [&str; 4] = ["sent", "delivered", "read", "failed"];
/// What became of a WhatsApp review notification.
const NOTIFICATION_OUTCOMES: [&str; 4] = ["text", "template", "skipped", "failed"];

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
    /// Totals kept in the database, copied in when scraped (every status listed, zeros too).
    whatsapp_statuses: Family<StatusLabels, Counter>,
    whatsapp_notifications: Family<OutcomeLabels, Counter>,
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
        let whatsapp_statuses = Family::<StatusLabels, Counter>::default();
        registry.register(
            "whatsapp_delivery_statuses",
            "Delivery statuses Meta reported for sent WhatsApp messages (all instances)",
            whatsapp_statuses.clone(),
        );
        for status in WHATSAPP_STATUSES {
            drop(whatsapp_statuses.get_or_create(&StatusLabels {
                status: status.into(),
            }));
        }
        let whatsapp_notifications = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "whatsapp_notifications",
            "WhatsApp review notifications by outcome: sent as text or template, skipped, failed (all instances)",
            whatsapp_notifications.clone(),
        );
        for outcome in NOTIFICATION_OUTCOMES {
            drop(whatsapp_notifications.get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            }));
        }
        Metrics {
            registry,
            jobs,
            pruned,
            whatsapp_statuses,
            whatsapp_notifications,
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

    /// Raises the count of WhatsApp delivery `status` to `total` (unknown statuses are
    /// not shown: the labels stay bounded).
    pub fn set_whatsapp_statuses(&self, status: &str, total: u64) {
        if WHATSAPP_STATUSES.contains(&status) {
            let labels = StatusLabels {
                status: status.into(),
            };
            raise(&self.whatsapp_statuses.get_or_create(&labels), total);
        }
    }

    /// Raises the count of WhatsApp notifications that ended as `outcome` to `total`.
    pub fn set_whatsapp_notifications(&self, outcome: &str, total: u64) {
        if NOTIFICATION_OUTCOMES.contains(&outcome) {
            let labels = OutcomeLabels {
                outcome: outcome.into(),
            };
            raise(&self.whatsapp_notifications.get_or_create(&labels), total);
        }
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// A counter mirrors a total kept elsewhere: it only ever goes up to it.
fn raise(counter: &Counter, total: u64) {
    let current = counter.get();
    if total > current {
        counter.inc_by(total - current);
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
    fn whatsapp_totals_show_every_status_and_only_rise() {
        let metrics = Metrics::new();
        metrics.set_whatsapp_statuses("failed", 3);
        metrics.set_whatsapp_statuses("failed", 2);
        metrics.set_whatsapp_statuses("made-up", 9);
        metrics.set_whatsapp_notifications("skipped", 1);
        let text = metrics.render();
        assert!(text.contains(r#"codesherpa_whatsapp_delivery_statuses_total{status="failed"} 3"#));
        assert!(text.contains(r#"codesherpa_whatsapp_delivery_statuses_total{status="read"} 0"#));
        assert!(!text.contains("made-up"));
        assert!(text.contains(r#"codesherpa_whatsapp_notifications_total{outcome="skipped"} 1"#));
        assert!(text.contains(r#"codesherpa_whatsapp_notifications_total{outcome="template"} 0"#));
    }

    #[test]
    fn made_up_methods_share_one_label() {
        let junk = Method::from_bytes(b"JUNK").unwrap();
        assert_eq!(method_label(&junk), "OTHER");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
    }
}
