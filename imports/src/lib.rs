#![doc = include_str!("../README.md")]

mod tables;
mod xlsx;

pub use tables::{TableFiles, TableFilesOn, MAX_COLUMNS, MAX_LINES};
pub use xlsx::{
    MAX_TABLE_BYTES, MAX_XLSX_PARTS, MAX_XLSX_SHARED_STRINGS, MAX_XLSX_STRINGS_BYTES, MAX_XLSX_UNPACKED_BYTES,
};
