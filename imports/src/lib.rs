#![doc = include_str!("../README.md")]

mod tables;

pub use tables::{
    TableFiles, TableFilesOn, MAX_COLUMNS, MAX_LINES, MAX_XLSX_STRINGS_BYTES, MAX_XLSX_UNPACKED_BYTES,
};
