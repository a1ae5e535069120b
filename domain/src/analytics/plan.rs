//! From a request to a cube query: the time range in the request's zone, the buckets, the cube
//! that serves them exactly, and summing the cube's rows into the answer's rows.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::{
    AnalyticsRequest, AnalyticsRow, Cube, CubeFilter, CubeGroup, CubeQuery, CubeRow, DimValue, Dimension,
    Measure, Measures, Unserved, MAX_BUCKETS,
};
use crate::identifiers::{Iccid, MccMnc};
use crate::usage::networks::Networks;
use crate::usage::Granularity;
use crate::{Error, Result};

/// Ranges a client names instead of giving instants (all in the request's time zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// The 24 hours up to the end of the current hour (hourly buckets).
    Last24Hours,
    /// Today and the six days before (daily buckets).
    Last7Days,
    /// Today and the 29 days before (daily buckets).
    Last30Days,
    /// The calendar month holding today (daily buckets).
    ThisMonth,
    /// The calendar year holding today (monthly buckets).
    ThisYear,
}

/// Midnight starting `date` in `tz` (the first instant of the day where midnight is skipped).
pub fn local_midnight(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let mut at: NaiveDateTime = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..4 {
        if let Some(t) = tz.from_local_datetime(&at).earliest() {
            return t.with_timezone(&Utc);
        }
        at += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&at)
}

fn local_date(tz: Tz, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// The start, in `tz`, of the bucket of granularity `g` that holds `t`.
pub fn bucket_start(tz: Tz, g: Granularity, t: DateTime<Utc>) -> DateTime<Utc> {
    let local = t.with_timezone(&tz);
    match g {
        Granularity::Hour => {
            let into_hour =
                Duration::minutes(i64::from(local.minute())) + Duration::seconds(i64::from(local.second()));
            (t - into_hour).with_nanosecond(0).unwrap_or(t)
        }
        Granularity::Day => local_midnight(tz, local.date_naive()),
        Granularity::Month => {
            local_midnight(tz, local.date_naive().with_day(1).unwrap_or(local.date_naive()))
        }
        Granularity::Year => local_midnight(
            tz,
            NaiveDate::from_ymd_opt(local.year(), 1, 1).unwrap_or(local.date_naive()),
        ),
    }
}

/// The start of the bucket after the one starting at `start`.
fn next_bucket(tz: Tz, g: Granularity, start: DateTime<Utc>) -> DateTime<Utc> {
    let d = local_date(tz, start);
    match g {
        Granularity::Hour => start + Duration::hours(1),
        Granularity::Day => local_midnight(tz, d + Duration::days(1)),
        Granularity::Month => local_midnight(tz, d.with_day(1).unwrap_or(d) + Months::new(1)),
        Granularity::Year => local_midnight(tz, NaiveDate::from_ymd_opt(d.year() + 1, 1, 1).unwrap_or(d)),
    }
}

fn granularity_name(g: Granularity) -> &'static str {
    match g {
        Granularity::Hour => "hour",
        Granularity::Day => "day",
        Granularity::Month => "month",
        Granularity::Year => "year",
    }
}

/// A preset's range and its natural granularity, for `now` in `tz`.
pub fn resolve_range(
    preset: Preset,
    tz: Tz,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>, Granularity) {
    let today = local_date(tz, now);
    let tomorrow = local_midnight(tz, today + Duration::days(1));
    match preset {
        Preset::Last24Hours => {
            let to = next_bucket(tz, Granularity::Hour, bucket_start(tz, Granularity::Hour, now));
            (to - Duration::hours(24), to, Granularity::Hour)
        }
        Preset::Last7Days => (
            local_midnight(tz, today - Duration::days(6)),
            tomorrow,
            Granularity::Day,
        ),
        Preset::Last30Days => (
            local_midnight(tz, today - Duration::days(29)),
            tomorrow,
            Granularity::Day,
        ),
        Preset::ThisMonth => {
            let from = bucket_start(tz, Granularity::Month, now);
            (from, next_bucket(tz, Granularity::Month, from), Granularity::Day)
        }
        Preset::ThisYear => {
            let from = bucket_start(tz, Granularity::Year, now);
            (from, next_bucket(tz, Granularity::Year, from), Granularity::Month)
        }
    }
}

/// The bucket bounds of a request: `[from, …, to]`. `from` and `to` must start buckets of the
/// granularity in the request's zone (named field and the nearest allowed instants otherwise).
pub fn bounds(req: &AnalyticsRequest) -> Result<Vec<DateTime<Utc>>> {
    if req.to <= req.from {
        return Err(Error::invalid(
            "timeRange.to",
            format!("must be after timeRange.from ({})", req.from.to_rfc3339()),
        ));
    }
    let Some(g) = req.granularity else {
        // One bucket: the finest cube holds whole hours.
        for (field, t) in [("timeRange.from", req.from), ("timeRange.to", req.to)] {
            let hour = crate::usage::period_start(t, Granularity::Hour);
            if hour != t {
                return Err(Error::invalid(
                    field,
                    format!(
                        "{} is inside an hour; ranges start and end on whole hours (e.g. {})",
                        t.to_rfc3339(),
                        hour.to_rfc3339()
                    ),
                ));
            }
        }
        return Ok(vec![req.from, req.to]);
    };
    let tz = req.time_zone;
    for (field, t) in [("timeRange.from", req.from), ("timeRange.to", req.to)] {
        let start = bucket_start(tz, g, t);
        if start != t {
            return Err(Error::invalid(
                field,
                format!(
                    "{} is not the start of a {} in {tz}; the {} holding it starts at {} and the next at {}",
                    t.to_rfc3339(),
                    granularity_name(g),
                    granularity_name(g),
                    start.to_rfc3339(),
                    next_bucket(tz, g, start).to_rfc3339()
                ),
            ));
        }
    }
    let mut out = vec![req.from];
    let mut at = req.from;
    while at < req.to {
        at = next_bucket(tz, g, at);
        out.push(at.min(req.to));
        if out.len() > MAX_BUCKETS + 1 {
            return Err(Error::invalid(
                "granularity",
                format!(
                    "the range spans more than {MAX_BUCKETS} {}s; choose a coarser granularity or a shorter range",
                    granularity_name(g)
                ),
            ));
        }
    }
    if !req.dimensions.contains(&super::Dimension::Time) {
        // Without TIME the answer has no buckets: one, so that SIMs count once over the range.
        return Ok(vec![req.from, req.to]);
    }
    Ok(out)
}

/// Whether `t` is on the grain `g` in UTC.
fn on_grain(t: DateTime<Utc>, g: Granularity) -> bool {
    crate::usage::period_start(t, g) == t
}

/// What the store is asked, and how its rows become the answer.
#[derive(Debug, Clone)]
pub struct Plan {
    pub query: CubeQuery,
    /// The store groups by SIM although the answer does not (labels, tariff plans, or SIMs
    /// counted once across networks of a country).
    pub by_sim_for_rollup: bool,
}

/// Whether the store must group `req`'s rows by SIM: for the SIM dimension, for what the fleet
/// adds per SIM (labels, tariff plans), and for active SIMs per country (a SIM on two networks
/// of one country counts once).
fn by_sim(req: &AnalyticsRequest) -> bool {
    let dims = &req.dimensions;
    dims.contains(&Dimension::Sim)
        || dims.contains(&Dimension::Label)
        || dims.contains(&Dimension::TariffPlan)
        || (dims.contains(&Dimension::Country) && req.measures.contains(&Measure::ActiveSims))
}

/// Picks the coarsest cube that serves `req` exactly, or says why none does.
pub fn choose_cube(
    req: &AnalyticsRequest,
    bounds: &[DateTime<Utc>],
) -> std::result::Result<Cube, (Unserved, String)> {
    let rated = req.measures.iter().any(|m| m.is_rated());
    let sessions = req.measures.contains(&Measure::Sessions)
        || req.dimensions.contains(&Dimension::Rat)
        || !req.filter.rats.is_empty();
    if rated && sessions {
        return Err((
            Unserved::MixedSources,
            "cost and rated bytes come from rated CDRs, sessions and radio access types from session updates; \
             no cube holds both: ask for them in two requests"
                .into(),
        ));
    }
    let candidates: &[Cube] = if rated {
        &[Cube::RatedDaily]
    } else if sessions {
        &[Cube::SessionsHourly]
    } else if !by_sim(req)
        && req.filter.iccids.is_empty()
        && req.filter.labels.is_empty()
        && req.filter.tariff_plans.is_empty()
    {
        &[Cube::NetworkMonthly, Cube::UsageDaily, Cube::UsageHourly]
    } else {
        &[Cube::UsageMonthly, Cube::UsageDaily, Cube::UsageHourly]
    };
    for c in candidates {
        if bounds.iter().all(|b| on_grain(*b, c.grain())) {
            return Ok(*c);
        }
    }
    let finest = candidates[candidates.len() - 1];
    let off = bounds
        .iter()
        .find(|b| !on_grain(**b, finest.grain()))
        .copied()
        .unwrap_or(req.from);
    Err((
        Unserved::TimeNotAligned,
        format!(
            "{} (a boundary of the request in {}) is not the start of a UTC {}, and {} holds whole UTC {}s",
            off.to_rfc3339(),
            req.time_zone,
            granularity_name(finest.grain()),
            finest.name(),
            granularity_name(finest.grain())
        ),
    ))
}

/// The store's part of `req` on `cube`; `iccids` are the SIMs the fleet-side filters (labels,
/// tariff plans) leave, `None` when there are none.
pub fn cube_query(
    req: &AnalyticsRequest,
    cube: Cube,
    bounds: Vec<DateTime<Utc>>,
    iccids: Option<Vec<Iccid>>,
    networks: &Networks,
) -> Plan {
    let dims = &req.dimensions;
    let sim = by_sim(req);
    let group = CubeGroup {
        customer: dims.contains(&Dimension::SubCustomer),
        sim,
        network: dims.contains(&Dimension::Network) || dims.contains(&Dimension::Country),
        rat: dims.contains(&Dimension::Rat),
    };
    let mut nets: Option<BTreeSet<MccMnc>> = None;
    if !req.filter.countries.is_empty() {
        let wanted: HashSet<String> = req
            .filter
            .countries
            .iter()
            .map(|c| c.to_ascii_uppercase())
            .collect();
        nets = Some(
            networks
                .all()
                .filter(|n| wanted.contains(&n.country_code))
                .map(|n| n.mcc_mnc.clone())
                .collect(),
        );
    }
    if !req.filter.networks.is_empty() {
        let given: BTreeSet<MccMnc> = req.filter.networks.iter().cloned().collect();
        nets = Some(match nets {
            Some(n) => n.intersection(&given).cloned().collect(),
            None => given,
        });
    }
    let mut sims: Option<Vec<Iccid>> = iccids;
    if !req.filter.iccids.is_empty() {
        sims = Some(match sims {
            Some(s) => {
                let keep: HashSet<&Iccid> = req.filter.iccids.iter().collect();
                s.into_iter().filter(|i| keep.contains(i)).collect()
            }
            None => req.filter.iccids.clone(),
        });
    }
    Plan {
        query: CubeQuery {
            cube,
            bounds,
            group,
            filter: CubeFilter {
                customer: req.filter.customer,
                iccids: sims,
                networks: nets.map(|n| n.into_iter().collect()),
                rats: (!req.filter.rats.is_empty()).then(|| req.filter.rats.clone()),
            },
            runs: Vec::new(),
            count_sims: req.measures.contains(&Measure::ActiveSims) && !sim,
        },
        by_sim_for_rollup: sim && !dims.contains(&Dimension::Sim),
    }
}

/// What the answer needs to know of a SIM beyond the cube (its labels and tariff plan today).
#[derive(Debug, Clone, Default)]
pub struct SimFacts {
    pub labels: BTreeMap<String, String>,
    pub tariff_plan: Option<String>,
}

/// Sums the store's rows into the answer's rows (ordered by their dimension values).
pub fn roll_up(
    req: &AnalyticsRequest,
    plan: &Plan,
    rows: &[CubeRow],
    facts: &HashMap<Iccid, SimFacts>,
    networks: &Networks,
    max_rows: usize,
) -> Result<Vec<AnalyticsRow>> {
    let no_facts = SimFacts::default();
    let mut out: BTreeMap<Vec<DimValue>, (Measures, HashSet<&Iccid>)> = BTreeMap::new();
    for r in rows {
        let f = r.iccid.as_ref().and_then(|i| facts.get(i)).unwrap_or(&no_facts);
        let mut key = Vec::with_capacity(req.dimensions.len());
        for d in &req.dimensions {
            key.push(match d {
                Dimension::Time => {
                    DimValue::Time(plan.query.bounds.get(r.bucket).copied().unwrap_or(req.from))
                }
                Dimension::Network => DimValue::Text(r.mcc_mnc.as_ref().map(|m| m.to_string())),
                Dimension::Country => DimValue::Text(
                    r.mcc_mnc
                        .as_ref()
                        .and_then(|m| networks.get(m))
                        .map(|n| n.country_code.clone())
                        .filter(|c| !c.is_empty()),
                ),
                Dimension::SubCustomer => DimValue::Text(r.customer_id.map(|c| c.to_string())),
                Dimension::Sim => DimValue::Text(r.iccid.as_ref().map(|i| i.to_string())),
                Dimension::Label => {
                    DimValue::Text(req.label_key.as_ref().and_then(|k| f.labels.get(k)).cloned())
                }
                Dimension::TariffPlan => DimValue::Text(f.tariff_plan.clone()),
                Dimension::Rat => DimValue::Text(r.rat.map(|r| r.name().to_owned())),
            });
        }
        let e = out.entry(key).or_default();
        e.0.add(r);
        if plan.query.group.sim {
            if let Some(i) = &r.iccid {
                e.1.insert(i);
            }
        } else {
            e.0.active_sims = e.0.active_sims.saturating_add(r.sims);
        }
    }
    if out.len() > max_rows {
        return Err(Error::invalid(
            "dimensions",
            format!(
                "the answer has {} rows, at most {max_rows} are returned: filter, group by fewer dimensions or drill down",
                out.len()
            ),
        ));
    }
    Ok(out
        .into_iter()
        .map(|(dims, (mut values, sims))| {
            if plan.query.group.sim {
                values.active_sims = sims.len() as u64;
            }
            AnalyticsRow { dims, values }
        })
        .collect())
}

/// The answer's totals: measures summed over the rows, active SIMs counted once over all of them
/// (`sims_total`: the store's distinct count when it did not group by SIM).
pub fn totals(rows: &[CubeRow], by_sim: bool, sims_total: u64) -> Measures {
    let mut t = Measures::default();
    let mut seen: HashSet<&Iccid> = HashSet::new();
    for r in rows {
        t.add(r);
        if let Some(i) = &r.iccid {
            seen.insert(i);
        }
    }
    t.active_sims = if by_sim { seen.len() as u64 } else { sims_total };
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::AnalyticsFilter;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn req(from: &str, to: &str, g: Option<Granularity>, tz: Tz, measures: Vec<Measure>) -> AnalyticsRequest {
        AnalyticsRequest {
            measures,
            dimensions: vec![Dimension::Time, Dimension::Network],
            label_key: None,
            filter: AnalyticsFilter::default(),
            from: t(from),
            to: t(to),
            granularity: g,
            time_zone: tz,
        }
    }

    fn route(r: &AnalyticsRequest) -> std::result::Result<Cube, (Unserved, String)> {
        choose_cube(r, &bounds(r).unwrap())
    }

    #[test]
    fn the_coarsest_exact_cube_serves() {
        let utc_months = req(
            "2026-01-01T00:00:00Z",
            "2026-04-01T00:00:00Z",
            Some(Granularity::Month),
            Tz::UTC,
            vec![Measure::BytesTotal],
        );
        assert_eq!(route(&utc_months).unwrap(), Cube::NetworkMonthly);
        // By SIM (or what the fleet adds per SIM), months come from the cube with a SIM column.
        let mut by_sim = utc_months.clone();
        by_sim.dimensions.push(Dimension::TariffPlan);
        assert_eq!(route(&by_sim).unwrap(), Cube::UsageMonthly);
        let mut country_sims = utc_months.clone();
        country_sims.dimensions = vec![Dimension::Country];
        country_sims.measures = vec![Measure::ActiveSims];
        assert_eq!(route(&country_sims).unwrap(), Cube::UsageMonthly);
        let mut labelled = utc_months.clone();
        labelled.filter.labels = vec![("site".into(), "north".into())];
        assert_eq!(route(&labelled).unwrap(), Cube::UsageMonthly);
        let utc_days = req(
            "2026-01-01T00:00:00Z",
            "2026-01-08T00:00:00Z",
            Some(Granularity::Day),
            Tz::UTC,
            vec![Measure::BytesTotal],
        );
        assert_eq!(route(&utc_days).unwrap(), Cube::UsageDaily);
        // A month in Berlin starts at 23:00 UTC the day before: only hours add up to it.
        let berlin_month = req(
            "2025-12-31T23:00:00Z",
            "2026-01-31T23:00:00Z",
            Some(Granularity::Month),
            chrono_tz::Europe::Berlin,
            vec![Measure::BytesTotal],
        );
        assert_eq!(route(&berlin_month).unwrap(), Cube::UsageHourly);
        let sessions = req(
            "2026-01-01T00:00:00Z",
            "2026-02-01T00:00:00Z",
            Some(Granularity::Month),
            Tz::UTC,
            vec![Measure::Sessions],
        );
        assert_eq!(route(&sessions).unwrap(), Cube::SessionsHourly);
        let cost = req(
            "2026-01-01T00:00:00Z",
            "2026-02-01T00:00:00Z",
            Some(Granularity::Month),
            Tz::UTC,
            vec![Measure::Cost],
        );
        assert_eq!(route(&cost).unwrap(), Cube::RatedDaily);
    }

    #[test]
    fn what_no_cube_can_serve_says_why() {
        let kolkata = req(
            "2026-01-01T18:30:00Z",
            "2026-01-03T18:30:00Z",
            Some(Granularity::Day),
            chrono_tz::Asia::Kolkata,
            vec![Measure::BytesTotal],
        );
        let (why, message) = route(&kolkata).unwrap_err();
        assert_eq!(why, Unserved::TimeNotAligned);
        assert!(message.contains("18:30"), "{message}");
        let berlin_cost = req(
            "2025-12-31T23:00:00Z",
            "2026-01-31T23:00:00Z",
            Some(Granularity::Month),
            chrono_tz::Europe::Berlin,
            vec![Measure::Cost],
        );
        assert_eq!(route(&berlin_cost).unwrap_err().0, Unserved::TimeNotAligned);
        let mixed = req(
            "2026-01-01T00:00:00Z",
            "2026-02-01T00:00:00Z",
            None,
            Tz::UTC,
            vec![Measure::Cost, Measure::Sessions],
        );
        assert_eq!(route(&mixed).unwrap_err().0, Unserved::MixedSources);
    }

    #[test]
    fn days_follow_the_zone_across_daylight_saving() {
        // Berlin moved to summer time on 2026-03-29: that day has 23 hours.
        let r = req(
            "2026-03-27T23:00:00Z",
            "2026-03-30T22:00:00Z",
            Some(Granularity::Day),
            chrono_tz::Europe::Berlin,
            vec![Measure::BytesTotal],
        );
        assert_eq!(
            bounds(&r).unwrap(),
            vec![
                t("2026-03-27T23:00:00Z"),
                t("2026-03-28T23:00:00Z"),
                t("2026-03-29T22:00:00Z"),
                t("2026-03-30T22:00:00Z")
            ]
        );
    }

    #[test]
    fn a_range_off_the_granularity_is_refused_with_the_nearest_starts() {
        let r = req(
            "2026-03-05T10:00:00Z",
            "2026-03-07T00:00:00Z",
            Some(Granularity::Day),
            chrono_tz::Europe::Berlin,
            vec![Measure::BytesTotal],
        );
        let e = bounds(&r).unwrap_err().to_string();
        assert!(e.starts_with("timeRange.from:"), "{e}");
        assert!(e.contains("2026-03-04T23:00:00+00:00"), "{e}");
        let too_many = req(
            "2026-01-01T00:00:00Z",
            "2026-03-01T00:00:00Z",
            Some(Granularity::Hour),
            Tz::UTC,
            vec![Measure::BytesTotal],
        );
        assert!(bounds(&too_many)
            .unwrap_err()
            .to_string()
            .starts_with("granularity:"));
    }

    #[test]
    fn without_time_the_range_is_one_bucket_and_ends_on_hours() {
        let mut r = req(
            "2026-03-01T00:00:00Z",
            "2026-03-08T00:00:00Z",
            Some(Granularity::Day),
            Tz::UTC,
            vec![Measure::ActiveSims],
        );
        r.dimensions = vec![Dimension::Network];
        // Seven daily buckets would count a SIM active every day seven times.
        assert_eq!(bounds(&r).unwrap(), vec![r.from, r.to]);
        let off = req(
            "2026-03-01T10:17:00Z",
            "2026-03-08T00:00:00Z",
            None,
            Tz::UTC,
            vec![Measure::BytesTotal],
        );
        let e = bounds(&off).unwrap_err().to_string();
        assert!(e.starts_with("timeRange.from:") && e.contains("10:00:00"), "{e}");
    }

    #[test]
    fn presets_are_calendar_ranges_in_the_zone() {
        let now = t("2026-11-23T09:30:00Z");
        let (from, to, g) = resolve_range(Preset::ThisMonth, chrono_tz::Europe::Berlin, now);
        assert_eq!(
            (from, to, g),
            (
                t("2026-10-31T23:00:00Z"),
                t("2026-11-30T23:00:00Z"),
                Granularity::Day
            )
        );
        let (from, to, g) = resolve_range(Preset::Last24Hours, Tz::UTC, now);
        assert_eq!(
            (from, to, g),
            (
                t("2026-11-22T10:00:00Z"),
                t("2026-11-23T10:00:00Z"),
                Granularity::Hour
            )
        );
        let (from, to, _) = resolve_range(Preset::Last7Days, Tz::UTC, now);
        assert_eq!((from, to), (t("2026-11-17T00:00:00Z"), t("2026-11-24T00:00:00Z")));
        let (from, to, g) = resolve_range(Preset::ThisYear, Tz::UTC, now);
        assert_eq!(
            (from, to, g),
            (
                t("2026-01-01T00:00:00Z"),
                t("2027-01-01T00:00:00Z"),
                Granularity::Month
            )
        );
    }
}
