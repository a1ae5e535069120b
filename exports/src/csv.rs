//! CSV files (RFC 4180).
//!
//! What a file guarantees:
//! - UTF-8 without a byte order mark, comma separated, every record ended by CRLF;
//! - a header row of the column names, then one record per row with every column;
//! - fields quoted only when they need it (a comma, a quote, CR or LF inside), quotes doubled;
//! - text neutralised against formula injection ([`crate::neutralise`]): text beginning with
//!   `=`, `+`, `-`, `@`, tab, CR or NUL gets a leading `'`;
//! - numbers exact and never neutralised: integers as digits, decimals and money from their
//!   unscaled value with exactly `scale` fraction digits (`-0.005`), no thousands separators
//!   and no currency (the column name says it);
//! - timestamps RFC 3339 in UTC (`2026-11-23T10:00:00Z`, microseconds only when there are any),
//!   dates `YYYY-MM-DD`, booleans `true`/`false`;
//! - an empty field for a missing value.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use ioto_domain::export::{ColumnValues, ExportBatch, ExportColumn};
use ioto_domain::{Error, Result};

use crate::values::{push_date, push_decimal, push_timestamp, scale_of};
use crate::{io_error, neutralise, sync_and_size, BatchWriter};

/// Counts the bytes that pass through to the file.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes an export as CSV (see the module's documentation).
pub(crate) struct CsvWriter {
    out: ::csv::Writer<Counting<BufWriter<File>>>,
    columns: Vec<ExportColumn>,
    path: PathBuf,
    /// The text of the field being written, reused from field to field.
    field: String,
}

impl CsvWriter {
    /// Creates (or truncates) the file at `path` and writes the header row.
    pub(crate) fn create(columns: &[ExportColumn], path: &Path) -> Result<Self> {
        let file = File::create(path).map_err(|e| io_error("creating", path, e))?;
        let out = ::csv::WriterBuilder::new()
            .delimiter(b',')
            .terminator(::csv::Terminator::CRLF)
            .quote_style(::csv::QuoteStyle::Necessary)
            .double_quote(true)
            .has_headers(false)
            .from_writer(Counting {
                inner: BufWriter::new(file),
                bytes: 0,
            });
        let mut writer = Self {
            out,
            columns: columns.to_vec(),
            path: path.to_path_buf(),
            field: String::new(),
        };
        writer
            .out
            .write_record(columns.iter().map(|c| c.name.as_bytes()))
            .map_err(|e| writer.error(e))?;
        Ok(writer)
    }

    fn error(&self, e: impl std::fmt::Display) -> Error {
        io_error("writing CSV to", &self.path, e)
    }
}

/// The text of field `row` of `values`, the values of `column`; numbers are written into
/// `scratch` (reused from field to field) and borrowed from it.
fn field_text<'a>(
    scratch: &'a mut String,
    column: &ExportColumn,
    values: &'a ColumnValues,
    row: usize,
) -> Result<Cow<'a, str>> {
    scratch.clear();
    let out_of_range = |what: &str, value: &dyn std::fmt::Display| {
        Error::invalid(column.name.as_str(), format!("{what} {value} is out of range"))
    };
    match values {
        ColumnValues::Text(v) => {
            return Ok(v
                .get(row)
                .and_then(Option::as_deref)
                .map_or(Cow::Borrowed(""), neutralise));
        }
        ColumnValues::Int(v) => {
            if let Some(Some(n)) = v.get(row) {
                // Writing into a String cannot fail.
                let _ = write!(scratch, "{n}");
            }
        }
        ColumnValues::Decimal(v) => {
            if let Some(Some(n)) = v.get(row) {
                push_decimal(scratch, *n, scale_of(&column.ty));
            }
        }
        ColumnValues::Timestamp(v) => {
            if let Some(Some(micros)) = v.get(row) {
                if !push_timestamp(scratch, *micros) {
                    return Err(out_of_range("timestamp", micros));
                }
            }
        }
        ColumnValues::Date(v) => {
            if let Some(Some(days)) = v.get(row) {
                if !push_date(scratch, *days) {
                    return Err(out_of_range("date", days));
                }
            }
        }
        ColumnValues::Bool(v) => {
            return Ok(Cow::Borrowed(match v.get(row) {
                Some(Some(true)) => "true",
                Some(Some(false)) => "false",
                _ => "",
            }));
        }
    }
    Ok(Cow::Borrowed(scratch.as_str()))
}

impl BatchWriter for CsvWriter {
    fn write(&mut self, batch: &ExportBatch) -> Result<()> {
        batch.check(&self.columns)?;
        for row in 0..batch.rows() {
            for (values, column) in batch.columns.iter().zip(&self.columns) {
                let text = field_text(&mut self.field, column, values, row)?;
                self.out
                    .write_field(text.as_bytes())
                    .map_err(|e| io_error("writing CSV to", &self.path, e))?;
            }
            // Ends the record (CRLF).
            self.out
                .write_record(None::<&[u8]>)
                .map_err(|e| io_error("writing CSV to", &self.path, e))?;
        }
        // Hands the batch to the file, so the byte count is current.
        self.out.flush().map_err(|e| self.error(e))
    }

    fn bytes_written(&self) -> u64 {
        self.out.get_ref().bytes
    }

    fn finish(mut self: Box<Self>) -> Result<u64> {
        self.out.flush().map_err(|e| self.error(e))?;
        let path = self.path;
        let counting = self
            .out
            .into_inner()
            .map_err(|e| io_error("writing CSV to", &path, e.error()))?;
        let file = counting
            .inner
            .into_inner()
            .map_err(|e| io_error("writing CSV to", &path, e.error()))?;
        sync_and_size(&file, &path)
    }
}

#[cfg(test)]
mod tests {
    use ioto_domain::export::{ColumnType, ColumnValues, ExportColumn};

    use super::*;
    use crate::test_support::{columns, meta, TempDir, AT};
    use crate::{open_writer, ExportFormat, WriterOptions};

    /// One row: the values of each column, in order.
    struct Row<'a>(
        Option<&'a str>,
        Option<i64>,
        Option<i128>,
        Option<i128>,
        Option<i64>,
        Option<i32>,
        Option<bool>,
    );

    fn batch(rows: &[Row<'_>]) -> ExportBatch {
        let columns = columns();
        let mut b = ExportBatch::new(&columns, rows.len());
        for Row(text, int, ratio, cost, ts, day, flag) in rows {
            b.push_text(0, text.map(str::to_owned));
            b.push_int(1, *int);
            b.push_decimal(2, *ratio);
            b.push_decimal(3, *cost);
            if let ColumnValues::Timestamp(v) = &mut b.columns[4] {
                v.push(*ts);
            }
            if let ColumnValues::Date(v) = &mut b.columns[5] {
                v.push(*day);
            }
            b.push_bool(6, *flag);
        }
        b
    }

    #[test]
    fn csv_round_trips_every_type_quoted_and_neutralised() {
        let dir = TempDir::new();
        let path = dir.path().join("export.csv");
        let mut w = open_writer(
            ExportFormat::Csv,
            &columns(),
            &meta(),
            &path,
            &WriterOptions::default(),
        )
        .unwrap();
        let rows = [
            Row(
                Some("say \"hi\", then go"),
                Some(-42),
                Some(-5),
                Some(-1250),
                Some(AT),
                Some(20_780),
                Some(true),
            ),
            Row(
                Some("line one\r\nline two\nthree"),
                Some(0),
                Some(1234),
                Some(0),
                Some(AT + 123_456),
                Some(0),
                Some(false),
            ),
            Row(
                Some("Zürich — 東京"),
                Some(i64::MAX),
                Some(0),
                Some(-99),
                Some(-1),
                Some(-1),
                None,
            ),
            Row(
                Some("=SUM(A1)"),
                Some(i64::MIN),
                None,
                Some(123_456_789),
                None,
                None,
                Some(true),
            ),
            Row(Some("+1"), None, Some(7), None, Some(AT), Some(20_780), None),
            Row(Some("-2"), Some(7), None, None, None, None, None),
            Row(Some("@x"), None, None, None, None, None, None),
            Row(Some("\tx"), None, None, None, None, None, None),
            Row(Some("\rx"), None, None, None, None, None, None),
            Row(None, None, None, None, None, None, None),
        ];
        // Two batches: the second continues the file.
        w.write(&batch(&rows[..4])).unwrap();
        let after_first = w.bytes_written();
        assert!(after_first > 0);
        w.write(&batch(&rows[4..])).unwrap();
        assert!(w.bytes_written() > after_first);
        let size = w.finish().unwrap();

        let raw = std::fs::read(&path).unwrap();
        assert_eq!(size, raw.len() as u64, "finish returns the file's size");
        assert!(!raw.starts_with(&[0xEF, 0xBB, 0xBF]), "no byte order mark");
        let text = String::from_utf8(raw.clone()).unwrap();
        assert!(
            text.starts_with("name,bytes,ratio,cost,seen_at,day,active\r\n"),
            "{text}"
        );
        assert!(
            text.ends_with(",,,,,,\r\n"),
            "the last record ends with CRLF: {text:?}"
        );
        // Every record ends with CRLF: no bare LF outside quoted fields (the one quoted field
        // holding LFs is removed first).
        let without_quoted = text.replace("\"line one\r\nline two\nthree\"", "");
        assert!(
            !without_quoted.replace("\r\n", "").contains('\n'),
            "{without_quoted:?}"
        );
        assert_eq!(
            without_quoted.matches("\r\n").count(),
            11,
            "header and 10 records"
        );
        assert!(
            text.contains("\"say \"\"hi\"\", then go\""),
            "quotes doubled inside quotes: {text}"
        );

        let mut reader = ::csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(raw.as_slice());
        let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
        assert_eq!(
            header,
            ["name", "bytes", "ratio", "cost", "seen_at", "day", "active"]
        );
        let records: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect();
        let expected: [[&str; 7]; 10] = [
            [
                "say \"hi\", then go",
                "-42",
                "-0.005",
                "-12.50",
                "2026-11-23T10:00:00Z",
                "2026-11-23",
                "true",
            ],
            [
                "line one\r\nline two\nthree",
                "0",
                "1.234",
                "0.00",
                "2026-11-23T10:00:00.123456Z",
                "1970-01-01",
                "false",
            ],
            [
                "Zürich — 東京",
                "9223372036854775807",
                "0.000",
                "-0.99",
                "1969-12-31T23:59:59.999999Z",
                "1969-12-31",
                "",
            ],
            [
                "'=SUM(A1)",
                "-9223372036854775808",
                "",
                "1234567.89",
                "",
                "",
                "true",
            ],
            ["'+1", "", "0.007", "", "2026-11-23T10:00:00Z", "2026-11-23", ""],
            ["'-2", "7", "", "", "", "", ""],
            ["'@x", "", "", "", "", "", ""],
            ["'\tx", "", "", "", "", "", ""],
            ["'\rx", "", "", "", "", "", ""],
            ["", "", "", "", "", "", ""],
        ];
        assert_eq!(records.len(), expected.len());
        for (i, (got, want)) in records.iter().zip(&expected).enumerate() {
            assert_eq!(got, want, "record {i}");
        }
    }

    #[test]
    fn csv_of_no_rows_is_the_header_alone_and_a_bad_date_names_its_column() {
        let dir = TempDir::new();
        let path = dir.path().join("empty.csv");
        let w = open_writer(
            ExportFormat::Csv,
            &columns(),
            &meta(),
            &path,
            &WriterOptions::default(),
        )
        .unwrap();
        let size = w.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "name,bytes,ratio,cost,seen_at,day,active\r\n");
        assert_eq!(size, text.len() as u64);

        // A record of one empty field is `""`, not a blank line a reader would skip.
        let path = dir.path().join("one.csv");
        let one = [ExportColumn::new("note", ColumnType::Text)];
        let mut w = open_writer(ExportFormat::Csv, &one, &meta(), &path, &WriterOptions::default()).unwrap();
        let b = ExportBatch {
            columns: vec![ColumnValues::Text(vec![None, Some("x".into())])],
        };
        w.write(&b).unwrap();
        w.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "note\r\n\"\"\r\nx\r\n");

        let path = dir.path().join("bad.csv");
        let mut w = open_writer(
            ExportFormat::Csv,
            &columns(),
            &meta(),
            &path,
            &WriterOptions::default(),
        )
        .unwrap();
        let err = w
            .write(&batch(&[Row(None, None, None, None, None, Some(i32::MAX), None)]))
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput { field, .. } if field == "day"),
            "{err:?}"
        );
    }
}
