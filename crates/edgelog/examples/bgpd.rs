//! A fake BGP daemon: peers come up and go down, routes are learned and withdrawn, sessions
//! time out — in the `bgp` module (groups `peer`, `route`, `session`) and the `rib` module
//! (group `fib`), at several severities. For the README tour and the CLI tests.
//!
//! ```sh
//! cargo run --example bgpd -- [--run-dir DIR] [--state-dir DIR] [--events N] [--interval-ms MS]
//!                              [--capacity ENTRIES]
//! ```
//!
//! At the end it says how many events it could not record for want of space in the run
//! directory (a full tmpfs), if any: logging never stops the daemon.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use edgelog::{Event, Level, Options, event, text};

static PEER_UP: Event = Event::new(
    "bgp",
    "peer",
    "BGP_PEER_UP",
    Level::Notice,
    "peer {peer} (AS {asn}) is up",
);
static PEER_DOWN: Event = Event::new(
    "bgp",
    "peer",
    "BGP_PEER_DOWN",
    Level::Error,
    "peer {peer} (AS {asn}) is down: {reason}",
);
static ROUTE_ADD: Event = Event::new(
    "bgp",
    "route",
    "BGP_ROUTE_ADD",
    Level::Debug,
    "route {prefix} via {nexthop} learned",
);
static ROUTE_WITHDRAW: Event = Event::new(
    "bgp",
    "route",
    "BGP_ROUTE_WITHDRAW",
    Level::Info,
    "route {prefix} withdrawn by {peer}",
);
static HOLD_EXPIRED: Event = Event::new(
    "bgp",
    "session",
    "BGP_HOLD_TIMER_EXPIRED",
    Level::Warning,
    "hold timer expired for {peer} after {seconds}s",
);
static FIB_FULL: Event = Event::new(
    "rib",
    "fib",
    "RIB_FIB_FULL",
    Level::Critical,
    "FIB table {table} full at {entries} entries",
);

fn main() {
    let mut args = std::env::args().skip(1);
    let mut options = Options::new();
    let (mut events, mut interval) = (50u64, 0u64);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            return;
        }
        let value = args.next().unwrap_or_else(|| usage(&flag));
        match flag.as_str() {
            "--run-dir" => options = options.run_dir(value),
            "--state-dir" => options = options.state_dir(value),
            "--events" => events = value.parse().unwrap_or_else(|_| usage(&flag)),
            "--interval-ms" => interval = value.parse().unwrap_or_else(|_| usage(&flag)),
            "--capacity" => {
                options = options.capacity(value.parse().unwrap_or_else(|_| usage(&flag)));
            }
            _ => usage(&flag),
        }
    }
    let all = [
        &PEER_UP,
        &PEER_DOWN,
        &ROUTE_ADD,
        &ROUTE_WITHDRAW,
        &HOLD_EXPIRED,
        &FIB_FULL,
    ];
    if let Err(e) = edgelog::init("bgpd", options.events(&all)) {
        eprintln!("bgpd: {e}");
        std::process::exit(1);
    }
    for i in 0..events {
        let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2 + (i % 4) as u8));
        let asn = 65001 + (i % 4) as u32;
        let prefix = format!("192.0.{}.0/24", i % 256);
        match i % 6 {
            0 => event!(PEER_UP, peer = peer, asn = asn),
            1 => event!(ROUTE_ADD, prefix = prefix, nexthop = peer),
            2 => event!(ROUTE_WITHDRAW, prefix = prefix, peer = peer),
            3 => event!(HOLD_EXPIRED, peer = peer, seconds = 90u32),
            4 => event!(
                PEER_DOWN,
                peer = peer,
                asn = asn,
                reason = "hold timer expired"
            ),
            _ => event!(FIB_FULL, table = "default", entries = 1_000_000u64),
        }
        if i % 10 == 9 {
            text!(
                "bgp",
                "session",
                Level::Error,
                "session reset #{} requested by operator",
                i / 10
            );
        }
        if interval > 0 {
            std::thread::sleep(Duration::from_millis(interval));
        }
    }
    let dropped = edgelog::dropped_no_space();
    if dropped > 0 {
        eprintln!("bgpd: {dropped} events had no table for want of space in the run directory");
    }
}

const USAGE: &str = "usage: bgpd [--run-dir DIR] [--state-dir DIR] [--events N] [--interval-ms MS] \
                     [--capacity ENTRIES]";

fn usage(flag: &str) -> ! {
    eprintln!("bgpd: bad or incomplete option {flag:?}");
    eprintln!("{USAGE}");
    std::process::exit(2);
}
