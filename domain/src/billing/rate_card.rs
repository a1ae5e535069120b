//! Rate cards: what a tenant's data costs. A card belongs to one tenant and is either the price
//! the tenant pays the platform (`Retail`) or what the platform pays its network supplier for the
//! tenant's traffic (`Supplier`, seen by platform admins only, so margin stays theirs).
//!
//! A card has a currency and a billing period, and versions by effective date; the version in
//! force on a record's day prices it. A version holds zones (sets of networks and countries with a
//! price per MB; one default zone for everything else), a per-record rounding increment, a monthly
//! access fee per SIM that was ACTIVE at any time in the month, and overrides by tariff plan.
//!
//! A record's zone: the zone listing its network (MCC/MNC), else the zone listing its network's
//! country, else the default zone. A network or a country appears in at most one zone.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::money::{Currency, Price};
use crate::identifiers::MccMnc;
use crate::usage::networks::Networks;
use crate::{Error, Result, TenantId};

/// Largest per-record rounding increment: 100 MB.
pub const MAX_ROUNDING_INCREMENT: u64 = 100_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RateCardKind {
    /// What the tenant pays the platform.
    Retail,
    /// What the platform pays for the tenant's traffic (platform admins only).
    Supplier,
}

impl RateCardKind {
    pub const ALL: [RateCardKind; 2] = [RateCardKind::Retail, RateCardKind::Supplier];

    pub fn as_str(self) -> &'static str {
        match self {
            RateCardKind::Retail => "RETAIL",
            RateCardKind::Supplier => "SUPPLIER",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::invalid(
                    "kind",
                    format!("'{s}' is not a rate card kind; allowed: RETAIL, SUPPLIER"),
                )
            })
    }
}

/// How often usage is invoiced. Periods start on the first day of a month, a quarter
/// (January, April, July, October) or a year, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BillingPeriod {
    Monthly,
    Quarterly,
    Annual,
}

impl BillingPeriod {
    pub const ALL: [BillingPeriod; 3] = [
        BillingPeriod::Monthly,
        BillingPeriod::Quarterly,
        BillingPeriod::Annual,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BillingPeriod::Monthly => "MONTHLY",
            BillingPeriod::Quarterly => "QUARTERLY",
            BillingPeriod::Annual => "ANNUAL",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::invalid(
                    "billingPeriod",
                    format!("'{s}' is not a billing period; allowed: MONTHLY, QUARTERLY, ANNUAL"),
                )
            })
    }

    fn months(self) -> u32 {
        match self {
            BillingPeriod::Monthly => 1,
            BillingPeriod::Quarterly => 3,
            BillingPeriod::Annual => 12,
        }
    }

    /// The period holding `day`: its first day and the first day after it.
    pub fn period_of(self, day: NaiveDate) -> (NaiveDate, NaiveDate) {
        let m = self.months();
        let first_month = (day.month0() / m) * m + 1;
        let start = NaiveDate::from_ymd_opt(day.year(), first_month, 1).unwrap_or(day);
        (start, start + Months::new(m))
    }
}

/// A set of networks and countries priced alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    pub name: String,
    pub networks: Vec<MccMnc>,
    /// ISO 3166 alpha-2 codes, upper case.
    pub countries: Vec<String>,
    pub price_per_mb: Price,
    /// The zone of every network no other zone lists.
    pub is_default: bool,
}

/// Different prices for the SIMs of one tariff plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TariffOverride {
    pub tariff_plan: String,
    /// Replaces the version's access fee for these SIMs.
    pub access_fee: Option<Price>,
    /// Replaces the price per MB of the zones named.
    pub zone_prices: Vec<ZonePrice>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZonePrice {
    pub zone: String,
    pub price_per_mb: Price,
}

/// The prices of one version, as given (validated by [`RateCardTerms::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateCardTerms {
    /// First day (UTC) the version prices.
    pub effective_from: NaiveDate,
    /// Each record's bytes (in + out) are rounded up to a multiple of this; 0 or 1: not rounded.
    pub rounding_increment_bytes: u64,
    /// Per SIM that was ACTIVE at any time in a month, once per month.
    pub access_fee: Price,
    pub zones: Vec<Zone>,
    pub overrides: Vec<TariffOverride>,
}

impl RateCardTerms {
    /// Checks the terms against the network catalogue, naming the field of the first problem:
    /// one default zone, unique zone names, each other zone listing something, no network or
    /// country in two zones, every network and country known, overrides naming known zones.
    pub fn validate(&self, networks: &Networks) -> Result<()> {
        if self.rounding_increment_bytes > MAX_ROUNDING_INCREMENT {
            return Err(Error::invalid(
                "roundingIncrementBytes",
                format!(
                    "{} is more than the largest increment, {MAX_ROUNDING_INCREMENT} bytes",
                    self.rounding_increment_bytes
                ),
            ));
        }
        if self.zones.is_empty() {
            return Err(Error::invalid(
                "zones",
                "a rate card needs at least its default zone",
            ));
        }
        let defaults = self.zones.iter().filter(|z| z.is_default).count();
        if defaults != 1 {
            return Err(Error::invalid(
                "zones",
                format!("exactly one zone must be the default (the rest of the world); {defaults} are"),
            ));
        }
        let countries: HashSet<&str> = networks.country_codes().collect();
        let mut names = HashSet::new();
        let mut network_zone: HashMap<&MccMnc, &str> = HashMap::new();
        let mut country_zone: HashMap<&str, &str> = HashMap::new();
        for (i, z) in self.zones.iter().enumerate() {
            let field = |f: &str| format!("zones[{i}].{f}");
            let name = z.name.trim();
            if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
                return Err(Error::invalid(
                    field("name"),
                    "a zone needs a name of 1 to 100 printable characters",
                ));
            }
            if !names.insert(name) {
                return Err(Error::invalid(
                    field("name"),
                    format!("two zones are named '{name}'"),
                ));
            }
            if !z.is_default && z.networks.is_empty() && z.countries.is_empty() {
                return Err(Error::invalid(
                    field("networks"),
                    format!(
                        "zone '{name}' lists no network and no country; only the default zone may be empty"
                    ),
                ));
            }
            for (j, n) in z.networks.iter().enumerate() {
                if networks.get(n).is_none() {
                    return Err(Error::invalid(
                        format!("zones[{i}].networks[{j}]"),
                        format!("{n} is not a network in the MCC/MNC table"),
                    ));
                }
                if let Some(other) = network_zone.insert(n, name) {
                    return Err(Error::invalid(
                        format!("zones[{i}].networks[{j}]"),
                        format!("{n} is already in zone '{other}'; a network belongs to one zone"),
                    ));
                }
            }
            for (j, c) in z.countries.iter().enumerate() {
                if !countries.contains(c.as_str()) {
                    return Err(Error::invalid(
                        format!("zones[{i}].countries[{j}]"),
                        format!("'{c}' is not the ISO 3166 alpha-2 code of a country in the MCC/MNC table"),
                    ));
                }
                if let Some(other) = country_zone.insert(c, name) {
                    return Err(Error::invalid(
                        format!("zones[{i}].countries[{j}]"),
                        format!("{c} is already in zone '{other}'; a country belongs to one zone"),
                    ));
                }
            }
        }
        let mut plans = HashSet::new();
        for (i, o) in self.overrides.iter().enumerate() {
            let plan = o.tariff_plan.trim();
            if plan.is_empty() {
                return Err(Error::invalid(
                    format!("overrides[{i}].tariffPlan"),
                    "must name a tariff plan",
                ));
            }
            if !plans.insert(plan) {
                return Err(Error::invalid(
                    format!("overrides[{i}].tariffPlan"),
                    format!("tariff plan '{plan}' has two overrides"),
                ));
            }
            if o.access_fee.is_none() && o.zone_prices.is_empty() {
                return Err(Error::invalid(
                    format!("overrides[{i}]"),
                    "an override changes the access fee, a zone's price, or both",
                ));
            }
            let mut seen = HashSet::new();
            for (j, p) in o.zone_prices.iter().enumerate() {
                if !names.contains(p.zone.trim()) {
                    return Err(Error::invalid(
                        format!("overrides[{i}].zonePrices[{j}].zone"),
                        format!("there is no zone '{}' in this version", p.zone),
                    ));
                }
                if !seen.insert(p.zone.trim()) {
                    return Err(Error::invalid(
                        format!("overrides[{i}].zonePrices[{j}].zone"),
                        format!("zone '{}' is priced twice", p.zone),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Index into `zones` of the zone pricing traffic on `network`.
    pub fn zone_of(&self, network: &MccMnc, networks: &Networks) -> usize {
        let country = networks.get(network).map(|n| n.country_code.as_str());
        self.zones
            .iter()
            .position(|z| z.networks.contains(network))
            .or_else(|| {
                country.and_then(|c| self.zones.iter().position(|z| z.countries.iter().any(|x| x == c)))
            })
            .or_else(|| self.zones.iter().position(|z| z.is_default))
            .unwrap_or(0)
    }

    /// Price per MB of zone `zone` for a SIM of `tariff_plan`.
    pub fn price(&self, zone: usize, tariff_plan: Option<&str>) -> Price {
        let z = &self.zones[zone];
        self.override_for(tariff_plan)
            .and_then(|o| o.zone_prices.iter().find(|p| p.zone.trim() == z.name.trim()))
            .map(|p| p.price_per_mb)
            .unwrap_or(z.price_per_mb)
    }

    /// Monthly access fee of a SIM of `tariff_plan`.
    pub fn access_fee(&self, tariff_plan: Option<&str>) -> Price {
        self.override_for(tariff_plan)
            .and_then(|o| o.access_fee)
            .unwrap_or(self.access_fee)
    }

    fn override_for(&self, tariff_plan: Option<&str>) -> Option<&TariffOverride> {
        let plan = tariff_plan?;
        self.overrides.iter().find(|o| o.tariff_plan.trim() == plan)
    }

    /// `bytes` rounded up to the increment.
    pub fn rounded(&self, bytes: u64) -> u64 {
        round_up(bytes, self.rounding_increment_bytes)
    }
}

/// `bytes` rounded up to a multiple of `increment` (0 or 1: unchanged).
pub fn round_up(bytes: u64, increment: u64) -> u64 {
    if increment <= 1 {
        bytes
    } else {
        bytes.div_ceil(increment).saturating_mul(increment)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateCardVersion {
    pub id: Uuid,
    pub terms: RateCardTerms,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateCard {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub kind: RateCardKind,
    pub name: String,
    pub currency: Currency,
    pub billing_period: BillingPeriod,
    /// First day the card no longer prices anything.
    pub retired_from: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    /// Oldest first.
    pub versions: Vec<RateCardVersion>,
}

impl RateCard {
    /// The version pricing `day`, if the card is in force then.
    pub fn version_on(&self, day: NaiveDate) -> Option<&RateCardVersion> {
        if self.retired_from.is_some_and(|r| day >= r) {
            return None;
        }
        self.versions.iter().rev().find(|v| v.terms.effective_from <= day)
    }

    /// First day anything is priced.
    pub fn starts(&self) -> Option<NaiveDate> {
        self.versions.first().map(|v| v.terms.effective_from)
    }
}

/// Checks a card's name (1 to 100 printable characters).
pub fn check_card_name(name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty() || n.len() > 100 || n.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            "a rate card needs a name of 1 to 100 printable characters",
        ));
    }
    Ok(n.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms() -> RateCardTerms {
        let p = |s| Price::parse("p", s).unwrap();
        RateCardTerms {
            effective_from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            rounding_increment_bytes: 1_024,
            access_fee: p("1.50"),
            zones: vec![
                Zone {
                    name: "Home".into(),
                    networks: vec![MccMnc::parse("262-01").unwrap()],
                    countries: vec![],
                    price_per_mb: p("0.01"),
                    is_default: false,
                },
                Zone {
                    name: "EU".into(),
                    networks: vec![],
                    countries: vec!["DE".into(), "FR".into()],
                    price_per_mb: p("0.02"),
                    is_default: false,
                },
                Zone {
                    name: "World".into(),
                    networks: vec![],
                    countries: vec![],
                    price_per_mb: p("0.10"),
                    is_default: true,
                },
            ],
            overrides: vec![TariffOverride {
                tariff_plan: "fleet-xl".into(),
                access_fee: Some(p("0.75")),
                zone_prices: vec![ZonePrice {
                    zone: "World".into(),
                    price_per_mb: p("0.05"),
                }],
            }],
        }
    }

    #[test]
    fn zones_resolve_network_then_country_then_default() {
        let n = Networks::builtin();
        let t = terms();
        t.validate(n).unwrap();
        let net = |s| MccMnc::parse(s).unwrap();
        assert_eq!(t.zone_of(&net("262-01"), n), 0, "listed network");
        assert_eq!(t.zone_of(&net("262-02"), n), 1, "German network by country");
        assert_eq!(t.zone_of(&net("208-01"), n), 1, "French network by country");
        assert_eq!(t.zone_of(&net("310-410"), n), 2, "elsewhere: default");
        assert_eq!(t.price(2, Some("fleet-xl")).to_string(), "0.050000");
        assert_eq!(t.price(2, Some("other")).to_string(), "0.100000");
        assert_eq!(t.access_fee(Some("fleet-xl")).to_string(), "0.750000");
        assert_eq!(t.access_fee(None).to_string(), "1.500000");
        assert_eq!(
            (t.rounded(0), t.rounded(1), t.rounded(1_024), t.rounded(1_025)),
            (0, 1_024, 1_024, 2_048)
        );
    }

    #[test]
    fn invalid_terms_name_the_field_and_what_is_allowed() {
        let n = Networks::builtin();
        type Change = Box<dyn Fn(&mut RateCardTerms)>;
        let cases: Vec<(Change, &str, &str)> = vec![
            (
                Box::new(|t| t.zones[2].is_default = false),
                "zones",
                "exactly one zone must be the default",
            ),
            (
                Box::new(|t| t.zones[1].countries.push("DE".into())),
                "zones[1].countries[2]",
                "already in zone 'EU'",
            ),
            (
                Box::new(|t| t.zones[1].networks.push(MccMnc::parse("262-01").unwrap())),
                "zones[1].networks[0]",
                "already in zone 'Home'",
            ),
            (
                Box::new(|t| t.zones[1].countries.push("XX".into())),
                "zones[1].countries[2]",
                "not the ISO 3166",
            ),
            (
                Box::new(|t| t.zones[0].networks.push(MccMnc::parse("262-55").unwrap())),
                "zones[0].networks[1]",
                "not a network",
            ),
            (
                Box::new(|t| {
                    t.zones[1].countries.clear();
                }),
                "zones[1].networks",
                "lists no network",
            ),
            (
                Box::new(|t| t.zones[1].name = "Home".into()),
                "zones[1].name",
                "two zones are named",
            ),
            (
                Box::new(|t| t.overrides[0].zone_prices[0].zone = "Mars".into()),
                "overrides[0].zonePrices[0].zone",
                "no zone 'Mars'",
            ),
            (
                Box::new(|t| t.rounding_increment_bytes = 200_000_000),
                "roundingIncrementBytes",
                "largest increment",
            ),
            (
                Box::new(|t| t.zones.clear()),
                "zones",
                "at least its default zone",
            ),
        ];
        for (change, field, why) in cases {
            let mut t = terms();
            change(&mut t);
            match t.validate(n) {
                Err(Error::InvalidInput { field: f, reason }) => {
                    assert_eq!(f, field, "{reason}");
                    assert!(reason.contains(why), "{field}: {reason}");
                }
                other => panic!("{field}: expected invalid input, got {other:?}"),
            }
        }
    }

    #[test]
    fn versions_apply_from_their_day_until_the_card_retires() {
        let mut v1 = terms();
        v1.effective_from = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let mut v2 = terms();
        v2.effective_from = NaiveDate::from_ymd_opt(2026, 3, 15).unwrap();
        let version = |t: RateCardTerms| RateCardVersion {
            id: Uuid::new_v4(),
            terms: t,
            created_at: Utc::now(),
            created_by: "test".into(),
        };
        let mut card = RateCard {
            id: Uuid::new_v4(),
            tenant_id: TenantId(Uuid::new_v4()),
            kind: RateCardKind::Retail,
            name: "Standard".into(),
            currency: Currency::parse("currency", "EUR").unwrap(),
            billing_period: BillingPeriod::Monthly,
            retired_from: None,
            created_at: Utc::now(),
            versions: vec![version(v1), version(v2)],
        };
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        assert!(card.version_on(d(12, 31).with_year(2025).unwrap()).is_none());
        assert_eq!(card.version_on(d(3, 14)).unwrap().terms.effective_from, d(1, 1));
        assert_eq!(card.version_on(d(3, 15)).unwrap().terms.effective_from, d(3, 15));
        card.retired_from = Some(d(6, 1));
        assert!(card.version_on(d(6, 1)).is_none());
        assert_eq!(BillingPeriod::Quarterly.period_of(d(5, 20)), (d(4, 1), d(7, 1)));
        assert_eq!(
            BillingPeriod::Annual.period_of(d(5, 20)),
            (d(1, 1), d(1, 1).with_year(2027).unwrap())
        );
        assert_eq!(
            BillingPeriod::Monthly.period_of(d(12, 31)),
            (d(12, 1), d(1, 1).with_year(2027).unwrap())
        );
    }
}
