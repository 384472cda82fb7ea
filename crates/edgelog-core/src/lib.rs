//! The record model every part of edgelog shares.
//!
//! The library, the daemon, the codecs and the CLI all speak about the same few things: a
//! [`Level`] (the eight syslog severities), a [`LevelFilter`] (a level or `none`), a
//! [`Facility`], a [`Timestamp`] with nanosecond precision, typed [`Value`]s and the [`Record`]
//! that carries them. They live here, in a crate with no I/O, so that each of the others can
//! depend on them without depending on each other.
//!
//! Levels and facilities are typed, never strings: parsing a name happens once, at the edge
//! (config, CLI, wire), and is case-insensitive with an error that says what was expected.

pub mod control;
mod error;
mod facility;
mod level;
pub mod maps;
pub mod paths;
mod record;
mod shm;
pub use shm::is_no_space;
pub mod table;
mod time;
mod value;

pub use error::{Error, ErrorKind};
pub use facility::Facility;
pub use level::{Level, LevelFilter};
pub use record::Record;
pub use time::{Civil, Timestamp};
pub use value::Value;
