//! The first sheet of an XLSX workbook, read by what its parts contain rather than by what they
//! declare about themselves.
//!
//! ```text
//! bytes ─► zip directory (entry count checked) ─► xl/workbook.xml ─► its rels ─► first sheet's part
//!                                                                 └► shared strings part
//! each part inflated through a reader that stops at its declared size and at what is left of
//! the workbook's budget ─► streaming XML ─► cells kept sparse, each row as long as its last cell
//! ```
//!
//! A general spreadsheet reader trusts a workbook's own counts: it reserves room for the
//! shared-strings table's `uniqueCount`, inflates a part into a buffer of its declared size and
//! pads rows into the rectangle between the first and last cell. Any of those lets a 2 kB file
//! ask for gigabytes, and a failed allocation aborts the process. Here nothing is reserved from
//! a declared number, every part is read as a stream under a byte budget, and everything kept
//! (strings, rows, cells) is counted against [`MAX_TABLE_BYTES`].

mod cells;
mod xml;

use cells::{Cell, SharedStrings, SparseTable};
use xml::{attribute, attribute_where, each_start, next_event, resolve_target, text_of, Bounded, EventBytes};

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Cursor, Read};

use ioto_domain::fleet::import::Table;
use ioto_domain::{Error, Result};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::tables::{cell_name, too_many_lines, MAX_COLUMNS, MAX_LINES};

/// Most bytes all parts of a workbook may inflate to together, counted as they are inflated.
pub const MAX_XLSX_UNPACKED_BYTES: u64 = 2 << 30;
/// Most bytes of the shared-strings part, whose strings are held while the sheet is read.
pub const MAX_XLSX_STRINGS_BYTES: u64 = 512 << 20;
/// Most strings in the shared-strings table (an import of a million rows of nine distinct
/// values needs nine million).
pub const MAX_XLSX_SHARED_STRINGS: usize = 16_000_000;
/// Most bytes one XML event (a text, a tag, a comment) may take: the parser holds an event
/// whole, so without this one text of a gigabyte would be held as one. A cell holds at most
/// 32,767 characters.
pub const MAX_XLSX_EVENT_BYTES: u64 = 4 << 20;
/// Most bytes of the workbook's small parts (the sheet list and its relationships).
const MAX_XLSX_META_BYTES: u64 = 16 << 20;
/// Most entries a workbook's zip directory may declare: a workbook has a few dozen parts.
pub const MAX_XLSX_PARTS: u64 = 10_000;
/// Most memory the table read from a workbook may hold: its text plus a fixed overhead per cell
/// and per row. A million rows of nine cells of twenty characters take about 420 MiB.
pub const MAX_TABLE_BYTES: usize = 768 << 20;
/// The bounds a workbook is read within: the constants above, or smaller ones in tests.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub unpacked: u64,
    pub strings_bytes: u64,
    pub shared_strings: usize,
    pub table_bytes: usize,
}

impl Limits {
    pub(crate) const DEFAULT: Limits = Limits {
        unpacked: MAX_XLSX_UNPACKED_BYTES,
        strings_bytes: MAX_XLSX_STRINGS_BYTES,
        shared_strings: MAX_XLSX_SHARED_STRINGS,
        table_bytes: MAX_TABLE_BYTES,
    };
}

/// What each kept cell and row costs against [`MAX_TABLE_BYTES`] besides its text.
const CELL_OVERHEAD: usize = std::mem::size_of::<String>();
const ROW_OVERHEAD: usize = std::mem::size_of::<Vec<String>>();

fn not_xlsx(why: impl std::fmt::Display) -> Error {
    Error::invalid("file", format!("is not an XLSX workbook ({why})"))
}

fn unreadable(part: &str, why: impl std::fmt::Display) -> Error {
    Error::invalid(
        "file",
        format!("the workbook's part {part} cannot be read ({why})"),
    )
}

/// Reads the first sheet of the workbook in `bytes` into a table of text cells.
pub(crate) fn read_xlsx(bytes: &[u8]) -> Result<Table> {
    read_xlsx_within(bytes, Limits::DEFAULT)
}

pub(crate) fn read_xlsx_within(bytes: &[u8], limits: Limits) -> Result<Table> {
    check_declared_entries(bytes)?;
    let mut book = Workbook::open(bytes, limits)?;
    let (sheet, strings_part) = book.first_sheet()?;
    let strings = match strings_part {
        Some(part) => book.shared_strings(&part)?,
        None => SharedStrings::default(),
    };
    book.sheet(&sheet, &strings)
}

/// Refuses a zip whose last end-of-directory records declare more entries than a workbook has,
/// before the zip reader reads its directory (the reader bounds the directory by the file's
/// size itself, and the parts found are counted again once it is open).
fn check_declared_entries(bytes: &[u8]) -> Result<()> {
    const EOCD: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
    const ZIP64_LOCATOR: [u8; 4] = [0x50, 0x4b, 0x06, 0x07];
    const ZIP64_EOCD: [u8; 4] = [0x50, 0x4b, 0x06, 0x06];
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let u64_at = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
    };
    // The record is at most 22 bytes plus a comment of up to 64 KiB from the end.
    let tail_start = bytes.len().saturating_sub(22 + 65_535);
    let Some(eocd) = bytes[tail_start..]
        .windows(4)
        .rposition(|w| w == EOCD)
        .map(|p| tail_start + p)
    else {
        return Err(not_xlsx("it has no zip directory"));
    };
    let too_many = |n: u64| {
        Error::invalid(
            "file",
            format!("is not an XLSX workbook: its zip directory declares {n} entries; a workbook has at most {MAX_XLSX_PARTS}"),
        )
    };
    let entries = u16_at(eocd + 10).ok_or_else(|| not_xlsx("its zip directory is cut short"))?;
    if entries > MAX_XLSX_PARTS {
        return Err(too_many(entries));
    }
    if eocd >= 20 && bytes[eocd - 20..eocd - 16] == ZIP64_LOCATOR {
        let record = u64_at(eocd - 20 + 8)
            .and_then(|at| usize::try_from(at).ok())
            .filter(|at| at.checked_add(4).and_then(|end| bytes.get(*at..end)) == Some(&ZIP64_EOCD[..]))
            .ok_or_else(|| not_xlsx("its zip64 directory record is missing"))?;
        let entries =
            u64_at(record + 32).ok_or_else(|| not_xlsx("its zip64 directory record is cut short"))?;
        if entries > MAX_XLSX_PARTS {
            return Err(too_many(entries));
        }
    }
    Ok(())
}

struct Workbook<'a> {
    zip: zip::ZipArchive<Cursor<&'a [u8]>>,
    /// Part names in lower case (names in a workbook are matched without regard to case).
    parts: HashMap<String, usize>,
    limits: Limits,
    /// Bytes that may still be inflated, over all parts.
    budget: u64,
}

/// A part's XML as it is inflated.
type PartXml<'z, 'a> = Reader<BufReader<Bounded<std::io::Take<zip::read::ZipFile<'z, Cursor<&'a [u8]>>>>>>;

impl<'a> Workbook<'a> {
    fn open(bytes: &'a [u8], limits: Limits) -> Result<Self> {
        let zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(not_xlsx)?;
        // The zip reader sizes its directory by what the file can hold; a workbook has a few
        // dozen parts.
        if zip.len() as u64 > MAX_XLSX_PARTS {
            return Err(Error::invalid(
                "file",
                format!(
                    "is not an XLSX workbook: it holds {} parts; a workbook has at most {MAX_XLSX_PARTS}",
                    zip.len()
                ),
            ));
        }
        let parts = (0..zip.len())
            .filter_map(|i| zip.name_for_index(i).map(|n| (n.to_ascii_lowercase(), i)))
            .collect();
        Ok(Self {
            zip,
            parts,
            limits,
            budget: limits.unpacked,
        })
    }

    /// Reads the XML of part `name` with `read`, or `None` without such a part. The part is
    /// inflated as `read` goes, through a reader that stops at its declared size and fails past
    /// `limit` or what is left of the workbook's budget; the failure names the bound.
    fn with_part<T>(
        &mut self,
        name: &str,
        limit: u64,
        what: &str,
        read: impl FnOnce(&mut PartXml<'_, 'a>, &EventBytes) -> Result<T>,
    ) -> Result<Option<T>> {
        let Some(&index) = self.parts.get(&name.to_ascii_lowercase()) else {
            return Ok(None);
        };
        let part = self.zip.by_index(index).map_err(|e| unreadable(name, e))?;
        let declared = part.size();
        let cap = limit.min(self.budget);
        let over_budget = cap == self.budget;
        let events = EventBytes::default();
        let mut xml = Reader::from_reader(BufReader::new(Bounded {
            inner: part.take(declared),
            left: cap,
            read: 0,
            exceeded: false,
            event: events.clone(),
            event_too_large: false,
        }));
        xml.config_mut().check_end_names = false;
        let result = read(&mut xml, &events);
        let bounded = xml.get_ref().get_ref();
        self.budget -= bounded.read.min(self.budget);
        if bounded.event_too_large {
            return Err(Error::invalid(
                "file",
                format!(
                    "holds an XML element or text of more than {} MiB (in {name}); a cell holds at most 32,767 characters",
                    MAX_XLSX_EVENT_BYTES >> 20
                ),
            ));
        }
        if bounded.exceeded {
            let bound = if over_budget { self.limits.unpacked } else { limit };
            let whose = if over_budget { "all its parts" } else { what };
            return Err(Error::invalid(
                "file",
                format!(
                    "{whose} unpack to more than {} MiB; at most {} MiB are read",
                    bound >> 20,
                    bound >> 20
                ),
            ));
        }
        result.map(Some)
    }

    /// The first sheet's part and the shared strings' part, from the workbook's sheet list and
    /// its relationships.
    fn first_sheet(&mut self) -> Result<(String, Option<String>)> {
        let mut first_id = None;
        let mut saw_sheet = false;
        self.with_part(
            "xl/workbook.xml",
            MAX_XLSX_META_BYTES,
            "its sheet list",
            |xml, events| {
                each_start(xml, events, "xl/workbook.xml", |e| {
                    if e.local_name().as_ref() == b"sheet" && !saw_sheet {
                        saw_sheet = true;
                        first_id = attribute_where(e, |key| key.ends_with(b":id") || key == b"id");
                    }
                })
            },
        )?
        .ok_or_else(|| not_xlsx("it has no xl/workbook.xml"))?;
        if !saw_sheet {
            return Err(Error::invalid("file", "the workbook has no sheet"));
        }
        let mut targets = HashMap::new();
        let mut strings = None;
        let rels = "xl/_rels/workbook.xml.rels";
        self.with_part(rels, MAX_XLSX_META_BYTES, "its relationships", |xml, events| {
            each_start(xml, events, rels, |e| {
                if e.local_name().as_ref() != b"Relationship" {
                    return;
                }
                let (Some(id), Some(target)) = (attribute(e, b"Id"), attribute(e, b"Target")) else {
                    return;
                };
                let target = resolve_target(&target);
                if attribute(e, b"Type").is_some_and(|t| t.ends_with("/sharedStrings")) {
                    strings = Some(target.clone());
                }
                targets.insert(id, target);
            })
        })?;
        let sheet = first_id
            .and_then(|id| targets.remove(&id))
            .unwrap_or_else(|| "xl/worksheets/sheet1.xml".to_owned());
        let strings = strings.or_else(|| {
            self.parts
                .contains_key("xl/sharedstrings.xml")
                .then(|| "xl/sharedStrings.xml".to_owned())
        });
        Ok((sheet, strings))
    }

    fn shared_strings(&mut self, name: &str) -> Result<SharedStrings> {
        let (limit, most) = (self.limits.strings_bytes, self.limits.shared_strings);
        let strings = self.with_part(name, limit, "its shared strings", |reader, events| {
            read_shared_strings(reader, events, name, most)
        })?;
        Ok(strings.unwrap_or_default())
    }

    fn sheet(&mut self, name: &str, strings: &SharedStrings) -> Result<Table> {
        let (limit, table_bytes) = (self.limits.unpacked, self.limits.table_bytes);
        self.with_part(name, limit, "its first sheet", |reader, events| {
            read_sheet(reader, events, name, strings, table_bytes)
        })?
        .ok_or_else(|| not_xlsx(format!("its first sheet {name} is missing")))
    }
}

fn read_shared_strings<R: BufRead>(
    reader: &mut Reader<R>,
    events: &EventBytes,
    name: &str,
    most: usize,
) -> Result<SharedStrings> {
    let mut strings = SharedStrings::new(most);
    let mut buf = Vec::new();
    let mut current: Option<String> = None;
    // Depth inside <rPh> (phonetic runs are not part of the text) and whether inside <t>.
    let (mut phonetic, mut in_text) = (0usize, false);
    loop {
        match next_event(reader, &mut buf, events, name)? {
            Event::Start(e) => match e.local_name().as_ref() {
                b"si" => current = Some(String::new()),
                b"rPh" => phonetic += 1,
                b"t" => in_text = phonetic == 0,
                _ => {}
            },
            Event::Empty(e) if e.local_name().as_ref() == b"si" => strings.push(String::new())?,
            Event::End(e) => match e.local_name().as_ref() {
                b"si" => {
                    if let Some(s) = current.take() {
                        strings.push(s)?;
                    }
                }
                b"rPh" => phonetic = phonetic.saturating_sub(1),
                b"t" => in_text = false,
                _ => {}
            },
            Event::Eof => return Ok(strings),
            other if in_text => {
                if let (Some(s), Some(text)) = (current.as_mut(), text_of(&other, name)?) {
                    s.push_str(&text);
                }
            }
            _ => {}
        }
    }
}

fn read_sheet<R: BufRead>(
    reader: &mut Reader<R>,
    events: &EventBytes,
    name: &str,
    strings: &SharedStrings,
    table_bytes: usize,
) -> Result<Table> {
    let mut buf = Vec::new();
    let mut table = SparseTable {
        most: table_bytes,
        ..SparseTable::default()
    };
    // The row being read (zero-based) and the column of the last cell in it.
    let (mut row, mut col): (u32, Option<u32>) = (0, None);
    let mut next_row = 0u32;
    let mut cell: Option<Cell> = None;
    let mut in_value = false;
    loop {
        match next_event(reader, &mut buf, events, name)? {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"row" => {
                row = match attribute(&e, b"r") {
                    Some(r) => r
                        .parse::<u32>()
                        .ok()
                        .and_then(|r| r.checked_sub(1))
                        .ok_or_else(|| unreadable(name, format!("row number {r:?} is not a row number")))?,
                    None => next_row,
                };
                next_row = row.saturating_add(1);
                col = None;
            }
            Event::Start(e) if e.local_name().as_ref() == b"c" => {
                let (r, c) = self::position(&e, row, col, name)?;
                row = r;
                col = Some(c);
                cell = Some(Cell {
                    row: r,
                    col: c,
                    kind: attribute(&e, b"t").unwrap_or_default(),
                    text: String::new(),
                });
            }
            Event::Empty(e) if e.local_name().as_ref() == b"c" => {
                let (r, c) = self::position(&e, row, col, name)?;
                row = r;
                col = Some(c);
            }
            Event::Start(e) if matches!(e.local_name().as_ref(), b"v" | b"t") && cell.is_some() => {
                in_value = true
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"v" | b"t" => in_value = false,
                b"c" => {
                    if let Some(c) = cell.take() {
                        let (row, col) = (c.row, c.col);
                        table.put(row, col, c.value(strings)?)?;
                    }
                }
                _ => {}
            },
            Event::Eof => return table.into_table(),
            other if in_value => {
                if let (Some(c), Some(text)) = (cell.as_mut(), text_of(&other, name)?) {
                    c.push(&text, table.most)?;
                }
            }
            _ => {}
        }
    }
}

/// The zero-based position of a `<c>` element: its `r` attribute, or the column after the
/// previous cell in the row.
fn position(e: &BytesStart<'_>, row: u32, col: Option<u32>, part: &str) -> Result<(u32, u32)> {
    let at = match attribute(e, b"r") {
        Some(r) => {
            parse_reference(&r).ok_or_else(|| unreadable(part, format!("{r:?} is not a cell reference")))?
        }
        None => (row, col.map_or(0, |c| c.saturating_add(1))),
    };
    if at.1 as usize >= MAX_COLUMNS {
        return Err(Error::invalid(
            "file",
            format!(
                "cell {} is beyond the first {MAX_COLUMNS} columns; remove it or the columns after the data",
                cell_name(at.0, at.1)
            ),
        ));
    }
    if at.0 as usize >= MAX_LINES {
        return Err(too_many_lines());
    }
    Ok(at)
}

/// `B12` as (row 11, column 1); `None` for anything else, or beyond the sheet's largest cell
/// (`XFD1048576`) by more than a sheet has.
fn parse_reference(r: &str) -> Option<(u32, u32)> {
    let split = r.find(|c: char| c.is_ascii_digit())?;
    let (letters, digits) = r.split_at(split);
    if letters.is_empty() || letters.len() > 3 || !letters.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let col = letters.bytes().fold(0u32, |acc, b| {
        acc * 26 + u32::from(b.to_ascii_uppercase() - b'A' + 1)
    });
    let row = digits.parse::<u32>().ok()?.checked_sub(1)?;
    Some((row, col - 1))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::cells::number_text;
    use super::*;

    const WORKBOOK: &str = r#"<?xml version="1.0"?><workbook xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="SIMs" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
    const RELS: &str = r#"<Relationships><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#;

    fn zip_of(parts: &[(&str, &str)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options =
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, xml) in parts {
            w.start_file(*name, options).unwrap();
            w.write_all(xml.as_bytes()).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    /// A workbook of one sheet with `cells` (the inside of `<sheetData>`) and `strings` as its
    /// shared-strings part.
    fn book(cells: &str, strings: &str) -> Vec<u8> {
        zip_of(&[
            ("xl/workbook.xml", WORKBOOK),
            ("xl/_rels/workbook.xml.rels", RELS),
            ("xl/sharedStrings.xml", strings),
            (
                "xl/worksheets/sheet1.xml",
                &format!("<worksheet><sheetData>{cells}</sheetData></worksheet>"),
            ),
        ])
    }

    fn strings(items: &[&str]) -> String {
        let si: String = items.iter().map(|s| format!("<si><t>{s}</t></si>")).collect();
        format!(r#"<sst count="{0}" uniqueCount="{0}">{si}</sst>"#, items.len())
    }

    /// Sets the uncompressed size `part` declares, in its local header and in the directory.
    fn declare_size(mut bytes: Vec<u8>, part: &str, size: u32) -> Vec<u8> {
        let name = part.as_bytes();
        let patch = |bytes: &mut Vec<u8>, signature: [u8; 4], name_at: usize, size_at: usize| {
            let at = (0..bytes.len() - name_at - name.len())
                .find(|&i| {
                    bytes[i..i + 4] == signature && &bytes[i + name_at..i + name_at + name.len()] == name
                })
                .unwrap();
            bytes[at + size_at..at + size_at + 4].copy_from_slice(&size.to_le_bytes());
        };
        patch(&mut bytes, [0x50, 0x4b, 0x03, 0x04], 30, 22);
        patch(&mut bytes, [0x50, 0x4b, 0x01, 0x02], 46, 24);
        bytes
    }

    fn error(bytes: &[u8], limits: Limits) -> String {
        read_xlsx_within(bytes, limits).unwrap_err().to_string()
    }

    #[test]
    fn shared_strings_inline_strings_numbers_and_booleans() {
        let cells = r#"<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>
            <row r="2"><c r="A2" t="inlineStr"><is><t>8949 &amp; co</t></is></c><c r="B2"><v>262011234567890</v></c><c r="C2" t="b"><v>1</v></c></row>
            <row><c t="str"><f>A1</f><v>x&#233;</v></c><c t="s"><v>2</v></c></row>"#;
        let ss = r#"<sst count="3"><si><t>iccid</t></si><si><r><t>im</t></r><r><t>si</t></r><rPh><t>ignored</t></rPh></si><si/></sst>"#;
        let t = read_xlsx(&book(cells, ss)).unwrap();
        assert_eq!(t.header, vec!["iccid", "imsi"]);
        assert_eq!(
            t.rows,
            vec![vec!["8949 & co", "262011234567890", "true"], vec!["xé"]],
            "the empty shared string leaves its cell out"
        );
    }

    /// A table that declares four billion strings holds two: nothing is reserved from the
    /// declaration (a reader that reserved it aborts the process).
    #[test]
    fn a_shared_strings_table_is_read_by_what_it_holds_not_by_its_count() {
        let ss = r#"<sst count="4294967295" uniqueCount="4294967295"><si><t>iccid</t></si><si><t>8949</t></si></sst>"#;
        let cells =
            r#"<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="2"><c r="A2" t="s"><v>1</v></c></row>"#;
        let t = read_xlsx(&book(cells, ss)).unwrap();
        assert_eq!(
            (t.header, t.rows),
            (vec!["iccid".to_owned()], vec![vec!["8949".to_owned()]])
        );
    }

    #[test]
    fn a_shared_strings_table_of_too_many_strings_is_refused() {
        let ss = format!("<sst>{}</sst>", "<si/>".repeat(1001));
        let limits = Limits {
            shared_strings: 1000,
            ..Limits::DEFAULT
        };
        let err = error(&book("", &ss), limits);
        assert!(err.contains("more than 1000 strings"), "{err}");
        assert!(
            read_xlsx_within(&book("", &format!("<sst>{}</sst>", "<si/>".repeat(1000))), limits)
                .is_err_and(|e| e.to_string().contains("empty"))
        );
    }

    #[test]
    fn a_cell_naming_a_string_the_table_does_not_have_is_refused_by_name() {
        let cells =
            r#"<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="7"><c r="C7" t="s"><v>99</v></c></row>"#;
        let err = read_xlsx(&book(cells, &strings(&["iccid"])))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cell C7") && err.contains("shared string \"99\""),
            "{err}"
        );
    }

    /// A part declaring four gigabytes holds a few hundred bytes: it is read by what it holds
    /// (a reader that sized a buffer from the declaration aborts the process).
    #[test]
    fn a_part_declaring_a_huge_size_is_read_by_what_it_holds() {
        let cells = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>iccid</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>8949</t></is></c></row>"#;
        let bytes = declare_size(
            book(cells, &strings(&[])),
            "xl/worksheets/sheet1.xml",
            u32::MAX - 1,
        );
        match read_xlsx(&bytes) {
            Ok(t) => assert_eq!(t.rows, vec![vec!["8949".to_owned()]]),
            Err(e) => assert!(e.to_string().contains("sheet1.xml cannot be read"), "{e}"),
        }
    }

    /// A part that inflates to more than it declares is read only as far as it declares.
    #[test]
    fn a_part_is_inflated_no_further_than_it_declares() {
        let cells: String = (1..=1000)
            .map(|r| format!(r#"<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>{r}</t></is></c></row>"#))
            .collect();
        let bytes = declare_size(book(&cells, &strings(&[])), "xl/worksheets/sheet1.xml", 400);
        match read_xlsx(&bytes) {
            Ok(t) => assert!(t.rows.len() < 10, "{} rows read from 400 bytes", t.rows.len()),
            Err(e) => assert!(e.to_string().contains("sheet1.xml cannot be read"), "{e}"),
        }
    }

    #[test]
    fn parts_inflating_past_the_budget_are_refused_naming_the_bound() {
        let ss = format!("<sst><si><t>{}</t></si></sst>", "x".repeat(3 << 20));
        let limits = Limits {
            strings_bytes: 2 << 20,
            ..Limits::DEFAULT
        };
        let err = error(&book("", &ss), limits);
        assert!(
            err.contains("its shared strings unpack to more than 2 MiB"),
            "{err}"
        );

        let cells = format!(
            r#"<row r="1"><c r="A1" t="inlineStr"><is><t>{}</t></is></c></row>"#,
            "y".repeat(3 << 20)
        );
        let limits = Limits {
            unpacked: 2 << 20,
            ..Limits::DEFAULT
        };
        let err = error(&book(&cells, &strings(&[])), limits);
        assert!(err.contains("all its parts unpack to more than 2 MiB"), "{err}");
    }

    /// One cell in the 64th column and one a million rows down: padded into a rectangle that
    /// is 64 million cells (1.5 GiB); kept sparse it is two cells and a list of empty rows.
    #[test]
    fn far_apart_cells_are_not_padded_into_a_rectangle() {
        let cells = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>iccid</t></is></c><c r="BL1" t="inlineStr"><is><t>wide</t></is></c></row><row r="999999"><c r="A999999" t="inlineStr"><is><t>8949</t></is></c></row>"#;
        let t = read_xlsx(&book(cells, &strings(&[]))).unwrap();
        assert_eq!(t.header.len(), 64);
        assert_eq!(t.rows.len(), 999_998);
        assert_eq!(
            t.rows.iter().map(Vec::len).sum::<usize>(),
            1,
            "only the far cell is kept"
        );
        assert_eq!(t.rows[999_997], vec!["8949"]);
    }

    /// One text of 5 MiB (a cell holds at most 32,767 characters): the parser would hold it
    /// whole; refused once the event passes its bound, whatever the part's own bound.
    #[test]
    fn one_huge_text_is_refused_before_it_is_held_whole() {
        let cells = format!(
            r#"<row r="1"><c r="A1" t="inlineStr"><is><t>{}</t></is></c></row>"#,
            "y".repeat(5 << 20)
        );
        let err = error(&book(&cells, &strings(&[])), Limits::DEFAULT);
        assert!(
            err.contains("holds an XML element or text of more than 4 MiB (in xl/worksheets/sheet1.xml)"),
            "{err}"
        );
    }

    #[test]
    fn a_sheet_of_too_much_text_is_refused() {
        let cells: String = (1..=100)
            .map(|r| format!(r#"<row r="{r}"><c r="A{r}" t="s"><v>0</v></c></row>"#))
            .collect();
        let limits = Limits {
            table_bytes: 1 << 20,
            ..Limits::DEFAULT
        };
        // One 20 kB shared string named by a hundred cells: two megabytes of cells.
        let err = error(&book(&cells, &strings(&[&"z".repeat(20_000)])), limits);
        assert!(err.contains("more than 1 MiB of cells"), "{err}");
    }

    #[test]
    fn a_directory_declaring_too_many_entries_is_refused_before_it_is_read() {
        let bytes = book("", &strings(&[]));
        let eocd = bytes
            .windows(4)
            .rposition(|w| w == [0x50, 0x4b, 0x05, 0x06])
            .unwrap();
        // A zip64 record and locator before the end record, declaring 2^40 entries.
        let mut zip64 = Vec::new();
        zip64.extend([0x50, 0x4b, 0x06, 0x06]);
        zip64.extend(44u64.to_le_bytes());
        zip64.extend([45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        zip64.extend((1u64 << 40).to_le_bytes());
        zip64.extend((1u64 << 40).to_le_bytes());
        zip64.extend([0; 16]);
        let mut locator = vec![0x50, 0x4b, 0x06, 0x07, 0, 0, 0, 0];
        locator.extend((eocd as u64).to_le_bytes());
        locator.extend(1u32.to_le_bytes());
        let lying = [&bytes[..eocd], &zip64, &locator, &bytes[eocd..]].concat();
        let err = read_xlsx(&lying).unwrap_err().to_string();
        assert!(err.contains("declares 1099511627776 entries"), "{err}");
    }

    #[test]
    fn references() {
        assert_eq!(parse_reference("A1"), Some((0, 0)));
        assert_eq!(parse_reference("b12"), Some((11, 1)));
        assert_eq!(parse_reference("XFD1048576"), Some((1_048_575, 16_383)));
        assert_eq!(parse_reference("A0"), None);
        assert_eq!(parse_reference("ABCD1"), None);
        assert_eq!(parse_reference("1A"), None);
        assert_eq!(parse_reference("A99999999999"), None);
    }

    #[test]
    fn targets() {
        assert_eq!(
            resolve_target("worksheets/sheet1.xml"),
            "xl/worksheets/sheet1.xml"
        );
        assert_eq!(resolve_target("/xl/worksheets/s.xml"), "xl/worksheets/s.xml");
        assert_eq!(
            resolve_target("../xl/./sharedStrings.xml"),
            "xl/sharedStrings.xml"
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(number_text("262011234567890".into()), "262011234567890");
        assert_eq!(number_text("1.5".into()), "1.5");
        assert_eq!(
            number_text("8.9490000000000002E+19".into()),
            "89490000000000000000"
        );
        assert_eq!(number_text("x".into()), "x");
    }
}
