//! The table readers on hostile input (a bounded fuzz run in every test run): no byte string and
//! no mutation of a valid CSV or XLSX makes them panic or read more than their bounds.

#![expect(clippy::unwrap_used, reason = "tests")]

use ioto_domain::fleet::import::TableFormat;
use ioto_domain::ports::TableReader;
use ioto_imports::{TableFiles, MAX_COLUMNS};
use proptest::prelude::*;

fn xlsx_seed() -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in ["iccid", "imsi", "msisdn", "pin"].iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for r in 1..20u32 {
        sheet
            .write_string(r, 0, format!("894900000000000{r:05}"))
            .unwrap();
        sheet
            .write_number(r, 1, 262_011_234_567_000.0 + f64::from(r))
            .unwrap();
        sheet.write_string(r, 2, "49170").unwrap();
        sheet.write_string(r, 3, "1234").unwrap();
    }
    book.save_to_buffer().unwrap()
}

fn mutate(mut b: Vec<u8>, edits: Vec<(usize, u8)>) -> Vec<u8> {
    for (pos, byte) in edits {
        let len = b.len();
        b[pos % len] = byte;
    }
    b
}

fn within_bounds(bytes: &[u8], format: TableFormat) -> Result<(), TestCaseError> {
    if let Ok(t) = TableFiles.read(bytes, format) {
        prop_assert!(t.header.len() <= MAX_COLUMNS);
        prop_assert!(t.rows.iter().all(|r| r.len() <= MAX_COLUMNS));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_as_either_format(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        within_bounds(&bytes, TableFormat::Csv)?;
        within_bounds(&bytes, TableFormat::Xlsx)?;
    }

    #[test]
    fn csv_like_text(text in "[a-z0-9;,\"\\r\\n é]{0,600}") {
        within_bounds(text.as_bytes(), TableFormat::Csv)?;
    }

    #[test]
    fn mutated_workbooks(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        within_bounds(&mutate(xlsx_seed(), edits), TableFormat::Xlsx)?;
    }
}

#[test]
fn the_seed_workbook_reads() {
    let t = TableFiles.read(&xlsx_seed(), TableFormat::Xlsx).unwrap();
    assert_eq!(t.rows.len(), 19);
}
