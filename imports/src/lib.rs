#![doc = include_str!("../README.md")]

mod tables;

pub use tables::TableFiles;
