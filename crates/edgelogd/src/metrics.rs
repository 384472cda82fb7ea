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
//! edgelog_destination_spilled_records{destination="central"} 0
//! edgelog_destination_up{destination="central"} 1
//! edgelog_destination_state{destination="central",state="stalled"} 0
//! edgelog_daemon_tables_written_total 1234
//! edgelog_daemon_tables_dropped_total{reason="no_space"} 0
//! ```

use metrics::{Label, Recorder as _};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::stats::Registry;

/// Renders a [`Registry`] as Prometheus text.
#[derive(Debug)]
pub(crate) struct Exporter {
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
    pub(crate) fn render(&self, registry: &Registry) -> String {
        let all = registry.snapshot();
        for (name, s) in &all.sources {
            let l = || vec![Label::new("source", name.clone())];
            for (field, v) in [
                ("received", s.received),
                ("decoded", s.decoded),
                ("bytes", s.bytes),
                ("malformed", s.malformed),
                ("truncated", s.truncated),
                ("discarded_bytes", s.discarded_bytes),
            ] {
                self.counter(&format!("edgelog_source_{field}_total"), l(), v);
            }
            self.gauge("edgelog_source_connections", l(), s.connections as f64);
            for (reason, v) in &s.dropped {
                let mut labels = l();
                labels.push(Label::new("reason", reason.clone()));
                self.counter("edgelog_source_dropped_total", labels, *v);
            }
        }
        for (name, d) in &all.destinations {
            let l = || vec![Label::new("destination", name.clone())];
            self.counter("edgelog_destination_written_total", l(), d.written);
            self.counter("edgelog_destination_bytes_total", l(), d.bytes);
            self.counter("edgelog_destination_escaped_total", l(), d.escaped);
            self.counter(
                "edgelog_destination_header_replaced_total",
                l(),
                d.header_replaced,
            );
            for (reason, v) in d.dropped.by_reason() {
                let mut labels = l();
                labels.push(Label::new("reason", reason));
                self.counter("edgelog_destination_dropped_total", labels, v);
            }
            let Some(net) = &d.network else { continue };
            self.counter("edgelog_destination_sent_total", l(), net.sent);
            self.counter(
                "edgelog_destination_acknowledged_total",
                l(),
                net.acknowledged,
            );
            self.counter("edgelog_destination_retried_total", l(), net.retried);
            let queued = [
                ("edgelog_destination_queued_records", net.queued.records),
                ("edgelog_destination_queued_bytes", net.queued.bytes),
                ("edgelog_destination_spilled_records", net.spilled.records),
                ("edgelog_destination_spilled_bytes", net.spilled.bytes),
            ];
            for (metric, v) in queued {
                self.gauge(metric, l(), v as f64);
            }
            if let Some(up) = net.up {
                self.gauge("edgelog_destination_up", l(), if up { 1.0 } else { 0.0 });
            }
            if let Some(state) = &net.state {
                for s in crate::stats::ReceiverState::ALL {
                    let mut labels = l();
                    labels.push(Label::new("state", s.name()));
                    let on = if s.name() == state { 1.0 } else { 0.0 };
                    self.gauge("edgelog_destination_state", labels, on);
                }
            }
        }
        let tables = &all.tables;
        self.counter(
            "edgelog_daemon_tables_written_total",
            vec![],
            tables.written,
        );
        for (reason, v) in [
            ("no_space", tables.dropped.no_space),
            ("error", tables.dropped.error),
        ] {
            let labels = vec![Label::new("reason", reason)];
            self.counter("edgelog_daemon_tables_dropped_total", labels, v);
        }
        self.handle.render()
    }
}
