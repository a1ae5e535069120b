//! Tenant invoice data for the platform operator: per tenant and billing period, line items
//! (data by zone and price, access fees by fee, adjustments for late usage of closed periods, other charges entered by a platform admin) with
//! quantities, unit prices and amounts, in a shape an ERP imports (see `docs/billing.md`).
//!
//! Amounts are exact until a line is made: each line's amount is its exact sum rounded once, half
//! away from zero, to the currency's minor unit; the invoice total is the sum of its lines (as an
//! ERP adds them up).

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::adjustment::{data_groups, PeriodAdjustment};
use super::money::{Cost, Currency, Price, COST_SCALE};
use super::rate_card::RateCard;
use crate::{Error, Result, TenantId};

/// A charge a platform admin adds to a tenant's period (set-up fees, hardware, credits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceCharge {
    pub id: Uuid,
    pub tenant_id: TenantId,
    /// First day of the billing period it belongs to.
    pub period_start: NaiveDate,
    pub description: String,
    pub quantity: u64,
    pub unit_price: Price,
    /// A credit lowers the invoice.
    pub credit: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

impl InvoiceCharge {
    pub fn check_description(text: &str) -> Result<String> {
        let t = text.trim();
        if t.is_empty() || t.chars().count() > 200 || t.chars().any(char::is_control) {
            return Err(Error::invalid(
                "description",
                "a charge needs a description of 1 to 200 printable characters",
            ));
        }
        Ok(t.to_owned())
    }

    pub fn amount(&self) -> Cost {
        let a = Cost::from_units(self.unit_price.as_cost().units() * i128::from(self.quantity));
        if self.credit {
            Cost::ZERO - a
        } else {
            a
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LineKind {
    Data,
    AccessFee,
    /// Late usage of a closed period, charged in a later one.
    Adjustment,
    Other,
}

impl LineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Data => "DATA",
            LineKind::AccessFee => "ACCESS_FEE",
            LineKind::Adjustment => "ADJUSTMENT",
            LineKind::Other => "OTHER",
        }
    }
}

/// One line of an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceLine {
    pub kind: LineKind,
    /// Stable code an ERP maps to an item (`DATA-EU`, `ACCESS-FEE`, `OTHER`).
    pub item_code: String,
    pub description: String,
    /// Exact: MB with up to 6 decimals for data, SIM-months for fees, units for charges.
    pub quantity: Cost,
    pub unit: &'static str,
    pub unit_price: Price,
    /// `exact_amount` rounded half away from zero to the currency's minor unit.
    pub amount: Cost,
    pub exact_amount: Cost,
    /// For an adjustment: the first day of the closed period it corrects.
    pub adjusts_period_start: Option<NaiveDate>,
}

/// What a tenant owes for one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantInvoice {
    pub tenant_id: TenantId,
    pub currency: Currency,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    /// The rating run the data and fee lines come from.
    pub run_id: Uuid,
    /// Whether the period is closed (the lines are final).
    pub is_final: bool,
    pub lines: Vec<InvoiceLine>,
    /// Sum of the lines' amounts.
    pub total: Cost,
    /// What the period costs the platform by the tenant's supplier card: data and access fees
    /// of its runs covering exactly this period, exact. `None` for a caller without supplier
    /// rights, without a supplier card in the same currency, when its periods do not line up
    /// with this one, or before it rated all of them.
    pub supplier_cost: Option<Cost>,
}

/// Rated usage of one zone, tariff plan and day (what a data line is built from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedUsage {
    pub zone: String,
    pub tariff_plan: String,
    pub day: NaiveDate,
    pub rounded_bytes: u64,
    pub cost: Cost,
}

/// Access fees charged at one amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeGroup {
    pub fee: Price,
    pub charges: u64,
    pub total: Cost,
}

/// Builds the lines: data by zone and unit price (the price in force on each row's day for its
/// tariff plan), access fees by amount, adjustments for late usage of closed periods (oldest
/// period first), then other charges in the order entered.
pub fn invoice_lines(
    card: &RateCard,
    usage: &[PricedUsage],
    fees: &[FeeGroup],
    adjustments: &[PeriodAdjustment],
    charges: &[InvoiceCharge],
) -> Result<Vec<InvoiceLine>> {
    let minor = card.currency.minor_units();
    let mut lines = Vec::new();
    for ((zone, price), (bytes, exact)) in data_groups(card, usage)? {
        // The line's quantity times its price is its amount: rows are priced this way.
        debug_assert_eq!(Cost::from_units(bytes * i128::from(price.micros())), exact);
        lines.push(InvoiceLine::new(
            (LineKind::Data, format!("DATA-{}", item_suffix(&zone))),
            format!("Data, zone {zone}"),
            megabytes(bytes),
            price,
            exact,
            minor,
        ));
    }
    let mut fee_groups: Vec<&FeeGroup> = fees.iter().filter(|f| f.charges > 0).collect();
    fee_groups.sort_by_key(|f| std::cmp::Reverse(f.fee));
    for f in fee_groups {
        lines.push(InvoiceLine::new(
            (LineKind::AccessFee, "ACCESS-FEE".into()),
            format!("Access fee, SIMs active in the month, at {}", f.fee),
            units(i128::from(f.charges), "SIM-month"),
            f.fee,
            f.total,
            minor,
        ));
    }
    let mut adjustments: Vec<&PeriodAdjustment> = adjustments.iter().collect();
    adjustments.sort_by_key(|a| a.adjusted_period_start);
    for a in adjustments {
        let period = format!(
            "{} to {}",
            a.adjusted_period_start,
            a.adjusted_period_end.pred_opt().unwrap_or(a.adjusted_period_end)
        );
        let adjusts = |line: InvoiceLine| InvoiceLine {
            adjusts_period_start: Some(a.adjusted_period_start),
            ..line
        };
        for d in &a.data {
            lines.push(adjusts(InvoiceLine::new(
                (LineKind::Adjustment, format!("ADJ-DATA-{}", item_suffix(&d.zone))),
                format!("Late usage of {period}: data, zone {}", d.zone),
                megabytes(i128::from(d.rounded_bytes)),
                d.unit_price,
                d.cost,
                minor,
            )));
        }
        for f in &a.fees {
            lines.push(adjusts(InvoiceLine::new(
                (LineKind::Adjustment, "ADJ-ACCESS-FEE".into()),
                format!("Late change of {period}: access fees at {}", f.fee),
                units(i128::from(f.charges), "SIM-month"),
                f.fee,
                f.total,
                minor,
            )));
        }
    }
    for c in charges {
        lines.push(InvoiceLine::new(
            (
                LineKind::Other,
                if c.credit { "CREDIT".into() } else { "OTHER".into() },
            ),
            c.description.clone(),
            units(i128::from(c.quantity), "each"),
            c.unit_price,
            c.amount(),
            minor,
        ));
    }
    Ok(lines)
}

impl InvoiceLine {
    /// A line of `kind` and item code whose amount is `exact` rounded once, half away from zero,
    /// to the currency's `minor` units.
    fn new(
        (kind, item_code): (LineKind, String),
        description: String,
        (quantity, unit): (Cost, &'static str),
        unit_price: Price,
        exact: Cost,
        minor: u32,
    ) -> Self {
        Self {
            kind,
            item_code,
            description,
            quantity,
            unit,
            unit_price,
            amount: exact.round_half_up(minor),
            exact_amount: exact,
            adjusts_period_start: None,
        }
    }
}

/// A quantity in MB (up to 6 decimals) of `bytes`.
fn megabytes(bytes: i128) -> (Cost, &'static str) {
    (Cost::from_units(bytes * 1_000_000), "MB")
}

/// A quantity of `n` whole `unit`s.
fn units(n: i128, unit: &'static str) -> (Cost, &'static str) {
    (Cost::from_units(n * 10_i128.pow(COST_SCALE)), unit)
}

/// An item code part from a zone name: upper-case letters and digits, others as `-`.
fn item_suffix(zone: &str) -> String {
    zone.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '-'
            }
        })
        .collect()
}
