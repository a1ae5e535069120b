//! Advice and projected costs in a pass: the tenant's retail card as the pass prices with it;
//! each SIM's traffic priced per day and network (its plan advice, its costs) and its quota
//! advice; the groups' costs summed from their SIMs'; each pool's quota advice from its members'
//! summed usage. Nothing here awaits: it runs with the rest of a chunk on the blocking pool.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use ioto_domain::advice::{
    cheaper_plan, plan_options, quota_advice, Advice, AdviceBasis, AdviceSubject, DayUse, NetworkDayBytes,
    PricedTraffic,
};
use ioto_domain::billing::money::{Cost, Currency, Price};
use ioto_domain::billing::rate_card::{RateCard, RateCardKind};
use ioto_domain::forecast::{BytePrice, DayForecast, ProjectedCost};
use ioto_domain::identifiers::Iccid;
use ioto_domain::ports::quota_pools::PoolTarget;
use ioto_domain::quota::QuotaAction;
use ioto_domain::usage::Networks;
use ioto_domain::{CustomerId, SimId, TenantId};

use super::compute::{whole, Window};

/// The tenant's retail card as a pass prices with it.
pub(crate) struct Pricing {
    pub card: RateCard,
    /// The plans plan advice compares: the base prices and each override's plan of the version
    /// in force today; empty (no plan advice) without an override.
    pub options: Vec<Option<String>>,
    /// The card's billing period holding today: its first day and the first day after it.
    pub period: (NaiveDate, NaiveDate),
}

impl Pricing {
    /// The tenant's retail card among its `cards`, when one is in force `today`.
    pub fn of(cards: Vec<RateCard>, today: NaiveDate) -> Option<Self> {
        let card = cards.into_iter().find(|c| c.kind == RateCardKind::Retail)?;
        let options = plan_options(&card.version_on(today)?.terms);
        let period = card.billing_period.period_of(today);
        Some(Self {
            card,
            options,
            period,
        })
    }

    pub fn currency(&self) -> Currency {
        self.card.currency
    }

    /// The price per MB of today's default zone on `plan`: what the bytes ahead of a subject
    /// without any traffic priced in its window cost.
    fn fallback(&self, today: NaiveDate, plan: Option<&str>) -> Price {
        self.card
            .version_on(today)
            .map(|v| &v.terms)
            .and_then(|t| {
                t.zones
                    .iter()
                    .position(|z| z.is_default)
                    .map(|z| t.price(z, plan))
            })
            .unwrap_or(Price::ZERO)
    }

    /// The projected cost of a subject with `costs` (a SIM's on `plan`; a group's on none) and
    /// the forecast `days`: so far, and the days ahead to the period's end at the subject's
    /// average price over the window.
    pub fn projected(
        &self,
        w: &Window,
        costs: &CostSums,
        plan: Option<&str>,
        days: &[DayForecast],
    ) -> ProjectedCost {
        let price = if costs.window_bytes > 0 {
            BytePrice::Average {
                cost: costs.window_cost,
                bytes: costs.window_bytes,
            }
        } else {
            BytePrice::PerMb(self.fallback(w.today, plan))
        };
        ProjectedCost::project(self.currency(), costs.so_far, price, days, self.period.1)
    }
}

fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// What a subject's traffic cost at its prices (a SIM's plan; a group's SIMs' each).
#[derive(Debug, Clone, Default)]
pub(crate) struct CostSums {
    /// The billing period's completed days in the window: data and access fees.
    pub so_far: Cost,
    /// The window's completed days: their data cost and bytes.
    pub window_cost: Cost,
    pub window_bytes: u64,
    /// Per month (its first day) of the window: data cost and bytes.
    pub months: BTreeMap<NaiveDate, (Cost, u64)>,
}

impl CostSums {
    fn add(&mut self, other: &CostSums) {
        self.so_far = self.so_far + other.so_far;
        self.window_cost = self.window_cost + other.window_cost;
        self.window_bytes = self.window_bytes.saturating_add(other.window_bytes);
        for (month, (cost, bytes)) in &other.months {
            let sum = self.months.entry(*month).or_default();
            sum.0 = sum.0 + *cost;
            sum.1 = sum.1.saturating_add(*bytes);
        }
    }

    /// What `bytes` of `day` cost at the average price of its month: a group's days are not
    /// priced one by one.
    fn day_cost(&self, day: NaiveDate, bytes: u64) -> Cost {
        match self.months.get(&month_of(day)) {
            Some((cost, total)) if *total > 0 => {
                Cost::from_units(cost.units().saturating_mul(i128::from(bytes)) / i128::from(*total))
            }
            _ => Cost::ZERO,
        }
    }
}

/// The groups' costs, their SIMs' summed as the chunks are priced.
#[derive(Debug, Default)]
pub(crate) struct GroupCosts {
    pub tenant: CostSums,
    pub customers: HashMap<CustomerId, CostSums>,
    /// In the order of the tenant's pools.
    pub pools: Vec<CostSums>,
}

impl GroupCosts {
    pub fn new(pools: usize) -> Self {
        Self {
            pools: vec![CostSums::default(); pools],
            ..Self::default()
        }
    }

    /// Adds another sum of SIMs' costs (of the same pools).
    pub fn merge(&mut self, other: GroupCosts) {
        self.tenant.add(&other.tenant);
        for (c, sums) in other.customers {
            self.customers.entry(c).or_default().add(&sums);
        }
        for (sum, other) in self.pools.iter_mut().zip(&other.pools) {
            sum.add(other);
        }
    }

    /// Adds a SIM's costs to the tenant, its sub-customer and the pools it counts toward.
    pub fn add(&mut self, customer: Option<CustomerId>, pools: &[usize], costs: &CostSums) {
        self.tenant.add(costs);
        if let Some(c) = customer {
            self.customers.entry(c).or_default().add(costs);
        }
        for p in pools {
            if let Some(sum) = self.pools.get_mut(*p) {
                sum.add(costs);
            }
        }
    }
}

/// The window's completed days of `values` (the window's days, today last), not priced yet.
fn completed_days(w: &Window, values: &[f64]) -> Vec<DayUse> {
    (0..w.today_index())
        .map(|i| DayUse {
            day: w.day(i),
            bytes: whole(values.get(i).copied().unwrap_or(0.0)),
            cost: Cost::ZERO,
        })
        .collect()
}

/// The window's last completed day (yesterday).
fn last_completed(w: &Window) -> NaiveDate {
    w.today.pred_opt().unwrap_or(w.today)
}

/// One SIM of a chunk, as its advice needs it.
pub(crate) struct SimAdvice<'a> {
    pub tenant: TenantId,
    pub sim: &'a (SimId, Option<CustomerId>, Iccid),
    pub plan: Option<&'a str>,
    /// Bytes per day of the window, today last.
    pub bytes: &'a [f64],
    /// Bytes per completed day and network (read when the tenant has a card).
    pub traffic: &'a [NetworkDayBytes],
    /// Its data quota's limit and action at the limit.
    pub quota: Option<(u64, QuotaAction)>,
}

/// A SIM's advice — the cheaper plan (with a card whose version today has overrides) and its
/// quota — and, with a card, its costs.
pub(crate) fn sim_advice(
    w: &Window,
    pricing: Option<&Pricing>,
    job: &SimAdvice<'_>,
    now: DateTime<Utc>,
) -> (Vec<Advice>, Option<CostSums>) {
    let mut days = completed_days(w, job.bytes);
    let (sim, customer, iccid) = job.sim;
    let basis = AdviceBasis {
        tenant_id: job.tenant,
        subject: AdviceSubject::Sim(*sim),
        iccid: Some(iccid.clone()),
        customer_id: *customer,
        window_from: w.first,
        window_to: last_completed(w),
        computed_at: now,
    };
    let mut advice = Vec::new();
    let mut costs = None;
    if let Some(p) = pricing {
        let priced = PricedTraffic::new(&p.card, Networks::builtin(), job.traffic);
        for (day, cost) in days
            .iter_mut()
            .zip(priced.daily_costs(job.plan, w.first, w.today_index()))
        {
            day.cost = cost;
        }
        // Completed days only: `[first, today)`.
        let current = priced.cost(job.plan, w.first, w.today);
        let options: Vec<(Option<String>, Cost)> = p
            .options
            .iter()
            .map(|o| (o.clone(), priced.cost(o.as_deref(), w.first, w.today)))
            .collect();
        if let Some(choice) = cheaper_plan(job.plan, current, &options) {
            advice.push(basis.plan(&choice, p.currency()));
        }
        let mut sums = CostSums {
            so_far: priced.cost(job.plan, p.period.0.max(w.first), w.today),
            window_cost: priced.data_cost(job.plan, w.first, w.today),
            window_bytes: priced.bytes(w.first, w.today),
            months: BTreeMap::new(),
        };
        for d in &days {
            let month = sums.months.entry(month_of(d.day)).or_default();
            month.0 = month.0 + d.cost;
            month.1 = month.1.saturating_add(d.bytes);
        }
        costs = Some(sums);
    }
    if let Some(q) = quota_advice(&days, job.quota.map(|(limit, _)| limit), true) {
        advice.push(basis.quota(
            &q,
            job.quota.map(|(_, action)| action),
            job.plan,
            pricing.map(Pricing::currency),
        ));
    }
    (advice, costs)
}

/// A pool's quota advice from its members' summed daily usage (`values`, the window's days,
/// today last), its days priced at their month's average (`costs`, with a card).
pub(crate) fn pool_advice(
    w: &Window,
    tenant: TenantId,
    target: &PoolTarget,
    values: &[f64],
    costs: Option<(&CostSums, Currency)>,
    now: DateTime<Utc>,
) -> Option<Advice> {
    let mut days = completed_days(w, values);
    if let Some((sums, _)) = costs {
        for d in &mut days {
            d.cost = sums.day_cost(d.day, d.bytes);
        }
    }
    let pool = &target.pool;
    let q = quota_advice(&days, Some(pool.rule.limit_bytes), false)?;
    let basis = AdviceBasis {
        tenant_id: tenant,
        subject: AdviceSubject::Pool(pool.id),
        iccid: None,
        customer_id: pool.members.customer(),
        window_from: w.first,
        window_to: last_completed(w),
        computed_at: now,
    };
    Some(basis.quota(&q, Some(pool.rule.action), None, costs.map(|(_, c)| c)))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use ioto_domain::advice::AdviceAction;
    use ioto_domain::billing::rate_card::{
        BillingPeriod, RateCardTerms, RateCardVersion, TariffOverride, Zone, ZonePrice,
    };
    use ioto_domain::identifiers::MccMnc;
    use ioto_domain::quota::QuotaRule;
    use ioto_domain::quota_pool::{PoolMembers, QuotaPool};
    use uuid::Uuid;

    use super::*;

    const MB: u64 = 1_000_000;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 18, 10, 0, 0).unwrap()
    }

    fn cost(s: &str) -> Cost {
        Cost::parse("c", s).unwrap()
    }

    /// 0.01 a MB at home, 0.10 elsewhere, 1 a month; plan `heavy`: 0.002 at home, 10 a month.
    fn pricing() -> Pricing {
        let p = |s| Price::parse("p", s).unwrap();
        let terms = RateCardTerms {
            effective_from: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
            rounding_increment_bytes: 1,
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
                access_fee: Some(p("10")),
                zone_prices: vec![ZonePrice {
                    zone: "Home".into(),
                    price_per_mb: p("0.002"),
                }],
            }],
        };
        let card = RateCard {
            id: Uuid::nil(),
            tenant_id: TenantId(Uuid::nil()),
            kind: RateCardKind::Retail,
            name: "Retail".into(),
            currency: Currency::parse("currency", "EUR").unwrap(),
            billing_period: BillingPeriod::Monthly,
            retired_from: None,
            created_at: now(),
            versions: vec![RateCardVersion {
                id: Uuid::nil(),
                terms,
                created_at: now(),
                created_by: "test".into(),
            }],
        };
        Pricing::of(vec![card], now().date_naive()).unwrap()
    }

    #[test]
    fn a_heavy_sim_is_priced_advised_and_counted_toward_its_groups() {
        let w = Window::at(now());
        let pricing = pricing();
        assert_eq!(pricing.options, [None, Some("heavy".to_owned())]);
        // 200 MB a day at home over the 90 completed days (18 December to 17 March).
        let bytes = vec![200e6; w.len()];
        let home = MccMnc::parse("262-01").unwrap();
        let traffic: Vec<NetworkDayBytes> = (0..w.today_index())
            .map(|i| NetworkDayBytes {
                day: w.day(i),
                network: Some(home.clone()),
                bytes: 200 * MB,
            })
            .collect();
        let sim = (
            SimId(Uuid::nil()),
            None,
            Iccid::with_check_digit("898822800000000001").unwrap(),
        );
        let job = SimAdvice {
            tenant: TenantId(Uuid::nil()),
            sim: &sim,
            plan: None,
            bytes: &bytes,
            traffic: &traffic,
            quota: None,
        };
        let (advice, costs) = sim_advice(&w, Some(&pricing), &job, now());
        let actions: Vec<(AdviceAction, Option<Cost>)> =
            advice.iter().map(|a| (a.action, a.saving)).collect();
        // Base: 18,000 MB × 0.01 and four months' fees (December to March) = 184; heavy: 18,000
        // MB × 0.002 and four fees of 10 = 76. No quota: a 10 GB limit (6.2 GB in January).
        assert_eq!(
            actions,
            [
                (AdviceAction::SwitchPlan, Some(cost("108"))),
                (AdviceAction::Set, Some(Cost::ZERO))
            ]
        );
        assert_eq!(advice[1].recommended_limit_bytes, Some(10_000 * MB));
        let costs = costs.unwrap();
        // March so far: 17 days at 2.00 and March's fee.
        assert_eq!(costs.so_far, cost("35"));
        assert_eq!(
            (costs.window_cost, costs.window_bytes),
            (cost("180"), 18_000 * MB)
        );
        assert_eq!(costs.months.len(), 4);
        assert_eq!(
            costs.months.get(&NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()),
            Some(&(cost("62"), 6_200 * MB))
        );

        // The groups add it up; a pool of it, with a 1 GB limit, is told to raise it.
        let mut groups = GroupCosts::new(1);
        groups.add(Some(CustomerId(Uuid::nil())), &[0], &costs);
        groups.add(None, &[], &costs);
        assert_eq!(groups.tenant.window_cost, cost("360"));
        assert_eq!(groups.pools[0].so_far, cost("35"));
        let target = PoolTarget {
            pool: QuotaPool {
                id: Uuid::nil(),
                tenant_id: TenantId(Uuid::nil()),
                name: "Fleet".into(),
                members: PoolMembers::Customer(CustomerId(Uuid::nil())),
                rule: QuotaRule {
                    limit_bytes: 1_000 * MB,
                    stages: vec![],
                    action: QuotaAction::Suspend,
                    resume_next_period: false,
                },
                set_by: "test".into(),
                created_at: now(),
                updated_at: now(),
            },
            time_zone: chrono_tz::Tz::UTC,
        };
        let pool = pool_advice(
            &w,
            TenantId(Uuid::nil()),
            &target,
            &bytes,
            Some((&groups.pools[0], pricing.currency())),
            now(),
        )
        .unwrap();
        assert_eq!(
            (pool.action, pool.saving, pool.recommended_limit_bytes),
            (AdviceAction::Raise, Some(Cost::ZERO), Some(10_000 * MB))
        );
        assert!(
            pool.sentence
                .starts_with("Its 1 GB limit is below its usual 6.2 GB a month: it would have stopped the pool's SIMs in 2 of 2 months"),
            "{}",
            pool.sentence
        );
        // The projected cost: so far, and 14 days of 200 MB at 0.01 a MB to the end of March.
        let days: Vec<DayForecast> = (0..31)
            .map(|i| DayForecast {
                date: w.today + chrono::Duration::days(i),
                point: 200e6,
                lo80: 100e6,
                hi80: 300e6,
                lo95: 0.0,
                hi95: 400e6,
            })
            .collect();
        let projected = pricing.projected(&w, &costs, None, &days);
        assert_eq!(
            (
                projected.cost_so_far,
                projected.projected,
                projected.projected_high80
            ),
            (cost("35"), cost("63"), cost("77"))
        );
        // Without any traffic priced, at the default zone's price of the plan.
        let empty = CostSums::default();
        assert_eq!(pricing.projected(&w, &empty, None, &days).projected, cost("280"));
    }
}
