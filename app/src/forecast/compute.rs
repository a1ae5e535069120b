//! The CPU work of a pass, on plain data: the days a pass reads, a series' forecast (read
//! against a quota), a SIM's anomalies, and (in [`super::advice`]) its advice and costs. Nothing
//! here awaits: a chunk of SIMs is computed on the blocking pool ([`crate::lanes::FORECASTS`]).

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use ioto_domain::advice::{Advice, NetworkDayBytes};
use ioto_domain::forecast::{
    Anomaly, AnomalyKind, AnomalyRecord, Dismissal, ForecastQuota, ForecastSubject, StoredForecast,
    HISTORY_DAYS, STORED_DAYS,
};
use ioto_domain::identifiers::Iccid;
use ioto_domain::quota::QuotaAction;
use ioto_domain::{CustomerId, SimId, TenantId};
use ioto_forecast::anomaly::{detect, CohortStats, ImeiSeen, NetworkDay, SimHistory};
use ioto_forecast::{exhaustion, forecast, DailySeries, Forecast, WeeklyShape};

use super::advice::{self, GroupCosts, Pricing, SimAdvice};
use super::memory::Remembered;

/// The days a pass reads: [`HISTORY_DAYS`] completed days and today (in progress), UTC days as
/// the usage cubes keep them. Index 0 is the first, the last is today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub first: NaiveDate,
    pub today: NaiveDate,
}

impl Window {
    /// The window ending today (the UTC day of `now`).
    pub fn at(now: DateTime<Utc>) -> Self {
        let today = now.date_naive();
        Self {
            first: today.checked_sub_days(Days::new(HISTORY_DAYS)).unwrap_or(today),
            today,
        }
    }

    /// Days in the window, today included.
    pub fn len(&self) -> usize {
        usize::try_from((self.today - self.first).num_days()).unwrap_or(0) + 1
    }

    /// The index of today.
    pub fn today_index(&self) -> usize {
        self.len() - 1
    }

    /// The day of index `i` (the day after today for `len()`).
    pub fn day(&self, i: usize) -> NaiveDate {
        self.first
            .checked_add_days(Days::new(i as u64))
            .unwrap_or(self.today)
    }

    /// The day of a cube bucket, `None` outside the window.
    pub fn day_of_bucket(&self, bucket: usize) -> Option<NaiveDate> {
        (bucket < self.len()).then(|| self.day(bucket))
    }

    /// The cube query's bounds: each day's UTC midnight, and the next day's after today (the
    /// daily cubes' grain; an hourly cube reads them as whole hours).
    pub fn bounds(&self) -> Vec<DateTime<Utc>> {
        (0..=self.len())
            .map(|i| self.day(i).and_time(NaiveTime::MIN).and_utc())
            .collect()
    }
}

/// The completed days of `values` (a window's days, today last) from the first day with usage:
/// what a forecast reads. `None` without any usage in the window, today included: such a
/// subject gets no forecast.
pub(crate) fn completed_series(w: &Window, values: &[f64]) -> Option<DailySeries> {
    let first = values.iter().position(|v| *v > 0.0)?;
    let end = w.today_index().min(values.len());
    let from = first.min(end);
    Some(DailySeries::new(w.day(from), values[from..end].to_vec()))
}

/// A quota a forecast is read against: its limit and its period, the tenant's calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct QuotaInput {
    pub limit_bytes: u64,
    /// The period's first and last day.
    pub first: NaiveDate,
    pub last: NaiveDate,
}

impl QuotaInput {
    /// A limit in the calendar month holding `now` in `tz`.
    pub fn monthly(limit_bytes: u64, tz: Tz, now: DateTime<Utc>) -> Self {
        let local = now.with_timezone(&tz).date_naive();
        let first = local.with_day(1).unwrap_or(local);
        let last = first
            .checked_add_months(Months::new(1))
            .and_then(|next| next.pred_opt())
            .unwrap_or(local);
        Self {
            limit_bytes,
            first,
            last,
        }
    }
}

/// Whole bytes of a figure: rounded, 0 for anything not finite and positive.
pub(crate) fn whole(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v.round() as u64
    } else {
        0
    }
}

/// `forecast` read against `quota`: the usage of the period's completed days in `values` so far,
/// and when the limit runs out to the period's end.
fn read_quota(fc: &Forecast, w: &Window, values: &[f64], quota: &QuotaInput) -> ForecastQuota {
    let used: f64 = (0..w.today_index().min(values.len()))
        .filter(|&i| (quota.first..=quota.last).contains(&w.day(i)))
        .map(|i| values[i])
        .filter(|v| v.is_finite() && *v > 0.0)
        .sum();
    let e = exhaustion(fc, used, quota.limit_bytes as f64, quota.last);
    ForecastQuota {
        limit_bytes: quota.limit_bytes,
        used_bytes: whole(used),
        period_end: quota.last,
        exhaustion_likely: e.likely,
        exhaustion_earliest: e.earliest,
        exhaustion_latest: e.latest,
        projected_period_bytes: whole(e.projected_period_total),
        projected_period_bytes_hi80: whole(e.projected_period_total_hi80),
    }
}

/// What one forecast is made from.
pub(crate) struct ForecastInput<'a> {
    pub tenant: TenantId,
    pub subject: ForecastSubject,
    /// The window's daily usage, today last.
    pub values: &'a [f64],
    pub cohort: Option<&'a WeeklyShape>,
    pub quota: Option<&'a QuotaInput>,
}

/// The forecast of [`STORED_DAYS`] days from today; `None` for a subject without usage in the
/// window.
pub(crate) fn forecast_of(
    w: &Window,
    input: &ForecastInput<'_>,
    now: DateTime<Utc>,
) -> Option<StoredForecast> {
    let series = completed_series(w, input.values)?;
    // The horizon is within 1..=MAX_HORIZON: this cannot fail.
    let fc = forecast(&series, STORED_DAYS, input.cohort).ok()?;
    let quota = input.quota.map(|q| read_quota(&fc, w, input.values, q));
    Some(StoredForecast {
        tenant_id: input.tenant,
        subject: input.subject,
        computed_at: now,
        history_days: u32::try_from(series.len()).unwrap_or(u32::MAX),
        method: fc.method,
        backtest_mase: fc.backtest_mase,
        backtest_wape: fc.backtest_wape,
        days: fc.days,
        quota,
        projected_cost: None,
        hourly: None,
    })
}

/// A SIM's activity over the window, as the cubes hold it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SimActivity {
    /// Bytes (up and down) per day, today last.
    pub bytes: Vec<f64>,
    /// Data sessions started per day, today last.
    pub sessions: Vec<u32>,
    /// The networks it had traffic on, per day.
    pub networks: Vec<NetworkDay>,
    /// Its bytes per completed day and network, to price (read when the tenant has a card).
    pub traffic: Vec<NetworkDayBytes>,
    /// The devices it was seen in, as its recorded changes of device tell (the IMEI before a
    /// change on the day before it, the new one on its day; UTC days).
    pub imeis: Vec<ImeiSeen>,
}

impl SimActivity {
    pub fn empty(days: usize) -> Self {
        Self {
            bytes: vec![0.0; days],
            sessions: vec![0; days],
            networks: Vec::new(),
            traffic: Vec::new(),
            imeis: Vec::new(),
        }
    }
}

/// The anomalies of a SIM on the last completed day (yesterday: every kind) and on today so far
/// (every kind but silence: a day in progress is not quiet yet, while a spike, a storm, a new
/// network or country already seen stays so). `cohort` holds the statistics of similar SIMs on
/// those two days, for a SIM too new for its own history.
pub(crate) fn anomalies_of(
    w: &Window,
    activity: SimActivity,
    dismissed: Vec<Dismissal>,
    cohort: [Option<CohortStats>; 2],
) -> Vec<Anomaly> {
    let Some(first) = activity.bytes.iter().position(|v| *v > 0.0) else {
        return Vec::new();
    };
    let SimActivity {
        bytes,
        sessions,
        networks,
        traffic: _,
        imeis,
    } = activity;
    let history = SimHistory {
        start: w.day(first),
        daily_bytes: bytes.get(first..).map(<[f64]>::to_vec).unwrap_or_default(),
        daily_sessions: sessions.get(first..).map(<[u32]>::to_vec).unwrap_or_default(),
        networks,
        imeis,
        dismissed,
    };
    let [on_yesterday, on_today] = cohort;
    let mut found = Vec::new();
    if let Some(yesterday) = w.today.pred_opt() {
        found.extend(detect(&history, yesterday, on_yesterday.as_ref()));
    }
    found.extend(
        detect(&history, w.today, on_today.as_ref())
            .into_iter()
            .filter(|a| a.kind != AnomalyKind::Silence),
    );
    found
}

/// One SIM of a chunk, everything its computation needs.
pub(crate) struct SimJob {
    pub sim: (SimId, Option<CustomerId>, Iccid),
    /// Its cohort (tariff plan) in [`Cohorts`].
    pub cohort: usize,
    /// Its tariff plan.
    pub plan: Option<String>,
    /// The pools it counts toward, by their index among the tenant's.
    pub pools: Vec<usize>,
    pub activity: SimActivity,
    pub dismissed: Vec<Dismissal>,
    pub quota: Option<QuotaInput>,
    /// Its quota's limit and action at the limit.
    pub limit: Option<(u64, QuotaAction)>,
    /// The digest of its inputs ([`super::memory`]).
    pub inputs: u64,
}

/// What a tenant's cohorts (SIMs of one tariff plan, or without one) lend their new SIMs: the
/// weekly shape of their usage, and their statistics yesterday and today.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cohorts {
    pub shapes: Vec<Option<WeeklyShape>>,
    pub stats: Vec<[Option<CohortStats>; 2]>,
}

/// What a chunk of SIMs gives.
#[derive(Debug, Default)]
pub(crate) struct ChunkOutput {
    pub forecasts: Vec<StoredForecast>,
    pub anomalies: Vec<AnomalyRecord>,
    pub advice: Vec<Advice>,
    /// The groups' costs, with the chunk's SIMs' added.
    pub costs: GroupCosts,
    /// What the next pass goes by, per SIM computed.
    pub remembered: Vec<(SimId, Remembered)>,
    /// The SIMs computed.
    pub computed: Vec<SimId>,
}

/// The forecasts (with their projected cost, where the tenant has a card), the anomalies and the
/// advice of a chunk of SIMs; their costs added to the groups' `costs`.
pub(crate) fn run_chunk(
    tenant: TenantId,
    w: Window,
    jobs: Vec<SimJob>,
    cohorts: &Cohorts,
    pricing: Option<&Pricing>,
    costs: GroupCosts,
    now: DateTime<Utc>,
) -> ChunkOutput {
    let mut out = ChunkOutput {
        forecasts: Vec::with_capacity(jobs.len()),
        costs,
        ..ChunkOutput::default()
    };
    for job in jobs {
        let of_sim = SimAdvice {
            tenant,
            sim: &job.sim,
            plan: job.plan.as_deref(),
            bytes: &job.activity.bytes,
            traffic: &job.activity.traffic,
            quota: job.limit,
        };
        let (advised, sim_costs) = advice::sim_advice(&w, pricing, &of_sim, now);
        out.advice.extend(advised);
        let input = ForecastInput {
            tenant,
            subject: ForecastSubject::Sim(job.sim.0),
            values: &job.activity.bytes,
            cohort: cohorts.shapes.get(job.cohort).and_then(Option::as_ref),
            quota: job.quota.as_ref(),
        };
        let mut made = forecast_of(&w, &input, now);
        if let (Some(f), Some(p), Some(c)) = (made.as_mut(), pricing, sim_costs.as_ref()) {
            f.projected_cost = Some(p.projected(&w, c, job.plan.as_deref(), &f.days));
        }
        out.forecasts.extend(made);
        if let Some(c) = &sim_costs {
            out.costs.add(job.sim.1, &job.pools, c);
        }
        out.computed.push(job.sim.0);
        out.remembered.push((
            job.sim.0,
            Remembered {
                inputs: job.inputs,
                costs: sim_costs,
            },
        ));
        let stats = cohorts.stats.get(job.cohort).copied().unwrap_or([None, None]);
        for a in anomalies_of(&w, job.activity, job.dismissed, stats) {
            out.anomalies
                .push(AnomalyRecord::open(tenant, job.sim.clone(), a, now));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 18, 10, 0, 0).unwrap()
    }

    #[test]
    fn the_window_is_ninety_completed_days_and_today() {
        let w = Window::at(now());
        assert_eq!(w.len(), 91);
        assert_eq!(w.day(w.today_index()), w.today);
        let bounds = w.bounds();
        assert_eq!(bounds.len(), 92);
        assert_eq!(bounds[90], Utc.with_ymd_and_hms(2026, 3, 18, 0, 0, 0).unwrap());
        assert_eq!(bounds[91], Utc.with_ymd_and_hms(2026, 3, 19, 0, 0, 0).unwrap());
        assert_eq!(w.day_of_bucket(91), None);
    }

    #[test]
    fn a_series_starts_at_the_first_usage_and_ends_yesterday() {
        let w = Window::at(now());
        let mut values = vec![0.0; w.len()];
        assert!(completed_series(&w, &values).is_none(), "no usage, no series");
        values[80] = 5.0;
        values[90] = 7.0;
        let s = completed_series(&w, &values).unwrap();
        assert_eq!((s.start, s.len()), (w.day(80), 10));
        // Usage today only: an empty series starting today (a forecast from the first day on).
        let mut only_today = vec![0.0; w.len()];
        only_today[90] = 1.0;
        let s = completed_series(&w, &only_today).unwrap();
        assert_eq!((s.start, s.len()), (w.today, 0));
    }

    #[test]
    fn a_quota_is_read_over_the_month_days_completed() {
        let w = Window::at(now());
        // 10 MB a day over the whole window; the month so far (1–17 March) used 170 MB.
        let values = vec![10e6; w.len()];
        let quota = QuotaInput::monthly(200_000_000, Tz::UTC, now());
        assert_eq!(quota.last, NaiveDate::from_ymd_opt(2026, 3, 31).unwrap());
        let input = ForecastInput {
            tenant: TenantId(uuid::Uuid::nil()),
            subject: ForecastSubject::Tenant,
            values: &values,
            cohort: None,
            quota: Some(&quota),
        };
        let f = forecast_of(&w, &input, now()).unwrap();
        assert_eq!(f.days.len(), STORED_DAYS);
        assert_eq!(f.days[0].date, w.today);
        let q = f.quota.unwrap();
        assert_eq!(q.used_bytes, 170_000_000);
        // 170 MB + 10 MB today + 10 MB on the 19th reach 190 MB; the 20th reaches 200 MB.
        assert_eq!(q.exhaustion_likely, NaiveDate::from_ymd_opt(2026, 3, 20));
        let roomy = QuotaInput {
            limit_bytes: 1_000_000_000,
            ..quota
        };
        let input = ForecastInput {
            quota: Some(&roomy),
            ..input
        };
        assert_eq!(
            forecast_of(&w, &input, now())
                .unwrap()
                .quota
                .unwrap()
                .exhaustion_likely,
            None
        );
    }
}
