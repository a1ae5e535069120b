#![doc = include_str!("../README.md")]

use std::borrow::Cow;
use std::path::Path;

use ioto_domain::export::{ColumnType, ExportBatch, ExportColumn, ExportMeta};
use ioto_domain::{Error, Result};

mod csv;
mod parquet;
pub mod s3;
pub mod storage;
mod values;
mod xlsx;

pub use ioto_domain::export::ExportFormat;
pub use s3::{S3Settings, S3Storage};
pub use storage::LocalStorage;

/// The largest scale a decimal column may have: Parquet writes decimals as `DECIMAL(38, scale)`.
pub const MAX_DECIMAL_SCALE: u8 = 38;

/// Excel's row limit per worksheet, the header row included.
pub const XLSX_MAX_ROWS: u32 = 1_048_576;

/// Excel's column limit per worksheet.
pub const XLSX_MAX_COLUMNS: usize = 16_384;

/// Writes the batches of one export into one file.
///
/// A writer holds one batch at a time (plus the formats' own bounded buffers: a Parquet row
/// group, an XLSX row), whatever the export's size. A writer that is dropped without
/// [`BatchWriter::finish`] leaves an incomplete file behind: the caller deletes it.
pub trait BatchWriter: Send {
    /// Writes one batch (call batch.check(columns) first; return its error).
    fn write(&mut self, batch: &ExportBatch) -> Result<()>;
    /// Bytes written to the output so far (best effort; XLSX may report 0 until finish).
    fn bytes_written(&self) -> u64;
    /// Finishes the file, flushes and fsyncs it; returns the file's final size in bytes.
    fn finish(self: Box<Self>) -> Result<u64>;
}

/// Tuning of the writers; the defaults suit production, tests use small values.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Most rows in one Parquet row group.
    pub parquet_row_group_rows: usize,
    /// A Parquet row group is closed once its encoded size reaches this many bytes (an
    /// estimate), so memory stays bounded however wide the rows are.
    pub parquet_row_group_bytes: usize,
    /// Most rows of one XLSX worksheet, its header row included (at most Excel's 1,048,576);
    /// the rows after it go to a new sheet (`Data 2`, `Data 3`, …).
    pub xlsx_max_rows_per_sheet: u32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            parquet_row_group_rows: 262_144,
            parquet_row_group_bytes: 128 * 1024 * 1024,
            xlsx_max_rows_per_sheet: XLSX_MAX_ROWS,
        }
    }
}

/// Opens a writer of `format` that writes to the file at `path` (created/truncated).
///
/// Refused as invalid input: no columns, a decimal scale above [`MAX_DECIMAL_SCALE`], options
/// out of range (zero Parquet limits, fewer than 2 rows per sheet), more columns than an XLSX
/// sheet holds. A file that cannot be created is an internal error.
pub fn open_writer(
    format: ExportFormat,
    columns: &[ExportColumn],
    meta: &ExportMeta,
    path: &Path,
    options: &WriterOptions,
) -> Result<Box<dyn BatchWriter>> {
    if columns.is_empty() {
        return Err(Error::invalid("columns", "an export needs at least one column"));
    }
    for column in columns {
        if let ColumnType::Decimal { scale } | ColumnType::Money { scale, .. } = column.ty {
            if scale > MAX_DECIMAL_SCALE {
                return Err(Error::invalid(
                    column.name.as_str(),
                    format!("decimal scale {scale} is above {MAX_DECIMAL_SCALE}"),
                ));
            }
        }
    }
    Ok(match format {
        ExportFormat::Csv => Box::new(csv::CsvWriter::create(columns, path)?),
        ExportFormat::Xlsx => Box::new(xlsx::XlsxWriter::create(columns, meta, path, options)?),
        ExportFormat::Parquet => Box::new(parquet::ParquetWriter::create(columns, meta, path, options)?),
    })
}

/// The text as written into CSV/XLSX cells: formula-like text neutralised (see below).
///
/// Text that a spreadsheet could take for a formula (OWASP "CSV injection") — beginning with
/// `=`, `+`, `-`, `@`, a tab, a carriage return or NUL — gets a leading `'`, so it is shown as
/// text and never evaluated. Other text is returned as it is. Only text columns are
/// neutralised: numbers (a negative amount is `-12.5`) are written as numbers.
pub fn neutralise(text: &str) -> Cow<'_, str> {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\0') => Cow::Owned(format!("'{text}")),
        _ => Cow::Borrowed(text),
    }
}

/// An IO failure on `path`, as the internal error it is to the job.
fn io_error(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("{what} {}: {e}", path.display()))
}

/// Flushes a finished file to disk and reads its size.
fn sync_and_size(file: &std::fs::File, path: &Path) -> Result<u64> {
    file.sync_all().map_err(|e| io_error("syncing", path, e))?;
    Ok(file
        .metadata()
        .map_err(|e| io_error("reading the size of", path, e))?
        .len())
}

#[cfg(test)]
mod test_support {
    //! Shared pieces of the writers' tests.

    use std::path::{Path, PathBuf};

    use chrono::{TimeZone, Utc};
    use ioto_domain::export::{ColumnType, ExportColumn, ExportKind, ExportMeta};
    use ioto_domain::TenantId;

    /// A directory of its own for one test, removed when dropped.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> Self {
            let dir = std::env::temp_dir().join(format!("ioto-exports-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// 2026-11-23T10:00:00Z, in microseconds.
    pub const AT: i64 = 1_795_428_000 * 1_000_000;

    /// One column of every type.
    pub fn columns() -> Vec<ExportColumn> {
        vec![
            ExportColumn::new("name", ColumnType::Text),
            ExportColumn::new("bytes", ColumnType::Int),
            ExportColumn::new("ratio", ColumnType::Decimal { scale: 3 }),
            ExportColumn::new(
                "cost",
                ColumnType::Money {
                    scale: 2,
                    currency: Some("EUR".into()),
                },
            ),
            ExportColumn::new("seen_at", ColumnType::Timestamp),
            ExportColumn::new("day", ColumnType::Date),
            ExportColumn::new("active", ColumnType::Bool),
        ]
    }

    pub fn meta() -> ExportMeta {
        ExportMeta {
            kind: ExportKind::SimInventory,
            filter: r#"{"state":"ACTIVE"}"#.to_owned(),
            tenant_id: TenantId(uuid::Uuid::from_u128(0x1234)),
            created_at: Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
        }
    }
}

#[cfg(test)]
mod tests {
    use ioto_domain::export::ColumnValues;

    use super::*;

    #[test]
    fn formula_like_text_gets_a_leading_quote() {
        for (text, expected) in [
            ("=SUM(A1)", "'=SUM(A1)"),
            ("+1", "'+1"),
            ("-2", "'-2"),
            ("@x", "'@x"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("\0x", "'\0x"),
            ("=", "'="),
        ] {
            assert_eq!(neutralise(text), expected, "{text:?}");
            assert!(matches!(neutralise(text), Cow::Owned(_)));
        }
        for text in [
            "",
            "plain",
            "a=b",
            " =SUM(A1)",
            "'=x",
            "Zürich — 東京",
            "12",
            "\nx",
        ] {
            assert!(
                matches!(neutralise(text), Cow::Borrowed(t) if t == text),
                "{text:?} unchanged"
            );
        }
    }

    #[test]
    fn bad_columns_and_options_are_refused_before_a_file_is_made() {
        let dir = test_support::TempDir::new();
        let meta = test_support::meta();
        let path = dir.path().join("x.out");
        let defaults = WriterOptions::default();
        for format in ExportFormat::ALL {
            let err = open_writer(format, &[], &meta, &path, &defaults).err();
            assert!(
                matches!(err, Some(Error::InvalidInput { .. })),
                "{format}: {err:?}"
            );
            let wide = [ExportColumn::new("amount", ColumnType::Decimal { scale: 39 })];
            let err = open_writer(format, &wide, &meta, &path, &defaults).err();
            assert!(
                matches!(&err, Some(Error::InvalidInput { field, .. }) if field == "amount"),
                "{err:?}"
            );
        }
        let columns = [ExportColumn::new("n", ColumnType::Int)];
        let one_row = WriterOptions {
            xlsx_max_rows_per_sheet: 1,
            ..WriterOptions::default()
        };
        let err = open_writer(ExportFormat::Xlsx, &columns, &meta, &path, &one_row).err();
        assert!(matches!(err, Some(Error::InvalidInput { .. })), "{err:?}");
        let no_rows = WriterOptions {
            parquet_row_group_rows: 0,
            ..WriterOptions::default()
        };
        let err = open_writer(ExportFormat::Parquet, &columns, &meta, &path, &no_rows).err();
        assert!(matches!(err, Some(Error::InvalidInput { .. })), "{err:?}");
    }

    #[test]
    fn every_format_refuses_a_batch_of_the_wrong_shape() {
        let dir = test_support::TempDir::new();
        let columns = [
            ExportColumn::new("iccid", ColumnType::Text),
            ExportColumn::new("bytes", ColumnType::Int),
        ];
        let wrong = ExportBatch {
            columns: vec![
                ColumnValues::Text(vec![Some("x".into())]),
                ColumnValues::Bool(vec![Some(true)]),
            ],
        };
        for format in ExportFormat::ALL {
            let path = dir.path().join(format!("wrong.{}", format.extension()));
            let mut w = open_writer(
                format,
                &columns,
                &test_support::meta(),
                &path,
                &WriterOptions::default(),
            )
            .unwrap();
            assert!(matches!(w.write(&wrong), Err(Error::Internal(_))), "{format}");
            let size = w.finish().unwrap();
            assert_eq!(size, std::fs::metadata(&path).unwrap().len(), "{format}");
        }
    }
}
