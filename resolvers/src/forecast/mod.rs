//! Forecasts and anomalies, as the scheduled pass stored them: `Sim.forecast`,
//! `Customer.forecast`, `QuotaPool.forecast`, `Dashboard.forecast` (with their projected cost);
//! `anomalies`, `anomaly`, `Sim.anomalies`; the decisions `dismissAnomaly` and
//! `confirmAnomaly`; and the pass's advice: `advice`, `Sim.advice`, `QuotaPool.advice`.

mod advice;
mod mutation;
mod query;

pub(crate) use self::advice::{advice_of_pool, advice_of_sim, AdviceObject};
pub(crate) use self::mutation::ForecastMutation;
pub(crate) use self::query::ForecastQuery;

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use ioto_domain::forecast::{
    check_days, AnomalyKind, AnomalyRecord, AnomalyStatus, Baseline, DayForecast, ForecastQuota,
    HourForecast, HourlyMethod, HourlyOutlook, Method, ProjectedCost, Severity, StoredForecast,
    TodayProjection, STORED_DAYS,
};
use ioto_domain::Error;
use uuid::Uuid;

use crate::context::{actor, services};
use crate::error::GqlResult;
use crate::fleet::{PageInfo, SimObject};
use crate::scalars::{BigInt, Date, Decimal, IccidScalar};

crate::enums::mirror_enum!(
    /// How a forecast was made: chosen per series by a rolling backtest, simplest first on a tie
    /// (see docs/forecasts.md).
    ForecastMethodKind, "ForecastMethod", Method, [
        /// The last day repeated.
        Naive,
        /// The last week repeated, weekday for weekday.
        SeasonalNaive,
        /// The last day plus the average day-to-day change over the history, per day ahead.
        Drift,
        /// Exponential smoothing with a damped trend and a weekly season (Holt-Winters).
        Ets,
        /// The series' recent level times its cohort's weekly shape (the SIMs of its tariff
        /// plan): for a SIM with under two weeks of history.
        Cohort,
    ]
);

crate::enums::mirror_enum!(
    /// How an hourly forecast was made: chosen per series by a rolling backtest over whole days,
    /// simplest first within 2 % (see docs/forecasts.md).
    HourlyForecastMethodKind, "HourlyForecastMethod", HourlyMethod, [
        /// The last hour repeated.
        Naive,
        /// The same hour yesterday (a daily season on hours).
        SeasonalNaiveDay,
        /// The same hour a week before.
        SeasonalNaiveWeek,
        /// The last hour plus the average change per hour, per hour ahead.
        Drift,
        /// Exponential smoothing of the daily totals, spread over the hours by the last two
        /// weeks' hour profile; today's remaining hours follow what its hours so far tell.
        EtsProfile,
    ]
);

crate::enums::mirror_enum!(
    /// What kind of unusual behaviour an anomaly is.
    AnomalyKindGql, "AnomalyKind", AnomalyKind, [
        /// Far more data than usual in a day (against the SIM's weekday, or its cohort's day for
        /// a SIM with under three weeks of history).
        UsageSpike,
        /// Next to no data two days running from a SIM that is active on most days.
        Silence,
        /// Far more data sessions than usual in a day: a device reconnecting in a loop.
        SessionStorm,
        /// A network not used in the 30 days before, in a country that was.
        NewNetwork,
        /// A country not used in the 30 days before.
        NewCountry,
        /// The SIM is in another device than before: its sessions reported another IMEI.
        ImeiChange,
    ]
);

crate::enums::mirror_enum!(
    /// How urgently a person should look at an anomaly.
    AnomalySeverityKind, "AnomalySeverity", Severity, [
        /// When convenient.
        Low,
        /// Today.
        Medium,
        /// Now: it costs money or points at misuse (every new country; scores from 20). Told as
        /// an `ANOMALY` notification.
        High,
    ]
);

crate::enums::mirror_enum!(
    /// What people decided about an anomaly.
    AnomalyStatusKind, "AnomalyStatus", AnomalyStatus, [
        /// Nobody has decided yet.
        Open,
        /// Expected behaviour: the detector takes it into account from the next pass on.
        Dismissed,
        /// A real problem.
        Confirmed,
    ]
);

crate::enums::mirror_enum!(
    /// What an anomaly's day was compared with.
    AnomalyBaselineKind, "AnomalyBaseline", Baseline, [
        /// The SIM's own history.
        Own,
        /// Similar SIMs (of its tariff plan) on the same day: a SIM with too little history.
        Cohort,
    ]
);

/// Whole bytes of a forecast figure.
fn bytes(v: f64) -> BigInt {
    BigInt(if v.is_finite() && v > 0.0 {
        v.round() as i64
    } else {
        0
    })
}

/// A figure fit for JSON (a GraphQL Float cannot be NaN or infinite).
fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

pub(crate) fn parse_anomaly_id(id: &ID) -> async_graphql::Result<Uuid> {
    Uuid::parse_str(id.trim())
        .map_err(|_| crate::to_gql(Error::invalid("id", "is not a valid id (expected a UUID)")))
}

/// One forecast day, in bytes (up and down).
#[derive(SimpleObject)]
#[graphql(name = "ForecastDay")]
pub struct ForecastDayObject {
    /// The day (UTC).
    pub date: Date,
    /// The expected usage.
    pub bytes: BigInt,
    /// The usage falls between `low80` and `high80` 80 % of the time…
    pub low80: BigInt,
    pub high80: BigInt,
    /// …and between `low95` and `high95` 95 % of the time.
    pub low95: BigInt,
    pub high95: BigInt,
}

impl ForecastDayObject {
    fn of(d: &DayForecast) -> Self {
        Self {
            date: Date(d.date),
            bytes: bytes(d.point),
            low80: bytes(d.lo80),
            high80: bytes(d.hi80),
            low95: bytes(d.lo95),
            high95: bytes(d.hi95),
        }
    }
}

/// One forecast hour (UTC), in bytes (up and down).
#[derive(SimpleObject)]
#[graphql(name = "ForecastHour")]
pub struct ForecastHourObject {
    /// The start of the hour.
    pub at: DateTime<Utc>,
    /// The expected usage.
    pub bytes: BigInt,
    /// The usage falls between `low80` and `high80` 80 % of the time…
    pub low80: BigInt,
    pub high80: BigInt,
    /// …and between `low95` and `high95` 95 % of the time.
    pub low95: BigInt,
    pub high95: BigInt,
}

impl ForecastHourObject {
    fn of(h: &HourForecast) -> Self {
        Self {
            at: h.at,
            bytes: bytes(h.point),
            low80: bytes(h.lo80),
            high80: bytes(h.hi80),
            low95: bytes(h.lo95),
            high95: bytes(h.hi95),
        }
    }
}

/// Where today's (UTC) usage is heading from its completed hours: so far, plus the rest of the
/// day by the hourly forecast; the range is how far that projection, made at the same hour on
/// each of the last 21 days, was from the day's total.
#[derive(SimpleObject)]
#[graphql(name = "TodayForecast")]
pub struct TodayForecastObject {
    /// Today's first hour (UTC midnight).
    pub day_start: DateTime<Utc>,
    /// The completed hours of today the projection read (0–23).
    pub hours_so_far: i32,
    /// The usage of those hours.
    pub so_far_bytes: BigInt,
    /// Today's expected total.
    pub bytes: BigInt,
    /// The total falls between `low80` and `high80` 80 % of the time…
    pub low80: BigInt,
    pub high80: BigInt,
    /// …and between `low95` and `high95` 95 % of the time.
    pub low95: BigInt,
    pub high95: BigInt,
    /// The method that forecast the day's remaining hours.
    pub method: HourlyForecastMethodKind,
    /// Σ|projected − actual| / Σ actual of the day's total over the past days the projection
    /// was tried on; null without any.
    pub backtest_wape: Option<f64>,
}

impl TodayForecastObject {
    fn of(t: &TodayProjection) -> Self {
        Self {
            day_start: t.day_start,
            hours_so_far: i32::try_from(t.hours_so_far).unwrap_or(i32::MAX),
            so_far_bytes: bytes(t.so_far),
            bytes: bytes(t.point),
            low80: bytes(t.lo80),
            high80: bytes(t.hi80),
            low95: bytes(t.lo95),
            high95: bytes(t.hi95),
            method: t.method.into(),
            backtest_wape: t.backtest_wape.map(finite),
        }
    }
}

/// A group's usage hour by hour (UTC hours): the next hours after the last completed one, and
/// today's projected total.
#[derive(SimpleObject)]
#[graphql(name = "HourlyForecast")]
pub struct HourlyForecastObject {
    /// How the hours were forecast.
    pub method: HourlyForecastMethodKind,
    /// The method's backtest MASE (scaled by the same hour the day before); null when too short.
    pub backtest_mase: Option<f64>,
    /// The method's backtest WAPE; null when too short or the backtest hours used nothing.
    pub backtest_wape: Option<f64>,
    /// Up to 48 hours from the hour in progress at the pass.
    pub hours: Vec<ForecastHourObject>,
    /// Today's projected total; null when it cannot be made.
    pub today: Option<TodayForecastObject>,
}

impl HourlyForecastObject {
    fn of(h: &HourlyOutlook) -> Self {
        Self {
            method: h.forecast.method.into(),
            backtest_mase: h.forecast.backtest_mase.map(finite),
            backtest_wape: h.forecast.backtest_wape.map(finite),
            hours: h.forecast.hours.iter().map(ForecastHourObject::of).collect(),
            today: h.today.as_ref().map(TodayForecastObject::of),
        }
    }
}

/// A forecast read against a data quota (the SIM's, or the pool's) in its period, the tenant's
/// calendar month.
#[derive(SimpleObject)]
#[graphql(name = "ForecastQuota")]
pub struct ForecastQuotaObject {
    pub limit_bytes: BigInt,
    /// Used in the period's days completed before the forecast's first day (UTC days).
    pub used_bytes: BigInt,
    /// The period's last day.
    pub period_end: Date,
    /// The day the quota runs out by the expected usage; null when it lasts the period.
    pub exhaustion_date: Option<Date>,
    /// Not before this day, 9 times in 10 (by the upper 80 % bounds); null when even those last
    /// the period.
    pub exhaustion_earliest: Option<Date>,
    /// By this day, 9 times in 10 (by the lower 80 % bounds); null when those last the period.
    pub exhaustion_latest: Option<Date>,
    /// What the period is heading for: used so far and the expected days to its end.
    pub projected_period_bytes: BigInt,
    /// The same by the upper 80 % bounds.
    pub projected_period_bytes_high80: BigInt,
}

impl ForecastQuotaObject {
    fn of(q: &ForecastQuota) -> Self {
        Self {
            limit_bytes: q.limit_bytes.into(),
            used_bytes: q.used_bytes.into(),
            period_end: Date(q.period_end),
            exhaustion_date: q.exhaustion_likely.map(Date),
            exhaustion_earliest: q.exhaustion_earliest.map(Date),
            exhaustion_latest: q.exhaustion_latest.map(Date),
            projected_period_bytes: q.projected_period_bytes.into(),
            projected_period_bytes_high80: q.projected_period_bytes_hi80.into(),
        }
    }
}

/// Where a forecast's subject is heading in money, at the tenant's retail card, in the card's
/// billing period: estimates that leave out the card's per-record rounding.
#[derive(SimpleObject)]
#[graphql(name = "ProjectedCost")]
pub struct ProjectedCostObject {
    pub currency: String,
    /// The period's completed days (within the last 90): each SIM's traffic at its plan's prices
    /// and its access fee once per month with traffic; a group's, its SIMs' together.
    pub cost_so_far: Decimal,
    /// So far, and the expected usage to the period's end at the subject's average price per
    /// byte over the last 90 days.
    pub projected: Decimal,
    /// The same by the upper 80 % bounds of the days ahead.
    pub projected_high80: Decimal,
}

impl ProjectedCostObject {
    fn of(p: &ProjectedCost) -> Self {
        Self {
            currency: p.currency.code().to_owned(),
            cost_so_far: Decimal(p.cost_so_far),
            projected: Decimal(p.projected),
            projected_high80: Decimal(p.projected_high80),
        }
    }
}

/// A forecast as answered: the stored one, with the days asked for.
pub struct UsageForecastObject {
    pub forecast: StoredForecast,
    /// Days asked for (1–90); the stored days when more.
    pub days: usize,
}

impl UsageForecastObject {
    /// The stored forecast with `days` days asked for (checked: 1 to 90, naming `days`).
    pub(crate) fn asked(forecast: StoredForecast, days: i32) -> async_graphql::Result<Self> {
        let days = check_days(days.into(), "days").gql()?;
        Ok(Self { forecast, days })
    }
}

/// Daily usage forecast from today (UTC) on, with 80 % and 95 % intervals, made by the
/// scheduled pass (`fleet.forecast_minutes`) from up to 90 days of history. A forecast holds 31
/// days; asking for more (up to 90) answers those 31.
#[Object(name = "UsageForecast")]
impl UsageForecastObject {
    /// How the forecast was made.
    async fn method(&self) -> ForecastMethodKind {
        self.forecast.method.into()
    }
    /// The method's mean absolute scaled error in a rolling backtest on the history (below 1:
    /// better than repeating the week before did in-sample); null with under 15 days of history.
    async fn backtest_mase(&self) -> Option<f64> {
        self.forecast.backtest_mase.map(finite)
    }
    /// The share of the usage the method got wrong in the backtest (total absolute error over
    /// total usage); null as `backtestMase`, or when the backtest days used nothing.
    async fn backtest_wape(&self) -> Option<f64> {
        self.forecast.backtest_wape.map(finite)
    }
    async fn computed_at(&self) -> DateTime<Utc> {
        self.forecast.computed_at
    }
    /// Days of history the forecast was made from (from the first day with usage).
    async fn history_days(&self) -> i32 {
        i32::try_from(self.forecast.history_days).unwrap_or(i32::MAX)
    }
    /// The days, from today on: as many as asked for (at most the 31 stored), and at most
    /// `first` (1–90).
    async fn days(&self, first: Option<i32>) -> async_graphql::Result<Vec<ForecastDayObject>> {
        let n = match first {
            Some(f) => check_days(f.into(), "first").gql()?.min(self.days),
            None => self.days,
        };
        Ok(self
            .forecast
            .first_days(n.min(STORED_DAYS))
            .iter()
            .map(ForecastDayObject::of)
            .collect())
    }
    /// The forecast read against the data quota; null without one (sub-customers and tenants
    /// have none).
    async fn quota(&self) -> Option<ForecastQuotaObject> {
        self.forecast.quota.as_ref().map(ForecastQuotaObject::of)
    }
    /// Hour by hour (UTC hours): the next 48 hours from the pass's hour and today's projected
    /// total; for the tenant and sub-customers (null for SIMs and pools, and for histories of
    /// less than a week of hours).
    async fn hourly(&self) -> Option<HourlyForecastObject> {
        self.forecast.hourly.as_ref().map(HourlyForecastObject::of)
    }
    /// What the period is heading for in money at the tenant's retail card; null without a card,
    /// and for callers who may not see costs.
    async fn projected_cost(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ProjectedCostObject>> {
        let Some(p) = &self.forecast.projected_cost else {
            return Ok(None);
        };
        if !advice::sees_costs(ctx, self.forecast.tenant_id).await? {
            return Ok(None);
        }
        Ok(Some(ProjectedCostObject::of(p)))
    }
}

/// Why the detector raised an anomaly, in numbers a chart can show: bytes a day for spikes and
/// silences, sessions a day for storms; for a new network or country, 1 observed (seen on the
/// day) against 0 expected, and the distinct networks or countries per day as the series.
#[derive(SimpleObject)]
#[graphql(name = "AnomalyEvidence")]
pub struct AnomalyEvidenceObject {
    /// The day's value.
    pub observed: f64,
    /// What was expected for the day.
    pub expected: f64,
    /// Below this, the day counts towards a silence.
    pub band_low: f64,
    /// From this, the day is a spike (or a storm).
    pub band_high: f64,
    /// The last up to 28 days, oldest first, the day last.
    pub series: Vec<f64>,
    pub baseline: AnomalyBaselineKind,
}

pub struct AnomalyObject(pub AnomalyRecord);

/// Something unusual a SIM did on a day, found by the forecast pass, explained.
#[Object(name = "Anomaly")]
impl AnomalyObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn kind(&self) -> AnomalyKindGql {
        self.0.anomaly.kind.into()
    }
    async fn severity(&self) -> AnomalySeverityKind {
        self.0.anomaly.severity.into()
    }
    /// How unusual it is: a robust z-score for spikes and silences, the ratio to the median for
    /// session storms, a fixed score for new networks (6) and countries (10); at most 100.
    async fn score(&self) -> f64 {
        finite(self.0.anomaly.score)
    }
    /// The day it happened (UTC).
    async fn day(&self) -> Date {
        Date(self.0.anomaly.day)
    }
    async fn iccid(&self) -> IccidScalar {
        IccidScalar(self.0.iccid.clone())
    }
    /// The SIM, as the caller sees it.
    async fn sim(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<SimObject>> {
        SimObject::seen_by(ctx, self.0.sim_id).await
    }
    /// What happened, in a sentence ("2.3 GB today, 40 × its usual 57 MB for a Tuesday").
    async fn sentence(&self) -> &str {
        &self.0.anomaly.sentence
    }
    /// The new network ("208-01") or country ("France"); null for the other kinds.
    async fn value(&self) -> Option<&str> {
        self.0.anomaly.value.as_deref()
    }
    async fn status(&self) -> AnomalyStatusKind {
        self.0.status.into()
    }
    /// Who dismissed or confirmed it.
    async fn decided_by(&self) -> Option<&str> {
        self.0.decided_by.as_deref()
    }
    async fn decided_at(&self) -> Option<DateTime<Utc>> {
        self.0.decided_at
    }
    async fn comment(&self) -> Option<&str> {
        self.0.comment.as_deref()
    }
    /// The last day a dismissal applies; null: for good (or not dismissed).
    async fn dismissed_until(&self) -> Option<Date> {
        self.0.dismissed_until.map(Date)
    }
    async fn evidence(&self) -> AnomalyEvidenceObject {
        let e = &self.0.anomaly.evidence;
        AnomalyEvidenceObject {
            observed: finite(e.observed),
            expected: finite(e.expected),
            band_low: finite(e.band_lo),
            band_high: finite(e.band_hi),
            series: e.series.iter().copied().map(finite).collect(),
            baseline: e.baseline.into(),
        }
    }
    /// When the pass found it.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A page of anomalies, by day (newest first) and score (highest first) (Relay connection).
#[derive(SimpleObject)]
pub struct AnomalyConnection {
    pub edges: Vec<AnomalyEdge>,
    pub nodes: Vec<AnomalyObject>,
    pub page_info: PageInfo,
}

#[derive(SimpleObject)]
pub struct AnomalyEdge {
    pub cursor: String,
    pub node: AnomalyObject,
}

impl AnomalyConnection {
    /// The page of `rows` read with `limit` (one more than shown, see `crate::paging::edges`).
    fn of(rows: Vec<AnomalyRecord>, limit: u64, after: bool) -> Self {
        let (edges, has_next_page) = crate::paging::edges(rows, limit, AnomalyRecord::cursor);
        Self {
            page_info: crate::paging::page_info(&edges, has_next_page, after),
            nodes: edges.iter().map(|(_, a)| AnomalyObject(a.clone())).collect(),
            edges: edges
                .into_iter()
                .map(|(cursor, a)| AnomalyEdge {
                    cursor,
                    node: AnomalyObject(a),
                })
                .collect(),
        }
    }
}

/// Which anomalies to list (every condition holds).
#[derive(InputObject, Clone, Default)]
#[graphql(name = "AnomalyFilter")]
pub struct AnomalyFilterInput {
    #[graphql(default)]
    pub kinds: Vec<AnomalyKindGql>,
    /// At least this severity.
    pub min_severity: Option<AnomalySeverityKind>,
    #[graphql(default)]
    pub statuses: Vec<AnomalyStatusKind>,
    pub iccid: Option<IccidScalar>,
    pub customer_id: Option<ID>,
    /// On or after this day.
    pub from: Option<Date>,
    /// On or before this day.
    pub to: Option<Date>,
}

/// `Sim.forecast`: the SIM's stored forecast with `days` days.
pub(crate) async fn forecast_of_sim(
    ctx: &Context<'_>,
    sim: &ioto_domain::fleet::Sim,
    days: i32,
) -> async_graphql::Result<Option<UsageForecastObject>> {
    // The argument is checked whether or not there is a forecast.
    check_days(days.into(), "days").gql()?;
    let found = services(ctx)
        .forecasts
        .forecast_of(actor(ctx)?, sim)
        .await
        .gql()?;
    found.map(|f| UsageForecastObject::asked(f, days)).transpose()
}

/// `Sim.anomalies`: the SIM's latest anomalies.
pub(crate) async fn anomalies_of_sim(
    ctx: &Context<'_>,
    sim: &ioto_domain::fleet::Sim,
    first: i32,
) -> async_graphql::Result<Vec<AnomalyObject>> {
    let limit = ioto_domain::fleet::query::check_page_size(first.into()).gql()?;
    Ok(services(ctx)
        .forecasts
        .anomalies_of(actor(ctx)?, sim, limit)
        .await
        .gql()?
        .into_iter()
        .map(AnomalyObject)
        .collect())
}

/// `Customer.forecast`: the sub-customer's summed usage, `days` days of it.
pub(crate) async fn forecast_of_customer(
    ctx: &Context<'_>,
    customer: &ioto_domain::directory::Customer,
    days: i32,
) -> async_graphql::Result<Option<UsageForecastObject>> {
    check_days(days.into(), "days").gql()?;
    let found = services(ctx)
        .forecasts
        .customer_forecast(actor(ctx)?, Some(customer.tenant_id), customer.id)
        .await
        .gql()?;
    found.map(|f| UsageForecastObject::asked(f, days)).transpose()
}

/// `QuotaPool.forecast`: the pool members' summed usage, read against its limit.
pub(crate) async fn forecast_of_pool(
    ctx: &Context<'_>,
    pool: &ioto_domain::quota_pool::QuotaPool,
    days: i32,
) -> async_graphql::Result<Option<UsageForecastObject>> {
    check_days(days.into(), "days").gql()?;
    let found = services(ctx)
        .forecasts
        .pool_forecast(actor(ctx)?, pool)
        .await
        .gql()?;
    found.map(|f| UsageForecastObject::asked(f, days)).transpose()
}

/// `Dashboard.forecast`: the tenant's summed usage, or the sub-customer's the dashboard is of
/// (a sub-customer's users: always theirs).
pub(crate) async fn forecast_of_dashboard(
    ctx: &Context<'_>,
    scope: (Option<ioto_domain::TenantId>, Option<ioto_domain::CustomerId>),
    days: i32,
) -> async_graphql::Result<Option<UsageForecastObject>> {
    check_days(days.into(), "days").gql()?;
    let forecasts = &services(ctx).forecasts;
    let actor = actor(ctx)?;
    let found = match scope {
        (tenant, Some(customer)) => forecasts.customer_forecast(actor, tenant, customer).await,
        (tenant, None) => forecasts.tenant_forecast(actor, tenant).await,
    }
    .gql()?;
    found.map(|f| UsageForecastObject::asked(f, days)).transpose()
}
