//! ClickHouse's columnar `Native` format, for inserts of many rows: a block is its column
//! count and row count (LEB128), then each column's name, type and values one after another
//! (strings as a LEB128 length and the bytes, numbers little-endian). ClickHouse stores a
//! `Native` block with less work than the same rows in `RowBinary` (10 M rated rows: ~10 CPU
//! seconds against ~13, see docs/benchmarks.md), and the block is written a column at a time.
//!
//! The insert streams its blocks in one HTTP request; an insert dropped before `end` aborts the
//! request instead of ending it, so ClickHouse sees a broken body rather than a short one. The
//! last byte of every block is held back until the next block or `end`: ClickHouse before 20.5
//! takes a connection closed between two chunks for the end of the body, and a cut inside a
//! block fails its read ("Cannot read all data") instead. Rows ClickHouse already stored (it
//! writes a part per 1,048,576 rows as they arrive) stay: callers write under a run id that is
//! only published once the insert has ended, and delete a failed run's rows, as rating does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;

use futures::StreamExt;
use ioto_domain::{Error, Result};
use tokio::sync::mpsc;

use crate::clickhouse::ClickHouseUsage;

/// One block being written. The columns must be written in the table's order, each with one
/// value per row, and named exactly as in the table: ClickHouse 18.16 stores a block with a
/// column the table does not have without complaint, dropping that column (checked: a block
/// whose `zone` had been dropped from `rated_usage` was stored without it), so a misspelt name
/// is a silent default. The rating tests read the stored columns back (not yet `bytes_in` and
/// `bytes_out`).
pub(crate) struct Block {
    buf: Vec<u8>,
    rows: usize,
    /// Columns declared, and written so far.
    columns: usize,
    written: usize,
}

impl Block {
    pub(crate) fn new(columns: usize, rows: usize) -> Self {
        let mut buf = Vec::with_capacity(rows * 256);
        leb128(&mut buf, columns as u64);
        leb128(&mut buf, rows as u64);
        Self {
            buf,
            rows,
            columns,
            written: 0,
        }
    }

    fn header(&mut self, name: &str, ty: &str) {
        self.written += 1;
        string(&mut self.buf, name.as_bytes());
        string(&mut self.buf, ty.as_bytes());
    }

    fn check(&self, name: &str, written: usize) {
        assert_eq!(
            written, self.rows,
            "Native column {name}: {written} values for {} rows",
            self.rows
        );
    }

    /// A `String` column.
    pub(crate) fn strings<'a>(&mut self, name: &str, values: impl Iterator<Item = &'a str>) {
        self.header(name, "String");
        let mut n = 0;
        for v in values {
            string(&mut self.buf, v.as_bytes());
            n += 1;
        }
        self.check(name, n);
    }

    /// A fixed-width number column (`UInt64`, `Date` as its `UInt16` day number, a decimal's
    /// `Int128`…): `ty` is the column's type as ClickHouse names it, `N` its width.
    pub(crate) fn numbers<const N: usize>(
        &mut self,
        name: &str,
        ty: &str,
        values: impl Iterator<Item = [u8; N]>,
    ) {
        self.header(name, ty);
        let mut n = 0;
        for v in values {
            self.buf.extend_from_slice(&v);
            n += 1;
        }
        self.check(name, n);
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        assert_eq!(
            self.written, self.columns,
            "Native block: {} columns written of {} declared",
            self.written, self.columns
        );
        self.buf
    }
}

fn leb128(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn string(buf: &mut Vec<u8>, s: &[u8]) {
    leb128(buf, s.len() as u64);
    buf.extend_from_slice(s);
}

/// An `INSERT … FORMAT Native` whose blocks are sent as they are written.
pub(crate) struct NativeInsert {
    blocks: Option<mpsc::Sender<Vec<u8>>>,
    /// The last byte of the block sent last (see the module's comment).
    held: Option<u8>,
    ended: Arc<AtomicBool>,
    /// The request; taken when its answer has been awaited.
    response: Option<tokio::task::JoinHandle<Result<()>>>,
}

impl NativeInsert {
    pub(crate) fn new(store: &ClickHouseUsage, table: &'static str) -> Self {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(1);
        let ended = Arc::new(AtomicBool::new(false));
        let body = futures::stream::poll_fn({
            let ended = Arc::clone(&ended);
            move |cx| match rx.poll_recv(cx) {
                Poll::Ready(Some(block)) => Poll::Ready(Some(Ok(block))),
                // Closed: by `end`, or by a drop, whose body must not look complete.
                Poll::Ready(None) if ended.load(Ordering::Acquire) => Poll::Ready(None),
                Poll::Ready(None) => Poll::Ready(Some(Err(std::io::Error::other("insert abandoned")))),
                Poll::Pending => Poll::Pending,
            }
        });
        let mut request = store
            .http
            .post(&store.config.url)
            .query(&[
                ("database", store.config.database.as_str()),
                ("query", &format!("INSERT INTO {table} FORMAT Native")),
            ])
            .body(reqwest::Body::wrap_stream(body.boxed()));
        if let Some(u) = &store.config.user {
            request = request.header("X-ClickHouse-User", u);
        }
        if let Some(p) = &store.config.password {
            request = request.header("X-ClickHouse-Key", p);
        }
        let config = store.config.clone();
        let response = tokio::spawn(async move {
            let url = ioto_domain::redact_url(&config.url);
            let response = request
                .send()
                .await
                .map_err(|e| Error::Unavailable(format!("ClickHouse at {url} (insert into {table}: {e})")))?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            let text = response
                .text()
                .await
                .unwrap_or_else(|e| format!("(the answer could not be read: {e})"));
            Err(Error::Internal(format!(
                "ClickHouse at {url}: insert into {table}: {status}: {}",
                text.trim()
            )))
        });
        Self {
            blocks: Some(tx),
            held: None,
            ended,
            response: Some(response),
        }
    }

    /// Sends a block; an error here is the request's (it failed or ClickHouse refused it).
    pub(crate) async fn send(&mut self, block: Block) -> Result<()> {
        let mut bytes = block.into_bytes();
        let last = bytes.pop();
        let held = self.held.take().map(|b| vec![b]);
        if self.chunk(held).await && self.chunk(Some(bytes)).await {
            self.held = last;
            return Ok(());
        }
        self.blocks = None;
        match self.answer().await {
            Err(e) => Err(e),
            Ok(()) => Err(Error::Internal("ClickHouse ended an insert early".into())),
        }
    }

    /// Hands a chunk to the request's body; false when the request has gone.
    async fn chunk(&self, bytes: Option<Vec<u8>>) -> bool {
        match (&self.blocks, bytes) {
            (Some(tx), Some(bytes)) => tx.send(bytes).await.is_ok(),
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// ClickHouse's answer to the request (once; later calls report it as already given).
    async fn answer(&mut self) -> Result<()> {
        match self.response.take() {
            Some(request) => request
                .await
                .map_err(|e| Error::Internal(format!("insert request: {e}")))?,
            None => Err(Error::Internal("the insert has already ended".into())),
        }
    }

    /// Ends the body and waits for ClickHouse's answer.
    pub(crate) async fn end(mut self) -> Result<()> {
        let held = self.held.take().map(|b| vec![b]);
        if !self.chunk(held).await {
            self.blocks = None;
            return self
                .answer()
                .await
                .and(Err(Error::Internal("ClickHouse ended an insert early".into())));
        }
        self.ended.store(true, Ordering::Release);
        self.blocks = None;
        self.answer().await
    }
}

impl Drop for NativeInsert {
    fn drop(&mut self) {
        if self.blocks.take().is_some() {
            // Abandoned: the body ends in an error (see `new`), so the request is aborted.
            if let Some(request) = &self.response {
                request.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_its_counts_then_each_column_named_and_typed() {
        let mut b = Block::new(2, 2);
        b.strings("s", ["ab", ""].into_iter());
        b.numbers("n", "UInt16", [1u16, 300].into_iter().map(u16::to_le_bytes));
        let expected: Vec<u8> = [
            &[2u8, 2][..],
            &[1, b's', 6],
            b"String",
            &[2, b'a', b'b', 0],
            &[1, b'n', 6],
            b"UInt16",
            &[1, 0, 44, 1],
        ]
        .concat();
        assert_eq!(b.into_bytes(), expected);
    }

    #[test]
    fn lengths_over_127_take_more_bytes() {
        let mut buf = Vec::new();
        leb128(&mut buf, 300);
        assert_eq!(buf, [0xAC, 0x02]);
    }

    #[test]
    #[should_panic(expected = "1 columns written of 2 declared")]
    fn a_block_short_of_a_column_is_refused() {
        let mut b = Block::new(2, 1);
        b.strings("s", ["ab"].into_iter());
        b.into_bytes();
    }

    #[test]
    #[should_panic(expected = "1 values for 2 rows")]
    fn a_short_column_is_refused() {
        let mut b = Block::new(1, 2);
        b.strings("s", ["ab"].into_iter());
    }
}
