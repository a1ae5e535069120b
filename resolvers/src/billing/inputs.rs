//! What billing mutations take: rate cards with their versions, zones, prices and overrides, and
//! invoice charges.

use super::*;
use crate::scalars::BigInt;
use crate::scalars::Date;
use async_graphql::{InputObject, ID};
use ioto_domain::billing::money::Price;
use ioto_domain::billing::rate_card::{RateCardTerms, TariffOverride, Zone, ZonePrice};
use ioto_domain::identifiers::MccMnc;
use ioto_domain::Error;

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
    pub(crate) fn terms(self, at: &str) -> Result<RateCardTerms, Error> {
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
