//! Bridges: existing `log` and `tracing` calls written into the tables, without rewriting them.
//!
//! A record's target names its table: the first `::` segment is the module, the second the
//! group (`bgpd::peer::fsm` → module `bgpd`, group `peer`; a one-segment target uses group
//! `default`). The text is formatted once, when the level of that module and group lets it
//! through — the same rules as declared events, changed the same way. Severity: `error` →
//! error, `warn` → warning, `info` → info, `debug` and `trace` → debug.

use edgelog_core::Level;

use crate::runtime::log_text;

fn split_target(target: &str) -> (&str, &str) {
    let mut parts = target.split("::");
    let module = parts.next().filter(|m| !m.is_empty()).unwrap_or("default");
    (module, parts.next().unwrap_or("default"))
}

/// A `log::Log` that writes into the tables. Install with [`Logger::install`] after `init`.
#[cfg(feature = "log")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Logger;

#[cfg(feature = "log")]
impl Logger {
    /// Makes this the `log` crate's logger, passing every level (edgelog's rules filter).
    pub fn install() -> Result<(), log::SetLoggerError> {
        static LOGGER: Logger = Logger;
        log::set_logger(&LOGGER)?;
        log::set_max_level(log::LevelFilter::Trace);
        Ok(())
    }
}

#[cfg(feature = "log")]
impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = match record.level() {
            log::Level::Error => Level::Error,
            log::Level::Warn => Level::Warning,
            log::Level::Info => Level::Info,
            log::Level::Debug | log::Level::Trace => Level::Debug,
        };
        let (module, group) = split_target(record.target());
        match record.args().as_str() {
            Some(s) => log_text(module, group, level, s),
            None => log_text(module, group, level, &record.args().to_string()),
        }
    }

    fn flush(&self) {}
}

/// A `tracing_subscriber::Layer` that writes events into the tables: the `message` field
/// first, then the other fields as `name=value`.
#[cfg(feature = "tracing")]
#[derive(Debug, Clone, Copy, Default)]
pub struct TablesLayer;

#[cfg(feature = "tracing")]
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for TablesLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let meta = event.metadata();
        let level = match *meta.level() {
            tracing::Level::ERROR => Level::Error,
            tracing::Level::WARN => Level::Warning,
            tracing::Level::INFO => Level::Info,
            _ => Level::Debug,
        };
        let mut text = Text::default();
        event.record(&mut text);
        let (module, group) = split_target(meta.target());
        log_text(module, group, level, &text.finish());
    }
}

#[cfg(feature = "tracing")]
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

#[cfg(feature = "tracing")]
impl Text {
    fn finish(mut self) -> String {
        if !self.fields.is_empty() {
            if !self.message.is_empty() {
                self.message.push(' ');
            }
            self.message.push_str(&self.fields);
        }
        self.message
    }
}

#[cfg(feature = "tracing")]
impl tracing::field::Visit for Text {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            self.fields.push_str(field.name());
            self.fields.push('=');
            self.fields.push_str(value);
        }
    }
}
