//! Plan advice: traffic priced per day and network by the retail card (the version in force on
//! each day), the access fee once per month with traffic, the cheapest of the plans the card
//! offers and the sentences that say so.

use chrono::NaiveDate;

use super::{money_text, month_of, MIN_SAVING_PERCENT, MIN_SAVING_UNITS};
use crate::billing::money::{Cost, Currency};
use crate::billing::rate_card::{RateCard, RateCardTerms};
use crate::identifiers::MccMnc;
use crate::usage::networks::Networks;

/// Bytes of one day on one network, as the daily usage cube has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkDayBytes {
    pub day: NaiveDate,
    /// `None`: not known (priced in the default zone).
    pub network: Option<MccMnc>,
    pub bytes: u64,
}

/// Traffic ready to be priced by a card: each row with the version in force on its day and its
/// zone in that version (looked up once, whatever the plans it is priced at).
pub struct PricedTraffic<'a> {
    card: &'a RateCard,
    rows: Vec<PricedRow<'a>>,
}

/// A day's bytes on a network, with the terms and zone pricing them (`None`: the card does not
/// price the day).
type PricedRow<'a> = (NaiveDate, u64, Option<(&'a RateCardTerms, usize)>);

impl<'a> PricedTraffic<'a> {
    pub fn new(card: &'a RateCard, networks: &Networks, traffic: &[NetworkDayBytes]) -> Self {
        let rows = traffic
            .iter()
            .filter(|t| t.bytes > 0)
            .map(|t| {
                let zone = card
                    .version_on(t.day)
                    .map(|v| &v.terms)
                    .filter(|terms| !terms.zones.is_empty())
                    .map(|terms| {
                        let zone = match &t.network {
                            Some(n) => terms.zone_of(n, networks),
                            None => terms.zones.iter().position(|z| z.is_default).unwrap_or(0),
                        };
                        (terms, zone)
                    });
                (t.day, t.bytes, zone)
            })
            .collect();
        Self { card, rows }
    }

    fn within(&self, from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = &PricedRow<'a>> + '_ {
        self.rows
            .iter()
            .filter(move |(day, _, _)| (from..to).contains(day))
    }

    /// What the traffic of the days `[from, to)` costs on `plan` (days the card does not price
    /// cost nothing).
    pub fn data_cost(&self, plan: Option<&str>, from: NaiveDate, to: NaiveDate) -> Cost {
        self.within(from, to)
            .filter_map(|(_, bytes, zone)| zone.map(|(terms, z)| terms.price(z, plan).cost_of_bytes(*bytes)))
            .sum()
    }

    /// Bytes of the days `[from, to)`.
    pub fn bytes(&self, from: NaiveDate, to: NaiveDate) -> u64 {
        self.within(from, to).map(|(_, b, _)| *b).sum()
    }

    /// What each of `len` days from `first` costs on `plan`.
    pub fn daily_costs(&self, plan: Option<&str>, first: NaiveDate, len: usize) -> Vec<Cost> {
        let mut out = vec![Cost::ZERO; len];
        for (day, bytes, zone) in &self.rows {
            let (Some((terms, z)), Ok(i)) = (zone, usize::try_from((*day - first).num_days())) else {
                continue;
            };
            if let Some(slot) = out.get_mut(i) {
                *slot = *slot + terms.price(*z, plan).cost_of_bytes(*bytes);
            }
        }
        out
    }

    /// The months (first days) with traffic in the days `[from, to)`.
    pub fn months_with_traffic(&self, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        let mut months: Vec<NaiveDate> = self.within(from, to).map(|(day, _, _)| month_of(*day)).collect();
        months.sort_unstable();
        months.dedup();
        months
    }

    /// The access fees of `plan` for these months: each at the version in force on the month's
    /// first day the card prices (as rating charges them).
    pub fn access_fees(&self, months: &[NaiveDate], plan: Option<&str>) -> Cost {
        months
            .iter()
            .filter_map(|m| fee_version(self.card, *m))
            .map(|terms| terms.access_fee(plan).as_cost())
            .sum()
    }

    /// The data cost of `[from, to)` on `plan` and the access fees of its months with traffic.
    pub fn cost(&self, plan: Option<&str>, from: NaiveDate, to: NaiveDate) -> Cost {
        self.data_cost(plan, from, to) + self.access_fees(&self.months_with_traffic(from, to), plan)
    }
}

/// The terms charging the access fee of the month starting `month`: the version in force on its
/// first day, or on the card's first day when the card starts within the month.
fn fee_version(card: &RateCard, month: NaiveDate) -> Option<&RateCardTerms> {
    card.version_on(month)
        .or_else(|| {
            card.starts()
                .filter(|s| month_of(*s) == month)
                .and_then(|s| card.version_on(s))
        })
        .map(|v| &v.terms)
}

/// The plans a card's version offers a SIM: its base prices (`None`) and each override's plan.
/// Empty when the version has no override (there is nothing to choose).
pub fn plan_options(terms: &RateCardTerms) -> Vec<Option<String>> {
    if terms.overrides.is_empty() {
        return Vec::new();
    }
    std::iter::once(None)
        .chain(
            terms
                .overrides
                .iter()
                .map(|o| Some(o.tariff_plan.trim().to_owned())),
        )
        .collect()
}

/// A cheaper plan for a SIM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanChoice {
    pub current_plan: Option<String>,
    pub current_cost: Cost,
    /// `None`: the card's base prices.
    pub plan: Option<String>,
    pub cost: Cost,
}

impl PlanChoice {
    pub fn saving(&self) -> Cost {
        self.current_cost - self.cost
    }
}

/// The cheapest of `options` (a plan, `None` for the card's base prices, with what the window
/// would have cost on it; the first of equals) when it saves at least [`MIN_SAVING_PERCENT`] %
/// and 0.01 of the currency over `current_cost`, what the window cost on the SIM's plan.
pub fn cheaper_plan(
    current_plan: Option<&str>,
    current_cost: Cost,
    options: &[(Option<String>, Cost)],
) -> Option<PlanChoice> {
    let (plan, cost) = options.iter().min_by_key(|(_, c)| *c)?;
    if plan.as_deref() == current_plan {
        return None;
    }
    let saving = current_cost - *cost;
    if saving.units() < MIN_SAVING_UNITS || saving.units() * 100 < current_cost.units() * MIN_SAVING_PERCENT {
        return None;
    }
    Some(PlanChoice {
        current_plan: current_plan.map(str::to_owned),
        current_cost,
        plan: plan.clone(),
        cost: *cost,
    })
}

/// A plan as sentences name it.
fn plan_words(plan: Option<&str>) -> String {
    match plan {
        Some(p) => format!("plan {p}"),
        None => "the card's base prices".to_owned(),
    }
}

/// The sentences of a plan advice over `days` days: with the amounts, and without.
pub fn plan_sentences(choice: &PlanChoice, days: i64, currency: Currency) -> (String, String) {
    let on = plan_words(choice.plan.as_deref());
    let now = match choice.current_plan.as_deref() {
        Some(p) => format!("its plan {p}"),
        None => "the card's base prices it pays now".to_owned(),
    };
    // The saving shown is the difference of the amounts shown, so that the sentence adds up.
    let current = choice.current_cost.round_half_up(2);
    let cheaper = choice.cost.round_half_up(2);
    let with = format!(
        "On {on} this SIM's last {days} days would have cost {} instead of {} (save {})",
        money_text(cheaper, currency),
        money_text(current, currency),
        money_text(current - cheaper, currency),
    );
    let plain = format!("On {on} this SIM's last {days} days would have cost less than on {now}");
    (with, plain)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::super::test_support::{basis, cost, d, eur};
    use super::super::{AdviceAction, AdviceKind};
    use super::*;
    use crate::billing::money::Price;
    use crate::billing::rate_card::{
        BillingPeriod, RateCardKind, RateCardVersion, TariffOverride, Zone, ZonePrice,
    };
    use crate::TenantId;

    const MB: u64 = 1_000_000;

    fn card() -> RateCard {
        let p = |s| Price::parse("p", s).unwrap();
        let terms = RateCardTerms {
            effective_from: d(2025, 1, 1),
            rounding_increment_bytes: 1_024,
            access_fee: p("1"),
            zones: vec![
                Zone {
                    name: "Home".into(),
                    networks: vec![MccMnc::parse("262-01").unwrap()],
                    countries: vec![],
                    price_per_mb: p("0.01"),
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
                tariff_plan: "heavy".into(),
                access_fee: Some(p("5")),
                zone_prices: vec![ZonePrice {
                    zone: "Home".into(),
                    price_per_mb: p("0.002"),
                }],
            }],
        };
        RateCard {
            id: Uuid::nil(),
            tenant_id: TenantId(Uuid::nil()),
            kind: RateCardKind::Retail,
            name: "Retail".into(),
            currency: eur(),
            billing_period: BillingPeriod::Monthly,
            retired_from: None,
            created_at: Utc::now(),
            versions: vec![RateCardVersion {
                id: Uuid::nil(),
                terms,
                created_at: Utc::now(),
                created_by: "test".into(),
            }],
        }
    }

    #[test]
    fn plans_are_priced_by_zone_with_an_access_fee_per_month_with_traffic() {
        let card = card();
        let home = MccMnc::parse("262-01").unwrap();
        // 1 GB a day at home on 59 days (1 January to 28 February), 10 MB abroad on 1 March.
        let mut traffic: Vec<NetworkDayBytes> = (0..59)
            .map(|i| NetworkDayBytes {
                day: d(2026, 1, 1) + chrono::Duration::days(i),
                network: Some(home.clone()),
                bytes: 1_000 * MB,
            })
            .collect();
        traffic.push(NetworkDayBytes {
            day: d(2026, 3, 1),
            network: Some(MccMnc::parse("310-410").unwrap()),
            bytes: 10 * MB,
        });
        traffic.push(NetworkDayBytes {
            day: d(2026, 3, 2),
            network: None,
            bytes: 0,
        });
        let priced = PricedTraffic::new(&card, Networks::builtin(), &traffic);
        let (from, to) = (d(2025, 12, 18), d(2026, 3, 18));
        assert_eq!(priced.bytes(from, to), 59_010 * MB);
        assert_eq!(
            priced.months_with_traffic(from, to),
            [d(2026, 1, 1), d(2026, 2, 1), d(2026, 3, 1)]
        );
        // Base: 59,000 MB × 0.01 + 10 MB × 0.10 + 3 × 1 = 594.
        assert_eq!(priced.cost(None, from, to), cost("594"));
        // Heavy: 59,000 MB × 0.002 + 10 MB × 0.10 + 3 × 5 = 134.
        assert_eq!(priced.cost(Some("heavy"), from, to), cost("134"));
        // A plan without an override prices as the base.
        assert_eq!(priced.cost(Some("other"), from, to), cost("594"));
        let daily = priced.daily_costs(None, d(2026, 1, 1), 60);
        assert_eq!((daily[0], daily[59]), (cost("10"), cost("1")));

        let options: Vec<(Option<String>, Cost)> = plan_options(&card.versions[0].terms)
            .into_iter()
            .map(|p| {
                let c = priced.cost(p.as_deref(), from, to);
                (p, c)
            })
            .collect();
        assert_eq!(options[1], (Some("heavy".to_owned()), cost("134")));
        let choice = cheaper_plan(None, cost("594"), &options).unwrap();
        assert_eq!(
            (choice.plan.as_deref(), choice.saving()),
            (Some("heavy"), cost("460"))
        );
        let a = basis().plan(&choice, eur());
        assert_eq!(
            a.sentence,
            "On plan heavy this SIM's last 90 days would have cost 134.00 EUR instead of 594.00 EUR (save 460.00 EUR)"
        );
        assert_eq!(
            a.plain_sentence,
            "On plan heavy this SIM's last 90 days would have cost less than on the card's base prices it pays now"
        );
        assert_eq!(
            (a.kind, a.action, a.saving_rank()),
            (AdviceKind::Plan, AdviceAction::SwitchPlan, 460_000_000)
        );
        // Already on the cheapest plan, or saving too little: nothing.
        assert!(cheaper_plan(Some("heavy"), cost("134"), &options).is_none());
        let close = [(None, cost("100")), (Some("x".to_owned()), cost("99.5"))];
        assert!(
            cheaper_plan(None, cost("100"), &close).is_none(),
            "0.5 % is too little"
        );
        let cents = [(None, cost("0.50")), (Some("x".to_owned()), cost("0.495"))];
        assert!(
            cheaper_plan(None, cost("0.50"), &cents).is_none(),
            "half a cent is too little"
        );
        let light = [(None, cost("1.00")), (Some("x".to_owned()), cost("0.99"))];
        assert!(
            cheaper_plan(None, cost("1.00"), &light).is_some(),
            "1 % and a cent is enough"
        );
    }
}
