//! The component types this build of edgelogd has, looked up by a table's `type`.
//!
//! The config is read against this registry (it knows no component itself); each entry
//! comes from the component's own module ([`component`](crate::component) describes the
//! shape). Adding a type is one file under `sources/` or `destinations/` and one line in its
//! directory's `TYPES`.

use crate::component::Registry;
use crate::{destinations, sources};

pub(crate) static REGISTRY: Registry = Registry {
    sources: sources::TYPES,
    destinations: &destinations::TYPES,
    sources_later: sources::LATER,
};
