//! XLSX workbooks (Excel), written in constant memory.
//!
//! What a file guarantees:
//! - worksheets `Data`, `Data 2`, `Data 3`, …: a sheet holds at most
//!   [`WriterOptions::xlsx_max_rows_per_sheet`] rows (Excel's 1,048,576 by default) including its
//!   header row, and every sheet starts with the header row again;
//! - the header row bold on a light fill, frozen so it stays in view while scrolling, with an
//!   autofilter over the sheet's rows; column widths set from the column names and types;
//! - typed cells: integers, decimals and money are numbers (decimals with `scale` decimals,
//!   `#,##0.00`; money with its currency, `#,##0.00 "EUR"`), timestamps are date-times
//!   (`yyyy-mm-dd hh:mm:ss`, UTC), dates are dates (`yyyy-mm-dd`), booleans are booleans, a
//!   missing value is an empty cell;
//! - text neutralised against formula injection ([`crate::neutralise`]) and cut to Excel's
//!   32,767 characters per cell: longer text keeps its beginning and ends with `…[truncated]`;
//! - document properties: the title is the export's kind, the subject and comment name the
//!   filter and the schema version, custom properties hold kind, schema version, tenant and
//!   creation time.
//!
//! Limits of the format, not of the writer: a cell is a double, so integers beyond 2^53 and
//! decimals beyond 15 significant digits are rounded in the cell (CSV and Parquet keep them
//! exact); timestamps keep microseconds only as far as a double resolves them (about a
//! microsecond for current dates). Timestamps and dates outside Excel's years 1900–9999 are
//! written as their text (RFC 3339, `YYYY-MM-DD`).
//!
//! Rows go to a temporary file per sheet, next to the output file; the workbook is assembled
//! into the output file by [`BatchWriter::finish`], so [`BatchWriter::bytes_written`] is 0
//! until then.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{Datelike as _, Timelike as _};
use ioto_domain::export::{
    ColumnType, ColumnValues, ExportBatch, ExportColumn, ExportMeta, EXPORT_SCHEMA_VERSION,
};
use ioto_domain::{Error, Result};
use rust_xlsxwriter::{
    ColNum, Color, DocProperties, ExcelDateTime, Format, FormatBorder, RowNum, Workbook, Worksheet, XlsxError,
};

use crate::values::{date_text, decimal_f64, timestamp_text};
use crate::{
    io_error, neutralise, sync_and_size, BatchWriter, WriterOptions, XLSX_MAX_COLUMNS, XLSX_MAX_ROWS,
};

/// Excel's limit of characters in a cell. Excel counts UTF-16 code units; `rust_xlsxwriter`
/// checks Unicode characters (never more than the code units), so text within this many code
/// units passes both.
pub(crate) const MAX_CELL_CHARS: usize = 32_767;

/// The end of a text cut to fit a cell.
pub(crate) const TRUNCATED: &str = "…[truncated]";

/// Microseconds in a day, for the fraction of an Excel date-time.
const MICROS_PER_DAY: f64 = 86_400_000_000.0;

/// Names of the worksheets: `Data`, then `Data 2`, `Data 3`, …
fn sheet_name(number: usize) -> String {
    if number <= 1 {
        "Data".to_owned()
    } else {
        format!("Data {number}")
    }
}

/// Text as it fits a cell: whole when within [`MAX_CELL_CHARS`] UTF-16 code units, else its
/// beginning and [`TRUNCATED`], within the limit.
pub(crate) fn fit_cell(text: &str) -> Cow<'_, str> {
    // A UTF-8 byte count is never below the UTF-16 code unit count.
    if text.len() <= MAX_CELL_CHARS || text.encode_utf16().count() <= MAX_CELL_CHARS {
        return Cow::Borrowed(text);
    }
    let budget = MAX_CELL_CHARS - TRUNCATED.encode_utf16().count();
    let mut units = 0;
    let mut end = 0;
    for (i, ch) in text.char_indices() {
        units += ch.len_utf16();
        if units > budget {
            break;
        }
        end = i + ch.len_utf8();
    }
    Cow::Owned(format!("{}{TRUNCATED}", &text[..end]))
}

/// An Excel date-time of a timestamp (microseconds since the epoch, UTC); `None` outside
/// Excel's years 1900–9999.
pub(crate) fn excel_datetime(micros: i64) -> Option<ExcelDateTime> {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let whole = ExcelDateTime::from_timestamp(seconds).ok()?;
    if fraction == 0 {
        return Some(whole);
    }
    ExcelDateTime::from_serial_datetime(whole.to_excel() + fraction as f64 / MICROS_PER_DAY).ok()
}

/// An Excel date of a day (days since the epoch); `None` outside Excel's years 1900–9999.
pub(crate) fn excel_date(days: i32) -> Option<ExcelDateTime> {
    ExcelDateTime::from_timestamp(i64::from(days) * 86_400).ok()
}

/// The number format of `scale` decimals with thousands separators: `#,##0`, `#,##0.00`, …
fn decimal_format(scale: u8) -> String {
    let mut format = "#,##0".to_owned();
    if scale > 0 {
        format.push('.');
        format.extend(std::iter::repeat_n('0', usize::from(scale)));
    }
    format
}

/// How the cells of a column are formatted.
fn cell_format(ty: &ColumnType) -> Option<Format> {
    match ty {
        ColumnType::Text | ColumnType::Int | ColumnType::Bool => None,
        ColumnType::Decimal { scale } => Some(Format::new().set_num_format(decimal_format(*scale))),
        ColumnType::Money { scale, currency } => {
            // Shown in the currency's minor units (ISO 4217: 2 for EUR, 0 for JPY); the cell
            // keeps the whole value.
            let shown = currency
                .as_deref()
                .and_then(|c| ioto_domain::billing::money::Currency::parse("currency", c).ok())
                .map_or(*scale, |c| u8::try_from(c.minor_units()).unwrap_or(*scale));
            let mut format = decimal_format(shown);
            if let Some(currency) = currency {
                // Quoted literal text in the number format; a quote cannot be in it.
                let currency: String = currency.chars().filter(|c| *c != '"' && *c != '\\').collect();
                if !currency.is_empty() {
                    format.push_str(&format!(" \"{currency}\""));
                }
            }
            Some(Format::new().set_num_format(format))
        }
        ColumnType::Timestamp => Some(Format::new().set_num_format("yyyy-mm-dd hh:mm:ss")),
        ColumnType::Date => Some(Format::new().set_num_format("yyyy-mm-dd")),
    }
}

/// The width of a column, in characters: room for its name and its usual values.
fn column_width(column: &ExportColumn) -> f64 {
    let values = match &column.ty {
        ColumnType::Text => 24,
        ColumnType::Int => 14,
        ColumnType::Decimal { scale } => 14 + usize::from(*scale).min(10),
        ColumnType::Money { scale, currency } => {
            14 + usize::from(*scale).min(10) + currency.as_ref().map_or(0, |c| c.chars().count() + 1)
        }
        ColumnType::Timestamp => 20,
        ColumnType::Date => 12,
        ColumnType::Bool => 8,
    };
    // The header is bold and has the autofilter's button beside it.
    let header = column.name.chars().count() + 4;
    values.max(header).min(60) as f64
}

/// Writes an export as XLSX (see the module's documentation).
pub(crate) struct XlsxWriter {
    workbook: Workbook,
    /// The output file, created when the writer is opened; the workbook is saved into it.
    file: File,
    path: PathBuf,
    columns: Vec<ExportColumn>,
    /// The format of each column's cells.
    formats: Vec<Option<Format>>,
    header: Format,
    max_rows: RowNum,
    /// The rows of each sheet so far, its header included; the last is the sheet being written.
    sheet_rows: Vec<RowNum>,
}

fn xlsx_error(path: &Path, e: XlsxError) -> Error {
    io_error("writing XLSX", path, e)
}

impl XlsxWriter {
    /// Creates (or truncates) the file at `path` and starts the first sheet.
    pub(crate) fn create(
        columns: &[ExportColumn],
        meta: &ExportMeta,
        path: &Path,
        options: &WriterOptions,
    ) -> Result<Self> {
        if options.xlsx_max_rows_per_sheet < 2 {
            return Err(Error::invalid(
                "xlsx_max_rows_per_sheet",
                "a sheet needs room for the header and at least one row",
            ));
        }
        if columns.len() > XLSX_MAX_COLUMNS {
            return Err(Error::invalid(
                "columns",
                format!(
                    "{} columns do not fit an XLSX sheet (at most {XLSX_MAX_COLUMNS})",
                    columns.len()
                ),
            ));
        }
        let file = File::create(path).map_err(|e| io_error("creating", path, e))?;
        let mut workbook = Workbook::new();
        // Sheets' rows wait in temporary files beside the output, on the same disk.
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        workbook.set_tempdir(dir).map_err(|e| xlsx_error(path, e))?;
        workbook.set_properties(&properties(meta));
        let mut writer = Self {
            workbook,
            file,
            path: path.to_path_buf(),
            columns: columns.to_vec(),
            formats: columns.iter().map(|c| cell_format(&c.ty)).collect(),
            header: Format::new()
                .set_bold()
                .set_background_color(Color::RGB(0xD9_E1_F2))
                .set_border_bottom(FormatBorder::Thin),
            max_rows: options.xlsx_max_rows_per_sheet.min(XLSX_MAX_ROWS),
            sheet_rows: Vec::new(),
        };
        writer.add_sheet()?;
        Ok(writer)
    }

    /// Starts the next sheet with its header row.
    fn add_sheet(&mut self) -> Result<()> {
        let name = sheet_name(self.sheet_rows.len() + 1);
        let sheet = self.workbook.add_worksheet_with_constant_memory();
        let path = &self.path;
        sheet.set_name(name).map_err(|e| xlsx_error(path, e))?;
        sheet.set_freeze_panes(1, 0).map_err(|e| xlsx_error(path, e))?;
        for (col, column) in (0..).zip(&self.columns) {
            sheet
                .set_column_width(col, column_width(column))
                .map_err(|e| xlsx_error(path, e))?;
            sheet
                .write_string_with_format(0, col, column.name.as_str(), &self.header)
                .map_err(|e| xlsx_error(path, e))?;
        }
        self.sheet_rows.push(1);
        Ok(())
    }
}

/// The workbook's document properties.
fn properties(meta: &ExportMeta) -> DocProperties {
    let mut properties = DocProperties::new()
        .set_title(meta.kind.as_str())
        .set_subject(format!(
            "Ioto export {}, schema version {EXPORT_SCHEMA_VERSION}",
            meta.kind
        ))
        .set_comment(format!(
            "filter: {}; schema version: {EXPORT_SCHEMA_VERSION}",
            meta.filter
        ))
        .set_author("Ioto")
        .set_custom_property("ioto.export.kind", meta.kind.as_str())
        .set_custom_property(
            "ioto.export.schema_version",
            i32::try_from(EXPORT_SCHEMA_VERSION).unwrap_or(i32::MAX),
        )
        .set_custom_property("ioto.export.tenant_id", meta.tenant_id.to_string().as_str())
        .set_custom_property("ioto.export.created_at", meta.created_at.to_rfc3339().as_str());
    // Built from its parts: the document's date is written as `YYYY-MM-DDThh:mm:ssZ` from
    // them (a date made from a serial number has none, and readers refuse `0-00-00`).
    let t = meta.created_at;
    let created = ExcelDateTime::from_ymd(
        u16::try_from(t.year()).unwrap_or(1900),
        u8::try_from(t.month()).unwrap_or(1),
        u8::try_from(t.day()).unwrap_or(1),
    )
    .and_then(|d| {
        d.and_hms(
            u16::try_from(t.hour()).unwrap_or(0),
            u8::try_from(t.minute()).unwrap_or(0),
            u8::try_from(t.second()).unwrap_or(0),
        )
    });
    if let Ok(created) = created {
        properties = properties.set_creation_datetime(&created);
    }
    properties
}

/// Writes cell (`row`, `col`) from value `index` of `values`; a missing value leaves the cell
/// empty.
#[expect(
    clippy::too_many_arguments,
    reason = "one cell's place, value and format, spelled out"
)]
fn write_cell(
    sheet: &mut Worksheet,
    row: RowNum,
    col: ColNum,
    column: &ExportColumn,
    format: Option<&Format>,
    values: &ColumnValues,
    index: usize,
    path: &Path,
) -> Result<()> {
    let e = |e: XlsxError| xlsx_error(path, e);
    let out_of_range = |what: &str, value: &dyn std::fmt::Display| {
        Error::invalid(column.name.as_str(), format!("{what} {value} is out of range"))
    };
    match values {
        ColumnValues::Text(v) => {
            if let Some(Some(text)) = v.get(index) {
                let text = neutralise(text);
                sheet.write_string(row, col, fit_cell(&text)).map_err(e)?;
            }
        }
        ColumnValues::Int(v) => {
            if let Some(Some(n)) = v.get(index) {
                sheet.write_number(row, col, *n as f64).map_err(e)?;
            }
        }
        ColumnValues::Decimal(v) => {
            if let Some(Some(n)) = v.get(index) {
                let scale = crate::values::scale_of(&column.ty);
                let number = decimal_f64(*n, scale).ok_or_else(|| {
                    Error::Internal(format!(
                        "decimal {n} at scale {scale} did not convert to a number"
                    ))
                })?;
                match format {
                    Some(format) => sheet.write_number_with_format(row, col, number, format),
                    None => sheet.write_number(row, col, number),
                }
                .map_err(e)?;
            }
        }
        ColumnValues::Timestamp(v) => {
            if let Some(Some(micros)) = v.get(index) {
                match (excel_datetime(*micros), format) {
                    (Some(at), Some(format)) => sheet.write_datetime_with_format(row, col, &at, format),
                    (Some(at), None) => sheet.write_datetime(row, col, &at),
                    (None, _) => {
                        let text =
                            timestamp_text(*micros).ok_or_else(|| out_of_range("timestamp", micros))?;
                        sheet.write_string(row, col, text)
                    }
                }
                .map_err(e)?;
            }
        }
        ColumnValues::Date(v) => {
            if let Some(Some(days)) = v.get(index) {
                match (excel_date(*days), format) {
                    (Some(day), Some(format)) => sheet.write_datetime_with_format(row, col, &day, format),
                    (Some(day), None) => sheet.write_datetime(row, col, &day),
                    (None, _) => {
                        let text = date_text(*days).ok_or_else(|| out_of_range("date", days))?;
                        sheet.write_string(row, col, text)
                    }
                }
                .map_err(e)?;
            }
        }
        ColumnValues::Bool(v) => {
            if let Some(Some(b)) = v.get(index) {
                sheet.write_boolean(row, col, *b).map_err(e)?;
            }
        }
    }
    Ok(())
}

impl BatchWriter for XlsxWriter {
    fn write(&mut self, batch: &ExportBatch) -> Result<()> {
        batch.check(&self.columns)?;
        for index in 0..batch.rows() {
            if self.sheet_rows.last().is_none_or(|rows| *rows >= self.max_rows) {
                self.add_sheet()?;
            }
            let sheet_index = self.sheet_rows.len() - 1;
            let row = self.sheet_rows[sheet_index];
            let sheet = self
                .workbook
                .worksheet_from_index(sheet_index)
                .map_err(|e| xlsx_error(&self.path, e))?;
            for ((col, column), (values, format)) in (0..)
                .zip(&self.columns)
                .zip(batch.columns.iter().zip(&self.formats))
            {
                write_cell(
                    sheet,
                    row,
                    col,
                    column,
                    format.as_ref(),
                    values,
                    index,
                    &self.path,
                )?;
            }
            self.sheet_rows[sheet_index] += 1;
        }
        Ok(())
    }

    fn bytes_written(&self) -> u64 {
        0
    }

    fn finish(self: Box<Self>) -> Result<u64> {
        let Self {
            mut workbook,
            file,
            path,
            columns,
            sheet_rows,
            ..
        } = *self;
        let last_col = ColNum::try_from(columns.len().saturating_sub(1)).unwrap_or(ColNum::MAX);
        for (index, rows) in sheet_rows.iter().enumerate() {
            workbook
                .worksheet_from_index(index)
                .and_then(|sheet| sheet.autofilter(0, 0, rows.saturating_sub(1), last_col))
                .map_err(|e| xlsx_error(&path, e))?;
        }
        let mut out = BufWriter::new(file);
        workbook
            .save_to_writer(&mut out)
            .map_err(|e| xlsx_error(&path, e))?;
        out.flush().map_err(|e| io_error("writing XLSX", &path, e))?;
        let file = out
            .into_inner()
            .map_err(|e| io_error("writing XLSX", &path, e.error()))?;
        sync_and_size(&file, &path)
    }
}

#[cfg(test)]
mod tests {
    use calamine::{open_workbook, Data, Reader, Xlsx};
    use ioto_domain::export::ColumnType;

    use super::*;
    use crate::test_support::{columns, meta, TempDir, AT};
    use crate::{open_writer, ExportFormat};

    /// Rows `from..to`: row `i` is named `row i` and holds `i` in its numbers.
    fn batch(from: i64, to: i64, long: &str) -> ExportBatch {
        let columns = columns();
        let mut b = ExportBatch::new(&columns, 4);
        for i in from..to {
            let name = match i {
                0 => "=SUM(A1)".to_owned(),
                1 => long.to_owned(),
                2 => "-2".to_owned(),
                _ => format!("row {i}"),
            };
            b.push_text(0, Some(name));
            b.push_int(1, Some(-1000 * i));
            b.push_decimal(2, (i != 3).then_some(1234 + i128::from(i)));
            b.push_decimal(3, Some(-1250));
            if let ColumnValues::Timestamp(v) = &mut b.columns[4] {
                v.push(Some(AT + i * 3_600_000_000 + 500_000));
            }
            if let ColumnValues::Date(v) = &mut b.columns[5] {
                v.push(Some(20_780 + i as i32));
            }
            b.push_bool(6, Some(i % 2 == 0));
        }
        b
    }

    #[test]
    fn xlsx_splits_sheets_repeats_headers_and_writes_typed_cells() {
        let dir = TempDir::new();
        let path = dir.path().join("export.xlsx");
        let options = WriterOptions {
            xlsx_max_rows_per_sheet: 4,
            ..WriterOptions::default()
        };
        let long: String = "東".repeat(10) + &"x".repeat(39_990);
        assert_eq!(long.chars().count(), 40_000);
        let mut w = open_writer(ExportFormat::Xlsx, &columns(), &meta(), &path, &options).unwrap();
        // 7 rows in batches of 2 and 5: 3 rows per sheet beside the header.
        w.write(&batch(0, 2, &long)).unwrap();
        w.write(&batch(2, 7, &long)).unwrap();
        let size = w.finish().unwrap();
        assert_eq!(size, std::fs::metadata(&path).unwrap().len());
        assert!(size > 0);

        let mut book: Xlsx<_> = open_workbook(&path).unwrap();
        assert_eq!(book.sheet_names(), ["Data", "Data 2", "Data 3"]);
        let mut rows: Vec<Vec<Data>> = Vec::new();
        for (sheet, expected_rows) in [("Data", 3), ("Data 2", 3), ("Data 3", 1)] {
            let range = book.worksheet_range(sheet).unwrap();
            let mut sheet_rows = range.rows();
            let header: Vec<Data> = sheet_rows.next().unwrap().to_vec();
            let names: Vec<Data> = columns().iter().map(|c| Data::String(c.name.clone())).collect();
            assert_eq!(header, names, "{sheet} starts with the header");
            let data: Vec<Vec<Data>> = sheet_rows.map(<[Data]>::to_vec).collect();
            assert_eq!(data.len(), expected_rows, "{sheet}");
            rows.extend(data);
        }
        assert_eq!(rows.len(), 7);

        // Formula-like text is neutralised, a negative number is not.
        assert_eq!(rows[0][0], Data::String("'=SUM(A1)".into()));
        assert_eq!(rows[2][0], Data::String("'-2".into()));
        assert_eq!(rows[4][0], Data::String("row 4".into()));
        // The long text is cut within the limit and says so.
        let Data::String(cut) = &rows[1][0] else {
            panic!("text cell: {:?}", rows[1][0]);
        };
        assert!(cut.chars().count() <= MAX_CELL_CHARS, "{}", cut.chars().count());
        assert!(cut.encode_utf16().count() <= MAX_CELL_CHARS);
        assert!(cut.ends_with(TRUNCATED));
        assert!(cut.starts_with(&"東".repeat(10)));
        assert_eq!(
            cut.chars().count(),
            MAX_CELL_CHARS,
            "as much text as fits is kept"
        );

        for (i, row) in rows.iter().enumerate() {
            let i = i as i64;
            // Numbers are numbers.
            assert!(
                matches!(row[1], Data::Float(f) if f == (-1000 * i) as f64)
                    || matches!(row[1], Data::Int(n) if n == -1000 * i),
                "bytes of row {i}: {:?}",
                row[1]
            );
            if i == 3 {
                assert_eq!(row[2], Data::Empty, "a missing value is an empty cell");
            } else {
                assert_eq!(
                    row[2],
                    Data::Float((1234 + i) as f64 / 1000.0),
                    "ratio of row {i}"
                );
            }
            assert_eq!(row[3], Data::Float(-12.5), "cost of row {i}");
            // Timestamps and dates are date-times.
            let Data::DateTime(at) = &row[4] else {
                panic!("seen_at of row {i}: {:?}", row[4]);
            };
            assert!(at.is_datetime());
            assert_eq!(
                at.to_ymd_hms_milli(),
                (2026, 11, 23, 10 + i as u8, 0, 0, 500),
                "row {i}"
            );
            let Data::DateTime(day) = &row[5] else {
                panic!("day of row {i}: {:?}", row[5]);
            };
            assert_eq!(
                day.to_ymd_hms_milli(),
                (2026, 11, 23 + i as u8, 0, 0, 0, 0),
                "row {i}"
            );
            assert_eq!(row[6], Data::Bool(i % 2 == 0), "active of row {i}");
        }
    }

    #[test]
    fn text_fits_a_cell_counting_utf16_units() {
        assert!(matches!(fit_cell("short"), Cow::Borrowed("short")));
        let exact = "a".repeat(MAX_CELL_CHARS);
        assert!(matches!(fit_cell(&exact), Cow::Borrowed(_)));
        let over = "a".repeat(MAX_CELL_CHARS + 1);
        let cut = fit_cell(&over);
        assert_eq!(cut.chars().count(), MAX_CELL_CHARS);
        assert!(cut.ends_with(TRUNCATED));
        // Emoji are two UTF-16 units each: 20,000 of them are 40,000 units.
        let emoji = "😀".repeat(20_000);
        let cut = fit_cell(&emoji);
        assert!(cut.encode_utf16().count() <= MAX_CELL_CHARS);
        assert!(cut.encode_utf16().count() >= MAX_CELL_CHARS - 1);
        assert!(cut.ends_with(TRUNCATED));
        // Multi-byte text within the limit in units is kept whole, even when its bytes are not.
        let wide = "東".repeat(MAX_CELL_CHARS);
        assert!(matches!(fit_cell(&wide), Cow::Borrowed(_)));
    }

    #[test]
    fn number_formats_follow_scale_and_currency() {
        assert_eq!(decimal_format(0), "#,##0");
        assert_eq!(decimal_format(2), "#,##0.00");
        let money = ColumnType::Money {
            scale: 12,
            currency: Some("EUR".into()),
        };
        assert_eq!(
            cell_format(&money),
            Some(Format::new().set_num_format("#,##0.00 \"EUR\"")),
            "shown in the currency's minor units"
        );
        let yen = ColumnType::Money {
            scale: 12,
            currency: Some("JPY".into()),
        };
        assert_eq!(
            cell_format(&yen),
            Some(Format::new().set_num_format("#,##0 \"JPY\""))
        );
        let plain = ColumnType::Money {
            scale: 4,
            currency: None,
        };
        assert_eq!(
            cell_format(&plain),
            Some(Format::new().set_num_format("#,##0.0000"))
        );
        assert_eq!(sheet_name(1), "Data");
        assert_eq!(sheet_name(3), "Data 3");
    }

    #[test]
    fn timestamps_outside_excel_years_are_written_as_text() {
        assert!(excel_datetime(AT).is_some());
        assert!(excel_datetime(-2_209_075_201 * 1_000_000).is_none());
        let dir = TempDir::new();
        let path = dir.path().join("old.xlsx");
        let columns = [
            ExportColumn::new("at", ColumnType::Timestamp),
            ExportColumn::new("day", ColumnType::Date),
        ];
        let mut w = open_writer(
            ExportFormat::Xlsx,
            &columns,
            &meta(),
            &path,
            &WriterOptions::default(),
        )
        .unwrap();
        let b = ExportBatch {
            columns: vec![
                ColumnValues::Timestamp(vec![Some(-3_000_000_000 * 1_000_000), None]),
                ColumnValues::Date(vec![Some(-40_000), Some(0)]),
            ],
        };
        w.write(&b).unwrap();
        w.finish().unwrap();
        let mut book: Xlsx<_> = open_workbook(&path).unwrap();
        let range = book.worksheet_range("Data").unwrap();
        let rows: Vec<Vec<Data>> = range.rows().skip(1).map(<[Data]>::to_vec).collect();
        assert_eq!(rows[0][0], Data::String("1874-12-07T18:40:00Z".into()));
        assert_eq!(rows[0][1], Data::String("1860-06-26".into()));
        assert_eq!(rows[1][0], Data::Empty);
        assert!(matches!(&rows[1][1], Data::DateTime(d) if d.to_ymd_hms_milli() == (1970, 1, 1, 0, 0, 0, 0)));
    }
}
