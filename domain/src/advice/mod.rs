//! Quota and plan advice from the last 90 days of usage: the tariff plan of the tenant's retail
//! card that would have cost a SIM least, and a data limit that fits a SIM's (or a quota pool's)
//! usage with headroom — raising a limit its usage keeps passing, lowering one far above it,
//! setting one where there is none. The forecast pass (`ioto_app::forecast`) computes it and
//! stores it ([`Advice`]), replaced by every pass; reading it is a lookup.
//!
//! Costs are estimates: traffic is priced per UTC day and network, from the daily usage cube, at
//! the prices of the card's version in force on each day ([`PricedTraffic`]). Rating prices each
//! record with the card's per-record rounding increment; daily sums cannot replay it, so the
//! figures here leave it out (they are at or slightly below what rating charges).

mod plan;
mod quota;

pub use self::plan::{
    cheaper_plan, plan_options, plan_sentences, NetworkDayBytes, PlanChoice, PricedTraffic,
};
pub use self::quota::{
    months_of, quota_advice, quota_sentences, recommended_limit, stopped_by, traffic_days, typical, DayUse,
    MonthUsage, QuotaAdvice, Stopped, Typical,
};

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use uuid::Uuid;

use crate::billing::money::{Cost, Currency, COST_SCALE};
use crate::fleet::query::Cursor;
use crate::identifiers::Iccid;
use crate::quota::QuotaAction;
use crate::{CustomerId, Error, Result, SimId, TenantId};

/// The smallest limit advised: 1 MB.
pub const LADDER_FLOOR: u64 = 1_000_000;
/// The largest limit advised: 1 TB. Usage needing more gets no quota advice.
pub const LADDER_TOP: u64 = 1_000_000_000_000;
/// A limit more than this many times the recommended one is advised lower.
pub const LOWER_ABOVE: u64 = 4;
/// Days with traffic in the window a SIM without a quota needs before a limit is advised.
pub const SET_MIN_TRAFFIC_DAYS: usize = 28;
/// A cheaper plan is advised when it saves at least this share of the current cost (1 %)…
pub const MIN_SAVING_PERCENT: i128 = 1;
/// …and at least 0.01 of the currency (in whole 10⁻¹² units).
pub const MIN_SAVING_UNITS: i128 = 10_000_000_000;

/// Cost units (10⁻¹²) in a millionth of the currency: what lists sort savings by.
const UNITS_PER_MICRO: i128 = 10_i128.pow(COST_SCALE - 6);

const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// What an advice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdviceSubject {
    Sim(SimId),
    /// A quota pool, by id.
    Pool(Uuid),
}

impl AdviceSubject {
    /// The kind's stored name: `SIM` or `POOL`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sim(_) => "SIM",
            Self::Pool(_) => "POOL",
        }
    }

    pub fn id(&self) -> Uuid {
        match self {
            Self::Sim(s) => s.0,
            Self::Pool(p) => *p,
        }
    }

    /// The subject of a stored kind and id.
    pub fn from_parts(kind: &str, id: Uuid) -> Result<Self> {
        match kind {
            "SIM" => Ok(Self::Sim(SimId(id))),
            "POOL" => Ok(Self::Pool(id)),
            other => Err(Error::Internal(format!("'{other}' is not an advice subject"))),
        }
    }

    /// What sentences call the subject's SIMs.
    fn sims(&self) -> &'static str {
        match self {
            Self::Sim(_) => "the SIM",
            Self::Pool(_) => "the pool's SIMs",
        }
    }
}

/// What an advice is about: the tariff plan, or the data quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdviceKind {
    Plan,
    Quota,
}

impl AdviceKind {
    pub const ALL: [AdviceKind; 2] = [Self::Plan, Self::Quota];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plan => "PLAN",
            Self::Quota => "QUOTA",
        }
    }

    /// A stored name back.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::Internal(format!("'{s}' is not an advice kind")))
    }
}

/// What an advice says to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdviceAction {
    /// Move the SIM to the tariff plan that would have cost least.
    SwitchPlan,
    /// Give a SIM without a quota one.
    Set,
    /// Raise a limit the usage keeps passing.
    Raise,
    /// Lower a limit far above the usage.
    Lower,
}

impl AdviceAction {
    pub const ALL: [AdviceAction; 4] = [Self::SwitchPlan, Self::Set, Self::Raise, Self::Lower];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SwitchPlan => "SWITCH_PLAN",
            Self::Set => "SET",
            Self::Raise => "RAISE",
            Self::Lower => "LOWER",
        }
    }

    /// A stored name back.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| Error::Internal(format!("'{s}' is not an advice action")))
    }

    pub fn kind(self) -> AdviceKind {
        match self {
            Self::SwitchPlan => AdviceKind::Plan,
            Self::Set | Self::Raise | Self::Lower => AdviceKind::Quota,
        }
    }
}

/// One piece of advice as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advice {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub subject: AdviceSubject,
    /// The SIM's (SIM advice only).
    pub iccid: Option<Iccid>,
    /// The SIM's sub-customer (its users see the advice), or the sub-customer of a pool of one.
    pub customer_id: Option<CustomerId>,
    pub kind: AdviceKind,
    pub action: AdviceAction,
    /// The SIM's tariff plan (`None`: none).
    pub current_plan: Option<String>,
    /// The plan advised (`SWITCH_PLAN`; `None` there: the card's base prices, no plan).
    pub recommended_plan: Option<String>,
    pub current_limit_bytes: Option<u64>,
    pub recommended_limit_bytes: Option<u64>,
    /// What the window cost on the current plan (`SWITCH_PLAN`).
    pub current_cost: Option<Cost>,
    /// What the window would have cost on the recommended plan (`SWITCH_PLAN`).
    pub recommended_cost: Option<Cost>,
    /// What following the advice would have saved over the window: `None` without a retail card.
    pub saving: Option<Cost>,
    /// The retail card's (`None` without one).
    pub currency: Option<Currency>,
    /// The advice in words, amounts included.
    pub sentence: String,
    /// The same without amounts, for readers who may not see costs.
    pub plain_sentence: String,
    /// The window's first and last day (UTC days, completed).
    pub window_from: NaiveDate,
    pub window_to: NaiveDate,
    pub computed_at: DateTime<Utc>,
}

impl Advice {
    /// What lists sort by: [`rank_of`] the saving.
    pub fn saving_rank(&self) -> i64 {
        rank_of(self.saving)
    }

    /// The cursor of this advice in a list ordered by saving (highest first) and id.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            k: self.saving_rank().to_string(),
            id: self.id,
        }
    }
}

/// An amount in whole millionths of the currency, rounded down.
pub fn micros_floor(c: Cost) -> i64 {
    let micros = c.units().div_euclid(UNITS_PER_MICRO);
    i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX })
}

/// A saving as lists sort it: whole millionths of the currency, 0 for none and for no saving.
pub fn rank_of(saving: Option<Cost>) -> i64 {
    saving.map_or(0, |s| micros_floor(s).max(0))
}

/// The rank an advice cursor holds (see [`Advice::cursor`]).
pub fn cursor_rank(cursor: &Cursor, field: &str) -> Result<i64> {
    cursor
        .k
        .parse::<i64>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| Error::invalid(field, "is not a cursor this list returned"))
}

/// Which advice to list (all conditions hold; an empty list does not filter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdviceFilter {
    pub kinds: Vec<AdviceKind>,
    pub actions: Vec<AdviceAction>,
    pub customer: Option<CustomerId>,
    pub iccid: Option<Iccid>,
    pub subject: Option<AdviceSubject>,
    /// A saving of at least this (compared to the millionth); advice without a saving is left out.
    pub min_saving: Option<Cost>,
}

/// An amount as sentences write it: two decimals and the currency ("12.40 EUR").
pub fn money_text(c: Cost, currency: Currency) -> String {
    format!("{} {}", c.round_half_up(2).to_string_with(2), currency.code())
}

fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// Days in the calendar month starting `month`.
fn month_len(month: NaiveDate) -> u32 {
    month
        .checked_add_months(Months::new(1))
        .and_then(|next| u32::try_from((next - month).num_days()).ok())
        .unwrap_or(30)
}

fn month_name(month: NaiveDate) -> &'static str {
    MONTH_NAMES
        .get(month.month0() as usize)
        .copied()
        .unwrap_or("the month")
}

/// `cost × part / whole`, exact to the 10⁻¹² unit (rounded down); 0 for nothing `whole`.
fn share(cost: Cost, part: u64, whole: u64) -> Cost {
    if whole == 0 {
        return Cost::ZERO;
    }
    Cost::from_units(cost.units() * i128::from(part) / i128::from(whole))
}

/// What every advice of one subject in one pass shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdviceBasis {
    pub tenant_id: TenantId,
    pub subject: AdviceSubject,
    pub iccid: Option<Iccid>,
    pub customer_id: Option<CustomerId>,
    /// The window's first and last completed day.
    pub window_from: NaiveDate,
    pub window_to: NaiveDate,
    pub computed_at: DateTime<Utc>,
}

impl AdviceBasis {
    fn advice(&self, action: AdviceAction, sentences: (String, String)) -> Advice {
        Advice {
            id: Uuid::new_v4(),
            tenant_id: self.tenant_id,
            subject: self.subject,
            iccid: self.iccid.clone(),
            customer_id: self.customer_id,
            kind: action.kind(),
            action,
            current_plan: None,
            recommended_plan: None,
            current_limit_bytes: None,
            recommended_limit_bytes: None,
            current_cost: None,
            recommended_cost: None,
            saving: None,
            currency: None,
            sentence: sentences.0,
            plain_sentence: sentences.1,
            window_from: self.window_from,
            window_to: self.window_to,
            computed_at: self.computed_at,
        }
    }

    /// Days in the window.
    fn days(&self) -> i64 {
        (self.window_to - self.window_from).num_days() + 1
    }

    /// `SWITCH_PLAN` to the cheaper plan.
    pub fn plan(&self, choice: &PlanChoice, currency: Currency) -> Advice {
        Advice {
            current_plan: choice.current_plan.clone(),
            recommended_plan: choice.plan.clone(),
            current_cost: Some(choice.current_cost),
            recommended_cost: Some(choice.cost),
            saving: Some(choice.saving()),
            currency: Some(currency),
            ..self.advice(
                AdviceAction::SwitchPlan,
                plan_sentences(choice, self.days(), currency),
            )
        }
    }

    /// The quota advice; with a card (`currency`), its saving: nothing for `RAISE` (what it
    /// avoids is the interruption), the cost of the traffic the recommended limit would have
    /// stopped for `LOWER` and `SET`. `plan` is the SIM's tariff plan.
    pub fn quota(
        &self,
        q: &QuotaAdvice,
        at_limit: Option<QuotaAction>,
        plan: Option<&str>,
        currency: Option<Currency>,
    ) -> Advice {
        let saving = currency.map(|_| match q.action {
            AdviceAction::Raise | AdviceAction::SwitchPlan => Cost::ZERO,
            AdviceAction::Set | AdviceAction::Lower => q.stopped_cost(),
        });
        Advice {
            current_plan: plan.map(str::to_owned),
            current_limit_bytes: q.current_limit,
            recommended_limit_bytes: Some(q.recommended),
            saving,
            currency,
            ..self.advice(q.action, quota_sentences(q, self.subject, at_limit, currency))
        }
    }
}

#[cfg(test)]
mod test_support {
    use chrono::TimeZone;

    use super::*;

    pub fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    pub fn cost(s: &str) -> Cost {
        Cost::parse("c", s).unwrap()
    }

    pub fn eur() -> Currency {
        Currency::parse("currency", "EUR").unwrap()
    }

    pub fn basis() -> AdviceBasis {
        AdviceBasis {
            tenant_id: TenantId(Uuid::nil()),
            subject: AdviceSubject::Sim(SimId(Uuid::nil())),
            iccid: None,
            customer_id: None,
            window_from: d(2025, 12, 18),
            window_to: d(2026, 3, 17),
            computed_at: Utc.with_ymd_and_hms(2026, 3, 18, 10, 0, 0).unwrap(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::cost;
    use super::*;

    #[test]
    fn savings_rank_and_cursors_read_back() {
        assert_eq!(rank_of(None), 0);
        assert_eq!(rank_of(Some(cost("-3"))), 0);
        assert_eq!(rank_of(Some(cost("12.3456789"))), 12_345_678);
        let c = Cursor {
            k: "42".into(),
            id: Uuid::nil(),
        };
        assert_eq!(cursor_rank(&c, "after").unwrap(), 42);
        for bad in ["x", "-1", ""] {
            let c = Cursor {
                k: bad.into(),
                id: Uuid::nil(),
            };
            assert!(
                matches!(cursor_rank(&c, "after"), Err(Error::InvalidInput { field, .. }) if field == "after")
            );
        }
        for a in AdviceAction::ALL {
            assert_eq!(AdviceAction::parse(a.as_str()).unwrap(), a);
        }
        assert_eq!(
            AdviceSubject::from_parts("POOL", Uuid::nil()).unwrap(),
            AdviceSubject::Pool(Uuid::nil())
        );
    }
}
