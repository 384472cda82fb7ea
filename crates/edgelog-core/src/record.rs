//! The record: one log event as the daemon carries it from a source to its destinations.

use crate::{Facility, Level, Timestamp, Value};

/// One log event. Owned, so it can cross threads and queues; decoders produce borrowed views
/// first and turn them into a `Record` only when the record is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// When the event happened, as the sender said (or when it was received, if it did not).
    pub time: Timestamp,
    /// Severity.
    pub level: Level,
    /// Syslog facility.
    pub facility: Facility,
    /// The host that produced the event.
    pub host: Option<String>,
    /// The application or brick daemon (BD): syslog APP-NAME / tag, GELF `_app_name`.
    pub app: Option<String>,
    /// The process id, as text (syslog allows any PROCID).
    pub proc_id: Option<String>,
    /// The RFC 5424 MSGID.
    pub msg_id: Option<String>,
    /// The library module (table) the event belongs to.
    pub module: Option<String>,
    /// The log group inside the module (e.g. the BGP `peer` group).
    pub group: Option<String>,
    /// The library log ID (log map entry).
    pub log_id: Option<u64>,
    /// The message text.
    pub message: String,
    /// Structured fields, in arrival order. Keys are unique by convention, not enforced.
    pub fields: Vec<(String, Value<'static>)>,
}

impl Record {
    /// A record with the given essentials and every optional part empty.
    pub fn new(time: Timestamp, level: Level, message: impl Into<String>) -> Record {
        Record {
            time,
            level,
            facility: Facility::User,
            host: None,
            app: None,
            proc_id: None,
            msg_id: None,
            module: None,
            group: None,
            log_id: None,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// The value of the first field named `key`.
    pub fn field(&self, key: &str) -> Option<&Value<'static>> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}
