//! The hourly evaluation of `ioto-bench forecast`: SIMs forecast hour by hour (their simulated days
//! split into hours by `SimulatedSim::hours`, the device kind's daily rhythm with noise) against
//! the hours that followed, and today's total projected at noon against the day's true total.
//!
//! - **SIMs**: one in k of the fleet, k = ⌈SIMs / 2,000⌉, so at most 2,000, which keeps this part
//!   of a run short: each SIM and origin runs two backtests (a daily ETS fit per backtest origin)
//!   and tries the projection of today on 21 past days.
//! - **Origins**: midnight of days `days` − 2, − 5, − 8 and − 11 (three days apart, so that they
//!   fall on different weekdays); the history is the 28 days of hours before (672 hours), the
//!   holdout the next 48 hours (that day and the next, the longest hourly forecast).
//! - **Per method** forced (`hourly_point_forecast`) and the one `forecast_hours` chooses per SIM:
//!   MASE (mean absolute error over the in-sample error of the same hour the day before, as the M4
//!   competition scales its hourly series), its mean and median over the SIM-origins; WAPE over
//!   every SIM-hour; the tenant's hourly WAPE with the SIMs' forecasts summed hour by hour (the
//!   tenant: the SIMs evaluated, together). The tenant's own series (the SIMs' hours summed) is
//!   also forecast directly.
//! - **Coverage** of the chosen forecasts' 80 % and 95 % intervals over every SIM-hour.
//! - **Today at noon**: `rest_of_today` with the first 12 hours of the origin's day; WAPE of the
//!   projected day total against the true one over SIM-days, next to the day total the chosen
//!   forecast expected at midnight; coverage of its intervals; the tenant's, with the SIMs'
//!   projections summed and with its own series projected.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::bail;
use chrono::{DateTime, NaiveTime, Utc};
use ioto_forecast::hourly::{hourly_point_forecast, DAY_HOURS};
use ioto_forecast::series::add_days;
use ioto_forecast::simulate::{SimulatedFleet, SimulatedSim};
use ioto_forecast::{
    forecast_hours, rest_of_today, seasonal_mase, wape, HourlyMethod, HourlySeries, MAX_HOURLY_HORIZON,
};

use super::accuracy::MethodAccuracy;
use super::{on_threads, percent, yes_no, Figure};
use crate::common::median_spread;

/// The most SIMs forecast hour by hour (a larger fleet gives one SIM in k), so that the hourly part
/// of a run stays short at 10,000 SIMs.
const MAX_SIMS: usize = 2_000;
/// Days of hours each forecast reads: four weeks.
const HISTORY_DAYS: usize = 28;
/// Hours each forecast reads.
const HISTORY_HOURS: usize = HISTORY_DAYS * DAY_HOURS;
/// Forecast origins per SIM.
const ORIGINS: usize = 4;
/// Days between two origins: three, so that they fall on different weekdays.
const ORIGIN_SPACING_DAYS: usize = 3;
/// Hours held out after an origin: that day and the next, the longest hourly forecast.
const HOLDOUT_HOURS: usize = MAX_HOURLY_HORIZON;
/// Hours of the day seen when today's total is projected: up to noon.
const NOON: usize = 12;
/// The methods forced, in the order printed; the chosen one follows them (row [`CHOSEN`]).
const FORCED: [HourlyMethod; 5] = [
    HourlyMethod::Naive,
    HourlyMethod::SeasonalNaiveDay,
    HourlyMethod::SeasonalNaiveWeek,
    HourlyMethod::Drift,
    HourlyMethod::EtsProfile,
];
/// The row of the method chosen per SIM.
const CHOSEN: usize = FORCED.len();
/// Rows: the forced methods and the chosen one.
const ROWS: usize = FORCED.len() + 1;
/// The row of the same hour yesterday, the baseline the chosen method must not be worse than.
const SEASONAL_NAIVE: usize = 1;

/// The hourly evaluation of one fleet.
pub struct Hourly {
    /// SIMs forecast hour by hour: one in `stride` of the fleet's `fleet_sims`.
    pub sims: usize,
    pub fleet_sims: usize,
    pub stride: usize,
    /// The days whose midnight the forecasts start at, latest first.
    pub origins: Vec<usize>,
    /// The forced methods, then the chosen one.
    pub methods: Vec<MethodAccuracy>,
    /// Share of SIM-hours inside the chosen forecasts' 80 % and 95 % intervals.
    pub coverage80: f64,
    pub coverage95: f64,
    /// SIM-origins per chosen method.
    pub chosen: BTreeMap<&'static str, usize>,
    /// The tenant's own series forecast directly: its method at each origin and its hourly WAPE.
    pub tenant_methods: Vec<&'static str>,
    pub tenant_wape: Option<f64>,
    /// WAPE of the day totals projected at noon, and of those the chosen forecast expected at
    /// midnight, over SIM-days.
    pub noon_wape: Option<f64>,
    pub midnight_wape: Option<f64>,
    /// Share of SIM-days whose total fell inside the noon projection's 80 % and 95 % intervals.
    pub noon_coverage80: f64,
    pub noon_coverage95: f64,
    /// WAPE of the tenant's day totals projected at noon: the SIMs' projections summed, and its own
    /// series projected.
    pub tenant_noon_wape: Option<f64>,
    pub tenant_noon_own_wape: Option<f64>,
    /// How long the evaluation took.
    pub elapsed: Duration,
}

/// Sums over part of the SIMs, merged into the fleet's.
struct Partial {
    mase: [Vec<f64>; ROWS],
    abs_error: [f64; ROWS],
    volume: f64,
    /// The tenant's hours per origin (ORIGINS × HOLDOUT_HOURS), per row: the SIMs' forecasts
    /// summed.
    tenant_forecast: [Vec<f64>; ROWS],
    /// The same for the SIMs' actual hours and (ORIGINS × HISTORY_HOURS) their histories.
    tenant_actual: Vec<f64>,
    tenant_history: Vec<f64>,
    inside80: usize,
    inside95: usize,
    sim_hours: usize,
    chosen: BTreeMap<&'static str, usize>,
    noon_error: f64,
    midnight_error: f64,
    day_volume: f64,
    noon_inside80: usize,
    noon_inside95: usize,
    sim_days: usize,
    /// Per origin, the SIMs' projected day totals summed.
    tenant_projection: [f64; ORIGINS],
}

impl Partial {
    fn new() -> Self {
        Self {
            mase: Default::default(),
            abs_error: [0.0; ROWS],
            volume: 0.0,
            tenant_forecast: std::array::from_fn(|_| vec![0.0; ORIGINS * HOLDOUT_HOURS]),
            tenant_actual: vec![0.0; ORIGINS * HOLDOUT_HOURS],
            tenant_history: vec![0.0; ORIGINS * HISTORY_HOURS],
            inside80: 0,
            inside95: 0,
            sim_hours: 0,
            chosen: BTreeMap::new(),
            noon_error: 0.0,
            midnight_error: 0.0,
            day_volume: 0.0,
            noon_inside80: 0,
            noon_inside95: 0,
            sim_days: 0,
            tenant_projection: [0.0; ORIGINS],
        }
    }

    /// One SIM's forecast of `row` from origin number `origin` against its `actual` hours.
    fn add(&mut self, row: usize, origin: usize, actual: &[f64], predicted: &[f64], history: &[f64]) {
        if let Some(m) = seasonal_mase(actual, predicted, history, DAY_HOURS) {
            self.mase[row].push(m);
        }
        self.abs_error[row] += actual
            .iter()
            .zip(predicted)
            .map(|(a, p)| (a - p).abs())
            .sum::<f64>();
        let slot = origin * HOLDOUT_HOURS;
        for (total, p) in self.tenant_forecast[row][slot..slot + HOLDOUT_HOURS]
            .iter_mut()
            .zip(predicted)
        {
            *total += p;
        }
    }

    fn merge(&mut self, other: Partial) {
        for (mine, theirs) in self.mase.iter_mut().zip(other.mase) {
            mine.extend(theirs);
        }
        for (mine, theirs) in self.abs_error.iter_mut().zip(other.abs_error) {
            *mine += theirs;
        }
        self.volume += other.volume;
        for (mine, theirs) in self.tenant_forecast.iter_mut().zip(other.tenant_forecast) {
            add_into(mine, &theirs);
        }
        add_into(&mut self.tenant_actual, &other.tenant_actual);
        add_into(&mut self.tenant_history, &other.tenant_history);
        self.inside80 += other.inside80;
        self.inside95 += other.inside95;
        self.sim_hours += other.sim_hours;
        for (method, count) in other.chosen {
            *self.chosen.entry(method).or_default() += count;
        }
        self.noon_error += other.noon_error;
        self.midnight_error += other.midnight_error;
        self.day_volume += other.day_volume;
        self.noon_inside80 += other.noon_inside80;
        self.noon_inside95 += other.noon_inside95;
        self.sim_days += other.sim_days;
        add_into(&mut self.tenant_projection, &other.tenant_projection);
    }
}

/// Adds `values` into `totals`, place by place.
fn add_into(totals: &mut [f64], values: &[f64]) {
    for (total, value) in totals.iter_mut().zip(values) {
        *total += value;
    }
}

/// `part / whole`; `None` when the whole is not positive.
fn share(part: f64, whole: f64) -> Option<f64> {
    if whole > 0.0 {
        Some(part / whole)
    } else {
        None
    }
}

/// Midnight UTC of day `day` of the fleet.
fn midnight(fleet: &SimulatedFleet, day: usize) -> DateTime<Utc> {
    add_days(fleet.start, day).and_time(NaiveTime::MIN).and_utc()
}

/// Evaluates one in k SIMs of `fleet` hour by hour (at most [`MAX_SIMS`]), on `threads` threads.
pub fn evaluate(fleet: &SimulatedFleet, threads: usize) -> anyhow::Result<Hourly> {
    let started = Instant::now();
    let holdout_days = HOLDOUT_HOURS / DAY_HOURS;
    let needed = HISTORY_DAYS + holdout_days + (ORIGINS - 1) * ORIGIN_SPACING_DAYS;
    if fleet.days < needed {
        bail!(
            "the hourly evaluation needs {needed} days of history, not {}",
            fleet.days
        );
    }
    let origins: Vec<usize> = (0..ORIGINS)
        .map(|k| fleet.days - holdout_days - k * ORIGIN_SPACING_DAYS)
        .collect();
    let stride = fleet.sims.len().div_ceil(MAX_SIMS).max(1);
    let sampled: Vec<&SimulatedSim> = fleet.sims.iter().step_by(stride).collect();
    let parts = on_threads(&sampled, threads, |_, sims| evaluate_part(fleet, sims, &origins))?;
    let mut total = Partial::new();
    for part in parts {
        total.merge(part?);
    }

    // The tenant as the product forecasts it: its own series, the SIMs' hours summed.
    let (mut own_error, mut own_noon_error) = (0.0, 0.0);
    let mut tenant_methods = Vec::with_capacity(ORIGINS);
    let mut tenant_days = [0.0; ORIGINS];
    for (index, &day) in origins.iter().enumerate() {
        let history = total.tenant_history[index * HISTORY_HOURS..(index + 1) * HISTORY_HOURS].to_vec();
        let actual = &total.tenant_actual[index * HOLDOUT_HOURS..(index + 1) * HOLDOUT_HOURS];
        let series = HourlySeries::new(midnight(fleet, day - HISTORY_DAYS), history)?;
        let forecast = forecast_hours(&series, HOLDOUT_HOURS)?;
        own_error += forecast
            .hours
            .iter()
            .zip(actual)
            .map(|(hour, a)| (a - hour.point).abs())
            .sum::<f64>();
        tenant_methods.push(forecast.method.as_str());
        let day_total: f64 = actual[..DAY_HOURS].iter().sum();
        let today = rest_of_today(&series, &actual[..NOON])?;
        own_noon_error += (today.point - day_total).abs();
        tenant_days[index] = day_total;
    }
    let tenant_volume: f64 = total.tenant_actual.iter().sum();
    let tenant_day_volume: f64 = tenant_days.iter().sum();
    let tenant_noon_error: f64 = total
        .tenant_projection
        .iter()
        .zip(&tenant_days)
        .map(|(projected, day_total)| (projected - day_total).abs())
        .sum();

    let methods = (0..ROWS)
        .map(|row| {
            let (mase_median, _, _) = median_spread(&total.mase[row]);
            let count = total.mase[row].len().max(1) as f64;
            MethodAccuracy {
                name: FORCED.get(row).map_or("chosen per SIM", |method| method.as_str()),
                mase_mean: total.mase[row].iter().sum::<f64>() / count,
                mase_median,
                wape_sims: share(total.abs_error[row], total.volume),
                wape_tenant: wape(&total.tenant_actual, &total.tenant_forecast[row]),
            }
        })
        .collect();
    let sim_hours = total.sim_hours.max(1) as f64;
    let sim_days = total.sim_days.max(1) as f64;
    Ok(Hourly {
        sims: sampled.len(),
        fleet_sims: fleet.sims.len(),
        stride,
        origins,
        methods,
        coverage80: total.inside80 as f64 / sim_hours,
        coverage95: total.inside95 as f64 / sim_hours,
        chosen: total.chosen,
        tenant_methods,
        tenant_wape: share(own_error, tenant_volume),
        noon_wape: share(total.noon_error, total.day_volume),
        midnight_wape: share(total.midnight_error, total.day_volume),
        noon_coverage80: total.noon_inside80 as f64 / sim_days,
        noon_coverage95: total.noon_inside95 as f64 / sim_days,
        tenant_noon_wape: share(tenant_noon_error, tenant_day_volume),
        tenant_noon_own_wape: share(own_noon_error, tenant_day_volume),
        elapsed: started.elapsed(),
    })
}

/// The sums of `sims` at every origin of `origins` (days, each at least [`HISTORY_DAYS`]).
fn evaluate_part(
    fleet: &SimulatedFleet,
    sims: &[&SimulatedSim],
    origins: &[usize],
) -> anyhow::Result<Partial> {
    let first_day = origins
        .iter()
        .min()
        .copied()
        .unwrap_or(0)
        .saturating_sub(HISTORY_DAYS);
    let end_day = origins.iter().max().copied().unwrap_or(0) + HOLDOUT_HOURS / DAY_HOURS;
    let mut partial = Partial::new();
    for sim in sims {
        if sim.daily_bytes.len() < end_day {
            bail!(
                "SIM {} has {} days, not {}",
                sim.id,
                sim.daily_bytes.len(),
                fleet.days
            );
        }
        // The hours of the days every origin reads, from the first history's first day.
        let window: Vec<f64> = (first_day..end_day).flat_map(|day| sim.hours(day)).collect();
        for (index, &day) in origins.iter().enumerate() {
            let at = (day - first_day) * DAY_HOURS;
            let history = &window[at - HISTORY_HOURS..at];
            let actual = &window[at..at + HOLDOUT_HOURS];
            for (row, method) in FORCED.iter().enumerate() {
                let predicted = hourly_point_forecast(*method, history, 0, HOLDOUT_HOURS);
                partial.add(row, index, actual, &predicted, history);
            }
            let series = HourlySeries::new(midnight(fleet, day - HISTORY_DAYS), history.to_vec())?;
            let chosen = forecast_hours(&series, HOLDOUT_HOURS)?;
            let points: Vec<f64> = chosen.hours.iter().map(|hour| hour.point).collect();
            partial.add(CHOSEN, index, actual, &points, history);
            for (hour, a) in chosen.hours.iter().zip(actual) {
                partial.inside80 += usize::from((hour.lo80..=hour.hi80).contains(a));
                partial.inside95 += usize::from((hour.lo95..=hour.hi95).contains(a));
            }
            partial.sim_hours += actual.len();
            *partial.chosen.entry(chosen.method.as_str()).or_default() += 1;
            partial.volume += actual.iter().sum::<f64>();
            let slot = index * HOLDOUT_HOURS;
            add_into(&mut partial.tenant_actual[slot..slot + HOLDOUT_HOURS], actual);
            let slot = index * HISTORY_HOURS;
            add_into(&mut partial.tenant_history[slot..slot + HISTORY_HOURS], history);

            // Today at noon, against the day's true total and what the forecast at midnight expected.
            let day_total: f64 = actual[..DAY_HOURS].iter().sum();
            let today = rest_of_today(&series, &actual[..NOON])?;
            partial.noon_error += (today.point - day_total).abs();
            partial.midnight_error += (points[..DAY_HOURS].iter().sum::<f64>() - day_total).abs();
            partial.day_volume += day_total;
            partial.noon_inside80 += usize::from((today.lo80..=today.hi80).contains(&day_total));
            partial.noon_inside95 += usize::from((today.lo95..=today.hi95).contains(&day_total));
            partial.sim_days += 1;
            partial.tenant_projection[index] += today.point;
        }
    }
    Ok(partial)
}

pub fn print(h: &Hourly, cores: usize) {
    let origins: Vec<String> = h.origins.iter().map(usize::to_string).collect();
    println!(
        "hourly: one SIM in {} ({} of {}, at most {MAX_SIMS}, to keep the run short), \
         its days split into hours by the simulator's daily rhythm of its device kind; forecasts from \
         midnight of days {} (day 0 the first), each from the {HISTORY_DAYS} days of hours before, \
         the next {HOLDOUT_HOURS} hours held out; the tenant: these SIMs together ({:.1} s on {cores} cores)",
        h.stride,
        h.sims,
        h.fleet_sims,
        origins.join(", "),
        h.elapsed.as_secs_f64()
    );
    println!(
        "| method | MASE mean | MASE median | WAPE, SIM level | tenant hourly WAPE, SIMs' forecasts summed |"
    );
    println!("|---|---:|---:|---:|---:|");
    for m in &h.methods {
        println!(
            "| {} | {:.3} | {:.3} | {} | {} |",
            m.name,
            m.mase_mean,
            m.mase_median,
            percent(m.wape_sims),
            percent(m.wape_tenant)
        );
    }
    println!(
        "(MASE: the mean absolute error over the in-sample error of the same hour the day before, as M4 \
         scales its hourly series, where seasonal naive reaches 1.19 and AutoETS 1.61)"
    );
    println!(
        "tenant's own hourly series forecast directly: methods {}, hourly WAPE {}",
        h.tenant_methods.join(", "),
        percent(h.tenant_wape)
    );
    let sim_origins = (h.sims * h.origins.len()).max(1) as f64;
    println!(
        "chosen forecasts' intervals over {} SIM-hours: 80 % covers {}, 95 % covers {}",
        h.sims * h.origins.len() * HOLDOUT_HOURS,
        percent(Some(h.coverage80)),
        percent(Some(h.coverage95))
    );
    let shares: Vec<String> = h
        .chosen
        .iter()
        .map(|(method, count)| format!("{method} {count} ({:.1} %)", 100.0 * *count as f64 / sim_origins))
        .collect();
    println!("methods chosen (SIM-origins): {}", shares.join(", "));
    if let (Some(chosen), Some(baseline)) = (h.methods.get(CHOSEN), h.methods.get(SEASONAL_NAIVE)) {
        let not_worse = chosen.mase_mean <= baseline.mase_mean
            && chosen.wape_sims.unwrap_or(f64::INFINITY) <= baseline.wape_sims.unwrap_or(f64::INFINITY);
        println!(
            "chosen never worse than the same hour yesterday (mean MASE and SIM-level WAPE): {} — MASE \
             mean {:.3} against {:.3}, WAPE {} against {}",
            yes_no(not_worse),
            chosen.mase_mean,
            baseline.mase_mean,
            percent(chosen.wape_sims),
            percent(baseline.wape_sims)
        );
    }
    println!(
        "today at noon ({NOON} hours seen), over {} SIM-days: day-total WAPE {} (the chosen forecast's \
         day at midnight: {}); 80 % interval covers {}, 95 % covers {}; tenant's day-total WAPE {} \
         with the SIMs' projections summed, {} projecting its own series",
        h.sims * h.origins.len(),
        percent(h.noon_wape),
        percent(h.midnight_wape),
        percent(Some(h.noon_coverage80)),
        percent(Some(h.noon_coverage95)),
        percent(h.tenant_noon_wape),
        percent(h.tenant_noon_own_wape)
    );
}

/// The figures of the summary over runs.
pub fn figures(h: &Hourly) -> Vec<Figure> {
    let mut out = Vec::new();
    for m in &h.methods {
        out.push(Figure::new(
            &format!("hourly {}: MASE mean", m.name),
            m.mase_mean,
            3,
        ));
        out.push(Figure::new(
            &format!("hourly {}: MASE median", m.name),
            m.mase_median,
            3,
        ));
        out.push(Figure::percent(
            &format!("hourly {}: WAPE SIM level, %", m.name),
            m.wape_sims.unwrap_or(f64::NAN),
        ));
        out.push(Figure::percent(
            &format!("hourly {}: tenant hourly WAPE (SIMs summed), %", m.name),
            m.wape_tenant.unwrap_or(f64::NAN),
        ));
    }
    out.push(Figure::percent(
        "hourly tenant WAPE, its own series forecast, %",
        h.tenant_wape.unwrap_or(f64::NAN),
    ));
    out.push(Figure::percent("hourly 80 % interval coverage, %", h.coverage80));
    out.push(Figure::percent("hourly 95 % interval coverage, %", h.coverage95));
    let sim_origins = (h.sims * h.origins.len()).max(1) as f64;
    for method in FORCED {
        let count = h.chosen.get(method.as_str()).copied().unwrap_or(0);
        out.push(Figure::percent(
            &format!("hourly SIM-origins choosing {method}, %"),
            count as f64 / sim_origins,
        ));
    }
    out.push(Figure::percent(
        "today at noon: day WAPE, %",
        h.noon_wape.unwrap_or(f64::NAN),
    ));
    out.push(Figure::percent(
        "today at midnight (chosen forecast): day WAPE, %",
        h.midnight_wape.unwrap_or(f64::NAN),
    ));
    out.push(Figure::percent(
        "today at noon: 80 % interval coverage, %",
        h.noon_coverage80,
    ));
    out.push(Figure::percent(
        "today at noon: 95 % interval coverage, %",
        h.noon_coverage95,
    ));
    out.push(Figure::percent(
        "today at noon: tenant day WAPE (SIMs summed), %",
        h.tenant_noon_wape.unwrap_or(f64::NAN),
    ));
    out.push(Figure::percent(
        "today at noon: tenant day WAPE, its own series, %",
        h.tenant_noon_own_wape.unwrap_or(f64::NAN),
    ));
    out.push(Figure::new("hourly evaluation, s", h.elapsed.as_secs_f64(), 1));
    out
}
