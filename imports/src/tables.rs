//! Reading uploaded tables (CSV, XLSX) into rows of text cells.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use ioto_domain::fleet::import::{Table, TableFormat};
use ioto_domain::ports::TableReader;
use ioto_domain::{Error, Result};

/// Reads CSV (comma or semicolon separated, UTF-8) and the first sheet of XLSX workbooks.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableFiles;

impl TableReader for TableFiles {
    fn read(&self, bytes: &[u8], format: TableFormat) -> Result<Table> {
        match format {
            TableFormat::Csv => read_csv(bytes),
            TableFormat::Xlsx => read_xlsx(bytes),
        }
    }
}

fn split_header(mut rows: Vec<Vec<String>>) -> Result<Table> {
    if rows.is_empty() {
        return Err(Error::invalid(
            "file",
            "is empty; the first line must name the columns",
        ));
    }
    let header = rows.remove(0);
    Ok(Table { header, rows })
}

fn read_csv(bytes: &[u8]) -> Result<Table> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::invalid("file", format!("is not UTF-8 text (byte {})", e.valid_up_to())))?;
    let first_line = text.lines().next().unwrap_or("");
    let delimiter = if first_line.matches(';').count() > first_line.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| Error::invalid("file", format!("line {}: {e}", i + 1)))?;
        rows.push(rec.iter().map(str::to_owned).collect());
    }
    split_header(rows)
}

fn cell_text(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        // Whole numbers that a float holds exactly (IMSIs, PINs) are written without ".0";
        // longer ones (20-digit ICCIDs) lost digits in the spreadsheet and are shown as they are,
        // so the row is refused instead of importing a wrong number.
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => format!("{}", *f as i64),
        Data::Int(i) => i.to_string(),
        other => other.to_string(),
    }
}

fn read_xlsx(bytes: &[u8]) -> Result<Table> {
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes))
        .map_err(|e| Error::invalid("file", format!("is not an XLSX workbook ({e})")))?;
    let range = book
        .worksheet_range_at(0)
        .ok_or_else(|| Error::invalid("file", "the workbook has no sheet"))?
        .map_err(|e| Error::invalid("file", format!("the first sheet cannot be read ({e})")))?;
    let rows = range.rows().map(|r| r.iter().map(cell_text).collect()).collect();
    split_header(rows)
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
}
