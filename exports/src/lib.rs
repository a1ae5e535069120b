#![doc = include_str!("../README.md")]

use ioto_domain::{Error, Result};

/// A file format an export can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Xlsx,
    Parquet,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Self::Csv),
            "xlsx" | "excel" => Ok(Self::Xlsx),
            "parquet" => Ok(Self::Parquet),
            _ => Err(Error::invalid(
                "format",
                format!("'{s}' is not an export format; allowed: csv, xlsx, parquet"),
            )),
        }
    }

    /// The `Content-Type` a download of this format is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::Parquet => "application/vnd.apache.parquet",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Xlsx => "xlsx",
            Self::Parquet => "parquet",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_the_allowed_formats() {
        assert_eq!(ExportFormat::parse("Excel").unwrap(), ExportFormat::Xlsx);
        let err = ExportFormat::parse("pdf").unwrap_err().to_string();
        assert!(err.contains("csv, xlsx, parquet"), "{err}");
    }
}
