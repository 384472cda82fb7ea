//! Prometheus metrics: the counters of every source and destination in the text format, for
//! `GET /metrics` on the control socket.
//!
//! The daemon keeps its counters in [`Registry`] (relaxed atomics, bumped once per batch);
//! at each scrape they are copied into a `metrics-exporter-prometheus` recorder that is local
//! to the exporter — no global recorder, no cost between scrapes — and rendered. Names follow
//! Prometheus conventions, `edgelog_…_total` for counters, labelled by `source`,
//! `destination` and `reason`:
//!
//! ```text
//! edgelog_source_received_total{source="devlog"} 1234
//! edgelog_source_dropped_total{source="udp",reason="socket_overflow"} 7
//! edgelog_destination_sent_total{destination="central"} 1210
//! edgelog_destination_acknowledged_total{destination="central"} 1200
//! edgelog_destination_dropped_total{destination="central",reason="evicted"} 0
//! edgelog_destination_queued_records{destination="central"} 34
//! edgelog_destination_up{destination="central"} 1
//! edgelog_destination_state{destination="central",state="stalled"} 0
//! edgelog_daemon_tables_written_total 1234
//! edgelog_daemon_tables_dropped_total{reason="no_space"} 0
//! ```

use metrics::{Label, Recorder as _};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use serde_json::Value;

use crate::stats::Registry;

/// Renders a [`Registry`] as Prometheus text.
#[derive(Debug)]
pub struct Exporter {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for Exporter {
    fn default() -> Exporter {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        Exporter { recorder, handle }
    }
}

/// Counter fields of a source (everything but the `connections` gauge and `dropped`).
const SOURCE_COUNTERS: &[&str] = &[
    "received",
    "decoded",
    "bytes",
    "malformed",
    "truncated",
    "discarded_bytes",
];

impl Exporter {
    fn counter(&self, name: &str, labels: Vec<Label>, v: u64) {
        let key = metrics::Key::from_parts(name.to_owned(), labels);
        let meta = metrics::Metadata::new(module_path!(), metrics::Level::INFO, None);
        self.recorder.register_counter(&key, &meta).absolute(v);
    }

    fn gauge(&self, name: &str, labels: Vec<Label>, v: f64) {
        let key = metrics::Key::from_parts(name.to_owned(), labels);
        let meta = metrics::Metadata::new(module_path!(), metrics::Level::INFO, None);
        self.recorder.register_gauge(&key, &meta).set(v);
    }

    /// The current counters, as Prometheus text.
    pub fn render(&self, registry: &Registry) -> String {
        let all = registry.to_json();
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        for (name, s) in all["sources"].as_object().into_iter().flatten() {
            let l = || vec![Label::new("source", name.clone())];
            for field in SOURCE_COUNTERS {
                self.counter(&format!("edgelog_source_{field}_total"), l(), n(&s[*field]));
            }
            self.gauge(
                "edgelog_source_connections",
                l(),
                n(&s["connections"]) as f64,
            );
            for (reason, v) in s["dropped"].as_object().into_iter().flatten() {
                let mut labels = l();
                labels.push(Label::new("reason", reason.clone()));
                self.counter("edgelog_source_dropped_total", labels, n(v));
            }
        }
        for (name, d) in all["destinations"].as_object().into_iter().flatten() {
            let l = || vec![Label::new("destination", name.clone())];
            self.counter("edgelog_destination_written_total", l(), n(&d["written"]));
            self.counter("edgelog_destination_bytes_total", l(), n(&d["bytes"]));
            self.counter("edgelog_destination_escaped_total", l(), n(&d["escaped"]));
            self.counter(
                "edgelog_destination_header_replaced_total",
                l(),
                n(&d["header_replaced"]),
            );
            for (reason, v) in d["dropped"].as_object().into_iter().flatten() {
                let mut labels = l();
                labels.push(Label::new("reason", reason.clone()));
                self.counter("edgelog_destination_dropped_total", labels, n(v));
            }
            let net = &d["network"];
            if net.is_object() {
                self.counter("edgelog_destination_sent_total", l(), n(&net["sent"]));
                self.counter(
                    "edgelog_destination_acknowledged_total",
                    l(),
                    n(&net["acknowledged"]),
                );
                self.counter("edgelog_destination_retried_total", l(), n(&net["retried"]));
                self.gauge(
                    "edgelog_destination_queued_records",
                    l(),
                    n(&net["queued"]["records"]) as f64,
                );
                self.gauge(
                    "edgelog_destination_queued_bytes",
                    l(),
                    n(&net["queued"]["bytes"]) as f64,
                );
                if let Some(up) = net["up"].as_bool() {
                    self.gauge("edgelog_destination_up", l(), if up { 1.0 } else { 0.0 });
                }
                if let Some(state) = net["state"].as_str() {
                    for s in crate::stats::ReceiverState::ALL {
                        let mut labels = l();
                        labels.push(Label::new("state", s.name()));
                        let on = if s.name() == state { 1.0 } else { 0.0 };
                        self.gauge("edgelog_destination_state", labels, on);
                    }
                }
            }
        }
        let tables = &all["tables"];
        self.counter(
            "edgelog_daemon_tables_written_total",
            vec![],
            n(&tables["written"]),
        );
        for (reason, v) in tables["dropped"].as_object().into_iter().flatten() {
            let labels = vec![Label::new("reason", reason.clone())];
            self.counter("edgelog_daemon_tables_dropped_total", labels, n(v));
        }
        self.handle.render()
    }
}
