//! Real-world line shapes, one row each, decoded with format auto-detection the way a
//! listener sees them: glibc/`logger` local forms, network syslog with host names, Cisco IOS
//! and ASA, Juniper, MikroTik, FortiGate, busybox, haproxy, nginx, RFC 3339 stamps in the BSD
//! position, missing PRI, kmsg and GELF. Every field of every row is checked.

use edgelog_codec::rfc3164::Context;
use edgelog_codec::{Decoder, FormatHint, Message, Mode};
use edgelog_core::Timestamp;

#[derive(Debug, Clone, Default)]
struct Row {
    input: &'static [u8],
    format: &'static str,
    pri: Option<u8>,
    ts: Option<&'static str>,
    host: Option<&'static str>,
    app: Option<&'static str>,
    pid: Option<&'static str>,
    msg: Option<&'static str>,
    seq: Option<u64>,
    diags: Vec<(&'static str, usize)>,
}

fn row(input: &'static str) -> Row {
    Row {
        input: input.as_bytes(),
        format: "rfc3164",
        ..Row::default()
    }
}

impl Row {
    fn bytes(mut self, input: &'static [u8]) -> Row {
        self.input = input;
        self
    }
    fn format(mut self, f: &'static str) -> Row {
        self.format = f;
        self
    }
    fn pri(mut self, p: u8) -> Row {
        self.pri = Some(p);
        self
    }
    fn ts(mut self, t: &'static str) -> Row {
        self.ts = Some(t);
        self
    }
    fn host(mut self, h: &'static str) -> Row {
        self.host = Some(h);
        self
    }
    fn app(mut self, a: &'static str) -> Row {
        self.app = Some(a);
        self
    }
    fn pid(mut self, p: &'static str) -> Row {
        self.pid = Some(p);
        self
    }
    fn msg(mut self, m: &'static str) -> Row {
        self.msg = Some(m);
        self
    }
    fn seq(mut self, s: u64) -> Row {
        self.seq = Some(s);
        self
    }
    fn diag(mut self, kind: &'static str, offset: usize) -> Row {
        self.diags.push((kind, offset));
        self
    }
}

fn rows() -> Vec<Row> {
    vec![
        // glibc syslog(3) and util-linux logger to /dev/log: no host name.
        row("<13>Jun 15 11:59:58 alice: hello").pri(13).ts("2024-06-15T11:59:58Z").app("alice").msg("hello"),
        row("<86>Jun 15 11:59:01 sshd[2117]: Accepted publickey for admin from 10.0.0.5 port 52234 ssh2")
            .pri(86).ts("2024-06-15T11:59:01Z").app("sshd").pid("2117")
            .msg("Accepted publickey for admin from 10.0.0.5 port 52234 ssh2"),
        row("<30>Jun 15 11:58:00 systemd[1]: Started Session 4 of user admin.")
            .pri(30).ts("2024-06-15T11:58:00Z").app("systemd").pid("1").msg("Started Session 4 of user admin."),
        row("<78>Jun 15 11:58:01 CRON[31337]: (root) CMD (run-parts /etc/cron.hourly)")
            .pri(78).ts("2024-06-15T11:58:01Z").app("CRON").pid("31337").msg("(root) CMD (run-parts /etc/cron.hourly)"),
        row("<85>Jun 15 11:58:02 sudo:    admin : TTY=pts/0 ; PWD=/home/admin ; USER=root ; COMMAND=/bin/ls")
            .pri(85).ts("2024-06-15T11:58:02Z").app("sudo")
            .msg("   admin : TTY=pts/0 ; PWD=/home/admin ; USER=root ; COMMAND=/bin/ls"),
        row("<22>Jun 15 11:58:03 postfix/smtpd[1234]: connect from unknown[192.0.2.7]")
            .pri(22).ts("2024-06-15T11:58:03Z").app("postfix").pid("1234").msg("connect from unknown[192.0.2.7]"),
        row("<30>Jun 15 11:58:04 dnsmasq-dhcp[812]: DHCPACK(eth0) 192.168.1.50 aa:bb:cc:dd:ee:ff laptop")
            .pri(30).ts("2024-06-15T11:58:04Z").app("dnsmasq-dhcp").pid("812")
            .msg("DHCPACK(eth0) 192.168.1.50 aa:bb:cc:dd:ee:ff laptop"),
        row("<30>Jun 15 11:58:05 dhcpcd[455]: eth0: leased 10.1.2.3 for 86400 seconds")
            .pri(30).ts("2024-06-15T11:58:05Z").app("dhcpcd").pid("455").msg("eth0: leased 10.1.2.3 for 86400 seconds"),
        row("<30>Jun 15 11:58:06 radvd[601]: attempting to reread config file")
            .pri(30).ts("2024-06-15T11:58:06Z").app("radvd").pid("601").msg("attempting to reread config file"),
        row("<28>Jun 15 11:58:07 watchdog[300]: test binary /etc/watchdog.d/check returned 1")
            .pri(28).ts("2024-06-15T11:58:07Z").app("watchdog").pid("300").msg("test binary /etc/watchdog.d/check returned 1"),
        row("<6>Jun 15 11:58:08 kernel: [12345.678901] eth0: link up")
            .pri(6).ts("2024-06-15T11:58:08Z").app("kernel").msg("[12345.678901] eth0: link up"),
        row("<14>Jun 15 11:58:09 org.gnome.Shell.desktop[2345]: Window manager warning: stack overflow")
            .pri(14).ts("2024-06-15T11:58:09Z").app("org.gnome.Shell.desktop").pid("2345")
            .msg("Window manager warning: stack overflow"),
        row("<27>Jun 15 11:58:10 systemd-logind[456]: Failed to start session scope session-5.scope")
            .pri(27).ts("2024-06-15T11:58:10Z").app("systemd-logind").pid("456")
            .msg("Failed to start session scope session-5.scope"),
        row("<13>Jun 15 11:58:11 myscript.sh: started").pri(13).ts("2024-06-15T11:58:11Z").app("myscript.sh").msg("started"),
        row("<77>Jun 15 11:58:12 /usr/sbin/cron[99]: (CRON) INFO (pidfile fd = 3)")
            .pri(77).ts("2024-06-15T11:58:12Z").app("/usr/sbin/cron").pid("99").msg("(CRON) INFO (pidfile fd = 3)"),
        row("<30>Jun 15 11:58:22 udhcpc: lease of 10.0.0.3 obtained, lease time 600")
            .pri(30).ts("2024-06-15T11:58:22Z").app("udhcpc").msg("lease of 10.0.0.3 obtained, lease time 600"),
        row("<134>Jun 15 11:58:26 haproxy[12]: 10.0.0.1:5555 [15/Jun/2024:11:58:26.123] fe be/srv 0/0/1/2/3 200 512 \"GET / HTTP/1.1\"")
            .pri(134).ts("2024-06-15T11:58:26Z").app("haproxy").pid("12")
            .msg("10.0.0.1:5555 [15/Jun/2024:11:58:26.123] fe be/srv 0/0/1/2/3 200 512 \"GET / HTTP/1.1\""),
        row("<14>Jun 15 11:58:33 dockerd[900]: time=\"2024-06-15T11:58:33.123Z\" level=info msg=\"Container started\"")
            .pri(14).ts("2024-06-15T11:58:33Z").app("dockerd").pid("900")
            .msg("time=\"2024-06-15T11:58:33.123Z\" level=info msg=\"Container started\""),
        // Day-of-month spellings: RFC space padding, zero padding, a single space.
        row("<13>Jun  5 01:02:03 app: padded day").pri(13).ts("2024-06-05T01:02:03Z").app("app").msg("padded day"),
        row("<13>Jun 05 01:02:03 app: zero-padded day").pri(13).ts("2024-06-05T01:02:03Z").app("app").msg("zero-padded day"),
        row("<13>Jun 5 01:02:03 app: single-space day").pri(13).ts("2024-06-05T01:02:03Z").app("app").msg("single-space day"),
        // Network syslog with a HOSTNAME (RFC 3164 §5.4 examples first).
        row("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8")
            .pri(34).ts("2023-10-11T22:14:15Z").host("mymachine").app("su")
            .msg("'su root' failed for lonvick on /dev/pts/8"),
        // The first word after the host is the tag, colon or not (rsyslog's split).
        row("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!")
            .pri(13).ts("2024-02-05T17:32:18Z").host("10.0.0.99").app("Use").msg("the BFG!"),
        row("<0>1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!")
            .pri(0).ts("1990-10-22T10:52:01Z").host("TZ-6").app("scapegoat.dmz.example.org")
            .msg("10.1.2.3 sched[0]: That's All Folks!"),
        row("<86>Jun 15 11:59:01 leaf-01 sshd[2117]: Accepted password for admin from 10.0.0.5 port 4242 ssh2")
            .pri(86).ts("2024-06-15T11:59:01Z").host("leaf-01").app("sshd").pid("2117")
            .msg("Accepted password for admin from 10.0.0.5 port 4242 ssh2"),
        row("<28>Mar 18 13:41:18 mx480-re0 mib2d[1452]: SNMP_TRAP_LINK_DOWN: ifIndex 524, ifAdminStatus up(1), ifOperStatus down(2), ifName ge-0/0/1")
            .pri(28).ts("2024-03-18T13:41:18Z").host("mx480-re0").app("mib2d").pid("1452")
            .msg("SNMP_TRAP_LINK_DOWN: ifIndex 524, ifAdminStatus up(1), ifOperStatus down(2), ifName ge-0/0/1"),
        row("<30>Jun 15 11:58:13 fw01.example.net dnsmasq[777]: query[A] example.com from 10.0.0.9")
            .pri(30).ts("2024-06-15T11:58:13Z").host("fw01.example.net").app("dnsmasq").pid("777")
            .msg("query[A] example.com from 10.0.0.9"),
        row("<13>Jun 15 11:58:14 2001:db8::1 app[1]: v6 host")
            .pri(13).ts("2024-06-15T11:58:14Z").host("2001:db8::1").app("app").pid("1").msg("v6 host"),
        row("<14>Jun 15 11:58:15 edge_node-7 qemu-dm-vm1[4242]: vcpu0 halted")
            .pri(14).ts("2024-06-15T11:58:15Z").host("edge_node-7").app("qemu-dm-vm1").pid("4242").msg("vcpu0 halted"),
        row("<13>Jun 15 11:58:21 2024 host3 app: trailing year")
            .pri(13).ts("2024-06-15T11:58:21Z").host("host3").app("app").msg("trailing year"),
        row("<30>Jun 15 11:58:23 MikroTik system,info,account user admin logged in from 10.0.0.1 via ssh")
            .pri(30).ts("2024-06-15T11:58:23Z").host("MikroTik").app("system,info,account")
            .msg("user admin logged in from 10.0.0.1 via ssh"),
        row("<13>Jun 15 11:58:25 ubnt kernel: [WAN_LOCAL-default-D]IN=eth0 OUT= MAC=00:11:22:33:44:55 SRC=10.0.0.8")
            .pri(13).ts("2024-06-15T11:58:25Z").host("ubnt").app("kernel")
            .msg("[WAN_LOCAL-default-D]IN=eth0 OUT= MAC=00:11:22:33:44:55 SRC=10.0.0.8"),
        row("<190>Jun 15 11:58:27 web01 nginx: 10.0.0.2 - - \"GET / HTTP/1.1\" 200 612")
            .pri(190).ts("2024-06-15T11:58:27Z").host("web01").app("nginx").msg("10.0.0.2 - - \"GET / HTTP/1.1\" 200 612"),
        row("<46>Jun 15 11:58:35 host rsyslogd: [origin software=\"rsyslogd\" swVersion=\"8.2302.0\" x-pid=\"123\"] start")
            .pri(46).ts("2024-06-15T11:58:35Z").host("host").app("rsyslogd")
            .msg("[origin software=\"rsyslogd\" swVersion=\"8.2302.0\" x-pid=\"123\"] start"),
        row("<13>Jun 15 11:58:36 host4 ntpd[77] time reset +0.2 s")
            .pri(13).ts("2024-06-15T11:58:36Z").host("host4").app("ntpd").pid("77").msg("time reset +0.2 s"),
        // Cisco IOS: sequence numbers, '*' / '.' clock markers, zone names, origin-id host.
        row("<189>123: *Mar  1 00:00:46.123: %SYS-5-CONFIG_I: Configured from console by vty0 (10.1.1.1)")
            .pri(189).seq(123).ts("2024-03-01T00:00:46.123Z").app("%SYS-5-CONFIG_I")
            .msg("Configured from console by vty0 (10.1.1.1)"),
        row("<187>45: .Jun 15 10:30:00.456 UTC: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down")
            .pri(187).seq(45).ts("2024-06-15T10:30:00.456Z").app("%LINK-3-UPDOWN")
            .msg("Interface GigabitEthernet0/1, changed state to down"),
        row("<189>Jun 15 10:30:01.789 UTC: %LINEPROTO-5-UPDOWN: Line protocol on Interface Gi0/1, changed state to up")
            .pri(189).ts("2024-06-15T10:30:01.789Z").app("%LINEPROTO-5-UPDOWN")
            .msg("Line protocol on Interface Gi0/1, changed state to up"),
        row("<189>52: Jun 12 2024 10:00:00.123 UTC: %SEC_LOGIN-5-LOGIN_SUCCESS: Login Success [user: admin]")
            .pri(189).seq(52).ts("2024-06-12T10:00:00.123Z").app("%SEC_LOGIN-5-LOGIN_SUCCESS")
            .msg("Login Success [user: admin]"),
        row("<190>1234: router1: *Jun 15 10:00:00: %SYS-6-LOGGINGHOST_STARTSTOP: Logging to host 10.0.0.1 port 514 started")
            .pri(190).seq(1234).host("router1").ts("2024-06-15T10:00:00Z").app("%SYS-6-LOGGINGHOST_STARTSTOP")
            .msg("Logging to host 10.0.0.1 port 514 started"),
        // Cisco ASA: no timestamp at all, or one with a year and a trailing colon. The mnemonic
        // is the tag, as rsyslog reads it.
        row("<166>%ASA-6-302013: Built outbound TCP connection 123 for outside:1.2.3.4/80 to inside:10.0.0.2/5555")
            .pri(166).diag("missing_timestamp", 5).app("%ASA-6-302013")
            .msg("Built outbound TCP connection 123 for outside:1.2.3.4/80 to inside:10.0.0.2/5555"),
        row("<166>Jun 15 2024 10:00:00: %ASA-6-302014: Teardown TCP connection 123 duration 0:00:01 bytes 1024")
            .pri(166).ts("2024-06-15T10:00:00Z").app("%ASA-6-302014")
            .msg("Teardown TCP connection 123 duration 0:00:01 bytes 1024"),
        // FortiGate key=value without a syslog timestamp: the first pair is the tag, as rsyslog
        // reads it (docs/syslog-compatibility.md).
        row("<189>date=2024-06-15 time=11:58:24 devname=\"FGT60F\" logid=\"0000000013\" type=\"traffic\"")
            .pri(189).diag("missing_timestamp", 5).app("date=2024-06-15")
            .msg("time=11:58:24 devname=\"FGT60F\" logid=\"0000000013\" type=\"traffic\""),
        // Shapes rsyslog splits its own way, split the same (docs/syslog-compatibility.md).
        row("<167>Feb 18 16:01:59 serverX -- MARK --")
            .pri(167).ts("2024-02-18T16:01:59Z").host("serverX").app("--").msg("MARK --"),
        row("<167>Feb 18 16:01:59 host tag This msg")
            .pri(167).ts("2024-02-18T16:01:59Z").host("host").app("tag").msg("This msg"),
        row("<167> Mar  7 19:06:53 example tag: msg")
            .pri(167).ts("2024-03-07T19:06:53Z").host("example").app("tag").msg("msg")
            .diag("space_before_timestamp", 5),
        row("<14>Jan  6 2009 15:22:26 localhost tag: msg")
            .pri(14).ts("2009-01-06T15:22:26Z").host("localhost").app("tag").msg("msg"),
        row("<14>Aug 30 23:00:05 X4711")
            .pri(14).ts("2023-08-30T23:00:05Z").host("X4711").msg(""),
        row("<167>Mar  6 16:57:54 172.20.245.8 %PIX-7-710005: UDP request discarded")
            .pri(167).ts("2024-03-06T16:57:54Z").host("172.20.245.8").app("%PIX-7-710005")
            .msg("UDP request discarded"),
        // A bracketed address is no host name to rsyslog: a tag with no name, the address as
        // its process id.
        row("<30>Jun 15 11:58:12 [10.0.0.1] app: bracketed")
            .pri(30).ts("2024-06-15T11:58:12Z").pid("10.0.0.1").msg("app: bracketed"),
        row("<13>Jun 15 11:58:12 2001:db8::7 sshd: over IPv6")
            .pri(13).ts("2024-06-15T11:58:12Z").host("2001:db8::7").app("sshd").msg("over IPv6"),
        row("<13>Jun 15 11:58:12 host caf\u{e9}[4]: 8-bit tag")
            .pri(13).ts("2024-06-15T11:58:12Z").host("host").app("caf").pid("4").msg("8-bit tag"),
        row("sshd[7]: no PRI, no time, a tag")
            .app("sshd").pid("7").msg("no PRI, no time, a tag")
            .diag("missing_pri", 0).diag("missing_timestamp", 0),
        // RFC 3339 stamps in the BSD position (rsyslog high-precision templates).
        row("<13>2024-06-15T11:58:16.123456+02:00 host1 app[5]: iso with offset")
            .pri(13).ts("2024-06-15T09:58:16.123456Z").host("host1").app("app").pid("5").msg("iso with offset"),
        row("<13>2024-06-15T11:58:17Z host1 app: iso utc")
            .pri(13).ts("2024-06-15T11:58:17Z").host("host1").app("app").msg("iso utc"),
        row("<13>2024-06-15T11:58:18 host1 app: iso without offset")
            .pri(13).ts("2024-06-15T11:58:18Z").host("host1").app("app").msg("iso without offset"),
        row("<13>2024-06-15T11:58:19.5-05:00 app: no host")
            .pri(13).ts("2024-06-15T16:58:19.500Z").app("app").msg("no host"),
        // No PRI (lines relayed from files), nothing at all, impossible dates, bad bytes.
        row("Jun 15 11:58:20 host2 kernel: no pri, from a file")
            .ts("2024-06-15T11:58:20Z").host("host2").app("kernel").msg("no pri, from a file").diag("missing_pri", 0),
        row("Use the BFG!").format("raw").msg("Use the BFG!").diag("missing_pri", 0).diag("missing_timestamp", 0),
        row("<13>").pri(13).msg("").diag("missing_timestamp", 4),
        row("<13>Feb 30 11:58:29 app: impossible date")
            .pri(13).app("app").msg("impossible date").diag("invalid_timestamp", 4),
        row("").bytes(b"<13>Jun 15 11:58:30 app: caf\xe9")
            .pri(13).ts("2024-06-15T11:58:30Z").app("app").msg("caf\u{FFFD}").diag("invalid_utf8", 28),
        // RFC 5424 senders on the same listener.
        row("<165>1 2024-06-15T11:58:31.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.")
            .format("rfc5424").pri(165).ts("2024-06-15T18:58:31.000003Z").host("192.0.2.1").app("myproc")
            .pid("8710").msg("%% It's time to make the do-nuts."),
        row("<13>1 2024-06-15T11:58:32.123456+00:00 host1 admin - - [timeQuality tzKnown=\"1\" isSynced=\"1\" syncAccuracy=\"123\"] hello")
            .format("rfc5424").pri(13).ts("2024-06-15T11:58:32.123456Z").host("host1").app("admin").msg("hello"),
        // Kernel ring records and GELF.
        row("6,1234,5678901,-;usb 1-1: new high-speed USB device number 2 using ehci-pci\n SUBSYSTEM=usb\n DEVICE=c189:1\n")
            .format("kmsg").pri(6).seq(1234).msg("usb 1-1: new high-speed USB device number 2 using ehci-pci"),
        row(r#"{"version":"1.1","host":"leaf-01","short_message":"peer down","level":3,"_peer":"10.0.0.2"}"#)
            .format("gelf").pri(11).host("leaf-01").msg("peer down"),
    ]
}

fn check(row: &Row, m: &Message<'_>) {
    let input = String::from_utf8_lossy(row.input);
    assert_eq!(m.format.name(), row.format, "format of {input:?}");
    assert_eq!(m.pri.map(|p| p.as_u8()), row.pri, "pri of {input:?}");
    assert_eq!(
        m.timestamp.map(|t| t.to_string()).as_deref(),
        row.ts,
        "timestamp of {input:?}"
    );
    assert_eq!(m.hostname.as_deref(), row.host, "hostname of {input:?}");
    assert_eq!(m.app_name.as_deref(), row.app, "app_name of {input:?}");
    assert_eq!(m.proc_id.as_deref(), row.pid, "proc_id of {input:?}");
    assert_eq!(m.message.as_deref(), row.msg, "message of {input:?}");
    assert_eq!(m.sequence, row.seq, "sequence of {input:?}");
    let diags: Vec<(&str, usize)> = m
        .diagnostics
        .iter()
        .map(|d| (d.kind.name(), d.offset))
        .collect();
    assert_eq!(diags, row.diags, "diagnostics of {input:?}");
    assert_eq!(
        m.error, None,
        "lenient decoding of {input:?} reported an error"
    );
}

#[test]
fn real_world_shapes_decode_with_every_field_in_place() {
    let now: Timestamp = "2024-06-15T12:00:00Z".parse().unwrap();
    let decoder = Decoder::new(FormatHint::Auto, Mode::Lenient, Context::utc(now));
    let rows = rows();
    assert!(rows.len() >= 50, "the table shrank to {} rows", rows.len());
    for row in &rows {
        check(row, &decoder.decode(row.input));
    }
}
