//! Which records a destination takes: its level (and the plugin-alias levels the CLI set),
//! and its `match` on source, app, module and facility.

use edgelog_core::Facility;

use crate::event::Event;

/// Which records a destination wants besides the level: each list, when given, must contain
/// the record's value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Match {
    pub sources: Vec<String>,
    pub apps: Vec<String>,
    pub modules: Vec<String>,
    pub facilities: Vec<Facility>,
}

impl Match {
    pub(crate) fn is_empty(&self) -> bool {
        self.sources.is_empty()
            && self.apps.is_empty()
            && self.modules.is_empty()
            && self.facilities.is_empty()
    }
}

/// A destination's selection: a level and a match.
#[derive(Debug, Clone)]
pub(crate) struct Selector {
    pub level: edgelog_core::LevelFilter,
    pub filter: Match,
    /// Scoped export levels from the CLI; the most specific match wins over `level`.
    pub overrides: Vec<edgelog_core::control::Rule>,
}

impl Selector {
    /// The export level for `e`: a matching override (BD = app, module, group = the module
    /// and group fields, else the facility), else the configured level.
    fn level_for(&self, e: &Event) -> edgelog_core::LevelFilter {
        if self.overrides.is_empty() {
            return self.level;
        }
        let app = e.app().unwrap_or("");
        let module = e.text_field("module").unwrap_or(app);
        let group = e.text_field("group").unwrap_or(e.facility().name());
        self.overrides
            .iter()
            .filter(|r| r.scope.matches(app, module, group))
            .max_by_key(|r| r.scope.rank())
            .map_or(self.level, |r| r.level)
    }

    pub(crate) fn wants(&self, e: &Event) -> bool {
        if !self.level_for(e).enabled(e.level()) {
            return false;
        }
        let m = &self.filter;
        if m.is_empty() {
            return true;
        }
        let listed = |list: &[String], v: Option<&str>| {
            list.is_empty() || v.is_some_and(|v| list.iter().any(|x| x == v))
        };
        listed(&m.sources, Some(&e.source))
            && listed(&m.apps, e.app())
            && listed(&m.modules, e.text_field("module"))
            && (m.facilities.is_empty() || m.facilities.contains(&e.facility()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgelog_codec::{Format, Message, Pri};
    use edgelog_core::{Level, LevelFilter, Timestamp, Value};

    fn event(level: Level, facility: Facility, app: &str, module: Option<&str>) -> Event {
        let mut msg = Message::new(Format::Rfc5424);
        msg.pri = Some(Pri {
            facility,
            severity: level,
        });
        msg.app_name = Some(app.to_owned().into());
        if let Some(m) = module {
            msg.fields
                .push(("module".into(), Value::Str(m.to_owned().into())));
        }
        Event::new(msg, "net".into(), Timestamp::from_unix_nanos(0))
    }

    #[test]
    fn selector_applies_level_then_every_given_list() {
        let all = Selector {
            level: LevelFilter::from(Level::Warning),
            filter: Match::default(),
            overrides: Vec::new(),
        };
        assert!(all.wants(&event(Level::Error, Facility::Daemon, "bgpd", None)));
        assert!(!all.wants(&event(Level::Info, Facility::Daemon, "bgpd", None)));

        let bgp_auth = Selector {
            level: LevelFilter::from(Level::Debug),
            filter: Match {
                apps: vec!["bgpd".into()],
                modules: vec!["peer".into()],
                facilities: vec![Facility::Auth],
                ..Match::default()
            },
            overrides: Vec::new(),
        };
        assert!(bgp_auth.wants(&event(Level::Info, Facility::Auth, "bgpd", Some("peer"))));
        assert!(!bgp_auth.wants(&event(Level::Info, Facility::Auth, "bgpd", None)));
        assert!(!bgp_auth.wants(&event(Level::Info, Facility::Kern, "bgpd", Some("peer"))));
        assert!(!bgp_auth.wants(&event(Level::Info, Facility::Auth, "sshd", Some("peer"))));
        let none = Selector {
            level: LevelFilter::NONE,
            filter: Match::default(),
            overrides: Vec::new(),
        };
        assert!(!none.wants(&event(Level::Emergency, Facility::Kern, "k", None)));

        // Overrides from the CLI: the most specific wins over the configured level.
        use edgelog_core::control::{Rule, Scope};
        let scoped = Selector {
            level: LevelFilter::from(Level::Error),
            filter: Match::default(),
            overrides: vec![
                Rule {
                    scope: Scope {
                        bd: Some("bgpd".into()),
                        ..Scope::default()
                    },
                    level: LevelFilter::from(Level::Info),
                },
                Rule {
                    scope: Scope {
                        bd: Some("bgpd".into()),
                        module: Some("peer".into()),
                        ..Scope::default()
                    },
                    level: LevelFilter::NONE,
                },
            ],
        };
        assert!(scoped.wants(&event(Level::Info, Facility::Daemon, "bgpd", None)));
        assert!(!scoped.wants(&event(
            Level::Critical,
            Facility::Daemon,
            "bgpd",
            Some("peer")
        )));
        assert!(!scoped.wants(&event(Level::Warning, Facility::Daemon, "sshd", None)));
    }
}
