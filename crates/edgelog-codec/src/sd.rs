//! RFC 5424 structured data, kept as its wire text and read on demand.
//!
//! ```text
//! [exampleSDID@32473 iut="3" eventSource="Application"][examplePriority@32473 class="high"]
//!  ^ SD-ID           ^ PARAM-NAME="PARAM-VALUE" (with \" \\ \] escaped)
//! ```
//!
//! The parser checks the grammar once and keeps the text it checked; [`StructuredData::elements`]
//! then walks that text, and values are unescaped only when read (borrowed when they have no
//! escape). Decoding therefore allocates nothing for structured data, and a relay that forwards
//! RFC 5424 writes the text back verbatim. The one invariant: `raw` is always one or more
//! grammatical SD-ELEMENTs (lenient mode may have admitted long names or a bare `]` inside a
//! value; the walker reads those the same way the parser did).

use std::borrow::Cow;
use std::fmt;

/// The longest SD-NAME the grammar allows.
pub(crate) const MAX_SD_NAME: usize = 32;

/// One or more SD-ELEMENTs. See the module documentation.
#[derive(Clone, PartialEq, Eq)]
pub struct StructuredData<'a> {
    raw: Cow<'a, str>,
}

impl<'a> StructuredData<'a> {
    /// Wraps text the parser has checked.
    pub(crate) fn from_checked(raw: Cow<'a, str>) -> StructuredData<'a> {
        StructuredData { raw }
    }

    /// Builds structured data from elements: names are made to fit the grammar (bytes outside
    /// PRINTUSASCII and `=`, `]`, `"`, SP become `_`; at most 32 bytes; empty becomes `_`) and
    /// values are escaped. `None` when there is no element.
    pub fn from_elements<'e, E, P>(elements: E) -> Option<StructuredData<'static>>
    where
        E: IntoIterator<Item = (&'e str, P)>,
        P: IntoIterator<Item = (&'e str, &'e str)>,
    {
        let mut raw = Vec::new();
        for (id, params) in elements {
            raw.push(b'[');
            write_name(&mut raw, id);
            for (name, value) in params {
                raw.push(b' ');
                write_name(&mut raw, name);
                raw.extend_from_slice(b"=\"");
                escape_value(&mut raw, value);
                raw.push(b'"');
            }
            raw.push(b']');
        }
        // Only ASCII was replaced and escapes are ASCII: the bytes are UTF-8.
        let raw = String::from_utf8(raw).ok().filter(|r| !r.is_empty())?;
        Some(StructuredData {
            raw: Cow::Owned(raw),
        })
    }

    /// The wire text, escapes and all.
    pub fn as_wire(&self) -> &str {
        &self.raw
    }

    /// The elements, in wire order.
    pub fn elements(&self) -> Elements<'_> {
        Elements { rest: &self.raw }
    }

    /// Detaches the data from the frame it borrows.
    pub fn into_owned(self) -> StructuredData<'static> {
        StructuredData {
            raw: Cow::Owned(self.raw.into_owned()),
        }
    }
}

impl fmt::Debug for StructuredData<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.elements()).finish()
    }
}

/// Iterator over the elements of [`StructuredData`].
#[derive(Debug, Clone)]
pub struct Elements<'s> {
    rest: &'s str,
}

impl<'s> Iterator for Elements<'s> {
    type Item = SdElement<'s>;

    fn next(&mut self) -> Option<SdElement<'s>> {
        let body = self.rest.strip_prefix('[')?;
        let end = element_end(body.as_bytes());
        let (inner, rest) = (&body[..end], &body[end + 1..]);
        self.rest = rest;
        let id_end = inner.find(' ').unwrap_or(inner.len());
        Some(SdElement {
            id: &inner[..id_end],
            params: &inner[id_end..],
        })
    }
}

/// The offset of the `]` closing an element whose body starts `s`: the first `]` outside
/// quotes, where a backslash inside quotes takes the next byte with it.
fn element_end(s: &[u8]) -> usize {
    let mut quoted = false;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'"' => quoted = !quoted,
            b'\\' if quoted => i += 1,
            b']' if !quoted => return i,
            _ => {}
        }
        i += 1;
    }
    s.len().saturating_sub(1)
}

/// One SD-ELEMENT: its id and its parameters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SdElement<'s> {
    /// The SD-ID.
    pub id: &'s str,
    /// ` name="value"` pairs, as on the wire.
    params: &'s str,
}

impl<'s> SdElement<'s> {
    /// The parameters in wire order, values unescaped. A name may repeat (RFC 5424 §6.3.3).
    pub fn params(&self) -> Params<'s> {
        Params { rest: self.params }
    }
}

impl fmt::Debug for SdElement<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdElement")
            .field("id", &self.id)
            .field("params", &self.params().collect::<Vec<_>>())
            .finish()
    }
}

/// Iterator over the parameters of an [`SdElement`].
#[derive(Debug, Clone)]
pub struct Params<'s> {
    rest: &'s str,
}

impl<'s> Iterator for Params<'s> {
    type Item = (&'s str, Cow<'s, str>);

    fn next(&mut self) -> Option<(&'s str, Cow<'s, str>)> {
        let s = self.rest.strip_prefix(' ')?;
        let eq = s.find('=')?;
        let name = &s[..eq];
        let value_start = eq + 2; // `="`
        let b = s.as_bytes();
        let mut i = value_start;
        let mut escaped = false;
        while i < b.len() && b[i] != b'"' {
            if b[i] == b'\\' {
                escaped = true;
                i += 1;
            }
            i += 1;
        }
        let end = i.min(s.len());
        let raw = &s[value_start.min(end)..end];
        self.rest = s.get(end + 1..).unwrap_or("");
        let value = if escaped {
            unescape(raw)
        } else {
            Cow::Borrowed(raw)
        };
        Some((name, value))
    }
}

/// Undoes `\"`, `\\` and `\]`; a backslash before anything else is literal (RFC 5424 §6.3.3).
fn unescape(raw: &str) -> Cow<'_, str> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && matches!(chars.peek(), Some('"' | '\\' | ']')) {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Writes an SD-NAME: PRINTUSASCII except `=`, `]`, `"`; others become `_`; at most 32 bytes.
fn write_name(out: &mut Vec<u8>, name: &str) {
    if name.is_empty() {
        out.push(b'_');
        return;
    }
    let bytes = &name.as_bytes()[..name.len().min(MAX_SD_NAME)];
    out.extend(bytes.iter().map(|&b| {
        if (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"') {
            b
        } else {
            b'_'
        }
    }));
}

/// Escapes `"`, `\` and `]` with a backslash.
fn escape_value(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    let mut run = 0;
    while let Some(n) = memchr::memchr3(b'"', b'\\', b']', &bytes[run..]) {
        out.extend_from_slice(&bytes[run..run + n]);
        out.push(b'\\');
        out.push(bytes[run + n]);
        run += n + 1;
    }
    out.extend_from_slice(&bytes[run..]);
}
