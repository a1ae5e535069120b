//! The analytics query layer over GraphQL: `usageAnalytics` (one request shape for every chart),
//! `usageAnalyticsSims` (drill-down from a row to its SIMs), `carrierBreakdown` and `dashboard`.

mod inputs;
mod query;

pub(crate) use self::inputs::*;
pub(crate) use self::query::AnalyticsQueryRoot;

use std::collections::HashSet;

use async_graphql::{Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use ioto_domain::analytics::dashboard::{CarrierShare, Dashboard};
use ioto_domain::analytics::{
    AnalyticsResult, AnalyticsRow, Cube, DimValue, Dimension, Measure, Measures, Preset, Unserved,
};
use ioto_domain::billing::money::{Cost, Currency};
use ioto_domain::fleet::sim::SimState;
use ioto_domain::identifiers::Iccid;

use crate::scalars::Decimal;
use crate::scalars::{BigInt, IccidScalar};
use crate::usage::{GranularityKind, NetworkInfo};

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "UsageMeasure")]
pub enum MeasureGql {
    BytesIn,
    BytesOut,
    BytesTotal,
    /// Bytes after the rate card's per-record rounding (rated CDRs).
    RatedBytes,
    /// Data cost on the retail card (rated CDRs; access fees are not usage). Needs cost visibility.
    Cost,
    /// SIMs with usage in the row, each counted once.
    ActiveSims,
    /// Sessions started in the row.
    Sessions,
}

impl From<MeasureGql> for Measure {
    fn from(m: MeasureGql) -> Self {
        match m {
            MeasureGql::BytesIn => Self::BytesIn,
            MeasureGql::BytesOut => Self::BytesOut,
            MeasureGql::BytesTotal => Self::BytesTotal,
            MeasureGql::RatedBytes => Self::RatedBytes,
            MeasureGql::Cost => Self::Cost,
            MeasureGql::ActiveSims => Self::ActiveSims,
            MeasureGql::Sessions => Self::Sessions,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "UsageDimension")]
pub enum DimensionGql {
    /// The time bucket of the request's granularity (its start).
    Time,
    Network,
    /// ISO 3166 alpha-2 of the network's country.
    Country,
    SubCustomer,
    Sim,
    /// The value of the label named by `labelKey`.
    Label,
    /// The SIM's tariff plan today.
    TariffPlan,
    /// Radio access type.
    Rat,
}

impl From<DimensionGql> for Dimension {
    fn from(d: DimensionGql) -> Self {
        match d {
            DimensionGql::Time => Self::Time,
            DimensionGql::Network => Self::Network,
            DimensionGql::Country => Self::Country,
            DimensionGql::SubCustomer => Self::SubCustomer,
            DimensionGql::Sim => Self::Sim,
            DimensionGql::Label => Self::Label,
            DimensionGql::TariffPlan => Self::TariffPlan,
            DimensionGql::Rat => Self::Rat,
        }
    }
}

impl From<Dimension> for DimensionGql {
    fn from(d: Dimension) -> Self {
        match d {
            Dimension::Time => Self::Time,
            Dimension::Network => Self::Network,
            Dimension::Country => Self::Country,
            Dimension::SubCustomer => Self::SubCustomer,
            Dimension::Sim => Self::Sim,
            Dimension::Label => Self::Label,
            Dimension::TariffPlan => Self::TariffPlan,
            Dimension::Rat => Self::Rat,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "PeriodPreset")]
pub enum PresetGql {
    /// The 24 hours up to the end of the current hour (hourly).
    #[graphql(name = "LAST_24_HOURS")]
    Last24Hours,
    /// Today and the 6 days before (daily).
    #[graphql(name = "LAST_7_DAYS")]
    Last7Days,
    /// Today and the 29 days before (daily).
    #[graphql(name = "LAST_30_DAYS")]
    Last30Days,
    /// This calendar month (daily).
    ThisMonth,
    /// This calendar year (monthly).
    ThisYear,
}

impl From<PresetGql> for Preset {
    fn from(p: PresetGql) -> Self {
        match p {
            PresetGql::Last24Hours => Self::Last24Hours,
            PresetGql::Last7Days => Self::Last7Days,
            PresetGql::Last30Days => Self::Last30Days,
            PresetGql::ThisMonth => Self::ThisMonth,
            PresetGql::ThisYear => Self::ThisYear,
        }
    }
}

/// The cube an answer was read from, coarsest first.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "AnalyticsSource")]
pub enum SourceGql {
    /// Months by sub-customer and network, with each row's set of SIMs.
    NetworkMonthly,
    UsageMonthly,
    UsageDaily,
    UsageHourly,
    SessionsHourly,
    RatedDaily,
}

impl From<Cube> for SourceGql {
    fn from(c: Cube) -> Self {
        match c {
            Cube::NetworkMonthly => Self::NetworkMonthly,
            Cube::UsageMonthly => Self::UsageMonthly,
            Cube::UsageDaily => Self::UsageDaily,
            Cube::UsageHourly => Self::UsageHourly,
            Cube::SessionsHourly => Self::SessionsHourly,
            Cube::RatedDaily => Self::RatedDaily,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "UnservedReason")]
pub enum UnservedGql {
    /// A boundary of the request falls inside a UTC hour (a zone with a half-hour offset), or a
    /// rated request's boundary inside a UTC day.
    TimeNotAligned,
    /// Rated measures and sessions/RAT were asked for together; no cube holds both.
    MixedSources,
    /// Cost or rated bytes for a tenant without a retail rate card.
    NoRateCard,
}

impl From<Unserved> for UnservedGql {
    fn from(u: Unserved) -> Self {
        match u {
            Unserved::TimeNotAligned => Self::TimeNotAligned,
            Unserved::MixedSources => Self::MixedSources,
            Unserved::NoRateCard => Self::NoRateCard,
        }
    }
}

/// The measures of a row; those not asked for are null.
pub struct MeasuresObject {
    values: Measures,
    asked: HashSet<Measure>,
}

impl MeasuresObject {
    fn pick(&self, m: Measure, v: u64) -> Option<BigInt> {
        self.asked.contains(&m).then(|| v.into())
    }
}

#[Object(name = "AnalyticsMeasures")]
impl MeasuresObject {
    async fn bytes_in(&self) -> Option<BigInt> {
        self.pick(Measure::BytesIn, self.values.bytes_in)
    }
    async fn bytes_out(&self) -> Option<BigInt> {
        self.pick(Measure::BytesOut, self.values.bytes_out)
    }
    async fn bytes_total(&self) -> Option<BigInt> {
        self.pick(Measure::BytesTotal, self.values.bytes_total())
    }
    async fn rated_bytes(&self) -> Option<BigInt> {
        self.pick(Measure::RatedBytes, self.values.rated_bytes)
    }
    /// Exact, in the answer's currency.
    async fn cost(&self) -> Option<Decimal> {
        self.asked
            .contains(&Measure::Cost)
            .then_some(Decimal(self.values.cost))
    }
    async fn active_sims(&self) -> Option<BigInt> {
        self.pick(Measure::ActiveSims, self.values.active_sims)
    }
    async fn sessions(&self) -> Option<BigInt> {
        self.pick(Measure::Sessions, self.values.sessions)
    }
}

/// One row: the values of the request's dimensions (null for the others, and for "none", e.g.
/// SIMs without the label), then the measures.
pub struct AnalyticsRowObject {
    dims: Vec<(Dimension, DimValue)>,
    measures: MeasuresObject,
}

impl AnalyticsRowObject {
    fn text(&self, d: Dimension) -> Option<String> {
        self.dims
            .iter()
            .find(|(k, _)| *k == d)
            .and_then(|(_, v)| match v {
                DimValue::Text(t) => t.clone(),
                DimValue::Time(_) => None,
            })
    }
}

#[Object(name = "AnalyticsRow")]
impl AnalyticsRowObject {
    /// Start of the time bucket.
    async fn time(&self) -> Option<DateTime<Utc>> {
        self.dims.iter().find_map(|(_, v)| match v {
            DimValue::Time(t) => Some(*t),
            DimValue::Text(_) => None,
        })
    }
    async fn network(&self) -> Option<NetworkInfo> {
        self.text(Dimension::Network)
            .and_then(|n| ioto_domain::MccMnc::parse(&n).ok())
            .map(|m| NetworkInfo::of(&m))
    }
    async fn country(&self) -> Option<String> {
        self.text(Dimension::Country)
    }
    async fn sub_customer_id(&self) -> Option<ID> {
        self.text(Dimension::SubCustomer).map(ID)
    }
    async fn iccid(&self) -> Option<IccidScalar> {
        self.text(Dimension::Sim)
            .and_then(|i| Iccid::parse(&i).ok())
            .map(IccidScalar)
    }
    async fn label(&self) -> Option<String> {
        self.text(Dimension::Label)
    }
    async fn tariff_plan(&self) -> Option<String> {
        self.text(Dimension::TariffPlan)
    }
    async fn rat(&self) -> Option<String> {
        self.text(Dimension::Rat)
    }
    async fn measures(&self) -> &MeasuresObject {
        &self.measures
    }
}

#[derive(SimpleObject)]
#[graphql(name = "Unserved")]
pub struct UnservedObject {
    pub reason: UnservedGql,
    pub message: String,
}

/// An analytics answer.
#[derive(SimpleObject)]
#[graphql(name = "UsageAnalytics")]
pub struct UsageAnalyticsObject {
    /// The cube that answered; null when none could (see `unserved`).
    pub source: Option<SourceGql>,
    /// Why no cube could answer exactly (no rows then).
    pub unserved: Option<UnservedObject>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub granularity: Option<GranularityKind>,
    pub time_zone: String,
    /// Currency of `cost` (the retail card's).
    pub currency: Option<String>,
    pub dimensions: Vec<DimensionGql>,
    pub rows: Vec<AnalyticsRowObject>,
    /// Over all rows; active SIMs counted once.
    pub totals: MeasuresObject,
}

fn granularity_gql(g: ioto_domain::ports::Granularity) -> GranularityKind {
    use ioto_domain::ports::Granularity as G;
    match g {
        G::Hour => GranularityKind::Hour,
        G::Day => GranularityKind::Day,
        G::Month => GranularityKind::Month,
        G::Year => GranularityKind::Year,
    }
}

fn row_object(dims: &[Dimension], r: AnalyticsRow, asked: &HashSet<Measure>) -> AnalyticsRowObject {
    AnalyticsRowObject {
        dims: dims.iter().copied().zip(r.dims).collect(),
        measures: MeasuresObject {
            values: r.values,
            asked: asked.clone(),
        },
    }
}

fn answer_object(dims: Vec<Dimension>, measures: &[Measure], a: AnalyticsResult) -> UsageAnalyticsObject {
    let asked: HashSet<Measure> = measures.iter().copied().collect();
    UsageAnalyticsObject {
        source: a.source.map(Into::into),
        unserved: a.unserved.map(|(reason, message)| UnservedObject {
            reason: reason.into(),
            message,
        }),
        from: a.from,
        to: a.to,
        granularity: a.granularity.map(granularity_gql),
        time_zone: a.time_zone.name().to_owned(),
        currency: a.currency.map(|c| c.code().to_owned()),
        dimensions: dims.iter().copied().map(Into::into).collect(),
        rows: a.rows.into_iter().map(|r| row_object(&dims, r, &asked)).collect(),
        totals: MeasuresObject {
            values: a.totals,
            asked,
        },
    }
}

#[derive(SimpleObject)]
#[graphql(name = "AnalyticsSimEdge")]
pub struct AnalyticsSimEdge {
    pub cursor: String,
    pub node: AnalyticsSimObject,
}

#[derive(SimpleObject)]
#[graphql(name = "AnalyticsSim")]
pub struct AnalyticsSimObject {
    pub iccid: IccidScalar,
    pub measures: MeasuresObject,
}

/// A page of the SIMs behind a row, most bytes first.
#[derive(SimpleObject)]
#[graphql(name = "AnalyticsSimConnection")]
pub struct AnalyticsSimConnection {
    pub edges: Vec<AnalyticsSimEdge>,
    pub page_info: crate::fleet::PageInfo,
    pub total_count: BigInt,
    pub source: Option<SourceGql>,
    pub unserved: Option<UnservedObject>,
}

/// A network's traffic and cost in the range, with its shares of the whole.
#[derive(SimpleObject)]
#[graphql(name = "CarrierShare")]
pub struct CarrierShareObject {
    pub network: NetworkInfo,
    /// Session bytes in + out.
    pub bytes: BigInt,
    /// Data cost (null when costs are not visible to the caller).
    pub cost: Option<Decimal>,
    /// Of all bytes in the range, 0–1.
    pub share_of_bytes: f64,
    /// Of the whole data cost, 0–1 (null when costs are not visible).
    pub share_of_cost: Option<f64>,
}

#[derive(SimpleObject)]
#[graphql(name = "CarrierBreakdown")]
pub struct CarrierBreakdownObject {
    pub currency: Option<String>,
    pub total_bytes: BigInt,
    pub total_cost: Option<Decimal>,
    pub carriers: Vec<CarrierShareObject>,
}

fn ratio(part: i128, whole: i128) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn carriers(list: Vec<CarrierShare>, with_cost: bool) -> (Vec<CarrierShareObject>, u64, Cost) {
    let total_bytes: u64 = list.iter().map(|c| c.bytes).fold(0, u64::saturating_add);
    let total_cost: Cost = list.iter().map(|c| c.cost).sum();
    let out = list
        .into_iter()
        .map(|c| CarrierShareObject {
            network: NetworkInfo::of(&c.mcc_mnc),
            bytes: c.bytes.into(),
            cost: with_cost.then_some(Decimal(c.cost)),
            share_of_bytes: ratio(i128::from(c.bytes), i128::from(total_bytes)),
            share_of_cost: with_cost.then(|| ratio(c.cost.units(), total_cost.units())),
        })
        .collect();
    (out, total_bytes, total_cost)
}

#[derive(SimpleObject)]
#[graphql(name = "SimStateCount")]
pub struct StateCount {
    pub state: crate::enums::SimStateKind,
    pub count: BigInt,
}

#[derive(SimpleObject)]
#[graphql(name = "KeyCount")]
pub struct KeyCount {
    /// Null: none (SIMs in no device, or without a plan).
    pub key: Option<String>,
    pub value: BigInt,
}

#[derive(SimpleObject)]
#[graphql(name = "DayCount")]
pub struct DayCount {
    /// Start of the day in the request's time zone.
    pub day: DateTime<Utc>,
    pub count: BigInt,
}

/// The front page of a fleet, in one call.
#[derive(SimpleObject)]
#[graphql(name = "Dashboard", complex)]
pub struct DashboardObject {
    /// The current billing period, `[from, to)`.
    pub period_from: DateTime<Utc>,
    pub period_to: DateTime<Utc>,
    /// Every state, zero included.
    pub sims_by_state: Vec<StateCount>,
    /// SIMs with a session that is not terminated and was updated in the last 15 minutes.
    pub online_now: BigInt,
    /// Session bytes in the period so far.
    pub bytes_total: BigInt,
    /// SIMs with a session in the period.
    pub active_sims: BigInt,
    /// Bytes per SIM with a session in the period.
    pub average_bytes_per_active_sim: BigInt,
    /// Data cost so far (access fees not included); null when costs are not visible or not rated.
    pub cost_so_far: Option<Decimal>,
    /// `costSoFar` carried on at the same rate to the end of the period.
    pub projected_cost: Option<Decimal>,
    /// Access fees of the period so far, apart from the data cost: every SIM that was ACTIVE at
    /// any time in a month of the period pays the month's fee. Null as `costSoFar`.
    pub access_fees: Option<Decimal>,
    pub currency: Option<String>,
    /// Every network with traffic, most bytes first.
    pub top_carriers_by_traffic: Vec<CarrierShareObject>,
    /// Highest cost first (empty when costs are not visible).
    pub top_carriers_by_cost: Vec<CarrierShareObject>,
    /// Session bytes by the kind of device the SIM is in.
    pub traffic_by_device_kind: Vec<KeyCount>,
    /// Activations per day over the last 30 days.
    pub activations: Vec<DayCount>,
    pub sims_by_tariff_plan: Vec<KeyCount>,
    /// The tenant and sub-customer asked for (for the fields read on demand).
    #[graphql(skip)]
    pub scope: (Option<ioto_domain::TenantId>, Option<ioto_domain::CustomerId>),
}

#[async_graphql::ComplexObject]
impl DashboardObject {
    /// Open alerts by severity, most severe first (of the sub-customer's SIMs when one was
    /// asked for).
    async fn open_alerts(
        &self,
        ctx: &async_graphql::Context<'_>,
    ) -> async_graphql::Result<Vec<crate::alert::OpenAlertCount>> {
        use crate::error::GqlResult as _;
        let actor = crate::context::actor(ctx)?;
        let counts = match self.scope.1 {
            None => crate::context::services(ctx)
                .alerts
                .open_alerts(actor, self.scope.0)
                .await
                .gql()?,
            Some(c) => crate::context::services(ctx)
                .alerts
                .open_alerts_of(actor, self.scope.0, c)
                .await
                .gql()?,
        };
        Ok(counts.into_iter().map(crate::alert::OpenAlertCount::of).collect())
    }

    /// The daily usage forecast of the tenant's SIMs together (of the sub-customer's, when one
    /// was asked for), `days` days of it from today (1–90; a forecast holds 31). Null without
    /// usage in the last 90 days.
    async fn forecast(
        &self,
        ctx: &async_graphql::Context<'_>,
        #[graphql(default = 30)] days: i32,
    ) -> async_graphql::Result<Option<crate::forecast::UsageForecastObject>> {
        crate::forecast::forecast_of_dashboard(ctx, self.scope, days).await
    }
}

pub(crate) fn dashboard_object(
    d: Dashboard,
    scope: (Option<ioto_domain::TenantId>, Option<ioto_domain::CustomerId>),
) -> DashboardObject {
    let with_cost = d.cost_so_far.is_some();
    let (by_traffic, _, _) = carriers(d.carriers_by_traffic, with_cost);
    let (by_cost, _, _) = carriers(d.carriers_by_cost, with_cost);
    DashboardObject {
        period_from: d.period_from,
        period_to: d.period_to,
        sims_by_state: d
            .sims_by_state
            .into_iter()
            .map(|(s, n): (SimState, u64)| StateCount {
                state: s.into(),
                count: n.into(),
            })
            .collect(),
        online_now: d.online_now.into(),
        bytes_total: d.usage.bytes_total().into(),
        active_sims: d.usage.active_sims.into(),
        average_bytes_per_active_sim: d.average_bytes_per_active_sim.into(),
        cost_so_far: d.cost_so_far.map(Decimal),
        projected_cost: d.projected_cost.map(Decimal),
        access_fees: d.access_fees.map(Decimal),
        currency: d.currency.map(|c: Currency| c.code().to_owned()),
        top_carriers_by_traffic: by_traffic,
        top_carriers_by_cost: by_cost,
        traffic_by_device_kind: d
            .traffic_by_device_kind
            .into_iter()
            .map(|(key, v)| KeyCount { key, value: v.into() })
            .collect(),
        activations: d
            .activations
            .into_iter()
            .map(|(day, n)| DayCount { day, count: n.into() })
            .collect(),
        sims_by_tariff_plan: d
            .sims_by_tariff_plan
            .into_iter()
            .map(|(key, v)| KeyCount { key, value: v.into() })
            .collect(),
        scope,
    }
}
