//! Rate cards and rating runs: queries for everyone allowed to see costs, mutations for platform
//! admins (cards, closing periods) and admins (rating on demand).

mod inputs;
mod mutation;
mod query;

pub(crate) use self::inputs::*;
pub(crate) use self::mutation::BillingMutation;
pub(crate) use self::query::BillingQuery;

use async_graphql::{Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use ioto_domain::billing::invoice::TenantInvoice;
use ioto_domain::billing::money::Price;
use ioto_domain::billing::rate_card::{BillingPeriod, RateCard, RateCardKind, RateCardVersion};
use ioto_domain::billing::rating::{RatingRun, RatingTotals, RunStatus};
use ioto_domain::ports::billing::{ClosedPeriod, RatedDimension};
use ioto_domain::Error;
use uuid::Uuid;

use crate::error::to_gql;
use crate::scalars::Date;
use crate::scalars::Decimal;
use crate::scalars::{BigInt, MccMncScalar};

/// A price as an amount (written with the decimals it needs).
fn price(p: Price) -> Decimal {
    Decimal(p.as_cost())
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "RateCardKind")]
pub enum RateCardKindGql {
    /// What the tenant pays the platform.
    Retail,
    /// What the platform pays for the tenant's traffic (platform admins only).
    Supplier,
}

impl From<RateCardKind> for RateCardKindGql {
    fn from(k: RateCardKind) -> Self {
        match k {
            RateCardKind::Retail => Self::Retail,
            RateCardKind::Supplier => Self::Supplier,
        }
    }
}

impl From<RateCardKindGql> for RateCardKind {
    fn from(k: RateCardKindGql) -> Self {
        match k {
            RateCardKindGql::Retail => Self::Retail,
            RateCardKindGql::Supplier => Self::Supplier,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "BillingPeriod")]
pub enum BillingPeriodGql {
    Monthly,
    Quarterly,
    Annual,
}

impl From<BillingPeriod> for BillingPeriodGql {
    fn from(k: BillingPeriod) -> Self {
        match k {
            BillingPeriod::Monthly => Self::Monthly,
            BillingPeriod::Quarterly => Self::Quarterly,
            BillingPeriod::Annual => Self::Annual,
        }
    }
}

impl From<BillingPeriodGql> for BillingPeriod {
    fn from(k: BillingPeriodGql) -> Self {
        match k {
            BillingPeriodGql::Monthly => Self::Monthly,
            BillingPeriodGql::Quarterly => Self::Quarterly,
            BillingPeriodGql::Annual => Self::Annual,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "RatingRunStatus")]
pub enum RunStatusGql {
    Running,
    Current,
    Superseded,
    Failed,
}

impl From<RunStatus> for RunStatusGql {
    fn from(s: RunStatus) -> Self {
        match s {
            RunStatus::Running => Self::Running,
            RunStatus::Current => Self::Current,
            RunStatus::Superseded => Self::Superseded,
            RunStatus::Failed => Self::Failed,
        }
    }
}

pub struct RateCardObject(pub RateCard);

#[Object(name = "RateCard")]
impl RateCardObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn tenant_id(&self) -> ID {
        ID(self.0.tenant_id.to_string())
    }
    async fn kind(&self) -> RateCardKindGql {
        self.0.kind.into()
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// ISO 4217 code.
    async fn currency(&self) -> &'static str {
        self.0.currency.code()
    }
    /// Decimals of the currency's minor unit (invoice amounts are rounded to them).
    async fn currency_minor_units(&self) -> i32 {
        self.0.currency.minor_units() as i32
    }
    async fn billing_period(&self) -> BillingPeriodGql {
        self.0.billing_period.into()
    }
    /// First day the card prices nothing.
    async fn retired_from(&self) -> Option<Date> {
        self.0.retired_from.map(Date)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Oldest first.
    async fn versions(&self) -> Vec<RateCardVersionObject> {
        self.0
            .versions
            .iter()
            .cloned()
            .map(RateCardVersionObject)
            .collect()
    }
    /// The version pricing `day`, if the card is in force then.
    async fn version_on(&self, day: Date) -> Option<RateCardVersionObject> {
        self.0.version_on(day.0).cloned().map(RateCardVersionObject)
    }
}

pub struct RateCardVersionObject(pub RateCardVersion);

#[derive(SimpleObject)]
#[graphql(name = "RateZone")]
pub struct ZoneObject {
    pub name: String,
    pub networks: Vec<MccMncScalar>,
    /// ISO 3166 alpha-2.
    pub countries: Vec<String>,
    /// Price per MB (1,000,000 bytes).
    pub price_per_mb: Decimal,
    /// Prices every network no other zone lists.
    pub is_default: bool,
}

#[derive(SimpleObject)]
#[graphql(name = "ZonePrice")]
pub struct ZonePriceObject {
    pub zone: String,
    pub price_per_mb: Decimal,
}

#[derive(SimpleObject)]
#[graphql(name = "TariffOverride")]
pub struct TariffOverrideObject {
    pub tariff_plan: String,
    pub access_fee: Option<Decimal>,
    pub zone_prices: Vec<ZonePriceObject>,
}

#[Object(name = "RateCardVersion")]
impl RateCardVersionObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn effective_from(&self) -> Date {
        Date(self.0.terms.effective_from)
    }
    /// Each record's bytes (in + out) are rounded up to a multiple of this (0: not rounded).
    async fn rounding_increment_bytes(&self) -> BigInt {
        self.0.terms.rounding_increment_bytes.into()
    }
    /// Per SIM that was ACTIVE at any time in a month.
    async fn access_fee(&self) -> Decimal {
        price(self.0.terms.access_fee)
    }
    async fn zones(&self) -> Vec<ZoneObject> {
        self.0
            .terms
            .zones
            .iter()
            .map(|z| ZoneObject {
                name: z.name.clone(),
                networks: z.networks.iter().cloned().map(MccMncScalar).collect(),
                countries: z.countries.clone(),
                price_per_mb: price(z.price_per_mb),
                is_default: z.is_default,
            })
            .collect()
    }
    async fn overrides(&self) -> Vec<TariffOverrideObject> {
        self.0
            .terms
            .overrides
            .iter()
            .map(|o| TariffOverrideObject {
                tariff_plan: o.tariff_plan.clone(),
                access_fee: o.access_fee.map(price),
                zone_prices: o
                    .zone_prices
                    .iter()
                    .map(|p| ZonePriceObject {
                        zone: p.zone.clone(),
                        price_per_mb: price(p.price_per_mb),
                    })
                    .collect(),
            })
            .collect()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
}

#[derive(SimpleObject)]
#[graphql(name = "RatingTotals")]
pub struct RatingTotalsObject {
    pub records: BigInt,
    pub bytes: BigInt,
    pub rounded_bytes: BigInt,
    /// Data cost, exact.
    pub usage_cost: Decimal,
    pub access_fees: Decimal,
    pub access_fee_sims: BigInt,
    /// Records on days the card did not price.
    pub unpriced_records: BigInt,
}

impl From<RatingTotals> for RatingTotalsObject {
    fn from(t: RatingTotals) -> Self {
        Self {
            records: t.records.into(),
            bytes: t.bytes.into(),
            rounded_bytes: t.rounded_bytes.into(),
            usage_cost: Decimal(t.usage_cost),
            access_fees: Decimal(t.access_fees),
            access_fee_sims: t.access_fee_sims.into(),
            unpriced_records: t.unpriced_records.into(),
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "RatingRun")]
pub struct RatingRunObject {
    pub id: ID,
    pub tenant_id: ID,
    pub rate_card_id: ID,
    pub kind: RateCardKindGql,
    pub period_start: Date,
    /// First day after the period.
    pub period_end: Date,
    pub status: RunStatusGql,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub totals: RatingTotalsObject,
    pub error: Option<String>,
    pub requested_by: String,
}

impl From<RatingRun> for RatingRunObject {
    fn from(r: RatingRun) -> Self {
        Self {
            id: ID(r.id.to_string()),
            tenant_id: ID(r.tenant_id.to_string()),
            rate_card_id: ID(r.card_id.to_string()),
            kind: r.kind.into(),
            period_start: Date(r.period_start),
            period_end: Date(r.period_end),
            status: r.status.into(),
            started_at: r.started_at,
            finished_at: r.finished_at,
            totals: r.totals.into(),
            error: r.error,
            requested_by: r.requested_by,
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "ClosedBillingPeriod")]
pub struct ClosedPeriodObject {
    pub rate_card_id: ID,
    pub period_start: Date,
    pub run_id: ID,
    pub closed_at: DateTime<Utc>,
    pub closed_by: String,
}

impl From<ClosedPeriod> for ClosedPeriodObject {
    fn from(c: ClosedPeriod) -> Self {
        Self {
            rate_card_id: ID(c.card_id.to_string()),
            period_start: Date(c.period_start),
            run_id: ID(c.run_id.to_string()),
            closed_at: c.closed_at,
            closed_by: c.closed_by,
        }
    }
}

fn parse_uuid(id: &ID, field: &str) -> async_graphql::Result<Uuid> {
    Uuid::parse_str(id.as_str())
        .map_err(|_| to_gql(Error::invalid(field, format!("'{}' is not an id", id.as_str()))))
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "RatedDimension")]
pub enum RatedDimensionGql {
    Tenant,
    Sim,
    /// Sub-customer id (empty: SIMs assigned to none).
    Customer,
    /// MCC/MNC.
    Network,
    Zone,
    Day,
    Month,
    TariffPlan,
}

impl From<RatedDimensionGql> for RatedDimension {
    fn from(d: RatedDimensionGql) -> Self {
        match d {
            RatedDimensionGql::Tenant => Self::Tenant,
            RatedDimensionGql::Sim => Self::Sim,
            RatedDimensionGql::Customer => Self::Customer,
            RatedDimensionGql::Network => Self::Network,
            RatedDimensionGql::Zone => Self::Zone,
            RatedDimensionGql::Day => Self::Day,
            RatedDimensionGql::Month => Self::Month,
            RatedDimensionGql::TariffPlan => Self::TariffPlan,
        }
    }
}

impl From<RatedDimension> for RatedDimensionGql {
    fn from(d: RatedDimension) -> Self {
        match d {
            RatedDimension::Tenant => Self::Tenant,
            RatedDimension::Sim => Self::Sim,
            RatedDimension::Customer => Self::Customer,
            RatedDimension::Network => Self::Network,
            RatedDimension::Zone => Self::Zone,
            RatedDimension::Day => Self::Day,
            RatedDimension::Month => Self::Month,
            RatedDimension::TariffPlan => Self::TariffPlan,
        }
    }
}

/// Rated usage of one key.
#[derive(SimpleObject)]
#[graphql(name = "RatedUsageRow")]
pub struct RatedUsageRowObject {
    pub key: String,
    pub records: BigInt,
    pub bytes_in: BigInt,
    pub bytes_out: BigInt,
    /// Bytes after per-record rounding: what is charged.
    pub rounded_bytes: BigInt,
    /// Exact (12 decimals at most).
    pub cost: Decimal,
}

#[derive(SimpleObject)]
#[graphql(name = "AccessFeeRow")]
pub struct AccessFeeRowObject {
    pub key: String,
    /// SIM-months charged.
    pub charges: BigInt,
    pub fees: Decimal,
}

/// A billing period as rated: the current run and its sums.
#[derive(SimpleObject)]
#[graphql(name = "RatedPeriod")]
pub struct RatedPeriodObject {
    pub currency: String,
    pub run: RatingRunObject,
    pub by: RatedDimensionGql,
    pub usage: Vec<RatedUsageRowObject>,
    /// What `fees` are summed by: `by` where access fees have it (SIM, sub-customer, month,
    /// tariff plan), else the tenant.
    pub fees_by: RatedDimensionGql,
    pub fees: Vec<AccessFeeRowObject>,
    /// Data cost of the rows above, exact.
    pub usage_total: Decimal,
    pub fees_total: Decimal,
}

/// One invoice line.
#[derive(SimpleObject)]
#[graphql(name = "InvoiceLine")]
pub struct InvoiceLineObject {
    /// `DATA`, `ACCESS_FEE`, `ADJUSTMENT` (late usage of a closed period) or `OTHER`.
    pub kind: String,
    /// Stable code to map to an ERP item (`DATA-<ZONE>`, `ACCESS-FEE`, `ADJ-DATA-<ZONE>`,
    /// `ADJ-ACCESS-FEE`, `OTHER`, `CREDIT`).
    pub item_code: String,
    pub description: String,
    /// MB (up to 6 decimals) for data, SIM-months for access fees, units for charges.
    pub quantity: Decimal,
    pub unit: String,
    pub unit_price: Decimal,
    /// Rounded half away from zero to the currency's minor unit.
    pub amount: Decimal,
    /// Before rounding.
    pub exact_amount: Decimal,
    /// For an adjustment: the first day of the closed period whose late usage it charges.
    pub adjusts_period_start: Option<Date>,
}

/// What a tenant owes the platform for one period.
#[derive(SimpleObject)]
#[graphql(name = "TenantInvoice")]
pub struct TenantInvoiceObject {
    pub tenant_id: ID,
    pub currency: String,
    pub period_start: Date,
    /// First day after the period.
    pub period_end: Date,
    /// The rating run the lines come from.
    pub run_id: ID,
    /// The period is closed: these lines are final.
    pub is_final: bool,
    pub lines: Vec<InvoiceLineObject>,
    /// Sum of the lines' amounts.
    pub total: Decimal,
    /// What the period costs the platform by the tenant's supplier card (data and access fees,
    /// rounded half-up to the currency's minor unit). Platform admins only; null without a
    /// supplier card in the invoice's currency, when its billing periods do not line up with
    /// this one, or before it rated all of them.
    pub supplier_cost: Option<Decimal>,
    /// `total` minus `supplierCost`: what the platform keeps. Null as `supplierCost`.
    pub margin: Option<Decimal>,
}

impl From<TenantInvoice> for TenantInvoiceObject {
    fn from(i: TenantInvoice) -> Self {
        let minor = i.currency.minor_units();
        Self {
            tenant_id: ID(i.tenant_id.to_string()),
            currency: i.currency.code().to_owned(),
            period_start: Date(i.period_start),
            period_end: Date(i.period_end),
            run_id: ID(i.run_id.to_string()),
            is_final: i.is_final,
            lines: i
                .lines
                .into_iter()
                .map(|l| InvoiceLineObject {
                    kind: l.kind.as_str().to_owned(),
                    item_code: l.item_code,
                    description: l.description,
                    quantity: Decimal(l.quantity),
                    unit: l.unit.to_owned(),
                    unit_price: price(l.unit_price),
                    amount: Decimal(l.amount.round_half_up(minor)),
                    exact_amount: Decimal(l.exact_amount),
                    adjusts_period_start: l.adjusts_period_start.map(Date),
                })
                .collect(),
            total: Decimal(i.total),
            supplier_cost: i.supplier_cost.map(|c| Decimal(c.round_half_up(minor))),
            margin: i.supplier_cost.map(|c| Decimal(i.total - c.round_half_up(minor))),
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "InvoiceCharge")]
pub struct InvoiceChargeObject {
    pub id: ID,
    pub period_start: Date,
    pub description: String,
    pub quantity: BigInt,
    pub unit_price: Decimal,
    pub credit: bool,
    pub amount: Decimal,
}
