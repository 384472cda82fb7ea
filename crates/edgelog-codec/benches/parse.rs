//! Syslog parsing against `syslog_loose` (the parser Vector uses) on the same inputs, and GELF
//! encoding against building a `serde_json::Value`. Both parsers run lenient, in UTC, with the
//! year supplied, so neither pays for a time-zone lookup the other skips, and both results are
//! observed by reference, as a consumer would use them (not copied into `black_box`).
//!
//! Also RFC 5424 formatting with and without the control-character escape.
//!
//! Run: `cargo bench -p edgelog-codec --bench parse`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgelog_codec::rfc3164::Context;
use edgelog_codec::{Decoder, FormatHint, Mode, gelf, rfc3164, rfc5424};
use edgelog_core::Timestamp;

const RFC5424: &[&str] = &[
    "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8",
    "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] An application event log entry...",
    "<13>1 2024-06-15T11:58:32.123456+00:00 leaf-01 bgpd 4242 PEER [timeQuality tzKnown=\"1\" isSynced=\"1\" syncAccuracy=\"123\"] BGP peer 10.0.0.2 (AS 65001) state changed from Established to Idle: hold timer expired",
    "<86>1 2024-06-15T11:59:01.000001+02:00 leaf-01 sshd 2117 - - Accepted publickey for admin from 10.0.0.5 port 52234 ssh2: ED25519 SHA256:abcdefghijklmnopqrstuvwxyz",
];

const RFC3164: &[&str] = &[
    "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
    "<86>Jun 15 11:59:01 sshd[2117]: Accepted publickey for admin from 10.0.0.5 port 52234 ssh2",
    "<28>Mar 18 13:41:18 mx480-re0 mib2d[1452]: SNMP_TRAP_LINK_DOWN: ifIndex 524, ifAdminStatus up(1), ifOperStatus down(2), ifName ge-0/0/1",
    "<30>Jun 15 11:58:04 leaf-01 dnsmasq-dhcp[812]: DHCPACK(eth0) 192.168.1.50 aa:bb:cc:dd:ee:ff laptop",
];

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

fn parse_5424(c: &mut Criterion) {
    let mut g = c.benchmark_group("rfc5424");
    g.throughput(Throughput::Elements(RFC5424.len() as u64));
    g.bench_function("edgelog", |b| {
        b.iter(|| {
            for line in RFC5424 {
                let m = rfc5424::parse(black_box(line.as_bytes()), Mode::Lenient);
                black_box(&m);
            }
        })
    });
    g.bench_function("edgelog_strict", |b| {
        b.iter(|| {
            for line in RFC5424 {
                let m = rfc5424::parse(black_box(line.as_bytes()), Mode::Strict);
                black_box(&m);
            }
        })
    });
    g.bench_function("syslog_loose", |b| {
        b.iter(|| {
            for line in RFC5424 {
                let m = syslog_loose::parse_message_with_year_tz(
                    black_box(line),
                    |_| 2024,
                    Some(chrono::Utc),
                    syslog_loose::Variant::RFC5424,
                );
                black_box(&m);
            }
        })
    });
    g.finish();
}

fn parse_3164(c: &mut Criterion) {
    let ctx = Context::utc("2024-06-15T12:00:00Z".parse::<Timestamp>().unwrap());
    let mut g = c.benchmark_group("rfc3164");
    g.throughput(Throughput::Elements(RFC3164.len() as u64));
    g.bench_function("edgelog", |b| {
        b.iter(|| {
            for line in RFC3164 {
                black_box(rfc3164::parse(
                    black_box(line.as_bytes()),
                    &ctx,
                    Mode::Lenient,
                ));
            }
        })
    });
    g.bench_function("syslog_loose", |b| {
        b.iter(|| {
            for line in RFC3164 {
                let m = syslog_loose::parse_message_with_year_tz(
                    black_box(line),
                    |_| 2024,
                    Some(chrono::Utc),
                    syslog_loose::Variant::RFC3164,
                );
                black_box(&m);
            }
        })
    });
    g.finish();
}

fn parse_auto(c: &mut Criterion) {
    let ctx = Context::utc("2024-06-15T12:00:00Z".parse::<Timestamp>().unwrap());
    let decoder = Decoder::new(FormatHint::Auto, Mode::Lenient, ctx);
    let lines: Vec<&str> = RFC5424.iter().chain(RFC3164).copied().collect();
    let mut g = c.benchmark_group("auto");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("edgelog", |b| {
        b.iter(|| {
            for line in &lines {
                let m = decoder.decode(black_box(line.as_bytes()));
                black_box(&m);
            }
        })
    });
    g.bench_function("syslog_loose", |b| {
        b.iter(|| {
            for line in &lines {
                let m = syslog_loose::parse_message_with_year_tz(
                    black_box(line),
                    |_| 2024,
                    Some(chrono::Utc),
                    syslog_loose::Variant::Either,
                );
                black_box(&m);
            }
        })
    });
    g.finish();
}

fn encode_gelf(c: &mut Criterion) {
    let m = rfc5424::parse(RFC5424[2].as_bytes(), Mode::Lenient);
    let extra = [
        ("serial_number", "SN-0042-7781".into()),
        ("element_name", "leaf-01".into()),
        ("element_role", "leaf".into()),
        ("pod_name", "pod-a".into()),
    ];
    let mut g = c.benchmark_group("gelf_encode");
    g.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(1024);
    g.bench_function("edgelog", |b| {
        b.iter(|| {
            out.clear();
            gelf::encode(&mut out, black_box(&m), black_box(&extra));
            black_box(&out);
        })
    });
    g.bench_function("serde_json_value", |b| {
        b.iter(|| {
            out.clear();
            let mut obj = serde_json::Map::new();
            obj.insert("version".into(), "1.1".into());
            obj.insert("host".into(), m.hostname.as_deref().unwrap_or("-").into());
            obj.insert(
                "short_message".into(),
                m.message.as_deref().unwrap_or("-").into(),
            );
            let ts = m.timestamp.unwrap();
            obj.insert("timestamp".into(), (ts.as_unix_nanos() as f64 / 1e9).into());
            obj.insert("level".into(), m.severity().as_u8().into());
            obj.insert("_facility".into(), m.facility().name().into());
            obj.insert("_app_name".into(), m.app_name.as_deref().into());
            obj.insert("_proc_id".into(), m.proc_id.as_deref().into());
            obj.insert("_msg_id".into(), m.msg_id.as_deref().into());
            for el in m.structured_data.iter().flat_map(|sd| sd.elements()) {
                for (k, v) in el.params() {
                    obj.insert(format!("_{}_{}", el.id, k), v.as_ref().into());
                }
            }
            for (k, v) in &extra {
                obj.insert(format!("_{k}"), v.to_string().into());
            }
            serde_json::to_writer(&mut out, &obj).unwrap();
            black_box(&out);
        })
    });
    g.finish();
}

/// RFC 5424 formatting of the bench's lines, alone and with the control-character escape every
/// text destination applies: the escape is a scan that finds nothing in the common case.
fn encode_5424(c: &mut Criterion) {
    use edgelog_codec::escape::{self, Escape};
    let messages: Vec<_> = RFC5424
        .iter()
        .map(|l| rfc5424::parse(l.as_bytes(), Mode::Lenient).into_owned())
        .collect();
    let mut g = c.benchmark_group("rfc5424_format");
    g.throughput(Throughput::Elements(messages.len() as u64));
    let mut out = Vec::with_capacity(1024);
    g.bench_function("plain", |b| {
        b.iter(|| {
            for m in &messages {
                out.clear();
                rfc5424::format(&mut out, black_box(m), rfc5424::FormatOptions::default());
                black_box(&out);
            }
        })
    });
    g.bench_function("escaped_octal", |b| {
        b.iter(|| {
            for m in &messages {
                out.clear();
                rfc5424::format(&mut out, black_box(m), rfc5424::FormatOptions::default());
                escape::escape(&mut out, 0, Escape::Octal);
                black_box(&out);
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = parse_5424, parse_3164, parse_auto, encode_gelf, encode_5424
}
criterion_main!(benches);
