//! The collector daemon's machinery, run by the `edgelogd` binary.
//!
//! Records move source → [`ingest`] (decode, count, batch) → router ([`pipeline`]) →
//! [`destinations`] (selector, sink; the daemon's own tables are one). [`pipeline`] is the map
//! of how records move and how the daemon reloads and stops without losing any; [`config`] is
//! the contract's TOML; [`sources`] and [`destinations`] hold one module per type. The
//! library exposes what the binary uses — the config, the daemon, the control socket — and
//! nothing else, so the compiler finds what nothing uses.

mod checkpoint;
mod component;
pub mod config;
pub mod control;
mod destinations;
mod device;
mod event;
mod ingest;
mod metrics;
mod output;
pub mod pipeline;
mod registry;
pub mod select;
mod sources;
mod stats;
pub mod systemd;
mod tls;
