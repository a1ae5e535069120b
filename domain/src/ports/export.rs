//! Ports of exports: where finished files are kept (storage) and the rows a job writes (sources).
//! The durable jobs are in [`crate::ports::jobs`].

use std::path::Path;

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::export::{ExportBatch, ExportColumn};
use crate::Result;

/// Where finished export files are kept: the data directory, or an object store.
#[async_trait]
pub trait ExportStorage: Send + Sync + 'static {
    /// Stores the finished file at `local` under `key`, whole or not at all (a reader never sees
    /// a part of it).
    async fn put(&self, key: &str, local: &Path) -> Result<()>;
    /// The file's bytes, streamed; `NotFound` when there is none.
    async fn get(&self, key: &str) -> Result<BoxStream<'static, std::io::Result<Vec<u8>>>>;
    /// Removes the file; nothing when it is gone already.
    async fn delete(&self, key: &str) -> Result<()>;
    /// Where files go, for start-up logs (`file:///…`, `s3://bucket/prefix`).
    fn location(&self) -> String;
}

/// The rows of one export, read in batches in the requester's scope.
#[async_trait]
pub trait ExportSource: Send {
    fn columns(&self) -> &[ExportColumn];
    /// Rows the export will hold, when known beforehand (for progress and ETA).
    async fn expected_rows(&mut self) -> Result<Option<u64>>;
    /// The next batch; `None` once every row was read.
    async fn next_batch(&mut self) -> Result<Option<ExportBatch>>;
}
