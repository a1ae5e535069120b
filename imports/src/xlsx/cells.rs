//! What a sheet's reading keeps: cells as they arrive, the shared strings and the sparse table, each counted against the table's byte budget.

use ioto_domain::fleet::import::Table;
use ioto_domain::{Error, Result};

use super::{CELL_OVERHEAD, ROW_OVERHEAD};
use crate::tables::{cell_name, split_header};

pub(super) struct Cell {
    pub(super) row: u32,
    pub(super) col: u32,
    /// The `t` attribute: `s` (shared string), `str`, `inlineStr`, `b`, `e`, `n` or none.
    pub(super) kind: String,
    pub(super) text: String,
}

impl Cell {
    pub(super) fn push(&mut self, s: &str, most: usize) -> Result<()> {
        if self.text.len() + s.len() > most {
            return Err(too_much_text(most));
        }
        self.text.push_str(s);
        Ok(())
    }

    pub(super) fn value(self, strings: &SharedStrings) -> Result<String> {
        Ok(match self.kind.as_str() {
            "s" => {
                let index = self.text.trim().parse::<usize>().ok();
                index
                    .and_then(|i| strings.get(i))
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        Error::invalid(
                            "file",
                            format!(
                                "cell {} refers to shared string {:?}, which the workbook does not have",
                                cell_name(self.row, self.col),
                                self.text
                            ),
                        )
                    })?
            }
            "b" => match self.text.trim() {
                "1" => "true".to_owned(),
                "0" => "false".to_owned(),
                other => other.to_owned(),
            },
            "n" | "" => number_text(self.text),
            _ => self.text,
        })
    }
}

/// A number cell as text: whole numbers that a float holds exactly (IMSIs, PINs) are written
/// without ".0"; longer ones (20-digit ICCIDs) lost digits in the spreadsheet and are shown as
/// they are, so the row is refused instead of importing a wrong number.
pub(super) fn number_text(text: String) -> String {
    match text.trim().parse::<f64>() {
        Ok(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => format!("{}", f as i64),
        Ok(f) if f.is_finite() => format!("{f}"),
        _ => text,
    }
}

/// The shared-strings table: every string's text in one buffer, so that a table of millions of
/// empty strings costs a few bytes each.
#[derive(Default)]
pub(super) struct SharedStrings {
    text: String,
    ends: Vec<usize>,
    /// Most strings taken.
    most: usize,
}

impl SharedStrings {
    /// An empty table taking at most `most` strings.
    pub(super) fn new(most: usize) -> Self {
        SharedStrings {
            most,
            ..SharedStrings::default()
        }
    }

    pub(super) fn push(&mut self, s: String) -> Result<()> {
        if self.ends.len() >= self.most {
            return Err(Error::invalid(
                "file",
                format!("its shared strings table holds more than {} strings", self.most),
            ));
        }
        self.text.push_str(&s);
        self.ends.push(self.text.len());
        Ok(())
    }

    pub(super) fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.text.get(start..end)
    }
}

pub(super) fn too_much_text(most: usize) -> Error {
    Error::invalid(
        "file",
        format!(
            "its first sheet holds more than {} MiB of cells; split it into several files",
            most >> 20
        ),
    )
}

/// Cells kept where they are: rows only as long as their last cell, and no row padded to the
/// widest, so a far-apart pair of cells costs two cells and the empty rows between them.
#[derive(Default)]
pub(super) struct SparseTable {
    pub(super) rows: Vec<Vec<String>>,
    pub(super) bytes: usize,
    /// Most bytes held.
    pub(super) most: usize,
}

impl SparseTable {
    pub(super) fn put(&mut self, row: u32, col: u32, text: String) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let (row, col) = (row as usize, col as usize);
        let grow_rows = (row + 1).saturating_sub(self.rows.len());
        let grow_cells = self
            .rows
            .get(row)
            .map_or(col + 1, |r| (col + 1).saturating_sub(r.len()));
        self.bytes += grow_rows * ROW_OVERHEAD + grow_cells * CELL_OVERHEAD + text.len();
        if self.bytes > self.most {
            return Err(too_much_text(self.most));
        }
        if self.rows.len() <= row {
            self.rows.resize_with(row + 1, Vec::new);
        }
        let cells = &mut self.rows[row];
        if cells.len() <= col {
            cells.resize(col + 1, String::new());
        }
        cells[col] = text;
        Ok(())
    }

    /// The table from its first used row and column on.
    pub(super) fn into_table(mut self) -> Result<Table> {
        let top = self
            .rows
            .iter()
            .position(|r| !r.is_empty())
            .unwrap_or(self.rows.len());
        self.rows.drain(..top);
        let left = self
            .rows
            .iter()
            .filter_map(|r| r.iter().position(|c| !c.is_empty()))
            .min()
            .unwrap_or(0);
        for r in &mut self.rows {
            r.drain(..left.min(r.len()));
        }
        split_header(self.rows)
    }
}
