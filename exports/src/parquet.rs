//! Parquet files, written through Arrow.
//!
//! What a file guarantees:
//! - one nullable column per export column, typed: text `UTF8` (string), integers `INT64`,
//!   decimals and money `DECIMAL(38, scale)` (exact), timestamps `TIMESTAMP(MICROS,
//!   isAdjustedToUTC=true)` (Arrow `Timestamp(Microsecond, "UTC")`), dates `DATE`, booleans
//!   `BOOLEAN`; text is written as it is (no neutralising: Parquet is not opened by a
//!   spreadsheet);
//! - ZSTD (level 3) compression and statistics for every column chunk;
//! - row groups of at most [`WriterOptions::parquet_row_group_rows`] rows, closed earlier once
//!   their encoded size reaches [`WriterOptions::parquet_row_group_bytes`] (an estimate), so the
//!   memory a writer holds is bounded;
//! - `created_by` `ioto <version>` and key/value metadata: `ioto.export.kind`,
//!   `ioto.export.filter` (the filter's JSON), `ioto.export.schema_version`,
//!   `ioto.export.tenant_id`, `ioto.export.created_at` (RFC 3339), beside Arrow's own
//!   `ARROW:schema`.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::parquet::arrow::ArrowWriter;
use ::parquet::basic::{Compression, ZstdLevel};
use ::parquet::file::metadata::KeyValue;
use ::parquet::file::properties::{EnabledStatistics, WriterProperties};
use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use ioto_domain::export::{
    ColumnType, ColumnValues, ExportBatch, ExportColumn, ExportMeta, EXPORT_SCHEMA_VERSION,
};
use ioto_domain::{Error, Result};

use crate::{io_error, sync_and_size, BatchWriter, WriterOptions, MAX_DECIMAL_SCALE};

/// The ZSTD level: a good ratio at a speed that keeps up with the sources.
const ZSTD_LEVEL: i32 = 3;

/// The time zone of every timestamp column.
const UTC: &str = "UTC";

/// The key/value metadata keys of an export file.
pub(crate) mod keys {
    pub const KIND: &str = "ioto.export.kind";
    pub const FILTER: &str = "ioto.export.filter";
    pub const SCHEMA_VERSION: &str = "ioto.export.schema_version";
    pub const TENANT_ID: &str = "ioto.export.tenant_id";
    pub const CREATED_AT: &str = "ioto.export.created_at";
}

/// Writes an export as Parquet (see the module's documentation).
pub(crate) struct ParquetWriter {
    writer: ArrowWriter<BufWriter<File>>,
    schema: SchemaRef,
    columns: Vec<ExportColumn>,
    path: PathBuf,
    /// [`WriterOptions::parquet_row_group_bytes`].
    row_group_bytes: usize,
}

/// The Arrow type of a column.
fn data_type(ty: &ColumnType) -> DataType {
    match ty {
        ColumnType::Text => DataType::Utf8,
        ColumnType::Int => DataType::Int64,
        ColumnType::Decimal { scale } | ColumnType::Money { scale, .. } => {
            // The scale was checked against MAX_DECIMAL_SCALE (38) when the writer was opened.
            DataType::Decimal128(MAX_DECIMAL_SCALE, i8::try_from(*scale).unwrap_or(i8::MAX))
        }
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
        ColumnType::Date => DataType::Date32,
        ColumnType::Bool => DataType::Boolean,
    }
}

/// The Arrow schema of an export's columns; every field nullable.
pub(crate) fn schema(columns: &[ExportColumn]) -> Schema {
    Schema::new(
        columns
            .iter()
            .map(|c| Field::new(c.name.as_str(), data_type(&c.ty), true))
            .collect::<Vec<_>>(),
    )
}

/// The writer properties of an export file.
fn properties(meta: &ExportMeta, options: &WriterOptions) -> Result<WriterProperties> {
    let level = ZstdLevel::try_new(ZSTD_LEVEL).map_err(|e| Error::Internal(format!("ZSTD level: {e}")))?;
    let metadata = vec![
        KeyValue::new(keys::KIND.to_owned(), meta.kind.as_str().to_owned()),
        KeyValue::new(keys::FILTER.to_owned(), meta.filter.clone()),
        KeyValue::new(keys::SCHEMA_VERSION.to_owned(), EXPORT_SCHEMA_VERSION.to_string()),
        KeyValue::new(keys::TENANT_ID.to_owned(), meta.tenant_id.to_string()),
        KeyValue::new(keys::CREATED_AT.to_owned(), meta.created_at.to_rfc3339()),
    ];
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(options.parquet_row_group_rows))
        // The writer closes a row group once its estimated encoded size reaches this, within a
        // batch too (splitting it), which bounds the memory a row group holds.
        .set_max_row_group_bytes(Some(options.parquet_row_group_bytes))
        .set_created_by(format!("ioto {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(metadata))
        .build())
}

impl ParquetWriter {
    /// Creates (or truncates) the file at `path`; rows follow with [`BatchWriter::write`].
    pub(crate) fn create(
        columns: &[ExportColumn],
        meta: &ExportMeta,
        path: &Path,
        options: &WriterOptions,
    ) -> Result<Self> {
        if options.parquet_row_group_rows == 0 {
            return Err(Error::invalid("parquet_row_group_rows", "must be at least 1"));
        }
        if options.parquet_row_group_bytes == 0 {
            return Err(Error::invalid("parquet_row_group_bytes", "must be at least 1"));
        }
        let schema: SchemaRef = Arc::new(schema(columns));
        let props = properties(meta, options)?;
        let file = File::create(path).map_err(|e| io_error("creating", path, e))?;
        let writer = ArrowWriter::try_new(BufWriter::new(file), Arc::clone(&schema), Some(props))
            .map_err(|e| io_error("starting Parquet file", path, e))?;
        Ok(Self {
            writer,
            schema,
            columns: columns.to_vec(),
            path: path.to_path_buf(),
            row_group_bytes: options.parquet_row_group_bytes,
        })
    }

    /// The batch as Arrow arrays.
    fn record_batch(&self, batch: &ExportBatch) -> Result<RecordBatch> {
        let arrays = batch
            .columns
            .iter()
            .zip(&self.columns)
            .map(|(values, column)| array(values, column))
            .collect::<Result<Vec<_>>>()?;
        RecordBatch::try_new(Arc::clone(&self.schema), arrays)
            .map_err(|e| Error::Internal(format!("building a Parquet batch: {e}")))
    }
}

/// The Arrow array of one column's values.
fn array(values: &ColumnValues, column: &ExportColumn) -> Result<ArrayRef> {
    Ok(match values {
        ColumnValues::Text(v) => Arc::new(v.iter().map(Option::as_deref).collect::<StringArray>()),
        ColumnValues::Int(v) => Arc::new(v.iter().collect::<Int64Array>()),
        ColumnValues::Decimal(v) => {
            let DataType::Decimal128(precision, scale) = data_type(&column.ty) else {
                return Err(Error::Internal(format!(
                    "export column '{}' holds decimals but is not a decimal column",
                    column.name
                )));
            };
            let array = v
                .iter()
                .collect::<Decimal128Array>()
                .with_precision_and_scale(precision, scale)
                .map_err(|e| Error::Internal(format!("decimal column '{}': {e}", column.name)))?;
            // An i128 holds 39 digits, DECIMAL(38) one fewer.
            array.validate_decimal_precision(precision).map_err(|e| {
                Error::invalid(
                    column.name.as_str(),
                    format!("a value does not fit DECIMAL(38): {e}"),
                )
            })?;
            Arc::new(array)
        }
        ColumnValues::Timestamp(v) => {
            Arc::new(v.iter().collect::<TimestampMicrosecondArray>().with_timezone(UTC))
        }
        ColumnValues::Date(v) => Arc::new(v.iter().collect::<Date32Array>()),
        ColumnValues::Bool(v) => Arc::new(v.iter().collect::<BooleanArray>()),
    })
}

impl BatchWriter for ParquetWriter {
    fn write(&mut self, batch: &ExportBatch) -> Result<()> {
        batch.check(&self.columns)?;
        if batch.rows() == 0 {
            return Ok(());
        }
        let record_batch = self.record_batch(batch)?;
        self.writer
            .write(&record_batch)
            .map_err(|e| io_error("writing Parquet to", &self.path, e))?;
        // The writer closes row groups by their size itself (`max_row_group_bytes`); this is
        // the same bound, checked once more between batches.
        if self.writer.in_progress_size() >= self.row_group_bytes {
            self.writer
                .flush()
                .map_err(|e| io_error("writing Parquet to", &self.path, e))?;
        }
        Ok(())
    }

    fn bytes_written(&self) -> u64 {
        self.writer.bytes_written() as u64
    }

    fn finish(self: Box<Self>) -> Result<u64> {
        let Self { writer, path, .. } = *self;
        // Closes the last row group, writes the footer and hands back the file.
        let buffered = writer
            .into_inner()
            .map_err(|e| io_error("finishing Parquet file", &path, e))?;
        let file = buffered
            .into_inner()
            .map_err(|e| io_error("writing Parquet to", &path, e.error()))?;
        sync_and_size(&file, &path)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use ::parquet::basic::LogicalType;
    use ::parquet::schema::types::ColumnPath;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Date32Type, Decimal128Type, Int64Type, TimestampMicrosecondType};
    use arrow_array::Array;

    use super::*;
    use crate::test_support::{columns, meta, TempDir, AT};
    use crate::{open_writer, ExportFormat};

    /// The values of row `i` (every seventh value missing in turn).
    #[expect(clippy::type_complexity, reason = "one row of every column type, in a test")]
    fn row(
        i: i64,
    ) -> (
        Option<String>,
        Option<i64>,
        Option<i128>,
        Option<i128>,
        Option<i64>,
        Option<i32>,
        Option<bool>,
    ) {
        let missing = |k: i64| i % 7 == k;
        (
            (!missing(0)).then(|| format!("=row {i} — 東京")),
            (!missing(1)).then_some(-1000 * i),
            (!missing(2)).then_some(-5 + i128::from(i)),
            (!missing(3)).then_some(i128::from(i) * 10_i128.pow(30)),
            (!missing(4)).then_some(AT + i * 1_000_001),
            (!missing(5)).then_some(20_780 + i as i32),
            (!missing(6)).then_some(i % 2 == 0),
        )
    }

    fn batch(rows: std::ops::Range<i64>) -> ExportBatch {
        let columns = columns();
        let mut b = ExportBatch::new(&columns, 4);
        for i in rows {
            let (text, int, ratio, cost, at, day, flag) = row(i);
            b.push_text(0, text);
            b.push_int(1, int);
            b.push_decimal(2, ratio);
            b.push_decimal(3, cost);
            if let ColumnValues::Timestamp(v) = &mut b.columns[4] {
                v.push(at);
            }
            if let ColumnValues::Date(v) = &mut b.columns[5] {
                v.push(day);
            }
            b.push_bool(6, flag);
        }
        b
    }

    #[test]
    fn parquet_round_trips_types_values_row_groups_and_metadata() {
        let dir = TempDir::new();
        let path = dir.path().join("export.parquet");
        let options = WriterOptions {
            parquet_row_group_rows: 2,
            ..WriterOptions::default()
        };
        let mut w = open_writer(ExportFormat::Parquet, &columns(), &meta(), &path, &options).unwrap();
        w.write(&batch(0..3)).unwrap();
        w.write(&batch(3..3)).unwrap();
        w.write(&batch(3..7)).unwrap();
        w.write(&batch(7..8)).unwrap();
        assert!(w.bytes_written() > 0, "closed row groups are counted");
        let size = w.finish().unwrap();
        assert_eq!(size, std::fs::metadata(&path).unwrap().len());

        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        let schema = Arc::clone(builder.schema());
        let types: Vec<&DataType> = schema.fields().iter().map(|f| f.data_type()).collect();
        assert_eq!(
            types,
            [
                &DataType::Utf8,
                &DataType::Int64,
                &DataType::Decimal128(38, 3),
                &DataType::Decimal128(38, 2),
                &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                &DataType::Date32,
                &DataType::Boolean,
            ]
        );
        assert!(schema.fields().iter().all(|f| f.is_nullable()));
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            ["name", "bytes", "ratio", "cost", "seen_at", "day", "active"]
        );

        let metadata = Arc::clone(builder.metadata());
        assert_eq!(metadata.num_row_groups(), 4, "8 rows, at most 2 per row group");
        for group in metadata.row_groups() {
            assert!(group.num_rows() <= 2);
            for chunk in group.columns() {
                assert!(
                    matches!(chunk.compression(), Compression::ZSTD(_)),
                    "{:?}",
                    chunk.compression()
                );
                assert!(
                    chunk.statistics().is_some(),
                    "statistics of {}",
                    chunk.column_path()
                );
            }
        }
        let file = metadata.file_metadata();
        assert_eq!(file.num_rows(), 8);
        assert_eq!(
            file.schema_descr().column(4).logical_type_ref(),
            Some(&LogicalType::timestamp(true, ::parquet::basic::TimeUnit::MICROS)),
            "isAdjustedToUTC"
        );
        // The file names the codec, not its level: the level is the writer's.
        assert_eq!(
            properties(&meta(), &options)
                .unwrap()
                .compression(&ColumnPath::from("cost")),
            Compression::ZSTD(ZstdLevel::try_new(3).unwrap())
        );
        assert_eq!(
            file.created_by(),
            Some(format!("ioto {}", env!("CARGO_PKG_VERSION")).as_str())
        );
        let kv: HashMap<&str, Option<&str>> = file
            .key_value_metadata()
            .unwrap()
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.as_deref()))
            .collect();
        let meta = meta();
        assert_eq!(kv[keys::KIND], Some("SIM_INVENTORY"));
        assert_eq!(kv[keys::FILTER], Some(r#"{"state":"ACTIVE"}"#));
        assert_eq!(
            kv[keys::SCHEMA_VERSION],
            Some(EXPORT_SCHEMA_VERSION.to_string().as_str())
        );
        assert_eq!(kv[keys::TENANT_ID], Some(meta.tenant_id.to_string().as_str()));
        assert_eq!(kv[keys::CREATED_AT], Some("2026-11-23T10:00:00+00:00"));

        // Every value reads back as written; text is not neutralised in Parquet.
        let mut i = 0_i64;
        for batch in builder.build().unwrap() {
            let batch = batch.unwrap();
            let names = batch.column(0).as_string::<i32>();
            let bytes = batch.column(1).as_primitive::<Int64Type>();
            let ratio = batch.column(2).as_primitive::<Decimal128Type>();
            let cost = batch.column(3).as_primitive::<Decimal128Type>();
            let seen = batch.column(4).as_primitive::<TimestampMicrosecondType>();
            let day = batch.column(5).as_primitive::<Date32Type>();
            let active = batch.column(6).as_boolean();
            for r in 0..batch.num_rows() {
                let get = |a: &dyn Array| a.is_valid(r);
                let (text, int, rat, cst, at, d, flag) = row(i);
                assert_eq!(get(names).then(|| names.value(r).to_owned()), text, "row {i}");
                assert_eq!(get(bytes).then(|| bytes.value(r)), int, "row {i}");
                assert_eq!(get(ratio).then(|| ratio.value(r)), rat, "row {i}");
                assert_eq!(get(cost).then(|| cost.value(r)), cst, "row {i}");
                assert_eq!(get(seen).then(|| seen.value(r)), at, "row {i}");
                assert_eq!(get(day).then(|| day.value(r)), d, "row {i}");
                assert_eq!(get(active).then(|| active.value(r)), flag, "row {i}");
                i += 1;
            }
        }
        assert_eq!(i, 8);
    }

    #[test]
    fn parquet_row_groups_close_at_the_byte_limit() {
        let dir = TempDir::new();
        let path = dir.path().join("small.parquet");
        let options = WriterOptions {
            parquet_row_group_bytes: 1,
            ..WriterOptions::default()
        };
        let mut w = open_writer(ExportFormat::Parquet, &columns(), &meta(), &path, &options).unwrap();
        for start in 0..3 {
            w.write(&batch(start * 5..start * 5 + 5)).unwrap();
            assert!(
                w.bytes_written() > 0,
                "a row group is written out after each batch"
            );
        }
        w.finish().unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        assert!(builder.metadata().num_row_groups() >= 3);
        assert_eq!(builder.metadata().file_metadata().num_rows(), 15);
    }

    #[test]
    fn a_decimal_beyond_38_digits_is_refused() {
        let dir = TempDir::new();
        let path = dir.path().join("wide.parquet");
        let columns = [ExportColumn::new("amount", ColumnType::Decimal { scale: 0 })];
        let mut w = open_writer(
            ExportFormat::Parquet,
            &columns,
            &meta(),
            &path,
            &WriterOptions::default(),
        )
        .unwrap();
        let fits = ExportBatch {
            columns: vec![ColumnValues::Decimal(vec![Some(10_i128.pow(38) - 1), None])],
        };
        w.write(&fits).unwrap();
        let too_wide = ExportBatch {
            columns: vec![ColumnValues::Decimal(vec![Some(-(10_i128.pow(38)))])],
        };
        let err = w.write(&too_wide).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput { field, .. } if field == "amount"),
            "{err:?}"
        );
    }
}
