//! The holdout evaluation of `ioto-bench forecast`: every SIM's last `holdout` days forecast from
//! the days before them, by each method forced (`point_forecast`) and by the one `forecast` chooses
//! per SIM; and the tenant (the whole fleet) forecast from its own summed series, as the product
//! shows it.
//!
//! - **MASE** per SIM (`accuracy::mase`, scaled by the SIM's own training days), its mean and median
//!   over the SIMs;
//! - **WAPE at SIM level**: Σ|actual − forecast| / Σ actual over every SIM and day;
//! - **tenant-level daily WAPE**: the same on the fleet's daily totals, once summing the SIMs'
//!   forecasts and once forecasting the summed series directly (`forecast(sum_series(…))`);
//! - **coverage** of the chosen forecasts' 80 % and 95 % intervals over every SIM-day.

use std::collections::BTreeMap;

use anyhow::bail;
use chrono::Datelike;
use ioto_forecast::simulate::{SimulatedFleet, SimulatedSim};
use ioto_forecast::{mase, point_forecast, sum_series, wape, DailySeries, Method};

use super::{on_threads, percent, yes_no, Figure};
use crate::common::median_spread;

/// The methods forced, in the order printed; the chosen one follows them (row [`CHOSEN`]).
const FORCED: [Method; 4] = [Method::Naive, Method::SeasonalNaive, Method::Drift, Method::Ets];
/// The row of the method chosen per SIM.
const CHOSEN: usize = FORCED.len();
/// Rows: the forced methods and the chosen one.
const ROWS: usize = FORCED.len() + 1;
/// The row of seasonal naive, the baseline the chosen method must not be worse than.
const SEASONAL_NAIVE: usize = 1;
/// The product's target for the tenant's daily WAPE.
const TENANT_WAPE_TARGET: f64 = 0.15;

/// How one method (or the choice per SIM) did over the fleet.
pub struct MethodAccuracy {
    pub name: &'static str,
    pub mase_mean: f64,
    pub mase_median: f64,
    /// Σ|error| / Σ actual over every SIM and day.
    pub wape_sims: Option<f64>,
    /// WAPE of the fleet's daily totals, the SIMs' forecasts summed.
    pub wape_tenant: Option<f64>,
}

/// The holdout evaluation of one fleet.
pub struct Accuracy {
    pub sims: usize,
    pub holdout: usize,
    /// The forced methods, then the chosen one.
    pub methods: Vec<MethodAccuracy>,
    /// Share of SIM-days inside the chosen forecasts' 80 % and 95 % intervals.
    pub coverage80: f64,
    pub coverage95: f64,
    /// SIMs per chosen method.
    pub chosen: BTreeMap<&'static str, usize>,
    /// The tenant's summed series forecast directly: its method and daily WAPE.
    pub tenant_method: Method,
    pub tenant_wape: Option<f64>,
}

/// Sums over part of the fleet, merged into the fleet's.
struct Partial {
    mase: [Vec<f64>; ROWS],
    abs_error: [f64; ROWS],
    volume: f64,
    tenant_forecast: [Vec<f64>; ROWS],
    tenant_actual: Vec<f64>,
    inside80: usize,
    inside95: usize,
    sim_days: usize,
    chosen: BTreeMap<&'static str, usize>,
}

impl Partial {
    fn new(holdout: usize) -> Self {
        Self {
            mase: Default::default(),
            abs_error: [0.0; ROWS],
            volume: 0.0,
            tenant_forecast: std::array::from_fn(|_| vec![0.0; holdout]),
            tenant_actual: vec![0.0; holdout],
            inside80: 0,
            inside95: 0,
            sim_days: 0,
            chosen: BTreeMap::new(),
        }
    }

    /// One SIM's forecast of `row` against its `actual` holdout days.
    fn add(&mut self, row: usize, actual: &[f64], predicted: &[f64], training: &[f64]) {
        if let Some(m) = mase(actual, predicted, training) {
            self.mase[row].push(m);
        }
        self.abs_error[row] += actual
            .iter()
            .zip(predicted)
            .map(|(a, p)| (a - p).abs())
            .sum::<f64>();
        for (total, p) in self.tenant_forecast[row].iter_mut().zip(predicted) {
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
            for (total, value) in mine.iter_mut().zip(theirs) {
                *total += value;
            }
        }
        for (total, value) in self.tenant_actual.iter_mut().zip(other.tenant_actual) {
            *total += value;
        }
        self.inside80 += other.inside80;
        self.inside95 += other.inside95;
        self.sim_days += other.sim_days;
        for (method, count) in other.chosen {
            *self.chosen.entry(method).or_default() += count;
        }
    }
}

/// Evaluates every SIM of `fleet` on its last `holdout` days, on `threads` threads.
pub fn evaluate(fleet: &SimulatedFleet, holdout: usize, threads: usize) -> anyhow::Result<Accuracy> {
    let Some(training_days) = fleet.days.checked_sub(holdout) else {
        bail!(
            "a holdout of {holdout} days is longer than the {} days simulated",
            fleet.days
        );
    };
    let parts = on_threads(&fleet.sims, threads, |_, sims| {
        evaluate_part(fleet, sims, training_days, holdout)
    })?;
    let mut total = Partial::new(holdout);
    for part in parts {
        total.merge(part?);
    }

    // The tenant as the product forecasts it: its own series, the SIMs' days summed.
    let training: Vec<DailySeries> = fleet
        .sims
        .iter()
        .map(|sim| DailySeries::new(fleet.start, sim.daily_bytes[..training_days].to_vec()))
        .collect();
    let parts: Vec<&DailySeries> = training.iter().collect();
    let tenant = ioto_forecast::forecast(&sum_series(&parts), holdout, None)?;
    let tenant_points: Vec<f64> = tenant.days.iter().map(|day| day.point).collect();

    let methods = (0..ROWS)
        .map(|row| {
            let (mase_median, _, _) = median_spread(&total.mase[row]);
            let count = total.mase[row].len().max(1) as f64;
            MethodAccuracy {
                name: FORCED.get(row).map_or("chosen per SIM", |method| method.as_str()),
                mase_mean: total.mase[row].iter().sum::<f64>() / count,
                mase_median,
                wape_sims: if total.volume > 0.0 {
                    Some(total.abs_error[row] / total.volume)
                } else {
                    None
                },
                wape_tenant: wape(&total.tenant_actual, &total.tenant_forecast[row]),
            }
        })
        .collect();
    let sim_days = total.sim_days.max(1) as f64;
    Ok(Accuracy {
        sims: fleet.sims.len(),
        holdout,
        methods,
        coverage80: total.inside80 as f64 / sim_days,
        coverage95: total.inside95 as f64 / sim_days,
        chosen: total.chosen,
        tenant_method: tenant.method,
        tenant_wape: wape(&total.tenant_actual, &tenant_points),
    })
}

/// The sums of `sims`, each trained on its first `training_days` days.
fn evaluate_part(
    fleet: &SimulatedFleet,
    sims: &[SimulatedSim],
    training_days: usize,
    holdout: usize,
) -> anyhow::Result<Partial> {
    let weekday = fleet.start.weekday();
    let mut partial = Partial::new(holdout);
    for sim in sims {
        if sim.daily_bytes.len() != training_days + holdout {
            bail!(
                "SIM {} has {} days, not {}",
                sim.id,
                sim.daily_bytes.len(),
                fleet.days
            );
        }
        let (training, actual) = sim.daily_bytes.split_at(training_days);
        for (row, method) in FORCED.iter().enumerate() {
            let predicted = point_forecast(*method, training, weekday, holdout);
            partial.add(row, actual, &predicted, training);
        }
        let series = DailySeries::new(fleet.start, training.to_vec());
        let chosen = ioto_forecast::forecast(&series, holdout, None)?;
        let points: Vec<f64> = chosen.days.iter().map(|day| day.point).collect();
        partial.add(CHOSEN, actual, &points, training);
        for (day, &a) in chosen.days.iter().zip(actual) {
            partial.inside80 += usize::from((day.lo80..=day.hi80).contains(&a));
            partial.inside95 += usize::from((day.lo95..=day.hi95).contains(&a));
        }
        partial.sim_days += actual.len();
        *partial.chosen.entry(chosen.method.as_str()).or_default() += 1;
        partial.volume += actual.iter().sum::<f64>();
        for (total, a) in partial.tenant_actual.iter_mut().zip(actual) {
            *total += a;
        }
    }
    Ok(partial)
}

pub fn print(a: &Accuracy) {
    println!(
        "| method | MASE mean | MASE median | WAPE, SIM level | tenant daily WAPE, SIMs' forecasts summed |"
    );
    println!("|---|---:|---:|---:|---:|");
    for m in &a.methods {
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
        "tenant's own series forecast directly (what the product shows): method {}, daily WAPE {}",
        a.tenant_method,
        percent(a.tenant_wape)
    );
    println!(
        "chosen forecasts' intervals over {} SIM-days: 80 % covers {}, 95 % covers {}",
        a.sims * a.holdout,
        percent(Some(a.coverage80)),
        percent(Some(a.coverage95))
    );
    let sims = a.sims.max(1) as f64;
    let shares: Vec<String> = a
        .chosen
        .iter()
        .map(|(method, count)| format!("{method} {count} ({:.1} %)", 100.0 * *count as f64 / sims))
        .collect();
    println!("methods chosen: {}", shares.join(", "));
    if let (Some(chosen), Some(baseline)) = (a.methods.get(CHOSEN), a.methods.get(SEASONAL_NAIVE)) {
        let not_worse = chosen.mase_mean <= baseline.mase_mean
            && chosen.wape_sims.unwrap_or(f64::INFINITY) <= baseline.wape_sims.unwrap_or(f64::INFINITY);
        println!(
            "chosen never worse than seasonal naive at the fleet level (mean MASE and SIM-level WAPE): {} — \
             MASE mean {:.3} against {:.3} (median {:.3} against {:.3}), WAPE {} against {}",
            yes_no(not_worse),
            chosen.mase_mean,
            baseline.mase_mean,
            chosen.mase_median,
            baseline.mase_median,
            percent(chosen.wape_sims),
            percent(baseline.wape_sims)
        );
    }
    let met = a.tenant_wape.is_some_and(|w| w < TENANT_WAPE_TARGET);
    println!(
        "tenant-level daily WAPE < 15 %: {} — {} forecasting the tenant's series, {} summing the SIMs' \
         chosen forecasts",
        yes_no(met),
        percent(a.tenant_wape),
        percent(a.methods.get(CHOSEN).and_then(|m| m.wape_tenant))
    );
}

/// The figures of the summary over runs.
pub fn figures(a: &Accuracy) -> Vec<Figure> {
    let mut out = Vec::new();
    for m in &a.methods {
        out.push(Figure::new(&format!("{}: MASE mean", m.name), m.mase_mean, 3));
        out.push(Figure::new(&format!("{}: MASE median", m.name), m.mase_median, 3));
        out.push(Figure::percent(
            &format!("{}: WAPE SIM level, %", m.name),
            m.wape_sims.unwrap_or(f64::NAN),
        ));
        out.push(Figure::percent(
            &format!("{}: tenant daily WAPE (SIMs summed), %", m.name),
            m.wape_tenant.unwrap_or(f64::NAN),
        ));
    }
    out.push(Figure::percent(
        "tenant daily WAPE, its own series forecast, %",
        a.tenant_wape.unwrap_or(f64::NAN),
    ));
    out.push(Figure::percent("80 % interval coverage, %", a.coverage80));
    out.push(Figure::percent("95 % interval coverage, %", a.coverage95));
    let sims = a.sims.max(1) as f64;
    for method in [Method::Naive, Method::SeasonalNaive, Method::Drift, Method::Ets] {
        let count = a.chosen.get(method.as_str()).copied().unwrap_or(0);
        out.push(Figure::percent(
            &format!("SIMs choosing {method}, %"),
            count as f64 / sims,
        ));
    }
    out
}
