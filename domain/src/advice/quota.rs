//! Quota advice: the calendar months of a subject's usage in the window, its typical month, the
//! limit that fits it (a step of the 1-2-2.5-5 ladder with a quarter's headroom), what that limit
//! would have stopped, and the sentences that say so.

use chrono::NaiveDate;

use super::{
    money_text, month_len, month_name, month_of, share, AdviceAction, AdviceSubject, LADDER_FLOOR,
    LADDER_TOP, LOWER_ABOVE, SET_MIN_TRAFFIC_DAYS,
};
use crate::billing::money::{Cost, Currency};
use crate::notify::bytes_text;
use crate::quota::QuotaAction;

/// One completed day of a subject's usage, with what it cost on its plan (0 without a card).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayUse {
    pub day: NaiveDate,
    pub bytes: u64,
    pub cost: Cost,
}

/// A calendar month of a subject's usage in the window (UTC days), from its first day with
/// traffic on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthUsage {
    /// The month's first day.
    pub month: NaiveDate,
    pub bytes: u64,
    /// The month's days counted.
    pub days: u32,
    /// Every day of the month is counted: it lies in the window after the subject's first day
    /// with traffic (the month in progress is not whole).
    pub whole: bool,
}

/// The calendar months of `days` (consecutive completed days, oldest first) from the first day
/// with traffic on. Empty without any traffic.
pub fn months_of(days: &[DayUse]) -> Vec<MonthUsage> {
    let Some(start) = days.iter().position(|d| d.bytes > 0) else {
        return Vec::new();
    };
    let mut out: Vec<MonthUsage> = Vec::new();
    for d in &days[start..] {
        let month = month_of(d.day);
        match out.last_mut() {
            Some(last) if last.month == month => {
                last.bytes = last.bytes.saturating_add(d.bytes);
                last.days += 1;
            }
            _ => out.push(MonthUsage {
                month,
                bytes: d.bytes,
                days: 1,
                whole: false,
            }),
        }
    }
    for m in &mut out {
        m.whole = m.days == month_len(m.month);
    }
    out
}

/// The usage a quota is fitted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Typical {
    pub bytes: u64,
    /// The whole months it was read from (their highest); 0: no whole month, the latest month
    /// so far scaled to its length.
    pub whole_months: usize,
}

/// The highest usage of the whole months, or without one the latest month's (the one in
/// progress, usually) scaled to a whole month. `None` without any usage.
pub fn typical(months: &[MonthUsage]) -> Option<Typical> {
    let whole = months.iter().filter(|m| m.whole).count();
    if let Some(highest) = months.iter().filter(|m| m.whole).map(|m| m.bytes).max() {
        return Some(Typical {
            bytes: highest,
            whole_months: whole,
        });
    }
    let last = months.last().filter(|m| m.days > 0)?;
    let scaled = u128::from(last.bytes) * u128::from(month_len(last.month)) / u128::from(last.days);
    Some(Typical {
        bytes: u64::try_from(scaled).unwrap_or(u64::MAX),
        whole_months: 0,
    })
}

/// The limit advised for a typical month of `typical` bytes: the smallest step of the ladder 1, 2,
/// 2.5, 5 × 10^k bytes (the sizes data plans come in: 250 MB, 2.5 GB) from [`LADDER_FLOOR`] to
/// [`LADDER_TOP`] at or above 1.25 × it. `None` above the ladder.
pub fn recommended_limit(typical: u64) -> Option<u64> {
    let target = (u128::from(typical) * 5).div_ceil(4);
    let mut decade = u128::from(LADDER_FLOOR);
    loop {
        // In tenths of the decade.
        for m in [10, 20, 25, 50] {
            let step = decade * m / 10;
            if step > u128::from(LADDER_TOP) {
                return None;
            }
            if step >= target {
                return u64::try_from(step).ok();
            }
        }
        decade *= 10;
    }
}

/// Traffic a limit would have stopped in one month, and what it cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// The month's first day.
    pub month: NaiveDate,
    pub bytes: u64,
    pub cost: Cost,
}

/// Per calendar month of `days` whose usage went past `limit`: the traffic after the limit was
/// reached and what it cost (of the day the limit was reached, the part of its bytes past it,
/// at that day's average price).
pub fn stopped_by(days: &[DayUse], limit: u64) -> Vec<Stopped> {
    let mut out: Vec<Stopped> = Vec::new();
    let mut month = None;
    let mut used: u64 = 0;
    for d in days {
        let m = month_of(d.day);
        if month != Some(m) {
            month = Some(m);
            used = 0;
        }
        let after = used.saturating_add(d.bytes);
        let over = after.saturating_sub(limit.max(used));
        used = after;
        if over == 0 {
            continue;
        }
        let cost = if over == d.bytes {
            d.cost
        } else {
            share(d.cost, over, d.bytes)
        };
        match out.last_mut() {
            Some(s) if s.month == m => {
                s.bytes = s.bytes.saturating_add(over);
                s.cost = s.cost + cost;
            }
            _ => out.push(Stopped {
                month: m,
                bytes: over,
                cost,
            }),
        }
    }
    out
}

/// Days of `days` with traffic.
pub fn traffic_days(days: &[DayUse]) -> usize {
    days.iter().filter(|d| d.bytes > 0).count()
}

/// What the usage says of a subject's data limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaAdvice {
    pub action: AdviceAction,
    pub typical: Typical,
    pub current_limit: Option<u64>,
    pub recommended: u64,
    /// Of the months counted (the whole ones; the latest, scaled, without any), how many went
    /// past the current limit: `(past it, counted)`.
    pub months_over: (usize, usize),
    /// The traffic past the recommended limit, per month (`LOWER` and `SET`).
    pub stopped: Vec<Stopped>,
}

impl QuotaAdvice {
    /// What the recommended limit would have stopped, in all.
    pub fn stopped_cost(&self) -> Cost {
        self.stopped.iter().map(|s| s.cost).sum()
    }

    pub fn stopped_bytes(&self) -> u64 {
        self.stopped.iter().map(|s| s.bytes).sum()
    }
}

/// The quota advice for a subject's completed `days` (oldest first) and its current limit:
/// `RAISE` a limit below its typical month, `LOWER` one more than [`LOWER_ABOVE`] × the
/// recommended limit, and — where `may_set` (a SIM) and it has [`SET_MIN_TRAFFIC_DAYS`] days with
/// traffic — `SET` one where there is none. `None`: nothing to advise.
pub fn quota_advice(days: &[DayUse], limit: Option<u64>, may_set: bool) -> Option<QuotaAdvice> {
    let months = months_of(days);
    let typical = typical(&months)?;
    let recommended = recommended_limit(typical.bytes)?;
    let action = match limit {
        Some(l) if l < typical.bytes => AdviceAction::Raise,
        Some(l) if u128::from(l) > u128::from(recommended) * u128::from(LOWER_ABOVE) => AdviceAction::Lower,
        Some(_) => return None,
        None if may_set && traffic_days(days) >= SET_MIN_TRAFFIC_DAYS => AdviceAction::Set,
        None => return None,
    };
    let months_over = match limit {
        Some(l) if typical.whole_months > 0 => (
            months.iter().filter(|m| m.whole && m.bytes > l).count(),
            typical.whole_months,
        ),
        Some(l) => (usize::from(typical.bytes > l), 1),
        None => (0, 0),
    };
    let stopped = if action == AdviceAction::Raise {
        Vec::new()
    } else {
        stopped_by(days, recommended)
    };
    Some(QuotaAdvice {
        action,
        typical,
        current_limit: limit,
        recommended,
        months_over,
        stopped,
    })
}

/// "October", "October and November", "September, October and November".
fn months_text(stopped: &[Stopped]) -> String {
    let names: Vec<&str> = stopped.iter().map(|s| month_name(s.month)).collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// "in 2 of 3 months", "in its one whole month".
fn of_months((over, counted): (usize, usize)) -> String {
    if counted == 1 {
        "in its one whole month".to_owned()
    } else {
        format!("in {over} of {counted} months")
    }
}

/// The sentences of a quota advice of `subject` (whose limit acts with `at_limit`): with the
/// amounts (where a card priced the traffic: `currency`), and without.
pub fn quota_sentences(
    q: &QuotaAdvice,
    subject: AdviceSubject,
    at_limit: Option<QuotaAction>,
    currency: Option<Currency>,
) -> (String, String) {
    let usual = bytes_text(q.typical.bytes);
    let recommended = bytes_text(q.recommended);
    let current = bytes_text(q.current_limit.unwrap_or(0));
    let (used, lead) = if q.typical.whole_months > 0 {
        (
            format!("up to {usual} a month"),
            format!("Used up to {usual} a month"),
        )
    } else {
        (
            format!("on course for {usual} this month"),
            format!("On course for {usual} this month"),
        )
    };
    // What the recommended limit would have stopped: " and would have stopped 1.9 GB of traffic
    // in October (12.40 EUR)", with and without the amount.
    let stopped = |money: bool| -> String {
        if q.stopped.is_empty() {
            return String::new();
        }
        let amount = match currency {
            Some(c) if money => format!(" ({})", money_text(q.stopped_cost(), c)),
            _ => String::new(),
        };
        format!(
            "would have stopped {} of traffic in {}{amount}",
            bytes_text(q.stopped_bytes()),
            months_text(&q.stopped)
        )
    };
    let say = |money: bool| -> String {
        match q.action {
            AdviceAction::Raise => {
                let reached = match at_limit {
                    Some(QuotaAction::Notify) => "it was reached".to_owned(),
                    _ => format!("it would have stopped {}", subject.sims()),
                };
                if q.typical.whole_months > 0 {
                    format!(
                        "Its {current} limit is below its usual {usual} a month: {reached} {}; raise it to {recommended}",
                        of_months(q.months_over)
                    )
                } else {
                    format!(
                        "Its {current} limit is below the {usual} it is on course for this month; raise it to {recommended}"
                    )
                }
            }
            AdviceAction::Lower => {
                let mut s = format!(
                    "Its {current} limit is more than {LOWER_ABOVE} × the {recommended} its usage needs ({used}): a runaway would be caught late; lower it to {recommended}"
                );
                if !q.stopped.is_empty() {
                    s.push_str(", which ");
                    s.push_str(&stopped(money));
                }
                s
            }
            AdviceAction::Set | AdviceAction::SwitchPlan => {
                if q.stopped.is_empty() {
                    format!(
                        "{lead} without a limit; a {recommended} limit leaves headroom and would catch a runaway early"
                    )
                } else {
                    format!(
                        "{lead} without a limit; a {recommended} limit leaves headroom and {}",
                        stopped(money)
                    )
                }
            }
        }
    };
    (say(true), say(false))
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::super::test_support::{basis, cost, d, eur};
    use super::*;
    use crate::billing::money::Price;
    use crate::SimId;

    const MB: u64 = 1_000_000;

    /// 90 completed days ending 17 March 2026 (18 December to 17 March), `per_day` bytes a day
    /// at 0.01 a MB, with `extra` added on the days given.
    fn window(per_day: u64, extra: &[(NaiveDate, u64)]) -> Vec<DayUse> {
        let first = d(2025, 12, 18);
        (0..90)
            .map(|i| {
                let day = first + chrono::Duration::days(i);
                let bytes = per_day
                    + extra
                        .iter()
                        .filter(|(x, _)| *x == day)
                        .map(|(_, b)| b)
                        .sum::<u64>();
                DayUse {
                    day,
                    bytes,
                    cost: Price::parse("p", "0.01").unwrap().cost_of_bytes(bytes),
                }
            })
            .collect()
    }

    #[test]
    fn the_ladder_steps_one_two_two_and_a_half_five_from_a_megabyte_to_a_terabyte() {
        assert_eq!(recommended_limit(0), Some(MB));
        assert_eq!(
            recommended_limit(800_000),
            Some(MB),
            "1.25 × 800 kB is 1 MB exactly"
        );
        assert_eq!(recommended_limit(800_001), Some(2 * MB));
        assert_eq!(recommended_limit(180 * MB), Some(250 * MB));
        assert_eq!(recommended_limit(200 * MB), Some(250 * MB));
        assert_eq!(recommended_limit(201 * MB), Some(500 * MB));
        assert_eq!(recommended_limit(3_000 * MB), Some(5_000 * MB));
        assert_eq!(recommended_limit(800_000 * MB), Some(LADDER_TOP));
        assert_eq!(recommended_limit(800_001 * MB), None, "past the ladder's top");
    }

    #[test]
    fn months_are_whole_only_inside_the_window_and_the_history() {
        let days = window(MB, &[]);
        let months = months_of(&days);
        let shape: Vec<(NaiveDate, u32, bool)> = months.iter().map(|m| (m.month, m.days, m.whole)).collect();
        assert_eq!(
            shape,
            [
                (d(2025, 12, 1), 14, false),
                (d(2026, 1, 1), 31, true),
                (d(2026, 2, 1), 28, true),
                (d(2026, 3, 1), 17, false),
            ]
        );
        // A SIM first used on 10 February: no whole month; March so far (17 days) scaled to 31.
        let new: Vec<DayUse> = days
            .iter()
            .map(|x| DayUse {
                bytes: if x.day >= d(2026, 2, 10) { x.bytes } else { 0 },
                ..*x
            })
            .collect();
        let months = months_of(&new);
        assert_eq!(months[0].month, d(2026, 2, 1));
        assert!(months.iter().all(|m| !m.whole));
        assert_eq!(
            typical(&months),
            Some(Typical {
                bytes: 17 * MB * 31 / 17,
                whole_months: 0
            })
        );
        assert!(months_of(&window(0, &[])).is_empty());
    }

    #[test]
    fn the_typical_month_is_the_highest_whole_one() {
        // January 31 MB, February 28 MB + 100 MB on the 10th.
        let days = window(MB, &[(d(2026, 2, 10), 100 * MB), (d(2026, 3, 2), 500 * MB)]);
        let t = typical(&months_of(&days)).unwrap();
        assert_eq!(
            t,
            Typical {
                bytes: 128 * MB,
                whole_months: 2
            },
            "the partial March is no whole month"
        );
    }

    #[test]
    fn a_limit_below_the_typical_month_is_raised() {
        // 6 MB a day: January 186 MB, February 168 MB.
        let days = window(6 * MB, &[]);
        let q = quota_advice(&days, Some(100 * MB), true).unwrap();
        assert_eq!(q.action, AdviceAction::Raise);
        assert_eq!((q.typical.bytes, q.recommended), (186 * MB, 250 * MB));
        assert_eq!(q.months_over, (2, 2));
        assert!(q.stopped.is_empty());
        let (with, plain) = quota_sentences(
            &q,
            AdviceSubject::Sim(SimId(Uuid::nil())),
            Some(QuotaAction::Suspend),
            Some(eur()),
        );
        assert_eq!(
            with,
            "Its 100 MB limit is below its usual 186 MB a month: it would have stopped the SIM in 2 of 2 months; raise it to 250 MB"
        );
        assert_eq!(with, plain, "a raise names no amount");
        let a = basis().quota(&q, Some(QuotaAction::Suspend), Some("s"), Some(eur()));
        assert_eq!(
            (a.saving, a.recommended_limit_bytes),
            (Some(Cost::ZERO), Some(250 * MB))
        );
        assert_eq!(
            basis().quota(&q, None, None, None).saving,
            None,
            "no card, no saving"
        );
        // A limit that fits is left alone; one far above is lowered.
        assert!(quota_advice(&days, Some(300 * MB), true).is_none());
        assert!(
            quota_advice(&days, Some(1_000 * MB), true).is_none(),
            "4 × 250 MB is no more than 4 ×"
        );
        let lower = quota_advice(&days, Some(1_001 * MB), true).unwrap();
        assert_eq!(lower.action, AdviceAction::Lower);
        assert_eq!(
            basis().quota(&lower, None, None, Some(eur())).saving,
            Some(Cost::ZERO)
        );
    }

    #[test]
    fn no_quota_gets_one_with_what_it_would_have_stopped() {
        // 6 MB a day, and 2 GB on 5 March: the limit (250 MB) is reached on 5 March
        // (4 × 6 MB before it), so 2,006 MB − (250 − 24) MB = 1,780 MB are stopped that day and
        // 6 MB on each of the 12 days after it.
        let days = window(6 * MB, &[(d(2026, 3, 5), 2_000 * MB)]);
        let q = quota_advice(&days, None, true).unwrap();
        assert_eq!((q.action, q.recommended), (AdviceAction::Set, 250 * MB));
        let stopped_bytes = 1_780 * MB + 12 * 6 * MB;
        assert_eq!(
            q.stopped,
            [Stopped {
                month: d(2026, 3, 1),
                bytes: stopped_bytes,
                cost: Price::parse("p", "0.01").unwrap().cost_of_bytes(stopped_bytes),
            }]
        );
        let (with, plain) = quota_sentences(&q, AdviceSubject::Sim(SimId(Uuid::nil())), None, Some(eur()));
        assert_eq!(
            with,
            "Used up to 186 MB a month without a limit; a 250 MB limit leaves headroom and would have \
             stopped 1.85 GB of traffic in March (18.52 EUR)"
        );
        assert_eq!(
            plain,
            "Used up to 186 MB a month without a limit; a 250 MB limit leaves headroom and would have \
             stopped 1.85 GB of traffic in March"
        );
        let a = basis().quota(&q, None, None, Some(eur()));
        assert_eq!(a.saving, Some(cost("18.52")));
        // Too few days with traffic: no habit to go by.
        let sparse: Vec<DayUse> = days
            .iter()
            .enumerate()
            .map(|(i, x)| DayUse {
                bytes: if i % 4 == 0 { x.bytes } else { 0 },
                ..*x
            })
            .collect();
        assert!(traffic_days(&sparse) < SET_MIN_TRAFFIC_DAYS);
        assert!(quota_advice(&sparse, None, true).is_none());
        assert!(
            quota_advice(&days, None, false).is_none(),
            "a pool is never without a limit"
        );
    }
}
