//! Streaming XML under a byte budget: a part's reader that stops at what is left, the bytes of one event counted, and the small helpers that read elements and attributes.

use std::io::{BufRead, Read};
use std::rc::Rc;

use ioto_domain::Result;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::{unreadable, MAX_XLSX_EVENT_BYTES};

/// Bytes inflated since the XML event being read began ([`MAX_XLSX_EVENT_BYTES`]); a parse
/// loop starts each event with [`EventBytes::next`].
#[derive(Clone, Default)]
pub(super) struct EventBytes(Rc<std::cell::Cell<u64>>);

impl EventBytes {
    pub(super) fn next(&self) {
        self.0.set(0);
    }
}

/// Inflated bytes of a part, failing once more than `left` would be read, or more than
/// [`MAX_XLSX_EVENT_BYTES`] within one event.
pub(super) struct Bounded<R> {
    pub(super) inner: R,
    pub(super) left: u64,
    pub(super) read: u64,
    pub(super) exceeded: bool,
    pub(super) event: EventBytes,
    pub(super) event_too_large: bool,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // One byte past the bound tells a part that is larger than allowed from one that fits.
        let want = buf
            .len()
            .min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.read += n as u64;
        let in_event = self.event.0.get() + n as u64;
        self.event.0.set(in_event);
        if in_event > MAX_XLSX_EVENT_BYTES {
            self.event_too_large = true;
            return Err(std::io::Error::other("an XML event is larger than allowed"));
        }
        if n as u64 > self.left {
            self.exceeded = true;
            return Err(std::io::Error::other("the part is larger than allowed"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The next event of a part, the first of [`MAX_XLSX_EVENT_BYTES`] at most.
pub(super) fn next_event<'b, R: BufRead>(
    reader: &mut Reader<R>,
    buf: &'b mut Vec<u8>,
    events: &EventBytes,
    part: &str,
) -> Result<Event<'b>> {
    buf.clear();
    events.next();
    reader.read_event_into(buf).map_err(|e| unreadable(part, e))
}

/// Calls `f` with every start or empty element of a part.
pub(super) fn each_start<R: BufRead>(
    reader: &mut Reader<R>,
    events: &EventBytes,
    part: &str,
    mut f: impl FnMut(&BytesStart<'_>),
) -> Result<()> {
    let mut buf = Vec::new();
    loop {
        match next_event(reader, &mut buf, events, part)? {
            Event::Start(e) | Event::Empty(e) => f(&e),
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

pub(super) fn attribute(e: &BytesStart<'_>, key: &[u8]) -> Option<String> {
    attribute_where(e, |k| k == key)
}

pub(super) fn attribute_where(e: &BytesStart<'_>, matches: impl Fn(&[u8]) -> bool) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| matches(a.key.as_ref()))
        .and_then(|a| {
            a.decode_and_unescape_value(e.decoder())
                .ok()
                .map(|v| v.into_owned())
        })
}

/// The text an event adds to the element it is in: text, CDATA, or a reference (`&amp;`,
/// `&#233;` and the others XML predefines; a workbook declares no others); `None` for any other
/// event.
pub(super) fn text_of<'e>(event: &'e Event<'_>, part: &str) -> Result<Option<std::borrow::Cow<'e, str>>> {
    let text = match event {
        Event::Text(t) => t.xml10_content().map_err(|e| unreadable(part, e))?,
        Event::CData(t) => t.decode().map_err(|e| unreadable(part, e))?,
        Event::GeneralRef(r) => match r.resolve_char_ref().map_err(|e| unreadable(part, e))? {
            Some(c) => c.to_string().into(),
            None => {
                let name = r.decode().map_err(|e| unreadable(part, e))?;
                quick_xml::escape::resolve_predefined_entity(&name)
                    .ok_or_else(|| unreadable(part, format!("&{name}; is not an XML entity")))?
                    .into()
            }
        },
        _ => return Ok(None),
    };
    Ok(Some(text))
}

/// A relationship's target as a part name: `/xl/x.xml` from the package's root, anything else
/// relative to `xl/`, with `..` resolved.
pub(super) fn resolve_target(target: &str) -> String {
    let joined = match target.strip_prefix('/') {
        Some(absolute) => absolute.to_owned(),
        None => format!("xl/{target}"),
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            ".." => {
                parts.pop();
            }
            "." | "" => {}
            p => parts.push(p),
        }
    }
    parts.join("/")
}
