#![doc = include_str!("../README.md")]

mod tables;

pub use tables::{TableFiles, MAX_COLUMNS, MAX_LINES, MAX_XLSX_STRINGS_BYTES, MAX_XLSX_UNPACKED_BYTES};
