//! Rating on the usage stores, computed in Polars.
//!
//! ```text
//! cdrs (ClickHouse / SQLite) ──read as columns──► CdrColumns ──engine::rate (Polars)──► Rated
//!        ──write under the run id──► rated_usage (SIM × day × network) + rated_fees (SIM × month)
//! ```
//!
//! Each store reads the tenant's CDRs of the period, hands them to [`engine::rate`] and writes
//! what comes back under the run's id. Which run is current is recorded in the transactional
//! store; queries read current runs only, so a run in progress or a failed one is never seen.

mod clickhouse;
mod clickhouse_sql;
mod embedded;
pub mod engine;

pub use engine::{rate, CdrColumns, Dictionary, FeeRow, Rated, RatedRow};
