//! Forecasts and anomalies as they are stored and read.
//!
//! A scheduled pass (`ioto_app::forecast`) forecasts every SIM's daily usage, and the summed usage
//! of each sub-customer, the tenant and each quota pool, with `ioto_forecast`; it detects each
//! SIM's anomalies with the same crate. Both are stored, so reading them is a lookup: a
//! [`StoredForecast`] per subject, replaced by every pass, and an [`AnomalyRecord`] per SIM, kind,
//! day and value, kept with what people decided about it (dismissed as expected behaviour, which
//! the detector takes into account from then on, or confirmed).

use chrono::{DateTime, Days, NaiveDate, Utc};
use uuid::Uuid;

use crate::billing::money::{Cost, Currency, Price};
use crate::fleet::query::Cursor;
use crate::identifiers::Iccid;
use crate::{CustomerId, Error, Result, SimId, TenantId};

pub use ioto_forecast::anomaly::{Anomaly, AnomalyKind, Baseline, Dismissal, Evidence, Severity};
pub use ioto_forecast::hourly::{HourForecast, HourlyForecast, HourlyMethod, TodayProjection};
pub use ioto_forecast::{DayForecast, Method, MAX_HORIZON};

/// Days a stored forecast holds, from the day of the pass on: a calendar month whatever its
/// length, so that a quota is read to its period's end. Asking a forecast for more days (up to
/// [`MAX_HORIZON`]) answers the days stored.
pub const STORED_DAYS: usize = 31;
/// Days of history a pass reads before today.
pub const HISTORY_DAYS: u64 = 90;
/// The longest comment on a decision about an anomaly.
pub const MAX_COMMENT_CHARS: usize = 500;
/// The furthest ahead, in days, a dismissal may be limited to (`until`).
pub const MAX_DISMISS_DAYS: u64 = 366;

/// What a forecast is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ForecastSubject {
    /// One SIM's usage.
    Sim(SimId),
    /// The summed usage of a sub-customer's SIMs.
    Customer(CustomerId),
    /// The summed usage of every SIM of the tenant.
    Tenant,
    /// The summed usage of a quota pool's members.
    Pool(Uuid),
}

impl ForecastSubject {
    /// The kind's stored name: `SIM`, `CUSTOMER`, `TENANT` or `POOL`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sim(_) => "SIM",
            Self::Customer(_) => "CUSTOMER",
            Self::Tenant => "TENANT",
            Self::Pool(_) => "POOL",
        }
    }

    /// The stored id: the SIM's, sub-customer's or pool's, the tenant's own for [`Self::Tenant`].
    pub fn id(&self, tenant: TenantId) -> Uuid {
        match self {
            Self::Sim(s) => s.0,
            Self::Customer(c) => c.0,
            Self::Tenant => tenant.0,
            Self::Pool(p) => *p,
        }
    }

    /// The subject of a stored kind and id.
    pub fn from_parts(kind: &str, id: Uuid) -> Result<Self> {
        Ok(match kind {
            "SIM" => Self::Sim(SimId(id)),
            "CUSTOMER" => Self::Customer(CustomerId(id)),
            "TENANT" => Self::Tenant,
            "POOL" => Self::Pool(id),
            other => return Err(Error::Internal(format!("'{other}' is not a forecast subject"))),
        })
    }
}

/// A forecast read against a data quota (a SIM's, or a pool's): the period's usage so far and
/// when the limit runs out by the forecast. Periods are the tenant's calendar months; the days
/// are compared as UTC days (the usage cubes' days), so in a time zone far from UTC a day's
/// usage may count in the neighbouring day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForecastQuota {
    pub limit_bytes: u64,
    /// Bytes used in the period up to the forecast's first day (the days completed).
    pub used_bytes: u64,
    /// The period's last day.
    pub period_end: NaiveDate,
    /// The first day the expected usage reaches the limit; `None` when it lasts the period.
    pub exhaustion_likely: Option<NaiveDate>,
    /// The first day the upper 80 % bound reaches it: not before this day, 9 times in 10.
    pub exhaustion_earliest: Option<NaiveDate>,
    /// The first day the lower 80 % bound reaches it: by this day, 9 times in 10.
    pub exhaustion_latest: Option<NaiveDate>,
    /// The usage the period is heading for: so far plus the expected days to its end.
    pub projected_period_bytes: u64,
    /// The same with the upper 80 % bounds.
    pub projected_period_bytes_hi80: u64,
}

/// A subject's latest forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredForecast {
    pub tenant_id: TenantId,
    pub subject: ForecastSubject,
    pub computed_at: DateTime<Utc>,
    /// Days of history it was made from (from the first day with usage to the day before the
    /// forecast's first).
    pub history_days: u32,
    /// The method chosen by the backtest (or the fallback for short histories).
    pub method: Method,
    /// The method's backtest MASE; `None` for histories too short to backtest.
    pub backtest_mase: Option<f64>,
    /// The method's backtest WAPE; `None` as `backtest_mase`, or when the backtest days used
    /// nothing.
    pub backtest_wape: Option<f64>,
    /// [`STORED_DAYS`] days from the day of the pass, in order.
    pub days: Vec<DayForecast>,
    /// Set for a subject with a data quota.
    pub quota: Option<ForecastQuota>,
    /// Set when the tenant has a retail rate card.
    pub projected_cost: Option<ProjectedCost>,
    /// Hour by hour, for the tenant and its sub-customers with a week of hourly history.
    pub hourly: Option<HourlyOutlook>,
}

/// A group's usage hour by hour (UTC hours): the next hours from the pass's, and where today's
/// total is heading from its completed hours.
#[derive(Debug, Clone, PartialEq)]
pub struct HourlyOutlook {
    /// The hours after the last completed one, up to [`STORED_HOURS`], with the method the
    /// backtest chose and its error.
    pub forecast: HourlyForecast,
    /// Today's (UTC) projected total; `None` when it could not be made.
    pub today: Option<TodayProjection>,
}

impl HourlyOutlook {
    /// The outlook with every figure finite (a figure that is not reads as 0, an error as
    /// unknown): what a store keeps and reads back alike.
    pub fn finite(mut self) -> Self {
        let f = |v: &mut f64| {
            if !v.is_finite() {
                *v = 0.0;
            }
        };
        for h in &mut self.forecast.hours {
            for v in [&mut h.point, &mut h.lo80, &mut h.hi80, &mut h.lo95, &mut h.hi95] {
                f(v);
            }
        }
        self.forecast.backtest_mase = self.forecast.backtest_mase.filter(|v| v.is_finite());
        self.forecast.backtest_wape = self.forecast.backtest_wape.filter(|v| v.is_finite());
        if let Some(t) = &mut self.today {
            for v in [
                &mut t.so_far,
                &mut t.point,
                &mut t.lo80,
                &mut t.hi80,
                &mut t.lo95,
                &mut t.hi95,
            ] {
                f(v);
            }
            t.backtest_wape = t.backtest_wape.filter(|v| v.is_finite());
        }
        self
    }
}

/// Hours a stored hourly forecast holds: the rest of today and tomorrow at most.
pub const STORED_HOURS: usize = ioto_forecast::hourly::MAX_HOURLY_HORIZON;
/// Days of hourly history a pass reads before today for the groups' hourly forecasts.
pub const HOURLY_HISTORY_DAYS: u64 = 28;

/// What a forecast's subject is heading for in money at the tenant's retail card, in the card's
/// billing period holding the forecast's first day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectedCost {
    pub currency: Currency,
    /// The period's completed days (those in the 90-day window), priced as advice prices them
    /// (see [`crate::advice`]): each SIM's traffic at its plan's prices, its access fee once per
    /// month with traffic; a group's, its SIMs' together.
    pub cost_so_far: Cost,
    /// So far, and the expected usage to the period's end at the subject's average price per
    /// byte over its window.
    pub projected: Cost,
    /// The same with the upper 80 % bounds of the days ahead.
    pub projected_high80: Cost,
}

/// What the bytes ahead are priced at: a subject's average price over its window, or — with no
/// traffic priced in it — a price per MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BytePrice {
    /// What `bytes` cost.
    Average {
        cost: Cost,
        bytes: u64,
    },
    PerMb(Price),
}

impl BytePrice {
    /// What `bytes` cost at this price (exact to the 10⁻¹² unit, rounded down).
    pub fn cost_of(self, bytes: u64) -> Cost {
        match self {
            Self::Average { bytes: 0, .. } => Cost::ZERO,
            Self::Average { cost, bytes: basis } => {
                Cost::from_units(cost.units().saturating_mul(i128::from(bytes)) / i128::from(basis))
            }
            Self::PerMb(p) => p.cost_of_bytes(bytes),
        }
    }
}

/// Whole bytes of a forecast figure: 0 for anything not finite and positive.
fn whole_bytes(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v.round() as u64
    } else {
        0
    }
}

impl ProjectedCost {
    /// `cost_so_far` and the forecast `days` (from the forecast's first day on) up to
    /// `period_end` (the first day after the period) priced at `price`. Days of the period past
    /// the stored ones are taken at the stored days' average.
    pub fn project(
        currency: Currency,
        cost_so_far: Cost,
        price: BytePrice,
        days: &[DayForecast],
        period_end: NaiveDate,
    ) -> Self {
        let within: Vec<&DayForecast> = days.iter().filter(|d| d.date < period_end).collect();
        let positive = |v: &f64| v.is_finite() && *v > 0.0;
        let mut expected: f64 = within.iter().map(|d| d.point).filter(positive).sum();
        let mut high: f64 = within.iter().map(|d| d.hi80).filter(positive).sum();
        if let Some(last) = days.last().filter(|l| l.date < period_end) {
            let beyond = (period_end - last.date).num_days() - 1;
            if beyond > 0 {
                let n = days.len() as f64;
                let mean = |f: fn(&DayForecast) -> f64| -> f64 {
                    days.iter().map(f).filter(positive).sum::<f64>() / n
                };
                expected += mean(|d| d.point) * beyond as f64;
                high += mean(|d| d.hi80) * beyond as f64;
            }
        }
        Self {
            currency,
            cost_so_far,
            projected: cost_so_far + price.cost_of(whole_bytes(expected)),
            projected_high80: cost_so_far + price.cost_of(whole_bytes(high)),
        }
    }
}

impl StoredForecast {
    /// The first `n` days (all of them when fewer are stored).
    pub fn first_days(&self, n: usize) -> &[DayForecast] {
        &self.days[..n.min(self.days.len())]
    }
}

/// Checks the number of days a forecast is asked for: 1 to [`MAX_HORIZON`], naming `field`.
pub fn check_days(days: i64, field: &str) -> Result<usize> {
    usize::try_from(days)
        .ok()
        .filter(|d| (1..=MAX_HORIZON).contains(d))
        .ok_or_else(|| {
            Error::invalid(
                field,
                format!(
                    "{days} days asked: a forecast reaches at most {MAX_HORIZON} days and covers at least 1"
                ),
            )
        })
}

/// A method by its stored name (as [`Method::as_str`] writes it).
pub fn method_from(name: &str) -> Result<Method> {
    [
        Method::Naive,
        Method::SeasonalNaive,
        Method::Drift,
        Method::Ets,
        Method::Cohort,
    ]
    .into_iter()
    .find(|m| m.as_str() == name)
    .ok_or_else(|| Error::Internal(format!("'{name}' is not a forecast method")))
}

/// A severity by its stored name (as [`Severity::as_str`] writes it).
pub fn severity_from(name: &str) -> Result<Severity> {
    [Severity::Low, Severity::Medium, Severity::High]
        .into_iter()
        .find(|s| s.as_str() == name)
        .ok_or_else(|| Error::Internal(format!("'{name}' is not an anomaly severity")))
}

/// What a pass removes of the subjects it did not write again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unwritten {
    /// Every subject's: a whole pass wrote every subject it still forecasts or advises.
    All,
    /// The groups' only — the tenant's, its sub-customers' and its pools' —: a pass that kept
    /// SIMs as an earlier one stored them writes every group again.
    Groups,
}

/// What an anomaly's kind is called in a sentence ("usage spike").
pub fn kind_words(kind: AnomalyKind) -> &'static str {
    match kind {
        AnomalyKind::UsageSpike => "usage spike",
        AnomalyKind::Silence => "silence",
        AnomalyKind::SessionStorm => "session storm",
        AnomalyKind::NewNetwork => "new network",
        AnomalyKind::NewCountry => "new country",
        AnomalyKind::ImeiChange => "IMEI change",
    }
}

/// What people decided about an anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnomalyStatus {
    /// Nobody has looked at it yet.
    Open,
    /// Expected behaviour: the detector takes it into account (see [`Dismissal`]).
    Dismissed,
    /// A real problem, kept as such.
    Confirmed,
}

impl AnomalyStatus {
    pub const ALL: [AnomalyStatus; 3] = [Self::Open, Self::Dismissed, Self::Confirmed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Dismissed => "DISMISSED",
            Self::Confirmed => "CONFIRMED",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| Error::Internal(format!("'{s}' is not an anomaly status")))
    }
}

/// An anomaly of a SIM as stored: what the detector found, and what people decided.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyRecord {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub sim_id: SimId,
    /// The SIM's sub-customer when the anomaly was found (its users see it).
    pub customer_id: Option<CustomerId>,
    pub iccid: Iccid,
    /// Kind, day, score, severity, sentence, evidence and value.
    pub anomaly: Anomaly,
    pub status: AnomalyStatus,
    /// Who dismissed or confirmed it (as the audit trail names people).
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    /// The last day a dismissal applies; `None`: for good.
    pub dismissed_until: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AnomalyRecord {
    /// A new, open anomaly of `sim` found at `at`.
    pub fn open(
        tenant_id: TenantId,
        sim: (SimId, Option<CustomerId>, Iccid),
        anomaly: Anomaly,
        at: DateTime<Utc>,
    ) -> Self {
        let (sim_id, customer_id, iccid) = sim;
        Self {
            id: Uuid::new_v4(),
            tenant_id,
            sim_id,
            customer_id,
            iccid,
            anomaly,
            status: AnomalyStatus::Open,
            decided_by: None,
            decided_at: None,
            comment: None,
            dismissed_until: None,
            created_at: at,
            updated_at: at,
        }
    }

    /// What a dismissed anomaly tells the detector: a usage spike accepts the day's level, a new
    /// network, country or IMEI accepts that value, a silence or a session storm accepts the kind
    /// altogether — until [`Self::dismissed_until`], or for good. `None` unless dismissed.
    pub fn dismissal(&self) -> Option<Dismissal> {
        if self.status != AnomalyStatus::Dismissed {
            return None;
        }
        let kind = self.anomaly.kind;
        Some(Dismissal {
            kind,
            until: self.dismissed_until,
            value: self.anomaly.value.clone().filter(|v| !v.is_empty()),
            level_bytes: (kind == AnomalyKind::UsageSpike).then_some(self.anomaly.evidence.observed),
        })
    }

    /// The notification telling of this anomaly when it is found: for high-severity anomalies
    /// only (the others are listed, not pushed).
    pub fn notification(&self) -> Option<crate::notify::Notification> {
        (self.anomaly.severity == Severity::High)
            .then(|| crate::notify::Notification::anomaly(self, self.created_at))
    }

    /// The cursor of this anomaly in a list ordered by day (newest first), score (highest first)
    /// and id.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            k: format!("{}|{}", self.anomaly.day, self.anomaly.score),
            id: self.id,
        }
    }
}

/// The day and score an anomaly cursor holds (see [`AnomalyRecord::cursor`]).
pub fn cursor_key(cursor: &Cursor, field: &str) -> Result<(NaiveDate, f64)> {
    let bad = || Error::invalid(field, "is not a cursor this list returned");
    let (day, score) = cursor.k.split_once('|').ok_or_else(bad)?;
    let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| bad())?;
    let score: f64 = score.parse().map_err(|_| bad())?;
    if !score.is_finite() {
        return Err(bad());
    }
    Ok((day, score))
}

/// Which anomalies to list (all conditions hold; an empty list does not filter).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnomalyFilter {
    pub kinds: Vec<AnomalyKind>,
    /// At least this severity.
    pub min_severity: Option<Severity>,
    pub statuses: Vec<AnomalyStatus>,
    pub sim: Option<SimId>,
    pub customer: Option<CustomerId>,
    /// On or after this day.
    pub from: Option<NaiveDate>,
    /// On or before this day.
    pub to: Option<NaiveDate>,
}

impl AnomalyFilter {
    /// The severities the filter admits (every one without a minimum).
    pub fn severities(&self) -> Vec<Severity> {
        [Severity::Low, Severity::Medium, Severity::High]
            .into_iter()
            .filter(|s| self.min_severity.is_none_or(|min| *s >= min))
            .collect()
    }
}

/// A decision about an anomaly: dismissed (with an optional last day) or confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalyDecision {
    pub status: AnomalyStatus,
    pub by: String,
    pub at: DateTime<Utc>,
    pub comment: Option<String>,
    /// The last day a dismissal applies (dismissals only); `None`: for good.
    pub until: Option<NaiveDate>,
}

impl AnomalyDecision {
    /// Checks the decision, naming the field at fault: a comment of at most
    /// [`MAX_COMMENT_CHARS`], `until` on a dismissal only, from today to [`MAX_DISMISS_DAYS`]
    /// days ahead.
    pub fn check(&self) -> Result<()> {
        if self.status == AnomalyStatus::Open {
            return Err(Error::invalid("status", "a decision dismisses or confirms"));
        }
        if let Some(c) = &self.comment {
            if c.chars().count() > MAX_COMMENT_CHARS {
                return Err(Error::invalid(
                    "comment",
                    format!("at most {MAX_COMMENT_CHARS} characters"),
                ));
            }
        }
        if let Some(until) = self.until {
            if self.status != AnomalyStatus::Dismissed {
                return Err(Error::invalid("until", "only a dismissal has a last day"));
            }
            let today = self.at.date_naive();
            let latest = today
                .checked_add_days(Days::new(MAX_DISMISS_DAYS))
                .unwrap_or(today);
            if until < today || until > latest {
                return Err(Error::invalid(
                    "until",
                    format!("must be between today ({today}) and {latest}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn record(kind: AnomalyKind, value: Option<&str>, status: AnomalyStatus) -> AnomalyRecord {
        let day = NaiveDate::from_ymd_opt(2026, 3, 4).unwrap();
        AnomalyRecord {
            status,
            ..AnomalyRecord::open(
                TenantId(Uuid::nil()),
                (
                    SimId(Uuid::nil()),
                    None,
                    Iccid::with_check_digit("898822800000000001").unwrap(),
                ),
                Anomaly {
                    kind,
                    day,
                    score: 12.5,
                    severity: Severity::Medium,
                    sentence: "x".into(),
                    evidence: Evidence {
                        observed: 5e8,
                        expected: 5e7,
                        band_lo: 0.0,
                        band_hi: 1.5e8,
                        series: vec![5e7, 5e8],
                        baseline: Baseline::Own,
                    },
                    value: value.map(str::to_owned),
                },
                Utc.with_ymd_and_hms(2026, 3, 5, 1, 0, 0).unwrap(),
            )
        }
    }

    #[test]
    fn only_dismissed_anomalies_teach_the_detector() {
        let spike = record(AnomalyKind::UsageSpike, None, AnomalyStatus::Dismissed);
        let d = spike.dismissal().unwrap();
        assert_eq!(
            (d.kind, d.level_bytes, d.value),
            (AnomalyKind::UsageSpike, Some(5e8), None)
        );
        let roaming = record(AnomalyKind::NewCountry, Some("France"), AnomalyStatus::Dismissed);
        let d = roaming.dismissal().unwrap();
        assert_eq!((d.value.as_deref(), d.level_bytes), (Some("France"), None));
        assert_eq!(
            record(AnomalyKind::UsageSpike, None, AnomalyStatus::Confirmed).dismissal(),
            None
        );
    }

    #[test]
    fn a_cursor_reads_back_its_day_and_score() {
        let r = record(AnomalyKind::Silence, None, AnomalyStatus::Open);
        let (day, score) = cursor_key(&r.cursor(), "after").unwrap();
        assert_eq!((day, score), (r.anomaly.day, 12.5));
        let bad = Cursor {
            k: "yesterday".into(),
            id: Uuid::nil(),
        };
        assert!(cursor_key(&bad, "after").is_err());
    }

    #[test]
    fn days_beyond_ninety_are_refused_naming_the_field() {
        assert_eq!(check_days(30, "days").unwrap(), 30);
        for asked in [0, 91, -1] {
            match check_days(asked, "days") {
                Err(Error::InvalidInput { field, reason }) => {
                    assert_eq!(field, "days");
                    assert!(reason.contains("at most 90 days"), "{reason}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn decisions_are_checked() {
        let at = Utc.with_ymd_and_hms(2026, 3, 5, 1, 0, 0).unwrap();
        let ok = AnomalyDecision {
            status: AnomalyStatus::Dismissed,
            by: "alice".into(),
            at,
            comment: Some("firmware roll-out".into()),
            until: NaiveDate::from_ymd_opt(2026, 4, 1),
        };
        assert!(ok.check().is_ok());
        let past = AnomalyDecision {
            until: NaiveDate::from_ymd_opt(2026, 3, 1),
            ..ok.clone()
        };
        assert!(matches!(past.check(), Err(Error::InvalidInput { field, .. }) if field == "until"));
        let confirmed_until = AnomalyDecision {
            status: AnomalyStatus::Confirmed,
            ..ok.clone()
        };
        assert!(confirmed_until.check().is_err());
        let long = AnomalyDecision {
            comment: Some("x".repeat(501)),
            ..ok
        };
        assert!(matches!(long.check(), Err(Error::InvalidInput { field, .. }) if field == "comment"));
    }

    #[test]
    fn a_projected_cost_adds_the_days_ahead_to_the_period_end() {
        let eur = Currency::parse("currency", "EUR").unwrap();
        let start = NaiveDate::from_ymd_opt(2026, 3, 18).unwrap();
        let days: Vec<DayForecast> = (0..31)
            .map(|i| DayForecast {
                date: start + chrono::Duration::days(i),
                point: 10e6,
                lo80: 5e6,
                hi80: 20e6,
                lo95: 0.0,
                hi95: 40e6,
            })
            .collect();
        let so_far = Cost::parse("c", "3").unwrap();
        // 14 days (18–31 March) of 10 MB at 0.5 per 10 MB (an average of 1.5 for 30 MB).
        let average = BytePrice::Average {
            cost: Cost::parse("c", "1.5").unwrap(),
            bytes: 30_000_000,
        };
        let april = NaiveDate::from_ymd_opt(2026, 4, 1).unwrap();
        let p = ProjectedCost::project(eur, so_far, average, &days, april);
        assert_eq!(
            p.projected,
            Cost::parse("c", "10").unwrap(),
            "3 + 140 MB × 0.05 a MB"
        );
        assert_eq!(p.projected_high80, Cost::parse("c", "17").unwrap());
        // A quarter reaches past the 31 days stored: those days count at the days' average.
        let july = NaiveDate::from_ymd_opt(2026, 7, 1).unwrap();
        let per_mb = BytePrice::PerMb(Price::parse("p", "0.05").unwrap());
        let q = ProjectedCost::project(eur, so_far, per_mb, &days, july);
        // 105 days from 18 March to 30 June, 10 MB each.
        assert_eq!(q.projected, Cost::parse("c", "55.5").unwrap());
        assert_eq!(
            BytePrice::Average {
                cost: Cost::ZERO,
                bytes: 0
            }
            .cost_of(5),
            Cost::ZERO
        );
    }

    #[test]
    fn severities_at_or_above_the_minimum() {
        let f = AnomalyFilter {
            min_severity: Some(Severity::Medium),
            ..AnomalyFilter::default()
        };
        assert_eq!(f.severities(), vec![Severity::Medium, Severity::High]);
        assert_eq!(AnomalyFilter::default().severities().len(), 3);
    }
}
