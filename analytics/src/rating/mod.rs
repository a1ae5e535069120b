//! Rating on the usage stores, computed in Polars.
//!
//! ```text
//! cdrs (ClickHouse / SQLite) ──read as columns──► CdrColumns ──engine::Rater (Polars, a slice of
//!        days at a time)──► rated rows ──write under the run id──► rated_usage (SIM × day ×
//!        network) + rated_fees (SIM × month)
//! ```
//!
//! Each store reads the tenant's CDRs of the period, hands them to the rater and writes what
//! comes back under the run's id; ClickHouse writes slices of days (as `Native` blocks on two
//! insert requests, in turn) while the next is rated, so memory holds the CDR columns and a few
//! slices' rows, not the whole period's results. Which run is current is recorded in the
//! transactional store; queries read current runs only, so a run in progress or a failed one is
//! never seen.

mod clickhouse;
mod clickhouse_sql;
pub mod columns;
mod embedded;
pub mod engine;
mod key;
mod native;

pub(crate) use clickhouse::CUSTOMER_TEXT;
pub use columns::{CdrColumns, Dictionary, FeeRow, Names, Rated, RatedRow};
pub use engine::{rate, Rater};
