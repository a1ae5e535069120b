#![doc = include_str!("../README.md")]

mod clickhouse;
pub mod cubes;
mod embedded;
pub mod rating;
mod stored;

pub use clickhouse::{ClickHouseConfig, ClickHouseUsage, BUFFERED_CUBES};
pub use embedded::EmbeddedUsage;

use chrono::NaiveDate;

/// Days since 1970-01-01, the representation of ClickHouse's `Date` (UInt16).
pub(crate) fn date_to_days(d: NaiveDate) -> ioto_domain::Result<u16> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    u16::try_from((d - epoch).num_days())
        .map_err(|_| ioto_domain::Error::invalid("day", format!("{d} is outside 1970-01-01..2149-06-06")))
}

pub(crate) fn days_to_date(days: u16) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default() + chrono::Days::new(u64::from(days))
}

/// Sums bytes `(in, out)` of items with the same key, ordered by key.
fn sum_by<T, K: Ord>(
    items: Vec<T>,
    mut key_and_bytes: impl FnMut(T) -> (K, (u64, u64)),
) -> std::collections::BTreeMap<K, (u64, u64)> {
    let mut sums = std::collections::BTreeMap::new();
    for item in items {
        let (key, (bytes_in, bytes_out)) = key_and_bytes(item);
        let e: &mut (u64, u64) = sums.entry(key).or_default();
        e.0 += bytes_in;
        e.1 += bytes_out;
    }
    sums
}

/// Sums finer points into `granularity` periods (per network), oldest first.
pub(crate) fn roll_up(
    points: Vec<ioto_domain::ports::UsagePoint>,
    granularity: ioto_domain::ports::Granularity,
) -> Vec<ioto_domain::ports::UsagePoint> {
    use ioto_domain::ports::{period_start, UsagePoint};
    sum_by(points, |p| {
        (
            (period_start(p.period, granularity), p.mcc_mnc, p.customer_id),
            (p.bytes_in, p.bytes_out),
        )
    })
    .into_iter()
    .map(
        |((period, mcc_mnc, customer_id), (bytes_in, bytes_out))| UsagePoint {
            period,
            mcc_mnc,
            customer_id,
            bytes_in,
            bytes_out,
        },
    )
    .collect()
}

/// Sums finer sub-customer points into `granularity` periods, oldest first.
pub(crate) fn roll_up_customers(
    points: Vec<ioto_domain::ports::CustomerUsagePoint>,
    granularity: ioto_domain::ports::Granularity,
) -> Vec<ioto_domain::ports::CustomerUsagePoint> {
    use ioto_domain::ports::{period_start, CustomerUsagePoint};
    sum_by(points, |p| {
        (
            (period_start(p.period, granularity), p.customer_id, p.mcc_mnc),
            (p.bytes_in, p.bytes_out),
        )
    })
    .into_iter()
    .map(
        |((period, customer_id, mcc_mnc), (bytes_in, bytes_out))| CustomerUsagePoint {
            period,
            customer_id,
            mcc_mnc,
            bytes_in,
            bytes_out,
        },
    )
    .collect()
}

/// Parses `major.minor…` of a ClickHouse version string.
pub fn parse_version(v: &str) -> (u32, u32) {
    let mut parts = v.trim().split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Runs `produce` on a task of its own, handing what it sends through a channel that holds two
/// items: a stream the consumer pulls at its own pace (the producer waits while both are
/// unread, and stops when the stream is dropped). An error of `produce` is the stream's last
/// item. Nothing runs until the stream is first polled: a stream made and dropped (a request
/// checked, not run) costs no query.
pub(crate) fn channel_stream<T, F, Fut>(
    produce: F,
) -> futures::stream::BoxStream<'static, ioto_domain::Result<T>>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<ioto_domain::Result<T>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ioto_domain::Result<()>> + Send + 'static,
{
    use futures::StreamExt as _;
    let start = async move {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let done = tx.clone();
        let work = tokio::spawn(produce(tx));
        tokio::spawn(async move {
            // A producer that failed or panicked ends the stream with an error, never early: a
            // consumer must not take a cut stream for a whole one.
            let end = match work.await {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e,
                Err(e) => ioto_domain::Error::Internal(format!("reading from the usage store stopped: {e}")),
            };
            let _ = done.send(Err(end)).await;
        });
        rx
    };
    futures::stream::once(start)
        .flat_map(|rx| {
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
        })
        .boxed()
}

/// Rows gathered into batches of `size` and handed to a [`channel_stream`] consumer.
pub(crate) struct Batches<T> {
    tx: tokio::sync::mpsc::Sender<ioto_domain::Result<Vec<T>>>,
    rows: Vec<T>,
    size: usize,
}

impl<T> Batches<T> {
    pub(crate) fn new(tx: tokio::sync::mpsc::Sender<ioto_domain::Result<Vec<T>>>, size: usize) -> Self {
        let size = size.max(1);
        Self {
            tx,
            rows: Vec::with_capacity(size),
            size,
        }
    }

    /// Adds a row, sending the batch once full; `false` when the consumer stopped reading.
    pub(crate) async fn push(&mut self, row: T) -> bool {
        self.rows.push(row);
        if self.rows.len() < self.size {
            return true;
        }
        let full = std::mem::replace(&mut self.rows, Vec::with_capacity(self.size));
        self.tx.send(Ok(full)).await.is_ok()
    }

    /// Sends the last, partial batch.
    pub(crate) async fn finish(self) {
        if !self.rows.is_empty() {
            let _ = self.tx.send(Ok(self.rows)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_day_numbers() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        assert_eq!(days_to_date(date_to_days(d).unwrap()), d);
        assert!(date_to_days(NaiveDate::from_ymd_opt(1969, 12, 31).unwrap()).is_err());
    }

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("18.16.1"), (18, 16));
        assert_eq!(parse_version("24.8.4.13"), (24, 8));
        assert_eq!(parse_version("garbage"), (0, 0));
    }
}
