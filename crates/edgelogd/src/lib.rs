//! The collector daemon's machinery, run by the `edgelogd` binary.
//!
//! Records move source → [`ingest`] (decode, count, batch) → router ([`pipeline`]: hostnames,
//! daemon tables, device facts) → [`destinations`] (selector, sink). [`pipeline`] is the map
//! of how records move and how the daemon reloads and stops without losing any; [`config`] is
//! the contract's TOML; [`sources`] and [`destinations`] hold one module per type. It is a
//! library so integration tests and benches can drive the parts directly.

pub mod checkpoint;
pub mod config;
pub mod control;
pub mod destinations;
pub mod device;
pub mod dtables;
pub mod event;
pub mod ingest;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod sources;
pub mod stats;
pub mod tls;
