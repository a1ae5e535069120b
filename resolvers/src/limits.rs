//! What a request may cost, counted before it runs (`schema.limit_complexity`): a field costs 1
//! plus its children; a list field costs its children once per item it may return (its page
//! size, or the default when none is given), and a field that asks a store once per parent (not
//! batched) adds [`BACKEND_CALL`]. So `sims(first: 1000) { nodes { events(first: 1000) … } }` is
//! priced at a million nested items and refused before any query runs, naming the limit.
//!
//! Lists whose length depends on data (usage per period, analytics rows) are priced by the rows
//! they return at the least: one per period of the range (`customerUsage`, `Sim.usage`) or per
//! time bucket (`usageAnalytics`), times the fields asked of each; lists of a bounded kind
//! (carriers, dashboard panels, rated rows) by an assumed size. Every alias is priced on its own,
//! so asking the same list many times adds up.

use chrono::{DateTime, Utc};
use ioto_domain::ports::Granularity;

use crate::analytics::{DimensionGql, PresetGql, UsageAnalyticsInput};
use crate::billing::RatedDimensionGql;
use crate::usage::GranularityKind;

/// The cost of one backend query made per parent object.
pub const BACKEND_CALL: usize = 10;

/// Most any one field is priced at. async-graphql adds the prices of a selection's fields
/// without checking for overflow, so each is kept far below where a sum of many could wrap.
pub const MAX_FIELD_COST: usize = u32::MAX as usize;

/// Networks assumed in a carrier breakdown.
const CARRIERS: usize = 50;
/// Store queries behind the dashboard, and the rows of its lists.
const DASHBOARD_QUERIES: usize = 8;
const DASHBOARD_ROWS: usize = 20;

/// The cost of a page of `first` (or `default`) items of `child` cost each, fetched with one
/// backend query per parent.
pub fn page_cost(first: Option<i32>, default: usize, child: usize) -> usize {
    let items = first.map_or(default, |n| usize::try_from(n).unwrap_or(0)).max(1);
    BACKEND_CALL
        .saturating_add(items.saturating_mul(child))
        .min(MAX_FIELD_COST)
}

/// The cost of a field that makes one backend query per parent.
pub fn backend_call(child: usize) -> usize {
    BACKEND_CALL.saturating_add(child).min(MAX_FIELD_COST)
}

/// The cost of `rows` rows of `child` cost each, read with one backend query.
pub fn rows_cost(rows: usize, child: usize) -> usize {
    page_cost(None, rows, child)
}

fn hours(g: Granularity) -> i64 {
    match g {
        Granularity::Hour => 1,
        Granularity::Day => 24,
        Granularity::Month => 28 * 24,
        Granularity::Year => 365 * 24,
    }
}

/// Periods of `granularity` (default DAY) in `[from, to)`, at least one.
pub(crate) fn periods(
    from: &DateTime<Utc>,
    to: &DateTime<Utc>,
    granularity: Option<GranularityKind>,
) -> usize {
    let g: Granularity = granularity.unwrap_or(GranularityKind::Day).into();
    let span = u64::try_from((*to - *from).num_hours()).unwrap_or(0);
    let per = u64::try_from(hours(g)).unwrap_or(1);
    usize::try_from(span.div_ceil(per)).unwrap_or(usize::MAX).max(1)
}

/// `customerUsage` and `Sim.usage`: a row per period at the least.
pub(crate) fn usage_cost(
    from: &DateTime<Utc>,
    to: &DateTime<Utc>,
    granularity: Option<GranularityKind>,
    child: usize,
) -> usize {
    rows_cost(periods(from, to, granularity), child)
}

/// `usageAnalytics`: a row per time bucket at the least (one row per group without `TIME`).
pub(crate) fn analytics_cost(input: &UsageAnalyticsInput, child: usize) -> usize {
    let buckets = if input.dimensions.contains(&DimensionGql::Time) {
        let (span, natural) = match (
            input.time_range.preset,
            input.time_range.from,
            input.time_range.to,
        ) {
            (Some(p), _, _) => match p {
                PresetGql::Last24Hours => (24, Some(Granularity::Hour)),
                PresetGql::Last7Days => (7 * 24, Some(Granularity::Day)),
                PresetGql::Last30Days => (30 * 24, Some(Granularity::Day)),
                PresetGql::ThisMonth => (31 * 24, Some(Granularity::Day)),
                PresetGql::ThisYear => (366 * 24, Some(Granularity::Month)),
            },
            (None, Some(from), Some(to)) => ((to - from).num_hours().max(0), None),
            _ => (0, None),
        };
        match input.granularity.map(Granularity::from).or(natural) {
            Some(g) => usize::try_from(span / hours(g))
                .unwrap_or(usize::MAX)
                .min(ioto_domain::analytics::MAX_BUCKETS),
            None => 1,
        }
    } else {
        1
    };
    rows_cost(buckets, child)
}

/// `carrierBreakdown`: two store queries (traffic, cost) and a row per network.
pub fn carriers_cost(child: usize) -> usize {
    BACKEND_CALL
        .saturating_add(rows_cost(CARRIERS, child))
        .min(MAX_FIELD_COST)
}

/// `dashboard`: its store queries and the rows of its lists.
pub fn dashboard_cost(child: usize) -> usize {
    (DASHBOARD_QUERIES - 1)
        .saturating_mul(BACKEND_CALL)
        .saturating_add(rows_cost(DASHBOARD_ROWS, child))
        .min(MAX_FIELD_COST)
}

/// `ratedUsage`: a row per value of `by` (per SIM: a fleet's worth).
pub(crate) fn rated_cost(by: RatedDimensionGql, child: usize) -> usize {
    let rows = match by {
        RatedDimensionGql::Tenant => 1,
        RatedDimensionGql::Month => 1,
        RatedDimensionGql::Day => 31,
        RatedDimensionGql::Sim => 1_000,
        RatedDimensionGql::Customer
        | RatedDimensionGql::Network
        | RatedDimensionGql::Zone
        | RatedDimensionGql::TariffPlan => 50,
    };
    rows_cost(rows, child)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_multiply_their_children() {
        assert_eq!(page_cost(Some(100), 50, 5), 510);
        assert_eq!(page_cost(None, 50, 5), 260);
        assert_eq!(
            page_cost(Some(-3), 50, 5),
            15,
            "a bad size is answered by the resolver"
        );
        assert_eq!(
            page_cost(Some(i32::MAX), 50, usize::MAX),
            MAX_FIELD_COST,
            "saturates"
        );
    }

    #[test]
    fn usage_is_priced_per_period() {
        let from = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let to = from + chrono::Duration::days(83);
        assert_eq!(periods(&from, &to, Some(GranularityKind::Hour)), 83 * 24);
        assert_eq!(periods(&from, &to, None), 83);
        assert_eq!(
            periods(&to, &from, None),
            1,
            "a backwards range is answered by the resolver"
        );
        assert_eq!(
            usage_cost(&from, &to, Some(GranularityKind::Hour), 5),
            10 + 83 * 24 * 5
        );
    }
}
