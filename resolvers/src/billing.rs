//! Rate cards and rating runs: queries for everyone allowed to see costs, mutations for platform
//! admins (cards, closing periods) and admins (rating on demand).

use async_graphql::{Context, Enum, InputObject, Object, Scalar, ScalarType, SimpleObject, Value, ID};
use chrono::{DateTime, Utc};
use ioto_app::billing::{NewCharge, NewRateCard, Requester};
use ioto_domain::billing::invoice::TenantInvoice;
use ioto_domain::billing::money::{Cost, Currency, Price};
use ioto_domain::billing::rate_card::{
    BillingPeriod, RateCard, RateCardKind, RateCardTerms, RateCardVersion, TariffOverride, Zone, ZonePrice,
};
use ioto_domain::billing::rating::{RatingRun, RatingTotals, RunStatus};
use ioto_domain::identifiers::MccMnc;
use ioto_domain::ports::billing::{ClosedPeriod, RatedDimension};
use ioto_domain::{Error, TenantId};
use uuid::Uuid;

use crate::context::{actor, services};
use crate::error::{to_gql, GqlResult};
use crate::scalars::{BigInt, MccMncScalar};
use crate::types::usage::Date;

/// An exact decimal amount of money, written as a string (`"12.345"`) so no JSON parser rounds it.
/// Costs carry up to 12 decimals; prices up to 6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal(pub Cost);

#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> async_graphql::InputValueResult<Self> {
        match &value {
            Value::String(s) => Cost::parse("Decimal", s)
                .map(Decimal)
                .map_err(|e| async_graphql::InputValueError::custom(e.to_string())),
            _ => Err(async_graphql::InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

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

#[derive(InputObject)]
pub struct ZoneInput {
    pub name: String,
    /// MCC/MNC codes, e.g. `262-01`.
    #[graphql(default)]
    pub networks: Vec<String>,
    /// ISO 3166 alpha-2 codes.
    #[graphql(default)]
    pub countries: Vec<String>,
    /// Price per MB (1,000,000 bytes), at most 6 decimals, e.g. `"0.0125"`.
    pub price_per_mb: String,
    #[graphql(default)]
    pub is_default: bool,
}

#[derive(InputObject)]
pub struct ZonePriceInput {
    pub zone: String,
    pub price_per_mb: String,
}

#[derive(InputObject)]
pub struct TariffOverrideInput {
    pub tariff_plan: String,
    pub access_fee: Option<String>,
    #[graphql(default)]
    pub zone_prices: Vec<ZonePriceInput>,
}

#[derive(InputObject)]
pub struct RateCardVersionInput {
    /// First day (UTC) the version prices.
    pub effective_from: Date,
    /// Round each record's bytes up to a multiple of this (e.g. 1024); 0: no rounding.
    #[graphql(default)]
    pub rounding_increment_bytes: BigInt,
    /// Monthly fee per SIM that was ACTIVE at any time in the month, e.g. `"1.50"`.
    pub access_fee: String,
    pub zones: Vec<ZoneInput>,
    #[graphql(default)]
    pub overrides: Vec<TariffOverrideInput>,
}

impl RateCardVersionInput {
    /// The terms, each field parsed and named by its path under `at` when refused.
    fn terms(self, at: &str) -> Result<RateCardTerms, Error> {
        let field = |f: String| format!("{at}{f}");
        let increment = u64::try_from(self.rounding_increment_bytes.0)
            .map_err(|_| Error::invalid(field("roundingIncrementBytes".into()), "must be 0 or more"))?;
        let mut zones = Vec::with_capacity(self.zones.len());
        for (i, z) in self.zones.into_iter().enumerate() {
            let networks = z
                .networks
                .iter()
                .enumerate()
                .map(|(j, n)| {
                    MccMnc::parse(n).map_err(|e| match e {
                        Error::InvalidInput { reason, .. } => {
                            Error::invalid(field(format!("zones[{i}].networks[{j}]")), reason)
                        }
                        other => other,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            zones.push(Zone {
                name: z.name.trim().to_owned(),
                networks,
                countries: z
                    .countries
                    .iter()
                    .map(|c| c.trim().to_ascii_uppercase())
                    .collect(),
                price_per_mb: Price::parse(&field(format!("zones[{i}].pricePerMb")), &z.price_per_mb)?,
                is_default: z.is_default,
            });
        }
        let mut overrides = Vec::with_capacity(self.overrides.len());
        for (i, o) in self.overrides.into_iter().enumerate() {
            let access_fee = o
                .access_fee
                .as_deref()
                .map(|f| Price::parse(&field(format!("overrides[{i}].accessFee")), f))
                .transpose()?;
            let zone_prices = o
                .zone_prices
                .into_iter()
                .enumerate()
                .map(|(j, p)| {
                    Ok(ZonePrice {
                        zone: p.zone.trim().to_owned(),
                        price_per_mb: Price::parse(
                            &field(format!("overrides[{i}].zonePrices[{j}].pricePerMb")),
                            &p.price_per_mb,
                        )?,
                    })
                })
                .collect::<Result<Vec<_>, Error>>()?;
            overrides.push(TariffOverride {
                tariff_plan: o.tariff_plan.trim().to_owned(),
                access_fee,
                zone_prices,
            });
        }
        let terms = RateCardTerms {
            effective_from: self.effective_from.0,
            rounding_increment_bytes: increment,
            access_fee: Price::parse(&field("accessFee".into()), &self.access_fee)?,
            zones,
            overrides,
        };
        terms
            .validate(ioto_domain::usage::networks::Networks::builtin())
            .map_err(|e| match e {
                Error::InvalidInput { field: f, reason } => Error::invalid(field(f), reason),
                other => other,
            })?;
        Ok(terms)
    }
}

#[derive(InputObject)]
pub struct CreateRateCardInput {
    pub tenant_id: ID,
    pub kind: RateCardKindGql,
    pub name: String,
    /// ISO 4217, e.g. `EUR`.
    pub currency: String,
    pub billing_period: BillingPeriodGql,
    /// The card's price history, at least one version.
    pub versions: Vec<RateCardVersionInput>,
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

fn parse_tenant(id: Option<&ID>) -> async_graphql::Result<Option<TenantId>> {
    id.map(|id| TenantId::parse(id, "tenantId"))
        .transpose()
        .map_err(to_gql)
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

#[derive(InputObject)]
pub struct InvoiceChargeInput {
    pub tenant_id: ID,
    /// A day of the billing period the charge belongs to (today by default).
    pub day: Option<Date>,
    pub description: String,
    #[graphql(default = 1)]
    pub quantity: u32,
    /// Price of one unit, at most 6 decimals.
    pub unit_price: String,
    /// A credit lowers the invoice.
    #[graphql(default)]
    pub credit: bool,
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

#[derive(Default)]
pub struct BillingQuery;

#[Object]
impl BillingQuery {
    /// The tenant's rate cards the caller may see (the retail card; the supplier card too for
    /// platform admins).
    async fn rate_cards(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
    ) -> async_graphql::Result<Vec<RateCardObject>> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let cards = services(ctx)
            .billing
            .rate_cards(actor(ctx)?, tenant)
            .await
            .gql()?;
        Ok(cards.into_iter().map(RateCardObject).collect())
    }

    async fn rate_card(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<RateCardObject> {
        let id = parse_uuid(&id, "id")?;
        Ok(RateCardObject(
            services(ctx).billing.rate_card(actor(ctx)?, id).await.gql()?,
        ))
    }

    /// The current rating of the billing period holding `day` (today by default) for the card of
    /// `kind`, summed by `by`: usage and cost per sub-customer (to bill them), per SIM, network,
    /// zone, day, month or tariff plan. A customer user sees its own rows only. `null` when the
    /// period has not been rated.
    #[graphql(complexity = "crate::limits::rated_cost(by, child_complexity)")]
    async fn rated_usage(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        #[graphql(default_with = "RateCardKindGql::Retail")] kind: RateCardKindGql,
        day: Option<Date>,
        by: RatedDimensionGql,
    ) -> async_graphql::Result<Option<RatedPeriodObject>> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let day = day.map(|d| d.0).unwrap_or_else(|| Utc::now().date_naive());
        let Some(p) = services(ctx)
            .billing
            .rated_usage(actor(ctx)?, tenant, kind.into(), day, by.into())
            .await
            .gql()?
        else {
            return Ok(None);
        };
        let usage_total: Cost = p.usage.iter().map(|(_, s)| s.cost).sum();
        let fees_total: Cost = p.fees.iter().map(|(_, f)| f.fees).sum();
        Ok(Some(RatedPeriodObject {
            currency: p.currency.code().to_owned(),
            run: p.run.into(),
            by,
            usage: p
                .usage
                .into_iter()
                .map(|(key, s)| RatedUsageRowObject {
                    key,
                    records: s.records.into(),
                    bytes_in: s.bytes_in.into(),
                    bytes_out: s.bytes_out.into(),
                    rounded_bytes: s.rounded_bytes.into(),
                    cost: Decimal(s.cost),
                })
                .collect(),
            fees_by: p.fees_by.into(),
            fees: p
                .fees
                .into_iter()
                .map(|(key, f)| AccessFeeRowObject {
                    key,
                    charges: f.charges.into(),
                    fees: Decimal(f.fees),
                })
                .collect(),
            usage_total: Decimal(usage_total),
            fees_total: Decimal(fees_total),
        }))
    }

    /// PLATFORM_ADMIN: a tenant's invoice data for the billing period holding `day` (today by
    /// default); `null` before the period is rated.
    async fn tenant_invoice(
        &self,
        ctx: &Context<'_>,
        tenant_id: ID,
        day: Option<Date>,
    ) -> async_graphql::Result<Option<TenantInvoiceObject>> {
        let tenant = TenantId::parse(&tenant_id, "tenantId").gql()?;
        let day = day.map(|d| d.0).unwrap_or_else(|| Utc::now().date_naive());
        Ok(services(ctx)
            .billing
            .tenant_invoice(actor(ctx)?, tenant, day)
            .await
            .gql()?
            .map(Into::into))
    }

    /// Rating runs, newest period first (at most `first`, 50 by default).
    #[graphql(complexity = "crate::limits::page_cost(Some(first.min(500) as i32), 50, child_complexity)")]
    async fn rating_runs(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        #[graphql(default = 50)] first: u32,
    ) -> async_graphql::Result<Vec<RatingRunObject>> {
        let tenant = parse_tenant(tenant_id.as_ref())?;
        let runs = services(ctx)
            .billing
            .runs(actor(ctx)?, tenant, u64::from(first))
            .await
            .gql()?;
        Ok(runs.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct BillingMutation;

#[Object]
impl BillingMutation {
    /// PLATFORM_ADMIN: a tenant's retail or supplier card with its price history.
    async fn create_rate_card(
        &self,
        ctx: &Context<'_>,
        input: CreateRateCardInput,
    ) -> async_graphql::Result<RateCardObject> {
        let actor = actor(ctx)?;
        let tenant = TenantId::parse(&input.tenant_id, "tenantId").gql()?;
        let currency = Currency::parse("currency", &input.currency).gql()?;
        let versions = input
            .versions
            .into_iter()
            .enumerate()
            .map(|(i, v)| v.terms(&format!("versions[{i}].")))
            .collect::<Result<Vec<_>, _>>()
            .gql()?;
        let card = services(ctx)
            .billing
            .create_rate_card(
                actor,
                NewRateCard {
                    tenant_id: tenant,
                    kind: input.kind.into(),
                    name: input.name,
                    currency,
                    billing_period: input.billing_period.into(),
                    versions,
                },
            )
            .await
            .gql()?;
        Ok(RateCardObject(card))
    }

    /// PLATFORM_ADMIN: a new version taking effect today or later.
    async fn add_rate_card_version(
        &self,
        ctx: &Context<'_>,
        rate_card_id: ID,
        version: RateCardVersionInput,
    ) -> async_graphql::Result<RateCardObject> {
        let id = parse_uuid(&rate_card_id, "rateCardId")?;
        let terms = version.terms("version.").gql()?;
        Ok(RateCardObject(
            services(ctx)
                .billing
                .add_version(actor(ctx)?, id, terms)
                .await
                .gql()?,
        ))
    }

    /// PLATFORM_ADMIN: the card prices nothing from `from` (today or later).
    async fn retire_rate_card(
        &self,
        ctx: &Context<'_>,
        rate_card_id: ID,
        from: Date,
    ) -> async_graphql::Result<RateCardObject> {
        let id = parse_uuid(&rate_card_id, "rateCardId")?;
        Ok(RateCardObject(
            services(ctx)
                .billing
                .retire(actor(ctx)?, id, from.0)
                .await
                .gql()?,
        ))
    }

    /// PLATFORM_ADMIN or TENANT_ADMIN: rates the billing period holding `day` (today by default)
    /// now, for every card of the tenant; the result replaces the period's previous one.
    async fn rate_billing_period(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        day: Option<Date>,
    ) -> async_graphql::Result<Vec<RatingRunObject>> {
        let actor = actor(ctx)?;
        let tenant = actor.target_tenant(parse_tenant(tenant_id.as_ref())?).gql()?;
        let day = day.map(|d| d.0).unwrap_or_else(|| Utc::now().date_naive());
        let runs = services(ctx)
            .billing
            .rate_period(Requester::User(actor), tenant, day)
            .await
            .gql()?;
        Ok(runs.into_iter().map(Into::into).collect())
    }

    /// PLATFORM_ADMIN: a charge (or credit) on a tenant's invoice for an open period.
    async fn add_invoice_charge(
        &self,
        ctx: &Context<'_>,
        input: InvoiceChargeInput,
    ) -> async_graphql::Result<InvoiceChargeObject> {
        let tenant = TenantId::parse(&input.tenant_id, "tenantId").gql()?;
        let unit_price = Price::parse("unitPrice", &input.unit_price).gql()?;
        let day = input.day.map(|d| d.0).unwrap_or_else(|| Utc::now().date_naive());
        let c = services(ctx)
            .billing
            .add_charge(
                actor(ctx)?,
                NewCharge {
                    tenant,
                    day,
                    description: &input.description,
                    quantity: u64::from(input.quantity),
                    unit_price,
                    credit: input.credit,
                },
            )
            .await
            .gql()?;
        Ok(InvoiceChargeObject {
            id: ID(c.id.to_string()),
            period_start: Date(c.period_start),
            description: c.description.clone(),
            quantity: c.quantity.into(),
            unit_price: price(c.unit_price),
            credit: c.credit,
            amount: Decimal(c.amount()),
        })
    }

    /// PLATFORM_ADMIN: the period's current rating becomes final (what is invoiced); CDRs that
    /// arrive later for it are charged in the next open period.
    async fn close_billing_period(
        &self,
        ctx: &Context<'_>,
        rate_card_id: ID,
        period_start: Date,
    ) -> async_graphql::Result<ClosedPeriodObject> {
        let id = parse_uuid(&rate_card_id, "rateCardId")?;
        Ok(services(ctx)
            .billing
            .close_period(actor(ctx)?, id, period_start.0)
            .await
            .gql()?
            .into())
    }
}
