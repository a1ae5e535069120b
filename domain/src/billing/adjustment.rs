//! Late usage of closed periods: a closed period's invoice data is final and never rewritten, so
//! CDRs that arrive for it afterwards are charged as adjustment lines in a later, open period of
//! the same card.
//!
//! When an open period is rated, every closed period of the card whose CDR count has changed
//! since it was last looked at is rated again (by the same engine and rules, under a scratch run
//! whose rows are removed afterwards). Its data by zone and price and its access fees by amount
//! are compared with what was invoiced — the closed run plus the adjustments already booked
//! into other periods — and the difference is stored as the adjustment of the open period.
//! Re-rating the open period recomputes it and replaces it (idempotent); once the open period
//! is closed too, its adjustment is final like its other lines.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::invoice::{FeeGroup, PricedUsage};
use super::money::{Cost, Price};
use super::rate_card::{RateCard, RateCardKind};
use crate::{Error, Result, TenantId};

/// A change of data usage at one zone and price (negative when usage was removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataDelta {
    pub zone: String,
    pub unit_price: Price,
    pub rounded_bytes: i64,
    pub cost: Cost,
}

/// A change of access fees at one amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeDelta {
    pub fee: Price,
    pub charges: i64,
    pub total: Cost,
}

/// What a closed period owes on top of its invoice, booked into a later period of the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodAdjustment {
    pub card_id: Uuid,
    pub tenant_id: TenantId,
    pub kind: RateCardKind,
    /// First day of the period the adjustment is invoiced in.
    pub period_start: NaiveDate,
    /// The closed period whose usage changed: its first day and the first day after it.
    pub adjusted_period_start: NaiveDate,
    pub adjusted_period_end: NaiveDate,
    /// CDRs of the adjusted period when it was rated again for this adjustment.
    pub basis_records: u64,
    pub data: Vec<DataDelta>,
    pub fees: Vec<FeeDelta>,
    pub computed_at: DateTime<Utc>,
}

impl PeriodAdjustment {
    /// The adjustment's amount, exact.
    pub fn total(&self) -> Cost {
        self.data
            .iter()
            .map(|d| d.cost)
            .chain(self.fees.iter().map(|f| f.total))
            .sum()
    }
}

/// Rated data summed by zone and the unit price in force (the price on each row's day for its
/// tariff plan): rounded bytes and exact cost. Invoice data lines are these groups.
pub fn data_groups(
    card: &RateCard,
    usage: &[PricedUsage],
) -> Result<BTreeMap<(String, Price), (i128, Cost)>> {
    let mut data: BTreeMap<(String, Price), (i128, Cost)> = BTreeMap::new();
    for u in usage {
        let version = card.version_on(u.day).ok_or_else(|| {
            Error::Internal(format!("rated usage on {} which the card does not price", u.day))
        })?;
        let terms = &version.terms;
        let zone = terms
            .zones
            .iter()
            .position(|z| z.name == u.zone)
            .ok_or_else(|| Error::Internal(format!("rated zone '{}' is not in the card", u.zone)))?;
        let plan = (!u.tariff_plan.is_empty()).then_some(u.tariff_plan.as_str());
        let price = terms.price(zone, plan);
        let e = data.entry((u.zone.clone(), price)).or_insert((0, Cost::ZERO));
        e.0 += i128::from(u.rounded_bytes);
        e.1 = e.1 + u.cost;
    }
    Ok(data)
}

/// What is owed beyond what was invoiced: `rerated` (the closed period rated again now) minus
/// `invoiced` (its closed run) minus the adjustments already booked for it elsewhere. Groups
/// that did not change are left out.
pub fn delta(
    card: &RateCard,
    rerated: (&[PricedUsage], &[FeeGroup]),
    invoiced: (&[PricedUsage], &[FeeGroup]),
    booked: &[&PeriodAdjustment],
) -> Result<(Vec<DataDelta>, Vec<FeeDelta>)> {
    let mut data = data_groups(card, rerated.0)?;
    for (key, (bytes, cost)) in data_groups(card, invoiced.0)? {
        let e = data.entry(key).or_insert((0, Cost::ZERO));
        e.0 -= bytes;
        e.1 = e.1 - cost;
    }
    let mut fees: BTreeMap<Price, (i128, Cost)> = BTreeMap::new();
    for f in rerated.1 {
        let e = fees.entry(f.fee).or_insert((0, Cost::ZERO));
        e.0 += i128::from(f.charges);
        e.1 = e.1 + f.total;
    }
    for f in invoiced.1 {
        let e = fees.entry(f.fee).or_insert((0, Cost::ZERO));
        e.0 -= i128::from(f.charges);
        e.1 = e.1 - f.total;
    }
    for b in booked {
        for d in &b.data {
            let e = data
                .entry((d.zone.clone(), d.unit_price))
                .or_insert((0, Cost::ZERO));
            e.0 -= i128::from(d.rounded_bytes);
            e.1 = e.1 - d.cost;
        }
        for f in &b.fees {
            let e = fees.entry(f.fee).or_insert((0, Cost::ZERO));
            e.0 -= i128::from(f.charges);
            e.1 = e.1 - f.total;
        }
    }
    let count = |n: i128| {
        i64::try_from(n).map_err(|_| Error::Internal(format!("an adjustment of {n} does not fit 64 bits")))
    };
    let data = data
        .into_iter()
        .filter(|(_, (bytes, cost))| *bytes != 0 || *cost != Cost::ZERO)
        .map(|((zone, unit_price), (bytes, cost))| {
            Ok(DataDelta {
                zone,
                unit_price,
                rounded_bytes: count(bytes)?,
                cost,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let fees = fees
        .into_iter()
        .filter(|(_, (charges, total))| *charges != 0 || *total != Cost::ZERO)
        .map(|(fee, (charges, total))| {
            Ok(FeeDelta {
                fee,
                charges: count(charges)?,
                total,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((data, fees))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::money::Currency;
    use crate::billing::rate_card::{BillingPeriod, RateCardTerms, RateCardVersion, Zone};

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }

    fn card() -> RateCard {
        let zone = |name: &str, price: &str, is_default| Zone {
            name: name.into(),
            networks: vec![],
            countries: if is_default { vec![] } else { vec!["DE".into()] },
            price_per_mb: Price::parse("p", price).unwrap(),
            is_default,
        };
        RateCard {
            id: Uuid::nil(),
            tenant_id: TenantId(Uuid::nil()),
            kind: RateCardKind::Retail,
            name: "r".into(),
            currency: Currency::parse("c", "EUR").unwrap(),
            billing_period: BillingPeriod::Monthly,
            retired_from: None,
            created_at: Utc::now(),
            versions: vec![RateCardVersion {
                id: Uuid::nil(),
                terms: RateCardTerms {
                    effective_from: d(1, 1),
                    rounding_increment_bytes: 0,
                    access_fee: Price::parse("f", "1").unwrap(),
                    zones: vec![zone("DE", "0.5", false), zone("World", "2", true)],
                    overrides: vec![],
                },
                created_at: Utc::now(),
                created_by: "t".into(),
            }],
        }
    }

    fn used(zone: &str, mb: u64, cost: &str) -> PricedUsage {
        PricedUsage {
            zone: zone.into(),
            tariff_plan: String::new(),
            day: d(3, 5),
            rounded_bytes: mb * 1_000_000,
            cost: Cost::parse("c", cost).unwrap(),
        }
    }

    #[test]
    fn only_what_changed_and_was_not_booked_is_owed() {
        let card = card();
        let invoiced = [used("DE", 4, "2"), used("World", 1, "2")];
        let rerated = [used("DE", 4, "2"), used("DE", 2, "1"), used("World", 1, "2")];
        let fee = |charges, total: &str| FeeGroup {
            fee: Price::parse("f", "1").unwrap(),
            charges,
            total: Cost::parse("t", total).unwrap(),
        };
        let (data, fees) = delta(
            &card,
            (&rerated, &[fee(3, "3")]),
            (&invoiced, &[fee(3, "3")]),
            &[],
        )
        .unwrap();
        assert!(fees.is_empty(), "fees did not change");
        assert_eq!(
            data,
            vec![DataDelta {
                zone: "DE".into(),
                unit_price: Price::parse("p", "0.5").unwrap(),
                rounded_bytes: 2_000_000,
                cost: Cost::parse("c", "1").unwrap(),
            }]
        );
        // Booked once into another period, nothing more is owed for the same usage.
        let booked = PeriodAdjustment {
            card_id: card.id,
            tenant_id: card.tenant_id,
            kind: card.kind,
            period_start: d(4, 1),
            adjusted_period_start: d(3, 1),
            adjusted_period_end: d(4, 1),
            basis_records: 3,
            data: data.clone(),
            fees: vec![],
            computed_at: Utc::now(),
        };
        assert_eq!(booked.total(), Cost::parse("c", "1").unwrap());
        let (again, _) = delta(&card, (&rerated, &[]), (&invoiced, &[]), &[&booked]).unwrap();
        assert!(again.is_empty(), "{again:?}");
    }
}
