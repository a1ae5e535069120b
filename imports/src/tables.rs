//! Reading uploaded tables (CSV, XLSX) into rows of text cells.

use ioto_domain::fleet::import::{Table, TableFormat, MAX_IMPORT_ROWS};
use ioto_domain::parallel::in_parallel;
use ioto_domain::ports::TableReader;
use ioto_domain::{Error, Result};

/// Reads CSV (comma or semicolon separated, UTF-8) and the first sheet of XLSX workbooks.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableFiles;

impl TableReader for TableFiles {
    fn read(&self, bytes: &[u8], format: TableFormat) -> Result<Table> {
        TableFilesOn(ioto_domain::parallel::cores()).read(bytes, format)
    }
}

/// [`TableFiles`] reading a large CSV on at most this many threads (1: the calling one alone).
#[derive(Debug, Clone, Copy)]
pub struct TableFilesOn(pub usize);

impl TableReader for TableFilesOn {
    fn read(&self, bytes: &[u8], format: TableFormat) -> Result<Table> {
        match format {
            TableFormat::Csv => read_csv(bytes, self.0),
            TableFormat::Xlsx => crate::xlsx::read_xlsx(bytes),
        }
    }
}

/// Most columns a table may have: an inventory file has nine, so 64 leaves room for extra
/// columns a spreadsheet carries along while refusing a file that would inflate into millions.
pub const MAX_COLUMNS: usize = 64;
/// Most lines a table may have: the header and [`MAX_IMPORT_ROWS`] rows.
pub const MAX_LINES: usize = MAX_IMPORT_ROWS + 1;
pub(crate) fn split_header(mut rows: Vec<Vec<String>>) -> Result<Table> {
    if rows.is_empty() {
        return Err(Error::invalid(
            "file",
            "is empty; the first line must name the columns",
        ));
    }
    let header = rows.remove(0);
    Ok(Table { header, rows })
}

pub(crate) fn too_many_lines() -> Error {
    Error::invalid(
        "file",
        format!("has more than {MAX_IMPORT_ROWS} rows after the header; split it into several files"),
    )
}

/// Checks, before parsing, that no record of `text` has more than [`MAX_COLUMNS`] fields
/// (delimiters inside quotes do not count), so a line of millions of empty fields is refused
/// without being expanded into millions of strings.
fn check_columns(text: &[u8], delimiter: u8) -> Result<()> {
    let (mut quoted, mut fields, mut line) = (false, 1usize, 1usize);
    for &b in text {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => {
                fields = 1;
                line += 1;
            }
            b'\n' => line += 1,
            _ if b == delimiter && !quoted => {
                fields += 1;
                if fields > MAX_COLUMNS {
                    return Err(Error::invalid(
                        "file",
                        format!("line {line}: has more than {MAX_COLUMNS} fields; at most {MAX_COLUMNS} columns are read"),
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn read_csv(bytes: &[u8], threads: usize) -> Result<Table> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::invalid("file", format!("is not UTF-8 text (byte {})", e.valid_up_to())))?;
    let first_line = text.lines().next().unwrap_or("");
    let delimiter = if first_line.matches(';').count() > first_line.matches(',').count() {
        b';'
    } else {
        b','
    };
    check_columns(text.as_bytes(), delimiter)?;
    split_header(read_records_on(text, delimiter, threads)?)
}

/// Files smaller than this are read on one thread.
const SPLIT_MIN_BYTES: usize = 1 << 20;

/// The records of `text`, read on up to `threads` threads. A file without quotes (no field
/// spans lines, so every line break ends a record) and with no more lines than an import takes
/// is cut at line breaks into one piece per thread; any other file is read from start to end.
/// Both give the same records and the same errors.
fn read_records_on(text: &str, delimiter: u8, threads: usize) -> Result<Vec<Vec<String>>> {
    let bytes = text.as_bytes();
    if threads < 2
        || bytes.len() < SPLIT_MIN_BYTES
        || bytes.contains(&b'"')
        || bytes.iter().filter(|b| **b == b'\n').count() > MAX_LINES + 1
    {
        return read_records(text, delimiter);
    }
    let mut pieces = Vec::with_capacity(threads);
    let mut start = 0;
    for k in 1..threads {
        let at = (bytes.len() * k / threads).max(start);
        let end = bytes[at..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(bytes.len(), |p| at + p + 1);
        pieces.push(&text[start..end]);
        start = end;
    }
    pieces.push(&text[start..]);
    // The reader drops a byte-order mark at the start of what it reads: only the file's own.
    if pieces[1..].iter().any(|p| p.starts_with('\u{feff}')) {
        return read_records(text, delimiter);
    }
    // On an error, read again from the start, so the error names its line as it always does.
    let Ok(read) = in_parallel("reading the file", pieces, |piece| read_records(piece, delimiter)) else {
        return read_records(text, delimiter);
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    for mut records in read {
        rows.append(&mut records);
        if rows.len() > MAX_LINES {
            return Err(too_many_lines());
        }
    }
    Ok(rows)
}

/// The records of `text` from start to end, at most [`MAX_LINES`].
fn read_records(text: &str, delimiter: u8) -> Result<Vec<Vec<String>>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let read = reader.read_record(&mut record);
        if !matches!(read, Ok(false)) && rows.len() >= MAX_LINES {
            return Err(too_many_lines());
        }
        match read {
            Ok(false) => return Ok(rows),
            Ok(true) => rows.push(record.iter().map(str::to_owned).collect()),
            Err(e) => return Err(Error::invalid("file", format!("line {}: {e}", rows.len() + 1))),
        }
    }
}

/// The spreadsheet name of a cell (`A1`, `XFD1048576`) from its zero-based position.
pub(crate) fn cell_name(row: u32, col: u32) -> String {
    let mut letters = Vec::new();
    let mut c = col + 1;
    while c > 0 {
        let rem = (c - 1) % 26;
        letters.push(b'A' + rem as u8);
        c = (c - 1) / 26;
    }
    letters.reverse();
    format!("{}{}", String::from_utf8_lossy(&letters), row + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_either_delimiter() {
        let t = TableFiles.read(b"iccid,imsi\n1,2\n", TableFormat::Csv).unwrap();
        assert_eq!(t.header, vec!["iccid", "imsi"]);
        assert_eq!(t.rows, vec![vec!["1", "2"]]);
        let t = TableFiles.read(b"iccid;imsi\n1;2\n", TableFormat::Csv).unwrap();
        assert_eq!(t.rows, vec![vec!["1", "2"]]);
        assert!(TableFiles.read(b"", TableFormat::Csv).is_err());
        assert!(TableFiles
            .read(&[0xff, 0xfe], TableFormat::Csv)
            .unwrap_err()
            .to_string()
            .contains("UTF-8"));
    }

    #[test]
    fn a_large_csv_read_in_pieces_gives_the_records_read_from_start_to_end() {
        // Over the size read on one thread, with what a cut at a line break must not change:
        // CRLF and LF endings, empty lines, short and long rows, a trailing delimiter, a last
        // line without a line break, and non-ASCII text.
        let mut text = String::from("\u{feff}iccid;imsi;labels\r\n");
        let mut n = 0;
        while text.len() < 3 * SPLIT_MIN_BYTES {
            let row = match n % 7 {
                0 => format!("8949{n:016};26201{n:010};site=köln\r\n"),
                1 => "\n".to_owned(),
                2 => format!("8949{n:016};26201{n:010}\n"),
                3 => format!("8949{n:016};;;\n"),
                4 => format!(" 8949{n:016} ; 26201{n:010} ;site=a;b=c\n"),
                5 => "\r\n".to_owned(),
                _ => format!("8949{n:016};26201{n:010};x=1\n"),
            };
            text.push_str(&row);
            n += 1;
        }
        text.push_str("last;row");
        let whole = read_records(&text, b';').unwrap();
        for threads in [2, 3, 8] {
            assert_eq!(
                read_records_on(&text, b';', threads).unwrap(),
                whole,
                "{threads} threads"
            );
        }
        assert_eq!(whole.last().unwrap(), &vec!["last".to_owned(), "row".to_owned()]);
        // Through the reader, the header comes off the first piece.
        let t = TableFiles.read(text.as_bytes(), TableFormat::Csv).unwrap();
        assert_eq!(
            t.header,
            vec!["iccid", "imsi", "labels"],
            "the byte-order mark is not part of the name"
        );
        assert_eq!(t.rows.len(), whole.len() - 1);
        // A file with quotes is read from start to end: a quoted field may span lines (here
        // every record has one, so any cut at a line break would split a record).
        let mut quoted = String::from("iccid;note\n");
        while quoted.len() < 3 * SPLIT_MIN_BYTES {
            quoted.push_str("8949000000000000001;\"first line\nsecond; line\"\n");
        }
        for threads in [2, 3, 8] {
            let records = read_records_on(&quoted, b';', threads).unwrap();
            assert_eq!(records.len(), quoted.matches("first line").count() + 1);
            assert!(records[1..]
                .iter()
                .all(|r| r.len() == 2 && r[1] == "first line\nsecond; line"));
        }
        // A line starting with a byte-order mark keeps it wherever the file is cut (here every
        // line starts with one).
        let marked = text.replace('\n', "\n\u{feff}");
        for threads in [2, 3, 8] {
            let records = read_records_on(&marked, b';', threads).unwrap();
            assert_eq!(records, read_records(&marked, b';').unwrap());
            assert!(records[1..].iter().all(|r| r[0].starts_with('\u{feff}')));
        }
    }

    #[test]
    fn xlsx_text_and_numbers() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.write_string(0, 0, "iccid").unwrap();
        sheet.write_string(0, 1, "imsi").unwrap();
        sheet.write_string(1, 0, "89490000000000000017").unwrap();
        sheet.write_number(1, 1, 262011234567890.0).unwrap();
        let bytes = book.save_to_buffer().unwrap();
        let t = TableFiles.read(&bytes, TableFormat::Xlsx).unwrap();
        assert_eq!(t.header, vec!["iccid", "imsi"]);
        assert_eq!(t.rows, vec![vec!["89490000000000000017", "262011234567890"]]);
        assert!(TableFiles.read(b"not a zip", TableFormat::Xlsx).is_err());
    }

    #[test]
    fn xlsx_starts_at_its_first_used_cell() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.write_string(2, 1, "iccid").unwrap();
        sheet.write_string(3, 1, "8949").unwrap();
        sheet.write_string(5, 2, "x").unwrap();
        let t = TableFiles
            .read(&book.save_to_buffer().unwrap(), TableFormat::Xlsx)
            .unwrap();
        // Rows keep their cells where they are and are as long as their last cell (never padded
        // into the rectangle between the first and last cell).
        assert_eq!(t.header, vec!["iccid"]);
        assert_eq!(t.rows, vec![vec!["8949"], vec![], vec!["", "x"]]);
    }

    /// One cell in A1 and one in XFD1048576: read as a rectangle this is 17 billion cells and
    /// the process aborts; here it is refused naming the far cell, reading two cells.
    #[test]
    fn a_far_away_cell_is_refused_by_name() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.write_string(0, 0, "iccid").unwrap();
        sheet.write_string(1_048_575, 16_383, "far").unwrap();
        let err = TableFiles
            .read(&book.save_to_buffer().unwrap(), TableFormat::Xlsx)
            .unwrap_err()
            .to_string();
        assert!(err.contains("XFD1048576") && err.contains("64 columns"), "{err}");

        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.write_string(0, 0, "iccid").unwrap();
        sheet.write_string(1_048_575, 0, "far").unwrap();
        let err = TableFiles
            .read(&book.save_to_buffer().unwrap(), TableFormat::Xlsx)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than 1000000 rows"), "{err}");
    }

    #[test]
    fn cell_names() {
        assert_eq!(cell_name(0, 0), "A1");
        assert_eq!(cell_name(9, 25), "Z10");
        assert_eq!(cell_name(0, 26), "AA1");
        assert_eq!(cell_name(1_048_575, 16_383), "XFD1048576");
    }

    /// Tens of MiB of empty fields would become gigabytes of strings; the record is refused
    /// before parsing, naming its line. Delimiters inside quotes are text, not fields.
    #[test]
    fn a_csv_line_of_endless_fields_is_refused_before_parsing() {
        let mut bomb = b"iccid,imsi\n".to_vec();
        bomb.extend(std::iter::repeat_n(b',', 20 << 20));
        let err = TableFiles.read(&bomb, TableFormat::Csv).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("64"), "{err}");

        let quoted = format!("iccid,note\n1,\"{}\"\n", ",".repeat(1000));
        let t = TableFiles.read(quoted.as_bytes(), TableFormat::Csv).unwrap();
        assert_eq!(t.rows[0][1].len(), 1000);
    }

    #[test]
    fn a_csv_of_too_many_rows_is_refused() {
        let many = "i\n".repeat(MAX_LINES + 1);
        let err = TableFiles
            .read(many.as_bytes(), TableFormat::Csv)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than 1000000 rows"), "{err}");
    }
}
